// Dataset statistics (Table II columns, operation counts, length percentiles) on hand-made data.
#include <catch2/catch.hpp>

#include <embsr/data/statistics.hpp>

#include <vector>

namespace test_statistics {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;

void add(embsr::ExampleSet& set, std::vector<index_t> items, std::vector<index_t> ops, index_t target) {
  set.add(embsr::Span<const index_t>(items.data(), items.size()), embsr::Span<const index_t>(ops.data(), ops.size()),
          target, 0, 0, 0.0);
}

}  // namespace

TEST_CASE("nearest-rank percentiles", "[data][statistics]") {
  const std::vector<std::size_t> v{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  CHECK(embsr::nearest_rank_percentile(v, 50) == 5);
  CHECK(embsr::nearest_rank_percentile(v, 90) == 9);
  CHECK(embsr::nearest_rank_percentile(v, 99) == 10);
  CHECK(embsr::nearest_rank_percentile(v, 100) == 10);
  CHECK(embsr::nearest_rank_percentile(v, 1) == 1);
  CHECK(embsr::nearest_rank_percentile({}, 50) == 0);
  const auto s = embsr::summarize_lengths({7, 3, 5});
  CHECK(s.min == 3);
  CHECK(s.max == 7);
  CHECK(s.p50 == 5);
  CHECK(s.mean == Approx(5.0));
}

TEST_CASE("Table II columns, operations and lengths of a prepared dataset", "[data][statistics]") {
  embsr::PreparedData data;
  for (const char* t : {"a", "b", "c", "d"}) data.item_vocab.add(t);
  data.op_vocab = embsr::Vocabulary({"view", "cart", "order"});
  // train: a a b (ops 0 1 0) -> target c   | macro 2, distinct 2, target not in input
  add(data.train, {0, 0, 1}, {0, 1, 0}, 2);
  // train: a b a (ops 0 0 2) -> target b   | macro 3, distinct 2, target in input
  add(data.train, {0, 1, 0}, {0, 0, 2}, 1);
  // valid: d (op 1) -> target a            | macro 1, distinct 1
  add(data.valid, {3}, {1}, 0);
  // test:  c d c d (ops 0 0 0 0) -> target a | macro 4, distinct 2
  add(data.test, {2, 3, 2, 3}, {0, 0, 0, 0}, 0);

  const auto st = embsr::compute_statistics(data);
  CHECK(st.train_sessions == 2);
  CHECK(st.valid_sessions == 1);
  CHECK(st.test_sessions == 1);
  CHECK(st.items == 4);
  CHECK(st.micro_behaviors == 3 + 3 + 1 + 4 + 4);  // inputs plus one target each
  CHECK(st.operations == 3);
  CHECK(st.operation_counts == std::vector<std::size_t>{8, 2, 1});
  CHECK(st.micro_length.min == 1);
  CHECK(st.micro_length.max == 4);
  CHECK(st.micro_length.p50 == 3);
  CHECK(st.macro_length.min == 1);
  CHECK(st.macro_length.max == 4);
  CHECK(st.macro_length.p50 == 2);
  CHECK(st.distinct_items.max == 2);
  CHECK(st.distinct_items.min == 1);
  CHECK(st.target_in_input == Approx(0.25));
}

}  // namespace test_statistics
