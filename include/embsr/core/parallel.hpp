#pragma once
// Loop helpers for the element-wise kernels and column reductions of the layers.
//
// parallel_for_2d: f(i, j) for every i in [0, rows), j in [0, cols), in parallel, each pair once.
// On GPUs this is an MDRangePolicy. On host backends Kokkos 3.x's MDRangePolicy walks tiles through
// an index-decoding loop that the compiler cannot vectorise (it was the slowest part of several
// element-wise kernels); here each thread takes whole rows and runs a plain inner loop over the
// contiguous columns instead, which the compiler can vectorise. A short, wide range (fewer rows
// than 2 per thread) is split by element so that a batch-1 request still uses every thread.

#include <string>
#include <type_traits>

#include <Kokkos_Core.hpp>

// Before a host loop whose iterations are independent (a parallel_for's are, by contract): lets
// the compiler vectorise it without proving that the Views it writes do not overlap the ones it
// reads. Empty where the compiler has no such pragma, and under nvcc (whose device pass rejects it).
#if defined(__CUDACC__) || defined(__HIPCC__)
#define EMBSR_IVDEP
#elif defined(__clang__)
#define EMBSR_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define EMBSR_IVDEP _Pragma("GCC ivdep")
#else
#define EMBSR_IVDEP
#endif

namespace embsr {

// The execution space runs on the host (Serial, OpenMP, Threads): kernels may take a host-only
// branch there (plain loops the compiler vectorises, Eigen, per-thread buffers).
template <class ExecSpace>
inline constexpr bool host_execution_space =
    Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename ExecSpace::memory_space>::accessible;

template <class ExecSpace, class F>
void parallel_for_2d(const ExecSpace& exec, const std::string& label, std::size_t rows, std::size_t cols, const F& f) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "parallel_for_2d: first argument must be an execution space");
  const int n = static_cast<int>(rows), m = static_cast<int>(cols);
  if (n == 0 || m == 0) return;
  if constexpr (host_execution_space<ExecSpace>) {
    if (n >= 2 * exec.concurrency() || n >= m) {
      Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, n), KOKKOS_LAMBDA(const int i) {
        EMBSR_IVDEP
        for (int j = 0; j < m; ++j) f(i, j);
      });
    } else {
      const long total = static_cast<long>(n) * m;
      Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<long>>(exec, 0, total),
                           KOKKOS_LAMBDA(const long e) { f(static_cast<int>(e / m), static_cast<int>(e % m)); });
    }
  } else {
    Kokkos::parallel_for(label, Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>(exec, {0, 0}, {n, m}), f);
  }
}

// db[j] += sum_i dY(i, j) for a row-major [n x m] dY (bias gradients). Every column is summed in
// row order by one thread, so the result does not depend on the thread count or the backend's
// scheduling. On GPUs one thread per column (coalesced across threads); on host backends one thread
// per block of 16 adjacent columns, walking the rows, so each row's block is one contiguous read
// instead of 16 strided ones.
template <class ExecSpace, class DYV, class DBV>
void add_column_sums(const ExecSpace& exec, const std::string& label, const DYV& dY, const DBV& db) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "add_column_sums: first argument must be an execution space");
  using S = typename DBV::non_const_value_type;
  const int n = static_cast<int>(dY.extent(0)), m = static_cast<int>(dY.extent(1));
  if (m == 0) return;
  if constexpr (host_execution_space<ExecSpace>) {
    constexpr int W = 16;
    Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, (m + W - 1) / W), KOKKOS_LAMBDA(const int blk) {
      const int j0 = blk * W, w = m - j0 < W ? m - j0 : W;
      S acc[W] = {};
      for (int i = 0; i < n; ++i)
        for (int c = 0; c < w; ++c) acc[c] += static_cast<S>(dY(i, j0 + c));
      for (int c = 0; c < w; ++c) db(j0 + c) += acc[c];
    });
  } else {
    Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, m), KOKKOS_LAMBDA(const int j) {
      S acc = 0;
      for (int i = 0; i < n; ++i) acc += static_cast<S>(dY(i, j));
      db(j) += acc;
    });
  }
}

}  // namespace embsr
