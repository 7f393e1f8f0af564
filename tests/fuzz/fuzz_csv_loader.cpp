// libFuzzer harness for the delimited-log loader (embsr::load_delimited on a stream), and through it
// the CSV reader. Build and run: scripts/fuzz.sh csv_loader (see tests/fuzz/README.md).
//
// The first byte picks the options, so that one corpus covers every mode:
//   bit 0     lenient (else strict)
//   bit 1     user column + inactivity gap (else session column)
//   bit 2     ISO-8601 timestamps (else unix seconds)
//   bit 3     numeric operations (else names)
//   bits 4-5  delimiter: ',' ';' '\t' '|'
//   bit 6     a fixed operation vocabulary (names "view", "cart", "buy" or numbers 0, 1, 2)
//   bit 7     a session gap of 0 s (every time step splits) instead of 1800 s
// The columns are called sid / user, ts, item, op. The rest of the input is the file. A DataError /
// InvalidArgument is the loader's documented answer to bad input; anything else (another
// exception, a crash, a sanitizer report) escapes and libFuzzer reports it.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include <embsr/core/error.hpp>
#include <embsr/data/delimited_loader.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const unsigned mode = data[0];
  using Options = embsr::DelimitedOptions;
  Options options;
  options.lenient = (mode & 1) != 0;
  if (mode & 2)
    options.user_column = "user";
  else
    options.session_column = "sid";
  options.time_column = "ts";
  options.item_column = "item";
  options.operation_column = "op";
  options.time_format = (mode & 4) ? Options::TimeFormat::Iso8601 : Options::TimeFormat::Seconds;
  const bool numeric_ops = (mode & 8) != 0;
  options.operation_kind = numeric_ops ? Options::OperationKind::Number : Options::OperationKind::Name;
  static const char delimiters[] = {',', ';', '\t', '|'};
  options.delimiter = delimiters[(mode >> 4) & 3];
  if (mode & 64)
    options.operations = numeric_ops ? std::vector<std::string>{"0", "1", "2"}
                                     : std::vector<std::string>{"view", "cart", "buy"};
  if (mode & 128) options.session_gap_seconds = 0;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  embsr::LoadReport report;
  try {
    const embsr::SessionDataset ds = embsr::load_delimited(in, "fuzz.csv", options, &report);
    (void)report.summary();
    if (ds.num_sessions() != report.sessions || ds.num_events() != report.events) __builtin_trap();
    if (report.events + report.skipped_records != report.records_read) __builtin_trap();
    for (std::size_t s = 0; s < ds.num_sessions(); ++s)
      if (ds.session(s).items.size() == 0) __builtin_trap();  // no empty session is ever added
  } catch (const embsr::DataError&) {
  } catch (const embsr::InvalidArgument&) {
  }
  return 0;
}
