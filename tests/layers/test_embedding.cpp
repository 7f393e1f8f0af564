// Embedding lookup: gather by id, and the scatter-add of its gradient (repeated ids accumulate,
// unused rows untouched).
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include <embsr/layers/embedding.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_embedding {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

template <class M>
using Mat = Kokkos::View<double**, Kokkos::LayoutRight, M>;
template <class M>
using Ids = Kokkos::View<std::int32_t*, M>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("embedding: forward gathers rows, backward scatter-adds (repeated ids)", "[layers][embedding]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int V = 6, d = 3;
  const std::vector<std::int32_t> id_list{2, 0, 2, 5, 2, 0, 4};  // row 1 and 3 unused, row 2 thrice
  const int n = static_cast<int>(id_list.size());
  Mat<M> table("table", V, d), out("out", n, d), R("R", n, d), dtable("dtable", V, d);
  auto ids = embsr::test::to_ids<M>(id_list);
  embsr::test::fill_random(table, 21);
  embsr::test::fill_random(R, 22);

  auto loss = [&] {
    embsr::embedding_forward(Exec(), table, ids, out);
    Kokkos::fence();
    return embsr::test::dot(out, R);
  };
  loss();
  const auto t = embsr::test::to_vector(table), o = embsr::test::to_vector(out);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j)
      CHECK(o[static_cast<std::size_t>(i * d + j)] == t[static_cast<std::size_t>(id_list[static_cast<std::size_t>(i)] * d + j)]);

  // Backward adds: start from a non-zero gradient buffer and subtract it afterwards.
  embsr::test::fill_random(dtable, 23);
  const auto before = embsr::test::to_vector(dtable);
  embsr::embedding_backward(Exec(), ids, R, dtable);
  Kokkos::fence();
  auto grad = embsr::test::to_vector(dtable);
  for (std::size_t i = 0; i < grad.size(); ++i) grad[i] -= before[i];
  for (int j = 0; j < d; ++j) {  // unused rows: exactly untouched
    CHECK(grad[static_cast<std::size_t>(1 * d + j)] == 0.0);
    CHECK(grad[static_cast<std::size_t>(3 * d + j)] == 0.0);
  }
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"table", embsr::test::flat(table), grad}};
  embsr::test::check_gradients<M>(loss, targets);
}

TEMPLATE_LIST_TEST_CASE("embedding: strided output rows and empty batches", "[layers][embedding]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  Mat<M> table("table", 4, 2), wide("wide", 3, 5), dtable("dtable", 4, 2);
  embsr::test::fill_random(table, 31);
  auto ids = embsr::test::to_ids<M>({3, 1, 3});
  auto out = Kokkos::subview(wide, Kokkos::ALL, Kokkos::make_pair(2, 4));  // row stride 5
  embsr::embedding_forward(Exec(), table, ids, out);
  Kokkos::fence();
  const auto t = embsr::test::to_vector(table), w = embsr::test::to_vector(wide);
  const int rows[3] = {3, 1, 3};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) {
      CHECK(w[static_cast<std::size_t>(i * 5 + 2 + j)] == t[static_cast<std::size_t>(rows[i] * 2 + j)]);
      CHECK(w[static_cast<std::size_t>(i * 5 + j)] == 0.0);
    }
  Ids<M> none("none", 0);
  Mat<M> empty("empty", 0, 2);
  embsr::embedding_forward(Exec(), table, none, empty);
  embsr::embedding_backward(Exec(), none, empty, dtable);
  Kokkos::fence();
  for (double v : embsr::test::to_vector(dtable)) CHECK(v == 0.0);
}

TEST_CASE("embedding: shape mismatches are rejected", "[layers][embedding]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  Mat<M> table("table", 4, 3), out("out", 2, 2), dtable("dtable", 4, 2);
  Ids<M> ids("ids", 3);
  CHECK_THROWS_AS(embsr::embedding_forward(Exec(), table, ids, out), embsr::InvalidArgument);
  Mat<M> out2("out2", 3, 3);
  CHECK_THROWS_AS(embsr::embedding_backward(Exec(), ids, out2, dtable), embsr::InvalidArgument);
}

}  // namespace test_embedding
