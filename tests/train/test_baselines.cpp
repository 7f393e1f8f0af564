// POP and S-POP baselines on hand-made sets with known popularity and in-session counts, and
// against a brute-force scoring of the whole catalogue.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include <embsr/train/baselines.hpp>

namespace test_baselines {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;

void add(embsr::ExampleSet& set, std::vector<index_t> items, index_t target) {
  std::vector<index_t> ops(items.size(), 0);
  set.add(embsr::Span<const index_t>(items.data(), items.size()), embsr::Span<const index_t>(ops.data(), ops.size()),
          target, 0, static_cast<embsr::offset_t>(set.size()), static_cast<double>(set.size()));
}

// Popularity over 6 items: pop = {4, 2, 2, 1, 0, 0}.
//   item 0: inputs 2 + targets 2; item 1: inputs 2; item 2: input 1 + target 1; item 3: input 1.
embsr::ExampleSet train_set() {
  embsr::ExampleSet train;
  add(train, {0, 0, 1}, 2);
  add(train, {1, 2}, 0);
  add(train, {3}, 0);
  return train;
}

embsr::RankingMetrics metrics_of(const std::vector<std::size_t>& ranks) {
  embsr::RankingMetrics m;
  for (const std::size_t r : ranks) m.add_rank(r);
  return m;
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

TEST_CASE("baselines: POP ranks items by training occurrences, ties above the target", "[train][baselines]") {
  const embsr::PopularityBaseline pop(train_set(), 6);
  CHECK(pop.popularity() == std::vector<std::int64_t>{4, 2, 2, 1, 0, 0});
  embsr::ExampleSet test;
  const std::vector<index_t> targets{0, 1, 2, 3, 4, 5, -1, 6};
  const std::vector<std::size_t> expected{1, 3, 3, 4, 6, 6, 0, 0};
  for (const index_t t : targets) add(test, {5, 5, 3}, t);  // the input does not matter to POP
  for (std::size_t e = 0; e < targets.size(); ++e) CHECK(pop.rank(targets[e]) == expected[e]);
  require_same(pop.evaluate(test), metrics_of(expected));
  CHECK(pop.evaluate(embsr::ExampleSet()).sessions == 0);
}

TEST_CASE("baselines: S-POP ranks by in-session count, then popularity", "[train][baselines]") {
  // pop = {4, 2, 2, 1, 0, 0}; score = count + pop / 5.
  const embsr::SessionPopularityBaseline spop(train_set(), 6);
  CHECK(spop.popularity() == std::vector<std::int64_t>{4, 2, 2, 1, 0, 0});
  embsr::ExampleSet test;
  std::vector<std::size_t> expected;
  auto expect = [&](std::vector<index_t> items, index_t target, std::size_t rank) {
    add(test, std::move(items), target);
    expected.push_back(rank);
  };
  expect({5, 5, 3}, 5, 1);     // count 2: the session's most frequent item
  expect({5, 5, 3}, 3, 2);     // count 1, below item 5 (count 2)
  expect({5, 5, 3}, 0, 3);     // absent: below both session items, most popular of the rest
  expect({5, 5, 3}, 4, 6);     // absent, pop 0: every item scores >= it (4 ties with 5's pop but 5 is in session)
  expect({1, 2, 4, 4}, 2, 3);  // count 1 like item 1, same pop 2: the tie counts above; item 4 (count 2) too
  expect({1, 2, 4, 4}, 1, 3);  // symmetric
  expect({1, 2, 4, 4}, 3, 5);  // absent, pop 1: three session items, then item 0 (pop 4)
  expect({1, 2, 4, 4}, 5, 6);  // absent, pop 0: session items 1, 2, 4, then items 0 and 3
  expect({0}, 0, 1);           // the only session item
  expect({2}, 1, 3);           // absent, pop 2: item 2 (session), item 0 (pop 4)
  expect({2}, 2, 1);           // count 1, nobody else in the session
  expect({3, 4, 3}, 4, 2);     // count 1 below item 3 (count 2)
  expect({0, 1}, -1, 0);       // target outside the catalogue
  expect({0, 1}, 6, 0);
  for (std::size_t e = 0; e < test.size(); ++e) CHECK(spop.rank(test, e) == expected[e]);
  require_same(spop.evaluate(test), metrics_of(expected));
}

TEST_CASE("baselines: S-POP and POP match a brute-force scoring of the catalogue", "[train][baselines]") {
  std::mt19937 gen(7);
  const index_t V = 40;
  std::uniform_int_distribution<index_t> skewed(0, 9), any(0, V - 1), len(1, 8);
  auto draw = [&]() { return gen() % 2 ? skewed(gen) : any(gen); };  // popular head, ties in the tail
  embsr::ExampleSet train, test;
  for (int e = 0; e < 60; ++e) {
    std::vector<index_t> items(static_cast<std::size_t>(len(gen)));
    for (auto& i : items) i = draw();
    add(train, items, draw());
  }
  for (int e = 0; e < 200; ++e) {
    std::vector<index_t> items(static_cast<std::size_t>(len(gen)));
    for (auto& i : items) i = draw();
    add(test, items, e % 4 == 0 ? items[0] : any(gen));
  }
  const embsr::PopularityBaseline pop(train, V);
  const embsr::SessionPopularityBaseline spop(train, V);
  const auto& p = pop.popularity();
  std::int64_t max_pop = 0;
  for (const auto c : p) max_pop = std::max(max_pop, c);
  std::vector<std::size_t> pop_ranks, spop_ranks;
  for (std::size_t e = 0; e < test.size(); ++e) {
    std::vector<double> s_pop(static_cast<std::size_t>(V)), s_spop(static_cast<std::size_t>(V));
    std::vector<int> count(static_cast<std::size_t>(V), 0);
    for (const index_t i : test.input_items(e)) ++count[static_cast<std::size_t>(i)];
    for (std::size_t v = 0; v < s_pop.size(); ++v) {
      s_pop[v] = static_cast<double>(p[v]);
      s_spop[v] = count[v] + static_cast<double>(p[v]) / static_cast<double>(max_pop + 1);
    }
    const auto t = static_cast<std::size_t>(test.targets[e]);
    std::size_t r_pop = 1, r_spop = 1;
    for (std::size_t v = 0; v < s_pop.size(); ++v) {
      if (v == t) continue;
      r_pop += s_pop[v] >= s_pop[t] ? 1 : 0;
      r_spop += s_spop[v] >= s_spop[t] ? 1 : 0;
    }
    CHECK(pop.rank(test.targets[e]) == r_pop);
    CHECK(spop.rank(test, e) == r_spop);
    pop_ranks.push_back(r_pop);
    spop_ranks.push_back(r_spop);
  }
  require_same(pop.evaluate(test), metrics_of(pop_ranks));
  require_same(spop.evaluate(test), metrics_of(spop_ranks));
  CHECK(pop.ranks(test) == pop_ranks);
  CHECK(spop.ranks(test) == spop_ranks);
}

TEST_CASE("baselines: invalid catalogues and items throw", "[train][baselines]") {
  CHECK_THROWS_AS(embsr::PopularityBaseline(train_set(), 0), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::SessionPopularityBaseline(train_set(), -3), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::PopularityBaseline(train_set(), 3), embsr::InvalidArgument);  // item 3 in the inputs
  embsr::ExampleSet bad_target;
  add(bad_target, {0}, 9);
  CHECK_THROWS_AS(embsr::SessionPopularityBaseline(bad_target, 6), embsr::InvalidArgument);
  const embsr::SessionPopularityBaseline spop(train_set(), 6);
  embsr::ExampleSet bad_input;
  add(bad_input, {0, 7}, 1);
  CHECK_THROWS_AS(spop.evaluate(bad_input), embsr::InvalidArgument);
}

}  // namespace test_baselines
