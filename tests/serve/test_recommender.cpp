// Recommender: raw (item, operation) sessions in, top-k raw item ids out, from a checkpoint.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <embsr/io/checkpoint.hpp>
#include <embsr/serve/recommender.hpp>
#include <embsr/optim/adam.hpp>

#include "data_paths.hpp"
#include "../model/model_fixture.hpp"

namespace test_recommender {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using Exec = Kokkos::Serial;
using Model = embsr::EMBSR<Exec, float>;
using Catch::Matchers::Contains;

const std::vector<std::string> kOps{"Click", "Cart", "Order"};
std::string sku(int i) { return "sku" + std::to_string(100 + i); }

// A tiny model trained for a few steps, with vocabularies sku100..sku108 and Click/Cart/Order.
embsr::Checkpoint tiny_checkpoint(embsr::NextOpMode mode = embsr::NextOpMode::Given) {
  auto config = embsr::test::tiny_config();
  config.next_op = mode;
  Model model(config);
  embsr::AdamOptions options;
  options.lr = 0.01;
  embsr::Adam<Exec, float> adam(model.num_parameters(), options);
  const auto set = embsr::test::tiny_examples();
  const auto batch = embsr::test::make_batch<Exec::memory_space>(set, embsr::test::all_ids(set));
  for (std::uint64_t s = 0; s < 5; ++s) {
    model.loss_and_backward(batch, s);
    adam.step(Exec(), model.parameters().values(), model.parameters().grads());
  }
  std::vector<std::string> items;
  for (int i = 0; i < config.num_items; ++i) items.push_back(sku(i));
  return embsr::make_checkpoint(model, embsr::Vocabulary(items), embsr::Vocabulary(kOps), nullptr, embsr::TrainingState{});
}

std::vector<embsr::SessionEvent> session(const std::vector<std::pair<int, int>>& events) {
  std::vector<embsr::SessionEvent> s;
  for (const auto& [item, op] : events) s.push_back({sku(item), kOps[static_cast<std::size_t>(op)]});
  return s;
}

// Scores of every item for one session straight from the model (the reference).
std::vector<float> reference_scores(const embsr::Checkpoint& ck, const std::vector<embsr::index_t>& items,
                                    const std::vector<embsr::index_t>& ops, embsr::index_t next_op) {
  Model model(embsr::embsr_config(ck.options));
  embsr::restore(ck, model, nullptr);
  embsr::ExampleSet set;
  set.add(embsr::Span<const embsr::index_t>(items.data(), items.size()),
          embsr::Span<const embsr::index_t>(ops.data(), ops.size()), 0, next_op, 0, 0.0);
  const auto batch = embsr::test::make_batch<Exec::memory_space>(set, {0});
  const auto s = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model.scores(batch));
  return std::vector<float>(s.data(), s.data() + s.extent(1));
}

void check_same(const embsr::Recommendation& a, const embsr::Recommendation& b, bool exact = true) {
  CHECK(a.items == b.items);
  CHECK(a.unknown_items == b.unknown_items);
  CHECK(a.unknown_operations == b.unknown_operations);
  CHECK(a.used_events == b.used_events);
  REQUIRE(a.scores.size() == b.scores.size());
  for (std::size_t i = 0; i < a.scores.size(); ++i) {
    if (exact) CHECK(a.scores[i] == b.scores[i]);
    else CHECK(a.scores[i] == Approx(b.scores[i]).epsilon(1e-5).margin(1e-5));
  }
}

}  // namespace

