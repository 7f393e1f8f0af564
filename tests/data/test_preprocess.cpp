// preprocess(): every rule of MODEL.md sections 1 and 6 on hand-made sessions (expected values
// worked out by hand from the rules), then a real JD sample against an independent re-derivation.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <embsr/data/preprocess.hpp>

#include "jd_sample.hpp"

namespace test_preprocess {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

using namespace embsr;
using V = std::vector<index_t>;
using Catch::Matchers::Contains;

namespace {

// A dataset over fixed vocabularies; each session is written "a:0 a:1 b:0" (item token:op id).
struct HandData {
  SessionDataset data;
  HandData(const std::vector<std::string>& items, index_t num_ops) {
    for (const auto& t : items) data.item_vocab.add(t);
    for (index_t o = 0; o < num_ops; ++o) data.op_vocab.add("op" + std::to_string(o));
  }
  void add(const std::string& session, double order_key) {
    std::istringstream in(session);
    std::string token;
    std::vector<MicroBehavior> events;
    while (in >> token) {
      const auto colon = token.find(':');
      events.push_back(MicroBehavior{*data.item_vocab.find(token.substr(0, colon)),
                                     static_cast<index_t>(std::stoi(token.substr(colon + 1))),
                                     static_cast<double>(events.size())});
    }
    data.add_session(events, order_key, "s" + std::to_string(data.num_sessions()));
  }
};

V input_items(const ExampleSet& set, std::size_t e) {
  const auto s = set.input_items(e);
  return V(s.begin(), s.end());
}
V input_ops(const ExampleSet& set, std::size_t e) {
  const auto s = set.input_ops(e);
  return V(s.begin(), s.end());
}
std::vector<offset_t> sources(const ExampleSet& set) { return set.sources; }

PreprocessOptions all_train(index_t min_support = 1, index_t max_length = 50) {
  PreprocessOptions o;
  o.min_item_support = min_support;
  o.max_length = max_length;
  o.train_fraction = 1.0;
  o.valid_fraction = 0.0;
  return o;
}

}  // namespace

TEST_CASE("preprocess: target extraction", "[preprocess]") {
  HandData h({"a", "b", "c"}, 5);
  h.add("a:0 a:1 b:2 b:3 b:4", 0);  // repeated trailing item: target b with the op of the FIRST b of the last run
  h.add("a:0 b:1 a:2", 1);          // target occurs earlier in the session
  h.add("c:0", 2);                  // single micro-behavior: dropped
  h.add("c:0 c:1 c:2", 3);          // one macro item: dropped
  h.add("a:3 b:4", 4);
  const PreparedData p = preprocess(h.data, all_train());

  CHECK(p.stats.raw_sessions == 5);
  CHECK(p.stats.raw_events == 14);
  CHECK(p.stats.sessions_too_short == 2);
  CHECK(p.stats.events_removed_by_support == 0);
  CHECK(p.item_vocab.tokens() == std::vector<std::string>{"a", "b", "c"});
  CHECK(p.op_vocab == h.data.op_vocab);
  REQUIRE(p.train.size() == 3);
  CHECK(p.valid.empty());
  CHECK(p.test.empty());
  CHECK(sources(p.train) == std::vector<offset_t>{0, 1, 4});

  CHECK(input_items(p.train, 0) == V{0, 0});
  CHECK(input_ops(p.train, 0) == V{0, 1});
  CHECK(p.train.targets[0] == 1);
  CHECK(p.train.next_ops[0] == 2);

  CHECK(input_items(p.train, 1) == V{0, 1});
  CHECK(input_ops(p.train, 1) == V{0, 1});
  CHECK(p.train.targets[1] == 0);
  CHECK(p.train.next_ops[1] == 2);

  CHECK(input_items(p.train, 2) == V{0});
  CHECK(input_ops(p.train, 2) == V{3});
  CHECK(p.train.targets[2] == 1);
  CHECK(p.train.next_ops[2] == 4);
  CHECK(p.stats.train_events == 5);
  CHECK(p.train.offsets == std::vector<offset_t>{0, 2, 4, 5});
}

TEST_CASE("preprocess: item-support filter and re-indexing", "[preprocess]") {
  // Raw vocabulary x a b y z c w; supports (micro-behaviors): x 1, a 4, b 6, y 2, z 1, c 3, w 1.
  // With min_item_support = 3 the items x, y, z, w go (5 micro-behaviors).
  HandData h({"x", "a", "b", "y", "z", "c", "w"}, 4);
  h.add("x:0 a:1 b:2 a:3", 0);  // -> a b a: target a (op 3), input a b (ops 1 2)
  h.add("a:0 z:1 a:2 b:3", 1);  // -> a a b: the two a runs merge once z is gone; target b (op 3), input a a (ops 0 2)
  h.add("y:0 b:1", 2);          // -> b: fewer than 2 macro items only because of the filter -> dropped
  h.add("b:0 c:1 c:2", 3);      // -> target c with the op of the first c (1), input b (op 0)
  h.add("c:0 b:1 y:2 b:3", 4);  // -> c b b: trailing b b after filtering: target b (op 1), input c (op 0)
  h.add("w:0", 5);              // emptied by the filter -> dropped
  const PreparedData p = preprocess(h.data, all_train(3));

  CHECK(p.stats.raw_events == 18);
  CHECK(p.stats.events_removed_by_support == 5);
  CHECK(p.stats.items_before == 7);
  CHECK(p.stats.items_after == 3);
  CHECK(p.stats.sessions_too_short == 2);
  // Dense ids in order of first appearance over the dataset: a (session 0), b (session 0), c (session 3).
  CHECK(p.item_vocab.tokens() == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(p.train.size() == 4);
  CHECK(sources(p.train) == std::vector<offset_t>{0, 1, 3, 4});

  CHECK(input_items(p.train, 0) == V{0, 1});
  CHECK(input_ops(p.train, 0) == V{1, 2});
  CHECK(p.train.targets[0] == 0);
  CHECK(p.train.next_ops[0] == 3);

  CHECK(input_items(p.train, 1) == V{0, 0});
  CHECK(input_ops(p.train, 1) == V{0, 2});
  CHECK(p.train.targets[1] == 1);
  CHECK(p.train.next_ops[1] == 3);

  CHECK(input_items(p.train, 2) == V{1});
  CHECK(input_ops(p.train, 2) == V{0});
  CHECK(p.train.targets[2] == 2);
  CHECK(p.train.next_ops[2] == 1);

  CHECK(input_items(p.train, 3) == V{2});
  CHECK(input_ops(p.train, 3) == V{0});
  CHECK(p.train.targets[3] == 1);
  CHECK(p.train.next_ops[3] == 1);

  // min_item_support = 1 keeps everything; support 7 removes all but b, and b-only sessions
  // have no example.
  CHECK(preprocess(h.data, all_train(1)).stats.items_after == 7);
  const PreparedData only_b = preprocess(h.data, all_train(6));
  CHECK(only_b.item_vocab.tokens() == std::vector<std::string>{"b"});
  CHECK(only_b.train.empty());
  CHECK(only_b.stats.sessions_too_short == 6);
}

TEST_CASE("preprocess: truncation keeps the last L micro-behaviors before macro merging", "[preprocess]") {
  HandData h({"a", "b", "c", "d", "e"}, 7);
  h.add("a:0 a:1 b:2 b:3 c:4 c:5 d:6", 0);  // input a a b b c c; L = 3 cuts inside the b run: b c c
  h.add("a:0 b:1 c:2 d:3 e:4", 1);          // input a b c d -> b c d
  h.add("a:0 b:1", 2);                      // input a: untouched
  h.add("a:0 b:1 c:2 c:3", 3);              // input a b (target c): exactly... shorter than L
  const PreparedData p = preprocess(h.data, all_train(1, 3));
  REQUIRE(p.train.size() == 4);
  CHECK(input_items(p.train, 0) == V{1, 2, 2});
  CHECK(input_ops(p.train, 0) == V{3, 4, 5});
  CHECK(p.train.targets[0] == 3);
  CHECK(p.train.next_ops[0] == 6);
  CHECK(input_items(p.train, 1) == V{1, 2, 3});
  CHECK(input_ops(p.train, 1) == V{1, 2, 3});
  CHECK(p.train.targets[1] == 4);
  CHECK(input_items(p.train, 2) == V{0});
  CHECK(input_items(p.train, 3) == V{0, 1});
  CHECK(p.train.targets[3] == 2);
  CHECK(p.train.next_ops[3] == 2);
  CHECK(p.stats.truncated_sessions == 2);
  CHECK(p.stats.events_removed_by_truncation == 3 + 1);
  CHECK(p.stats.train_events == 3 + 3 + 1 + 2);

  // L = 1: only the last input micro-behavior remains; the target is unaffected by truncation.
  const PreparedData one = preprocess(h.data, all_train(1, 1));
  CHECK(input_items(one.train, 0) == V{2});
  CHECK(input_ops(one.train, 0) == V{5});
  CHECK(one.train.targets[0] == 3);
  CHECK(one.stats.truncated_sessions == 3);
}

TEST_CASE("preprocess: chronological split with ties and unsorted keys", "[preprocess]") {
  HandData h({"a", "b"}, 1);
  const std::vector<double> keys{5, 3, 9, 3, 1, 7, 5, 0, 8, 3};
  for (const double k : keys) h.add("a:0 b:0", k);
  // Stable order by key: 7 (0), 4 (1), 1 3 9 (3, ties in dataset order), 0 6 (5), 5 (7), 8 (8), 2 (9).
  PreprocessOptions o;  // 0.7 / 0.1 / rest: 10 sessions -> 7 / 1 / 2
  const PreparedData p = preprocess(h.data, o);
  CHECK(sources(p.train) == std::vector<offset_t>{7, 4, 1, 3, 9, 0, 6});
  CHECK(sources(p.valid) == std::vector<offset_t>{5});
  CHECK(sources(p.test) == std::vector<offset_t>{8, 2});
  CHECK(p.train.order_keys == std::vector<double>{0, 1, 3, 3, 3, 5, 5});
  CHECK(p.stats.train_sessions == 7);
  CHECK(p.stats.valid_sessions == 1);
  CHECK(p.stats.test_sessions == 2);
  CHECK(p.stats.test_events == 2);

  o.train_fraction = 0.5;
  o.valid_fraction = 0.5;
  const PreparedData half = preprocess(h.data, o);
  CHECK(half.train.size() == 5);
  CHECK(half.valid.size() == 5);
  CHECK(half.test.empty());
  o.train_fraction = 0.0;
  o.valid_fraction = 0.0;
  CHECK(preprocess(h.data, o).test.size() == 10);
}

TEST_CASE("preprocess: split sizes round down at each cumulative boundary", "[preprocess]") {
  // floor(n * train), floor(n * (train + valid)); 0.7 + 0.1 is 0.7999999999999999 in binary,
  // which must still give 8 of 10.
  CHECK(split_boundary(10, 0.7) == 7);
  CHECK(split_boundary(10, 0.7 + 0.1) == 8);
  CHECK(split_boundary(7, 0.7) == 4);      // 4.9
  CHECK(split_boundary(7, 0.8) == 5);      // 5.6
  CHECK(split_boundary(3, 0.7) == 2);      // 2.1
  CHECK(split_boundary(3, 0.8) == 2);      // 2.4
  CHECK(split_boundary(100, 0.7) == 70);
  CHECK(split_boundary(1000, 0.7 + 0.1) == 800);
  CHECK(split_boundary(0, 0.7) == 0);
  CHECK(split_boundary(5, 1.0) == 5);
  CHECK(split_boundary(5, 0.0) == 0);

  HandData h({"a", "b"}, 1);
  for (int s = 0; s < 7; ++s) h.add("a:0 b:0", s);
  const PreparedData p = preprocess(h.data, PreprocessOptions{});
  CHECK(p.train.size() == 4);
  CHECK(p.valid.size() == 1);
  CHECK(p.test.size() == 2);
}

TEST_CASE("preprocess: invalid options and order keys are rejected with the option's name", "[preprocess]") {
  HandData h({"a", "b"}, 1);
  h.add("a:0 b:0", 0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto with = [](auto change) {
    PreprocessOptions o;
    change(o);
    return o;
  };
  const std::vector<std::pair<PreprocessOptions, std::string>> bad{
      {with([](auto& o) { o.min_item_support = 0; }), "min_item_support"},
      {with([](auto& o) { o.max_length = 0; }), "max_length"},
      {with([](auto& o) { o.max_length = -3; }), "max_length"},
      {with([](auto& o) { o.train_fraction = -0.1; }), "train_fraction"},
      {with([](auto& o) { o.train_fraction = 1.5; }), "train_fraction"},
      {with([&](auto& o) { o.train_fraction = nan; }), "train_fraction"},
      {with([](auto& o) { o.valid_fraction = -0.5; }), "valid_fraction"},
      {with([&](auto& o) { o.valid_fraction = nan; }), "valid_fraction"},
      {with([](auto& o) { o.train_fraction = 0.8, o.valid_fraction = 0.3; }), "train_fraction + valid_fraction"},
  };
  for (const auto& [options, name] : bad) {
    INFO(name);
    CHECK_THROWS_AS(options.validate(), InvalidArgument);
    CHECK_THROWS_WITH(preprocess(h.data, options), Contains(name));
  }
  CHECK_NOTHROW(with([](auto& o) { o.train_fraction = 0.9, o.valid_fraction = 0.1; }).validate());

  h.add("a:0 b:0", nan);
  CHECK_THROWS_WITH(preprocess(h.data, PreprocessOptions{}), Contains("'s1'") && Contains("NaN"));
}

TEST_CASE("preprocess: real JD sessions agree with an independent re-derivation", "[preprocess][data]") {
  const auto sample = embsr::test::jd_appliances_sample(1000);
  const SessionDataset data = embsr::test::to_dataset(sample);
  PreprocessOptions o;
  o.min_item_support = 3;
  o.max_length = 40;
  const PreparedData p = preprocess(data, o);

  // Oracle on the raw strings: support counts, filter, target rule, truncation.
  std::map<std::string, long> support;
  for (const auto& session : sample.skus)
    for (const auto& sku : session) ++support[sku];
  std::size_t removed = 0, too_short = 0;
  struct Expected {
    std::vector<std::string> items, ops;
    std::string target, next_op;
  };
  std::vector<Expected> expected;  // in dataset order, for sessions that yield an example
  std::vector<std::size_t> expected_source;
  for (std::size_t s = 0; s < sample.skus.size(); ++s) {
    std::vector<std::string> items, ops;
    for (std::size_t i = 0; i < sample.skus[s].size(); ++i) {
      if (support[sample.skus[s][i]] < 3) {
        ++removed;
        continue;
      }
      items.push_back(sample.skus[s][i]);
      ops.push_back(sample.ops[s][i]);
    }
    std::size_t last = items.size();  // one past the target
    while (last >= 2 && items[last - 1] == items[last - 2]) --last;
    if (last < 2) {
      ++too_short;
      continue;
    }
    const std::size_t first = last - 1 > 40 ? last - 1 - 40 : 0;
    expected.push_back({std::vector<std::string>(items.begin() + first, items.begin() + last - 1),
                        std::vector<std::string>(ops.begin() + first, ops.begin() + last - 1), items[last - 1],
                        ops[last - 1]});
    expected_source.push_back(s);
  }
  CHECK(p.stats.events_removed_by_support == removed);
  CHECK(p.stats.sessions_too_short == too_short);
  CHECK(p.stats.train_sessions + p.stats.valid_sessions + p.stats.test_sessions + too_short == 1000);
  // Order keys are the line numbers, so the split is a plain cut of the dataset order.
  std::size_t r = 0;
  for (const ExampleSet* set : {&p.train, &p.valid, &p.test}) {
    for (std::size_t e = 0; e < set->size(); ++e, ++r) {
      INFO("example " << r);
      REQUIRE(static_cast<std::size_t>(set->sources[e]) == expected_source[r]);
      const auto items = set->input_items(e);
      const auto ops = set->input_ops(e);
      REQUIRE(items.size() == expected[r].items.size());
      for (std::size_t i = 0; i < items.size(); ++i) {
        CHECK(p.item_vocab.token(items[i]) == expected[r].items[i]);
        CHECK(p.op_vocab.token(ops[i]) == expected[r].ops[i]);
      }
      CHECK(p.item_vocab.token(set->targets[e]) == expected[r].target);
      CHECK(p.op_vocab.token(set->next_ops[e]) == expected[r].next_op);
      CHECK(items[items.size() - 1] != set->targets[e]);  // no leakage
    }
  }
  CHECK(r == expected.size());
  CHECK(p.stats.truncated_sessions > 0);
  CHECK(p.train.size() == split_boundary(r, 0.7));
}

}  // namespace test_preprocess
