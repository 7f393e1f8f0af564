#pragma once
// The one dense matrix product of the library:  C = alpha * op(A) * op(B) + beta * C  on row-major
// 2-D Views (rows may be strided, columns contiguous). Host-accessible memory goes through Eigen
// (RowMajor maps over the View data, no copies), or, where EMBSR_USE_BLAS is defined (CMake option
// EMBSR_BLAS, on by default where OpenBLAS is installed), float and double through the BLAS
// sgemm_/dgemm_ of the linked library; float and double Views in CUDA memory go through cuBLAS on the
// execution space instance's stream; anything else falls back to a plain Kokkos kernel.

#include <algorithm>
#include <string>
#include <type_traits>

#include <Eigen/Core>
#include <Kokkos_Core.hpp>

#if defined(KOKKOS_ENABLE_CUDA)
#include <cublas_v2.h>
#endif

#include <embsr/core/error.hpp>

#if defined(EMBSR_USE_BLAS)
// The Fortran BLAS interface, which every BLAS library exports (OpenBLAS, BLIS, MKL, the reference
// BLAS): declared here so that no vendor's cblas.h is needed.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc);
}
#endif

namespace embsr {

enum class Trans { No, Yes };

// Which library multiplies host-accessible matrices (for benchmark reports).
inline const char* host_gemm_library() {
#if defined(EMBSR_USE_BLAS)
  return "BLAS";
#else
  return "Eigen";
#endif
}

namespace detail {

template <class V>
auto eigen_map(const V& v) {
  using S = typename V::value_type;
  using M = Eigen::Matrix<std::remove_const_t<S>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using MapT = std::conditional_t<std::is_const<S>::value, const M, M>;
  const Eigen::Index stride = v.extent(0) > 1 ? static_cast<Eigen::Index>(v.stride(0)) : static_cast<Eigen::Index>(v.extent(1));
  return Eigen::Map<MapT, Eigen::Unaligned, Eigen::OuterStride<>>(
      v.data(), static_cast<Eigen::Index>(v.extent(0)), static_cast<Eigen::Index>(v.extent(1)),
      Eigen::OuterStride<>(stride > 0 ? stride : 1));
}

// C = alpha op(A) op(B) + beta C through Eigen maps of host Views (no copies).
template <class AV, class BV, class CV, class S>
void eigen_gemm(Trans ta, Trans tb, S alpha, const AV& A, const BV& B, S beta, const CV& C) {
  auto a = eigen_map(A);
  auto b = eigen_map(B);
  auto c = eigen_map(C);
  if (beta == S(0)) c.setZero();
  else if (beta != S(1)) c *= beta;
  if (ta == Trans::No && tb == Trans::No) c.noalias() += alpha * a * b;
  else if (ta == Trans::No) c.noalias() += alpha * a * b.transpose();
  else if (tb == Trans::No) c.noalias() += alpha * a.transpose() * b;
  else c.noalias() += alpha * a.transpose() * b.transpose();
}

template <class ExecSpace, class AV, class BV, class CV, class S>
void kokkos_gemm(const ExecSpace& exec, Trans ta, Trans tb, S alpha, const AV& A, const BV& B, S beta, const CV& C) {
  const int m = static_cast<int>(C.extent(0)), n = static_cast<int>(C.extent(1));
  const int k = static_cast<int>(ta == Trans::No ? A.extent(1) : A.extent(0));
  const bool at = ta == Trans::Yes, bt = tb == Trans::Yes;
  Kokkos::parallel_for(
      "embsr::gemm", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>(exec, {0, 0}, {m, n}),
      KOKKOS_LAMBDA(const int i, const int j) {
        S acc = 0;
        for (int p = 0; p < k; ++p) acc += (at ? A(p, i) : A(i, p)) * (bt ? B(j, p) : B(p, j));
        C(i, j) = beta == S(0) ? alpha * acc : alpha * acc + beta * C(i, j);
      });
}

// Leading dimension of a row-major View as BLAS wants it: the row stride, at least the row length.
template <class V>
int blas_ld(const V& v) {
  const auto cols = static_cast<long long>(v.extent(1));
  const auto stride = v.extent(0) > 1 ? static_cast<long long>(v.stride(0)) : cols;
  return static_cast<int>(std::max<long long>(std::max(stride, cols), 1));
}

#if defined(EMBSR_USE_BLAS)
// Row-major C = alpha op(A) op(B) + beta C is column-major C^T = alpha op(B)^T op(A)^T + beta C^T:
// the same memory, operands swapped, no transposes materialised (as for cuBLAS below).
template <class S, class AV, class BV, class CV>
void blas_gemm(Trans ta, Trans tb, S alpha, const AV& A, const BV& B, S beta, const CV& C, int k) {
  const int m = static_cast<int>(C.extent(0)), n = static_cast<int>(C.extent(1));
  const int lda = blas_ld(A), ldb = blas_ld(B), ldc = blas_ld(C);
  const char opa = ta == Trans::No ? 'N' : 'T', opb = tb == Trans::No ? 'N' : 'T';
  if constexpr (std::is_same<S, float>::value)
    sgemm_(&opb, &opa, &n, &m, &k, &alpha, B.data(), &ldb, A.data(), &lda, &beta, C.data(), &ldc);
  else
    dgemm_(&opb, &opa, &n, &m, &k, &alpha, B.data(), &ldb, A.data(), &lda, &beta, C.data(), &ldc);
}
#endif

#if defined(KOKKOS_ENABLE_CUDA)
// One cuBLAS handle per host thread and device (cuBLAS handles are not thread-safe; creating one
// costs milliseconds). Deliberately never destroyed: destroying it after the CUDA context is torn
// down at exit would fail, and the driver frees it with the process.
inline cublasHandle_t cublas_handle() {
  int device = 0;
  cudaGetDevice(&device);
  thread_local int handle_device = -1;
  thread_local cublasHandle_t handle = nullptr;
  if (handle == nullptr || handle_device != device) {
    const cublasStatus_t st = cublasCreate(&handle);
    if (st != CUBLAS_STATUS_SUCCESS)
      throw Error("gemm: cublasCreate failed with status " + std::to_string(static_cast<int>(st)));
    handle_device = device;
  }
  return handle;
}

// Row-major C = alpha op(A) op(B) + beta C is column-major C^T = alpha op(B)^T op(A)^T + beta C^T:
// the same memory, operands swapped, no transposes materialised.
template <class ExecSpace, class AV, class BV, class CV, class S>
void cublas_gemm(const ExecSpace& exec, Trans ta, Trans tb, S alpha, const AV& A, const BV& B, S beta, const CV& C,
                 int k) {
  const int m = static_cast<int>(C.extent(0)), n = static_cast<int>(C.extent(1));
  const int lda = blas_ld(A), ldb = blas_ld(B), ldc = blas_ld(C);
  const cublasHandle_t h = cublas_handle();
  cublasSetStream(h, exec.cuda_stream());
  const cublasOperation_t opb = tb == Trans::No ? CUBLAS_OP_N : CUBLAS_OP_T;
  const cublasOperation_t opa = ta == Trans::No ? CUBLAS_OP_N : CUBLAS_OP_T;
  cublasStatus_t st;
  if constexpr (std::is_same<S, float>::value)
    st = cublasSgemm(h, opb, opa, n, m, k, &alpha, B.data(), ldb, A.data(), lda, &beta, C.data(), ldc);
  else
    st = cublasDgemm(h, opb, opa, n, m, k, &alpha, B.data(), ldb, A.data(), lda, &beta, C.data(), ldc);
  if (st != CUBLAS_STATUS_SUCCESS)
    throw Error("gemm: cuBLAS gemm failed with status " + std::to_string(static_cast<int>(st)));
}
#endif

}  // namespace detail

template <class ExecSpace, class AV, class BV, class CV>
void gemm(const ExecSpace& exec, Trans ta, Trans tb, typename CV::non_const_value_type alpha, const AV& A, const BV& B,
          typename CV::non_const_value_type beta, const CV& C) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "gemm: first argument must be an execution space");
  static_assert(AV::rank == 2 && BV::rank == 2 && CV::rank == 2, "gemm: 2-D views only");
  static_assert(std::is_same<typename CV::array_layout, Kokkos::LayoutRight>::value, "gemm: LayoutRight views only");
  using S = typename CV::non_const_value_type;
  const std::size_t m = C.extent(0), n = C.extent(1);
  const std::size_t am = ta == Trans::No ? A.extent(0) : A.extent(1), ak = ta == Trans::No ? A.extent(1) : A.extent(0);
  const std::size_t bk = tb == Trans::No ? B.extent(0) : B.extent(1), bn = tb == Trans::No ? B.extent(1) : B.extent(0);
  if (am != m || bn != n || ak != bk)
    throw InvalidArgument("gemm: shape mismatch: op(A) " + std::to_string(am) + "x" + std::to_string(ak) + ", op(B) " +
                          std::to_string(bk) + "x" + std::to_string(bn) + ", C " + std::to_string(m) + "x" +
                          std::to_string(n));
  if (m == 0 || n == 0) return;
  if (ak == 0) {  // empty inner dimension: C = beta * C
    Kokkos::parallel_for("embsr::gemm_scale", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>(exec, {0, 0}, {m, n}),
                         KOKKOS_LAMBDA(const int i, const int j) { C(i, j) = beta == S(0) ? S(0) : beta * C(i, j); });
    return;
  }
  constexpr bool host = Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename CV::memory_space>::accessible &&
                        Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename AV::memory_space>::accessible &&
                        Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename BV::memory_space>::accessible;
  // A profiling region (free unless a Kokkos tool is attached): benchmarks/kernel_profile.hpp reports it.
  // With a tool attached the region names the shape (m x n x k) and the transposes.
  struct Region {
    explicit Region(const std::string& name) { Kokkos::Profiling::pushRegion(name); }
    ~Region() { Kokkos::Profiling::popRegion(); }
  } region(Kokkos::Tools::profileLibraryLoaded()
               ? std::string("embsr::gemm ") + (ta == Trans::No ? "N" : "T") + (tb == Trans::No ? "N" : "T") + " " +
                     std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(ak)
               : std::string());
  if constexpr (host) {
    exec.fence();  // earlier kernels on `exec` wrote A, B or C
#if defined(EMBSR_USE_BLAS)
    constexpr bool blas = (std::is_same<S, float>::value || std::is_same<S, double>::value) &&
                          std::is_same<std::remove_const_t<typename AV::value_type>, S>::value &&
                          std::is_same<std::remove_const_t<typename BV::value_type>, S>::value;
    // A single row or column is a matrix-vector product: Eigen's GEMV reads the matrix once, where
    // a BLAS GEMM first packs all of it (a batch-1 request's scoring took 2.4x longer through sgemm).
    if constexpr (blas) {
      if (m > 1 && n > 1) {
        detail::blas_gemm(ta, tb, alpha, A, B, beta, C, static_cast<int>(ak));
        return;
      }
    }
#endif
    // One row against a long matrix (a batch-1 request scoring every item): Eigen's GEMV is single
    // threaded, so the columns of C are split over the execution space's threads, each a GEMV on
    // its slice of B (the product reads B once: memory bandwidth, which scales with the cores).
    if (m == 1 && n >= 16384 && exec.concurrency() > 1) {
      const std::size_t parts = static_cast<std::size_t>(exec.concurrency());
      Kokkos::parallel_for("embsr::gemm_row_split", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(parts)),
                           [&](const int p) {
                             const std::size_t j0 = n * static_cast<std::size_t>(p) / parts;
                             const std::size_t j1 = n * static_cast<std::size_t>(p + 1) / parts;
                             const auto cp = Kokkos::subview(C, Kokkos::ALL, Kokkos::make_pair(j0, j1));
                             if (tb == Trans::Yes)
                               detail::eigen_gemm(ta, tb, alpha, A,
                                                       Kokkos::subview(B, Kokkos::make_pair(j0, j1), Kokkos::ALL), beta, cp);
                             else
                               detail::eigen_gemm(ta, tb, alpha, A,
                                                       Kokkos::subview(B, Kokkos::ALL, Kokkos::make_pair(j0, j1)), beta, cp);
                           });
      exec.fence();
      return;
    }
    detail::eigen_gemm(ta, tb, alpha, A, B, beta, C);
  } else {
#if defined(KOKKOS_ENABLE_CUDA)
    constexpr bool cuda_blas =
        std::is_same<ExecSpace, Kokkos::Cuda>::value && (std::is_same<S, float>::value || std::is_same<S, double>::value) &&
        std::is_same<std::remove_const_t<typename AV::value_type>, S>::value &&
        std::is_same<std::remove_const_t<typename BV::value_type>, S>::value &&
        Kokkos::SpaceAccessibility<Kokkos::Cuda, typename AV::memory_space>::accessible &&
        Kokkos::SpaceAccessibility<Kokkos::Cuda, typename BV::memory_space>::accessible &&
        Kokkos::SpaceAccessibility<Kokkos::Cuda, typename CV::memory_space>::accessible;
    if constexpr (cuda_blas) {
      detail::cublas_gemm(exec, ta, tb, alpha, A, B, beta, C, static_cast<int>(ak));
      return;
    }
#endif
    detail::kokkos_gemm(exec, ta, tb, alpha, A, B, beta, C);
  }
}

}  // namespace embsr