TEST_CASE("recommender: known items give the model's top k", "[recommender]") {
  const auto ck = tiny_checkpoint();
  const embsr::Recommender<Exec> rec(ck);
  CHECK(rec.items() == ck.items);
  CHECK(rec.operations() == ck.ops);
  CHECK(rec.num_items() == 9);
  CHECK(rec.model_name() == "embsr");
  CHECK(rec.options() == ck.options);

  const auto s = session({{2, 0}, {4, 0}, {4, 1}, {5, 2}});
  embsr::RecommendOptions options;
  options.k = 5;
  const auto r = rec.recommend(s, options);
  CHECK(r.used_events == 4);
  CHECK(r.unknown_items.empty());
  CHECK(r.unknown_operations.empty());
  REQUIRE(r.items.size() == 5);
  REQUIRE(r.scores.size() == 5);
  CHECK(std::is_sorted(r.scores.rbegin(), r.scores.rend()));

  // The next operation defaults to the last event's (Order = 2).
  const auto scores = reference_scores(ck, {2, 4, 4, 5}, {0, 0, 1, 2}, 2);
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[static_cast<std::size_t>(a)] > scores[static_cast<std::size_t>(b)]; });
  for (std::size_t j = 0; j < 5; ++j) {
    CHECK(r.items[j] == sku(order[j]));
    CHECK(r.scores[j] == scores[static_cast<std::size_t>(order[j])]);
  }

  SECTION("an explicit next operation") {
    options.next_operation = "Order";
    check_same(rec.recommend(s, options), r);
    options.next_operation = "Click";
    const auto click = rec.recommend(s, options);
    const auto ref = reference_scores(ck, {2, 4, 4, 5}, {0, 0, 1, 2}, 0);
    REQUIRE(click.items.size() == 5);
    CHECK(click.scores[0] == *std::max_element(ref.begin(), ref.end()));
    options.next_operation = "Teleport";
    CHECK_THROWS_WITH(rec.recommend(s, options), Contains("unknown next operation 'Teleport'"));
  }
  SECTION("k must be positive") {
    options.k = 0;
    CHECK_THROWS_AS(rec.recommend(s, options), embsr::InvalidArgument);
  }
  SECTION("from a checkpoint file") {
    const std::string path = embsr::test::scratch_dir() + "/r.ckpt";
    embsr::save_checkpoint(path, ck);
    const embsr::Recommender<Exec> from_file(path);
    check_same(from_file.recommend(s, options), r);
  }
}

TEST_CASE("recommender: unknown items and operations are dropped and reported", "[recommender]") {
  const embsr::Recommender<Exec> rec(tiny_checkpoint());
  std::vector<embsr::SessionEvent> s{{"sku102", "Click"}, {"nope", "Click"},  {"sku104", "Wishlist"},
                                     {"sku104", "Cart"},  {"nope", "Cart"},   {"zzz", "Wishlist"},
                                     {"sku105", "Order"}};
  const auto r = rec.recommend(s);
  CHECK(r.unknown_items == std::vector<std::string>{"nope", "zzz"});
  CHECK(r.unknown_operations == std::vector<std::string>{"Wishlist"});
  CHECK(r.used_events == 3);
  const auto clean = rec.recommend(session({{2, 0}, {4, 1}, {5, 2}}));
  CHECK(r.items == clean.items);
  CHECK(r.scores == clean.scores);
  CHECK(r.items.size() == 9);  // k = 20 > catalogue
}

TEST_CASE("recommender: a session without usable events is an error", "[recommender]") {
  const embsr::Recommender<Exec> rec(tiny_checkpoint());
  CHECK_THROWS_WITH(rec.recommend({{"a", "Click"}, {"sku101", "b"}}),
                    Contains("empty session: none of the 2 events has a known item and operation"));
  CHECK_THROWS_AS(rec.recommend({}), embsr::InvalidArgument);
  CHECK_THROWS_WITH(rec.recommend_batch({session({{1, 1}}), {{"x", "y"}}}), Contains("session 1: empty session"));
}

TEST_CASE("recommender: long sessions keep their last max_length events", "[recommender]") {
  const embsr::Recommender<Exec> rec(tiny_checkpoint());
  std::vector<std::pair<int, int>> events;
  for (int i = 0; i < 13; ++i) events.emplace_back(i % 9, i % 3);
  const auto r = rec.recommend(session(events));
  CHECK(r.used_events == 8);
  const auto tail = rec.recommend(session(std::vector<std::pair<int, int>>(events.end() - 8, events.end())));
  CHECK(r.items == tail.items);
  CHECK(r.scores == tail.scores);
}

TEST_CASE("recommender: excluding the session's items", "[recommender]") {
  const embsr::Recommender<Exec> rec(tiny_checkpoint());
  const auto s = session({{1, 0}, {3, 0}, {1, 1}, {7, 2}});
  embsr::RecommendOptions all;
  all.k = 9;
  const auto full = rec.recommend(s, all);
  REQUIRE(full.items.size() == 9);

  embsr::RecommendOptions options;
  options.k = 4;
  options.exclude_session_items = true;
  const auto r = rec.recommend(s, options);
  std::vector<std::string> expected;
  for (std::size_t j = 0; j < full.items.size(); ++j)
    if (full.items[j] != sku(1) && full.items[j] != sku(3) && full.items[j] != sku(7)) expected.push_back(full.items[j]);
  expected.resize(4);
  CHECK(r.items == expected);

  SECTION("k larger than what is left of the catalogue") {
    options.k = 50;
    const auto most = rec.recommend(s, options);
    CHECK(most.items.size() == 6);  // 9 items, 3 seen
  }
  SECTION("items cut by max_length are excluded too") {
    std::vector<std::pair<int, int>> events{{0, 0}};
    for (int i = 0; i < 8; ++i) events.emplace_back(5, i % 3);
    options.k = 50;
    const auto cut = rec.recommend(session(events), options);
    CHECK(cut.used_events == 8);
    CHECK(cut.items.size() == 7);
    CHECK(std::find(cut.items.begin(), cut.items.end(), sku(0)) == cut.items.end());
    CHECK(std::find(cut.items.begin(), cut.items.end(), sku(5)) == cut.items.end());
  }
}

