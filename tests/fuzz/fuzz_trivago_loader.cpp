// libFuzzer harness for the trivago RecSys 2019 CSV loader (embsr::load_trivago on a stream).
// Build and run: scripts/fuzz.sh trivago_loader (see tests/fuzz/README.md).
//
// The first byte picks the options (bit 0: lenient); the rest is the file. A DataError /
// InvalidArgument is the loader's documented answer to bad input; anything else (another
// exception, a crash, a sanitizer report) escapes and libFuzzer reports it.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include <embsr/core/error.hpp>
#include <embsr/data/trivago_loader.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  embsr::LoadOptions options;
  options.lenient = (data[0] & 1) != 0;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  embsr::LoadReport report;
  try {
    const embsr::SessionDataset ds = embsr::load_trivago(in, "fuzz.csv", options, &report);
    (void)report.summary();
    if (ds.num_sessions() != report.sessions || ds.num_events() != report.events) __builtin_trap();
    // Every record ends up in exactly one bucket (load_options.hpp): kept, skipped or dropped.
    if (report.events + report.skipped_records + report.dropped_rows != report.records_read) __builtin_trap();
  } catch (const embsr::DataError&) {
  } catch (const embsr::InvalidArgument&) {
  }
  return 0;
}
