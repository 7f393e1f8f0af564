// GEMM (BLAS or Eigen on host spaces, cuBLAS on CUDA, the Kokkos fallback kernel) against a host
// product from the definition, on every transpose combination and the special shapes.
#include <catch2/catch.hpp>

#include <vector>

#include <embsr/core/gemm.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_gemm {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

template <class M>
using Mat = Kokkos::View<double**, Kokkos::LayoutRight, M>;
template <class M>
using Vec = Kokkos::View<double*, M>;

// Reference product on the host, straight from the definition.
std::vector<double> reference(embsr::Trans ta, embsr::Trans tb, const std::vector<double>& A, const std::vector<double>& B,
                              int m, int n, int k) {
  std::vector<double> C(static_cast<std::size_t>(m * n), 0.0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      for (int p = 0; p < k; ++p) {
        const double a = ta == embsr::Trans::No ? A[static_cast<std::size_t>(i * k + p)] : A[static_cast<std::size_t>(p * m + i)];
        const double b = tb == embsr::Trans::No ? B[static_cast<std::size_t>(p * n + j)] : B[static_cast<std::size_t>(j * k + p)];
        C[static_cast<std::size_t>(i * n + j)] += a * b;
      }
  return C;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("gemm: all transpose combinations, alpha and beta, library and Kokkos paths", "[core][gemm]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int m = 5, n = 4, k = 3;
  for (auto ta : {embsr::Trans::No, embsr::Trans::Yes})
    for (auto tb : {embsr::Trans::No, embsr::Trans::Yes}) {
      Mat<M> A("A", ta == embsr::Trans::No ? m : k, ta == embsr::Trans::No ? k : m);
      Mat<M> B("B", tb == embsr::Trans::No ? k : n, tb == embsr::Trans::No ? n : k);
      Mat<M> C("C", m, n), C2("C2", m, n);
      embsr::test::fill_random(A, 1);
      embsr::test::fill_random(B, 2);
      embsr::test::fill_random(C, 3);
      Kokkos::deep_copy(C2, C);
      const auto c0 = embsr::test::to_vector(C);
      embsr::gemm(Exec(), ta, tb, 0.5, A, B, 2.0, C);
      embsr::detail::kokkos_gemm(Exec(), ta, tb, 0.5, A, B, 2.0, C2);
      Kokkos::fence();
      const auto ref = reference(ta, tb, embsr::test::to_vector(A), embsr::test::to_vector(B), m, n, k);
      const auto got = embsr::test::to_vector(C), got2 = embsr::test::to_vector(C2);
      for (std::size_t i = 0; i < ref.size(); ++i) {
        CHECK(got[i] == Approx(0.5 * ref[i] + 2.0 * c0[i]).epsilon(1e-12));
        CHECK(got2[i] == Approx(0.5 * ref[i] + 2.0 * c0[i]).epsilon(1e-12));
      }
    }
}

// Float (sgemm) and the degenerate shapes a batch-1 request produces: one row, one column, k = 1.
TEMPLATE_LIST_TEST_CASE("gemm: float, one-row (short and long), one-column and k = 1 shapes against the Kokkos kernel", "[core][gemm]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  using MatF = Kokkos::View<float**, Kokkos::LayoutRight, M>;
  INFO("host GEMM library: " << embsr::host_gemm_library());
  // {1, 20000, 3}: a single row against a long matrix, split over the threads on host backends.
  const int shapes[][3] = {{1, 7, 5}, {6, 1, 5}, {4, 3, 1}, {1, 1, 9}, {33, 17, 100}, {1, 20000, 3}};
  for (const auto& s : shapes) {
    const int m = s[0], n = s[1], k = s[2];
    for (auto ta : {embsr::Trans::No, embsr::Trans::Yes})
      for (auto tb : {embsr::Trans::No, embsr::Trans::Yes}) {
        CAPTURE(m, n, k, ta == embsr::Trans::Yes, tb == embsr::Trans::Yes);
        MatF A("A", ta == embsr::Trans::No ? m : k, ta == embsr::Trans::No ? k : m);
        MatF B("B", tb == embsr::Trans::No ? k : n, tb == embsr::Trans::No ? n : k);
        MatF C("C", m, n), C2("C2", m, n);
        embsr::test::fill_random(A, 11);
        embsr::test::fill_random(B, 12);
        embsr::test::fill_random(C, 13);
        Kokkos::deep_copy(C2, C);
        embsr::gemm(Exec(), ta, tb, 1.5f, A, B, -0.5f, C);
        embsr::detail::kokkos_gemm(Exec(), ta, tb, 1.5f, A, B, -0.5f, C2);
        Kokkos::fence();
        const auto got = embsr::test::to_vector(C), want = embsr::test::to_vector(C2);
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-5).margin(1e-5));
      }
  }
}

TEMPLATE_LIST_TEST_CASE("gemm: strided row views (subviews of wider matrices)", "[core][gemm]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  Mat<M> wide("wide", 4, 6), W("W", 2, 3), Y("Y", 4, 2);
  embsr::test::fill_random(wide, 4);
  embsr::test::fill_random(W, 5);
  auto X = Kokkos::subview(wide, Kokkos::ALL, Kokkos::make_pair(3, 6));  // right half: row stride 6
  embsr::gemm(Exec(), embsr::Trans::No, embsr::Trans::Yes, 1.0, X, W, 0.0, Y);
  Kokkos::fence();
  const auto w = embsr::test::to_vector(wide), wt = embsr::test::to_vector(W), y = embsr::test::to_vector(Y);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j) {
      double ref = 0;
      for (int p = 0; p < 3; ++p) ref += w[static_cast<std::size_t>(i * 6 + 3 + p)] * wt[static_cast<std::size_t>(j * 3 + p)];
      CHECK(y[static_cast<std::size_t>(i * 2 + j)] == Approx(ref).epsilon(1e-12));
    }
}

TEST_CASE("gemm: shape mismatches are rejected", "[core][gemm]") {
  Mat<Kokkos::HostSpace> A("A", 2, 3), B("B", 4, 2), C("C", 2, 2);
  CHECK_THROWS_AS(embsr::gemm(Kokkos::DefaultHostExecutionSpace(), embsr::Trans::No, embsr::Trans::No, 1.0, A, B, 0.0, C),
                  embsr::InvalidArgument);
}

}  // namespace test_gemm
