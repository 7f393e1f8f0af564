// Catch2 entry point: Kokkos is initialised once for the whole test run.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <Kokkos_Core.hpp>

#include <execinfo.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <optional>
#include <string>

namespace {
// A crash prints the raw call stack (after Catch2's own report, which hands the signal on): on a
// machine without a debugger, addr2line -e embsr_tests on the printed offsets finds the place.
extern "C" void print_stack_and_die(int sig) {
  void* frames[64];
  const int n = backtrace(frames, 64);
  static const char header[] = "\n*** fatal signal, call stack:\n";
  [[maybe_unused]] const auto ignored = write(STDERR_FILENO, header, sizeof(header) - 1);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}
}  // namespace

int main(int argc, char* argv[]) {
  // Listing the tests (CTest's discovery runs --list-test-names-only right after linking) needs no
  // Kokkos: a CUDA build must list its tests on a machine without a GPU.
  bool listing = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--list-test-names-only" || a == "--list-tests" || a == "-l" || a == "--list-tags" || a == "-t" ||
        a == "--list-reporters")
      listing = true;
  }
  // Kokkos' OpenMP backend warns on stdout when OMP_PROC_BIND is unset; that line would corrupt
  // CTest's test discovery (which parses --list-test-names-only). Tests don't need pinned threads.
  setenv("OMP_PROC_BIND", "false", /*overwrite=*/0);
  for (const int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, print_stack_and_die);
  std::optional<Kokkos::ScopeGuard> kokkos;
  if (!listing) kokkos.emplace(argc, argv);
  return Catch::Session().run(argc, argv);
}
