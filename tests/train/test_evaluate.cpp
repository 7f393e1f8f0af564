// evaluate(): batch-size invariance and agreement with ranks computed from EMBSR::scores on the
// whole set at once.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#include <embsr/model/embsr.hpp>
#include <embsr/train/evaluate.hpp>

#include "exec_spaces.hpp"
#include "../model/model_fixture.hpp"

namespace test_evaluate {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;

// The tiny examples, each again with two other targets (one seen in the input when possible).
embsr::ExampleSet evaluation_set() {
  const embsr::ExampleSet base = embsr::test::tiny_examples();
  embsr::ExampleSet set = base;
  for (std::size_t e = 0; e < base.size(); ++e) {
    const auto items = base.input_items(e);
    const auto ops = base.input_ops(e);
    set.add(items, ops, (base.targets[e] + 3) % 9, base.next_ops[e], static_cast<embsr::offset_t>(set.size()), 0.0);
    set.add(items, ops, items.back(), (base.next_ops[e] + 1) % 3, static_cast<embsr::offset_t>(set.size()), 0.0);
  }
  return set;
}

void require_same(const embsr::RankingMetrics& a, const embsr::RankingMetrics& b) {
  REQUIRE(a.sessions == b.sessions);
  for (int i = 0; i < embsr::kNumMetricKs; ++i) {
    CHECK(a.hits[i] == b.hits[i]);
    CHECK(a.rr[i] == b.rr[i]);
    CHECK(a.ndcg[i] == b.ndcg[i]);
  }
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("evaluate: batch-size invariant and equal to ranks from scores of the whole set",
                        "[train][evaluate]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const embsr::Config config = embsr::test::tiny_config();
  embsr::EMBSR<Exec, double> model(config);
  const embsr::ExampleSet set = evaluation_set();
  REQUIRE(set.size() == 15);

  // Reference: one batch of the whole set, ranks counted on the host from the scores.
  const auto batch = embsr::test::make_batch<M>(set, embsr::test::all_ids(set));
  const auto scores = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model.scores(batch));
  REQUIRE(scores.extent(0) == set.size());
  REQUIRE(scores.extent(1) == static_cast<std::size_t>(config.num_items));
  embsr::RankingMetrics reference;
  std::vector<std::size_t> ranks;
  for (std::size_t b = 0; b < set.size(); ++b) {
    const auto t = static_cast<std::size_t>(set.targets[b]);
    std::size_t rank = 1;
    for (std::size_t v = 0; v < scores.extent(1); ++v)
      if (v != t && scores(b, v) >= scores(b, t)) ++rank;
    ranks.push_back(rank);
    reference.add_rank(rank);
  }
  // Not a degenerate model: the ranks vary.
  CHECK(*std::min_element(ranks.begin(), ranks.end()) < *std::max_element(ranks.begin(), ranks.end()));

  for (const std::size_t batch_size : {std::size_t(1), std::size_t(2), std::size_t(4), std::size_t(512)}) {
    INFO("batch_size " << batch_size);
    require_same(embsr::evaluate(model, set, batch_size), reference);
    CHECK(embsr::evaluate_ranks(model, set, batch_size) == ranks);
  }
  require_same(embsr::evaluate(model, set), reference);  // default batch size
  // Evaluation mode: repeated calls give the same result (no dropout).
  require_same(embsr::evaluate(model, set, 2), embsr::evaluate(model, set, 2));
}

TEMPLATE_LIST_TEST_CASE("evaluate: empty set, batch size 0, invalid examples", "[train][evaluate]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  embsr::EMBSR<Exec, double> model(embsr::test::tiny_config());
  CHECK(embsr::evaluate(model, embsr::ExampleSet(), 4).sessions == 0);
  const embsr::ExampleSet set = embsr::test::tiny_examples();
  CHECK_THROWS_AS(embsr::evaluate(model, set, 0), embsr::InvalidArgument);
  embsr::ExampleSet bad = set;
  std::vector<index_t> items{1, 2}, ops{0, 1};
  bad.add(embsr::Span<const index_t>(items.data(), 2), embsr::Span<const index_t>(ops.data(), 2), 9, 0, 99, 0.0);
  CHECK_THROWS_AS(embsr::evaluate(model, bad, 4), embsr::InvalidArgument);  // target outside the catalogue
}

TEST_CASE("split_repeat_explore: targets already in the input vs new ones", "[train][evaluate]") {
  embsr::ExampleSet set;
  auto add = [&](std::vector<index_t> items, index_t target) {
    const std::vector<index_t> ops(items.size(), 0);
    set.add(embsr::Span<const index_t>(items.data(), items.size()), embsr::Span<const index_t>(ops.data(), ops.size()),
            target, 0, static_cast<embsr::offset_t>(set.size()), 0.0);
  };
  add({1, 2, 1, 3}, 2);  // repeat (in the middle of the input)
  add({4, 5}, 6);        // explore
  add({7}, 7);           // repeat (the only item)
  add({1, 2}, 3);        // explore
  const std::vector<std::size_t> ranks{1, 4, 0, 30};
  const auto split = embsr::split_repeat_explore(set, ranks);
  CHECK(split.repeat.sessions == 2);
  CHECK(split.explore.sessions == 2);
  CHECK(split.repeat.hit(1) == 0.5);   // ranks 1 and 0 (absent target: a miss)
  CHECK(split.repeat.mrr(20) == 0.5);
  CHECK(split.explore.hit(5) == 0.5);  // ranks 4 and 30
  CHECK(split.explore.hit(20) == 0.5);
  CHECK(split.explore.mrr(5) == 0.125);
  // The two parts add up to the whole.
  embsr::RankingMetrics whole;
  for (const std::size_t r : ranks) whole.add_rank(r);
  embsr::RankingMetrics sum = split.repeat;
  sum += split.explore;
  require_same(sum, whole);
  CHECK_THROWS_AS(embsr::split_repeat_explore(set, {1, 2}), embsr::InvalidArgument);
}

}  // namespace test_evaluate
