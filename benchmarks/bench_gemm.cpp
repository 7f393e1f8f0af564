// The practical single-precision GEMM peak of this machine through the library's own gemm()
// (Eigen on host memory, cuBLAS on CUDA memory): C = A B for n x n matrices, GFLOP/s = 2 n^3 / s.
// The training-step benchmark reports its achieved GFLOP/s against this number.
//
//   bench_gemm [--n 4096] [--repeats 3]
#include <embsr/core/gemm.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  int n = 4096, repeats = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--n" || a == "--repeats") && i + 1 < argc) (a == "--n" ? n : repeats) = std::atoi(argv[++i]);
    else if (a.rfind("--kokkos", 0) != 0) {
      std::fprintf(stderr, "usage: bench_gemm [--n N] [--repeats R]\n");
      return 2;
    }
  }
  using Exec = Kokkos::DefaultExecutionSpace;
  using Mat = Kokkos::View<float**, Kokkos::LayoutRight, Exec::memory_space>;
  Mat A("A", n, n), B("B", n, n), C("C", n, n);
  Kokkos::parallel_for(
      "fill", Kokkos::MDRangePolicy<Exec, Kokkos::Rank<2>>({0, 0}, {n, n}), KOKKOS_LAMBDA(const int i, const int j) {
        A(i, j) = static_cast<float>((i * 7 + j * 3) % 13) / 13.0f - 0.5f;
        B(i, j) = static_cast<float>((i * 5 + j * 11) % 17) / 17.0f - 0.5f;
      });
  Exec().fence();
  std::vector<double> seconds;
  for (int r = 0; r <= repeats; ++r) {  // the first run warms up
    const auto t0 = std::chrono::steady_clock::now();
    embsr::gemm(Exec(), embsr::Trans::No, embsr::Trans::No, 1.0f, A, B, 0.0f, C);
    Exec().fence();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) seconds.push_back(s);
  }
  std::sort(seconds.begin(), seconds.end());
  const double best = seconds.front(), gflops = 2.0 * n * static_cast<double>(n) * n / best / 1e9;
  std::printf("bench_gemm: SGEMM %d^3 on %s (%d threads): best of %d %.3f s, %.1f GFLOP/s\n", n, Exec::name(),
              Exec().concurrency(), repeats, best, gflops);
  std::printf("{\"impl\": \"embsr-gemm\", \"backend\": \"%s\", \"threads\": %d, \"n\": %d, \"seconds\": %.6f, \"gflops\": %.2f}\n",
              Exec::name(), Exec().concurrency(), n, best, gflops);
  return 0;
}
