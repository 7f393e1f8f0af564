// The practical single-precision GEMM peak of this machine through the library's own gemm() (BLAS
// or Eigen on host memory, cuBLAS on CUDA memory): C = A B for n x n matrices, GFLOP/s = 2 n^3 / s.
// The training-step benchmark reports its achieved GFLOP/s against this number. Then the three
// GEMM shapes of the scoring at a training batch (how far each is from that peak):
//   scores        [B x V] = m_hat [B x d] items_hat^T       (k = d: short inner dimension)
//   dL/dm_hat     [B x d] = dscores [B x V] items_hat [V x d] (k = V)
//   dL/ditems_hat [V x d] = dscores^T m_hat [B x d]           (k = B)
//
//   bench_gemm [--n 4096] [--repeats 3] [--batch 512] [--items 75160] [--d 100]
#include <embsr/core/gemm.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mat = Kokkos::View<float**, Kokkos::LayoutRight, Exec::memory_space>;

Mat filled(const char* label, int rows, int cols, int salt) {
  Mat x(std::string(label), rows, cols);
  Kokkos::parallel_for(
      "fill", Kokkos::MDRangePolicy<Exec, Kokkos::Rank<2>>({0, 0}, {rows, cols}), KOKKOS_LAMBDA(const int i, const int j) {
        x(i, j) = static_cast<float>((i * 7 + j * (3 + salt)) % 13) / 13.0f - 0.5f;
      });
  return x;
}

// Best of `repeats` timed runs after one warm-up run, in seconds.
template <class F>
double best_seconds(int repeats, F&& f) {
  std::vector<double> seconds;
  for (int r = 0; r <= repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    Exec().fence();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) seconds.push_back(s);
  }
  return *std::min_element(seconds.begin(), seconds.end());
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  int n = 4096, repeats = 3, batch = 512, items = 75160, d = 100;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    int* target = a == "--n" ? &n : a == "--repeats" ? &repeats : a == "--batch" ? &batch : a == "--items" ? &items
                : a == "--d" ? &d : nullptr;
    if (target != nullptr && i + 1 < argc) *target = std::atoi(argv[++i]);
    else if (a.rfind("--kokkos", 0) != 0) {
      std::fprintf(stderr, "usage: bench_gemm [--n N] [--repeats R] [--batch B] [--items V] [--d D]\n");
      return 2;
    }
  }
  const bool host = Kokkos::SpaceAccessibility<Kokkos::HostSpace, Exec::memory_space>::accessible;
  const char* library = host ? embsr::host_gemm_library() : "cuBLAS";
  {
    Mat A = filled("A", n, n, 0), B = filled("B", n, n, 1), C("C", n, n);
    const double best = best_seconds(repeats, [&] { embsr::gemm(Exec(), embsr::Trans::No, embsr::Trans::No, 1.0f, A, B, 0.0f, C); });
    const double gflops = 2.0 * n * static_cast<double>(n) * n / best / 1e9;
    std::printf("bench_gemm: SGEMM %d^3 through %s on %s (%d threads): best of %d %.3f s, %.1f GFLOP/s\n", n, library,
                Exec::name(), Exec().concurrency(), repeats, best, gflops);
    std::printf("{\"impl\": \"embsr-gemm\", \"library\": \"%s\", \"backend\": \"%s\", \"threads\": %d, \"n\": %d, "
                "\"seconds\": %.6f, \"gflops\": %.2f}\n",
                library, Exec::name(), Exec().concurrency(), n, best, gflops);
  }
  if (batch > 0 && items > 0 && d > 0) {
    Mat m_hat = filled("m_hat", batch, d, 2), items_hat = filled("items_hat", items, d, 3);
    Mat scores("scores", batch, items), dm("dm", batch, d), dE("dE", items, d);
    const double flop = 2.0 * batch * static_cast<double>(items) * d;
    const auto report = [&](const char* what, double s) {
      std::printf("  %-34s %8.2f ms  %6.1f GFLOP/s\n", what, 1e3 * s, flop / s / 1e9);
      std::printf("{\"impl\": \"embsr-gemm-shape\", \"shape\": \"%s\", \"batch\": %d, \"items\": %d, \"d\": %d, "
                  "\"seconds\": %.6f, \"gflops\": %.2f}\n",
                  what, batch, items, d, s, flop / s / 1e9);
    };
    std::printf("scoring GEMMs, B %d, |V| %d, d %d (%.2f GFLOP each):\n", batch, items, d, flop / 1e9);
    report("scores = m_hat items_hat^T", best_seconds(repeats, [&] {
             embsr::gemm(Exec(), embsr::Trans::No, embsr::Trans::Yes, 1.0f, m_hat, items_hat, 0.0f, scores);
           }));
    report("dm_hat = dscores items_hat", best_seconds(repeats, [&] {
             embsr::gemm(Exec(), embsr::Trans::No, embsr::Trans::No, 1.0f, scores, items_hat, 0.0f, dm);
           }));
    report("ditems_hat = dscores^T m_hat", best_seconds(repeats, [&] {
             embsr::gemm(Exec(), embsr::Trans::Yes, embsr::Trans::No, 1.0f, scores, m_hat, 0.0f, dE);
           }));
  }
  return 0;
}
