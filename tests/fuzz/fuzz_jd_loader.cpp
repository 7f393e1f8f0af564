// libFuzzer harness for the JD micro-behavior loader (embsr::load_jd on a stream).
// Build and run: scripts/fuzz.sh jd_loader (see tests/fuzz/README.md).
//
// The first byte picks the options (bit 0: lenient, bit 1: dedupe identical sessions); the rest is
// the file. A DataError / InvalidArgument is the loader's documented answer to bad input; anything
// else (another exception, a crash, a sanitizer report) escapes and libFuzzer reports it.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include <embsr/core/error.hpp>
#include <embsr/data/jd_loader.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  embsr::JdOptions options;
  options.lenient = (data[0] & 1) != 0;
  options.dedupe_identical_sessions = (data[0] & 2) != 0;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  embsr::LoadReport report;
  try {
    const embsr::SessionDataset ds = embsr::load_jd(in, "fuzz.txt", options, &report);
    (void)report.summary();
    // What the loader promises on success: every event of the report is in the dataset.
    if (ds.num_sessions() != report.sessions || ds.num_events() != report.events) __builtin_trap();
  } catch (const embsr::DataError&) {
  } catch (const embsr::InvalidArgument&) {
  }
  return 0;
}
