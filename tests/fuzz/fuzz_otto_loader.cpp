// libFuzzer harness for the OTTO RecSys 2022 JSON-lines loader (embsr::load_otto on a stream).
// Build and run: scripts/fuzz.sh otto_loader (see tests/fuzz/README.md).
//
// The first byte picks the options (bit 0: lenient); the rest is the file. A DataError /
// InvalidArgument is the loader's documented answer to bad input; anything else (another
// exception, a crash, a sanitizer report) escapes and libFuzzer reports it.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include <embsr/core/error.hpp>
#include <embsr/data/otto_loader.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  embsr::LoadOptions options;
  options.lenient = (data[0] & 1) != 0;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  embsr::LoadReport report;
  try {
    const embsr::SessionDataset ds = embsr::load_otto(in, "fuzz.jsonl", options, &report);
    (void)report.summary();
    if (ds.num_sessions() != report.sessions || ds.num_events() != report.events) __builtin_trap();
    // Every line ends up in exactly one bucket (otto_loader.hpp): a kept session, an empty one, or
    // skipped; no event is ever dropped.
    if (report.sessions + report.empty_sessions + report.skipped_records != report.records_read) __builtin_trap();
    if (report.dropped_rows != 0) __builtin_trap();
    // Each session is in time order and keyed by its last time; every id is in its vocabulary.
    for (std::size_t s = 0; s < ds.num_sessions(); ++s) {
      const embsr::SessionView v = ds.session(s);
      if (v.size() == 0 || v.order_key != v.times[v.size() - 1]) __builtin_trap();
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i > 0 && v.times[i - 1] > v.times[i]) __builtin_trap();
        if (v.items[i] < 0 || v.items[i] >= ds.item_vocab.size() || v.ops[i] < 0 || v.ops[i] > 2) __builtin_trap();
      }
    }
  } catch (const embsr::DataError&) {
  } catch (const embsr::InvalidArgument&) {
  }
  return 0;
}
