// Catch2 entry point: Kokkos is initialised once for the whole test run.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <Kokkos_Core.hpp>

#include <cstdlib>

int main(int argc, char* argv[]) {
  // Kokkos' OpenMP backend warns on stdout when OMP_PROC_BIND is unset; that line would corrupt
  // CTest's test discovery (which parses --list-test-names-only). Tests don't need pinned threads.
  setenv("OMP_PROC_BIND", "false", /*overwrite=*/0);
  Kokkos::ScopeGuard kokkos(argc, argv);
  return Catch::Session().run(argc, argv);
}
