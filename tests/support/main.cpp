// Catch2 entry point: Kokkos is initialised once for the whole test run.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <Kokkos_Core.hpp>

#include <cstdlib>
#include <optional>
#include <string>

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
  std::optional<Kokkos::ScopeGuard> kokkos;
  if (!listing) kokkos.emplace(argc, argv);
  return Catch::Session().run(argc, argv);
}