TEST_CASE("recommender: a batch gives the single calls' answers", "[recommender]") {
  const embsr::Recommender<Exec> rec(tiny_checkpoint());
  std::vector<std::vector<embsr::SessionEvent>> sessions;
  for (int b = 0; b < 300; ++b) {  // more than one chunk of kChunk sessions
    std::vector<std::pair<int, int>> events;
    const int t = 1 + (b * 7) % 11;
    for (int i = 0; i < t; ++i) events.emplace_back((b + 3 * i + i * i) % 9, (b + i) % 3);
    sessions.push_back(session(events));
  }
  sessions[5].push_back({"unknown", "Cart"});
  for (const bool exclude : {false, true}) {
    embsr::RecommendOptions options;
    options.k = 3;
    options.exclude_session_items = exclude;
    const auto batch = rec.recommend_batch(sessions, options);
    REQUIRE(batch.size() == sessions.size());
    for (std::size_t b = 0; b < sessions.size(); ++b) {
      INFO("session " << b << (exclude ? " (excluding)" : ""));
      check_same(batch[b], rec.recommend(sessions[b], options), /*exact=*/false);
    }
  }
  CHECK(rec.recommend_batch({}).empty());
}

TEST_CASE("recommender: Learned next-operation models ignore the next operation", "[recommender]") {
  const embsr::Recommender<Exec> rec(tiny_checkpoint(embsr::NextOpMode::Learned));
  const auto s = session({{2, 0}, {6, 1}});
  embsr::RecommendOptions options;
  options.next_operation = "Order";
  const auto a = rec.recommend(s, options);
  options.next_operation = "Click";
  check_same(a, rec.recommend(s, options));
}

TEST_CASE("recommender: a checkpoint without vocabularies is refused", "[recommender]") {
  auto ck = tiny_checkpoint();
  ck.items = embsr::Vocabulary();
  CHECK_THROWS_WITH(embsr::Recommender<Exec>(ck), Contains("item vocabulary has 0 tokens"));
}

TEST_CASE("recommender: concurrent calls from 4 threads agree with single-threaded ones", "[recommender]") {
  const embsr::Recommender<Kokkos::Serial> rec(tiny_checkpoint());
  std::vector<std::vector<embsr::SessionEvent>> sessions;
  for (int b = 0; b < 10; ++b) {
    std::vector<std::pair<int, int>> events;
    for (int i = 0; i <= b % 6; ++i) events.emplace_back((b * 5 + i * 2) % 9, (b + i) % 3);
    sessions.push_back(session(events));
  }
  embsr::RecommendOptions options;
  options.k = 4;
  options.exclude_session_items = true;
  std::vector<embsr::Recommendation> expected;
  for (const auto& s : sessions) expected.push_back(rec.recommend(s, options));

  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int call = 0; call < 50; ++call) {
        const auto i = static_cast<std::size_t>((call + t * 3) % 10);
        const auto got = rec.recommend(sessions[i], options);
        if (got.items != expected[i].items || got.scores != expected[i].scores) ++mismatches[static_cast<std::size_t>(t)];
      }
    });
  for (auto& th : threads) th.join();
  CHECK(mismatches == std::vector<int>(4, 0));
}

#if defined(KOKKOS_ENABLE_OPENMP)
TEST_CASE("recommender: the OpenMP backend refuses calls from other threads with a clear error", "[recommender]") {
  const embsr::Recommender<Kokkos::OpenMP> rec(tiny_checkpoint());
  const auto s = session({{2, 0}, {4, 1}});
  const auto main_thread = rec.recommend(s);
  const embsr::Recommender<Exec> serial(tiny_checkpoint());
  check_same(main_thread, serial.recommend(s), /*exact=*/false);
  std::string error;
  std::thread worker([&] {
    try {
      rec.recommend(s);
    } catch (const embsr::InvalidArgument& e) {
      error = e.what();
    }
  });
  worker.join();
  CHECK_THAT(error, Contains("Recommender<Kokkos::OpenMP>") && Contains("Recommender<Kokkos::Serial>"));
}
#endif

}  // namespace test_recommender
