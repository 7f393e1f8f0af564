// POP and S-POP as session models (model/popularity.hpp): their ranks equal the rank-only host
// reference (train/baselines.hpp) on the real JD sample, their scores equal a brute-force
// computation, a session's scores do not depend on the rest of the batch or the backend, and they
// train, checkpoint and serve through the common tools.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <embsr/data/jd_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/io/checkpoint.hpp>
#include <embsr/model/popularity.hpp>
#include <embsr/model/registry.hpp>
#include <embsr/serve/recommender.hpp>
#include <embsr/train/baselines.hpp>
#include <embsr/train/evaluate.hpp>
#include <embsr/train/trainer.hpp>

#include "data_paths.hpp"
#include "exec_spaces.hpp"
#include "../model/model_fixture.hpp"

namespace test_popularity {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace test_popularity {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;

embsr::PreparedData jd_appliances() {
  const auto raw = embsr::load_jd({embsr::test::repo_data("jd_appliances/HUP_Data/JD_Applicances_sample"),
                                   embsr::test::repo_data("jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample")});
  embsr::PreprocessOptions pre;
  pre.min_item_support = 5;
  pre.max_length = 40;
  return embsr::preprocess(raw, pre);
}

embsr::PopularityConfig config_for(const embsr::PreparedData& data) {
  embsr::PopularityConfig c;
  c.num_items = data.item_vocab.size();
  c.num_ops = data.op_vocab.size();
  c.max_length = 40;
  return c;
}

template <class Model>
std::vector<double> host_scores(Model& model, const embsr::ExampleSet& set, const std::vector<index_t>& ids) {
  using M = typename Model::memory_space;
  const auto batch = embsr::test::make_batch<M>(set, ids);
  const auto s = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model.scores(batch));
  return std::vector<double>(s.data(), s.data() + s.size());
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("popularity models: ranks equal the rank-only reference on the JD sample",
                        "[model][popularity]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  const auto data = jd_appliances();
  const embsr::PopularityBaseline pop_reference(data.train, data.item_vocab.size());
  const embsr::SessionPopularityBaseline spop_reference(data.train, data.item_vocab.size());
  embsr::PopModel<Exec> pop(config_for(data));
  embsr::SessionPopModel<Exec> spop(config_for(data));
  pop.fit(data.train);
  spop.fit(data.train);
  CHECK(pop.tables().front() == pop_reference.popularity());
  for (const auto* set : {&data.valid, &data.test}) {
    // Batch sizes that split the set differently give the same ranks (one session's scores do not
    // depend on the rest of its batch).
    for (const std::size_t batch : {std::size_t(1), std::size_t(7), std::size_t(512)}) {
      if (batch == 1 && set == &data.test) continue;  // one batch size of 1 is enough
      CHECK(embsr::evaluate_ranks(pop, *set, batch) == pop_reference.ranks(*set));
      CHECK(embsr::evaluate_ranks(spop, *set, batch) == spop_reference.ranks(*set));
    }
  }
}

TEST_CASE("popularity models: scores are count + pop / (max_pop + 1), computed by brute force", "[model][popularity]") {
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const auto set = embsr::test::tiny_examples();
  embsr::PopularityConfig c;
  c.num_items = 9;
  c.num_ops = 3;
  c.max_length = 10;
  embsr::PopModel<Exec> pop(c);
  embsr::SessionPopModel<Exec> spop(c);
  pop.fit(set);
  spop.fit(set);
  // Brute force: occurrences in inputs and targets, then per session its own counts.
  std::vector<double> count(9, 0);
  for (std::size_t e = 0; e < set.size(); ++e) {
    for (const index_t v : set.input_items(e)) count[static_cast<std::size_t>(v)] += 1;
    count[static_cast<std::size_t>(set.targets[e])] += 1;
  }
  double max_pop = 0;
  for (const double x : count) max_pop = std::max(max_pop, x);
  const auto ids = embsr::test::all_ids(set);
  const auto p = host_scores(pop, set, ids), s = host_scores(spop, set, ids);
  for (std::size_t e = 0; e < set.size(); ++e) {
    std::vector<double> own(9, 0);
    for (const index_t v : set.input_items(e)) own[static_cast<std::size_t>(v)] += 1;
    for (std::size_t v = 0; v < 9; ++v) {
      CHECK(p[e * 9 + v] == count[v] / (max_pop + 1));
      CHECK(s[e * 9 + v] == own[v] + count[v] / (max_pop + 1));
    }
  }
}

TEMPLATE_LIST_TEST_CASE("popularity models: the same scores on every backend and alone or in a batch",
                        "[model][popularity]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using Reference = Kokkos::DefaultHostExecutionSpace;
  const auto data = jd_appliances();
  std::vector<index_t> ids;
  for (index_t e = 0; e < 40; ++e) ids.push_back(e);
  embsr::SessionPopModel<Exec> model(config_for(data));
  embsr::SessionPopModel<Reference> reference(config_for(data));
  model.fit(data.train);
  reference.fit(data.train);
  const auto together = host_scores(model, data.test, ids);
  CHECK(together == host_scores(reference, data.test, ids));
  const std::size_t V = static_cast<std::size_t>(data.item_vocab.size());
  for (const index_t e : {index_t(0), index_t(17), index_t(39)}) {
    const auto alone = host_scores(model, data.test, {e});
    CHECK(alone == std::vector<double>(together.begin() + e * static_cast<std::ptrdiff_t>(V),
                                       together.begin() + (e + 1) * static_cast<std::ptrdiff_t>(V)));
  }
}

TEST_CASE("popularity models: fit on train, checkpoint, reload and serve through the common tools",
          "[model][popularity][checkpoint]") {
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const auto data = jd_appliances();
  const std::string dir = embsr::test::scratch_dir();
  for (const char* name : {"pop", "s-pop"}) {
    INFO(name);
    embsr::ModelOptions options;
    options.set("num_items", data.item_vocab.size()).set("num_ops", data.op_vocab.size()).set("max_length", 40);
    const auto model = embsr::make_model<Exec>(name, options);
    CHECK_FALSE(model->learns_by_gradients());
    CHECK(model->parameters() == nullptr);
    embsr::TrainOptions train;
    train.progress = false;
    train.checkpoint_dir = dir;
    embsr::Trainer<Exec> trainer(*model, data, train);
    const auto result = trainer.run();
    CHECK(result.history.size() == 1);  // a counting model learns in one pass
    CHECK(result.best_epoch == 1);
    const embsr::SessionPopularityBaseline spop(data.train, data.item_vocab.size());
    const embsr::PopularityBaseline pop(data.train, data.item_vocab.size());
    CHECK(result.test_ranks == (std::string(name) == "pop" ? pop.ranks(data.test) : spop.ranks(data.test)));

    const auto ck = embsr::load_checkpoint(dir + "/best.ckpt");
    CHECK(ck.model == name);
    CHECK_FALSE(ck.has_optimizer);
    REQUIRE(ck.tables.size() == 1);
    CHECK(ck.tables[0].name == "popularity");
    const auto reloaded = embsr::make_model_from<Exec>(ck);
    CHECK(embsr::evaluate_ranks(*reloaded, data.test) == result.test_ranks);

    const embsr::Recommender<Exec> rec(dir + "/best.ckpt");
    CHECK(rec.model_name() == name);
    const auto recs = rec.recommend({{data.item_vocab.token(data.test.input_items(0)[0]), data.op_vocab.token(0)}}, {});
    CHECK(recs.items.size() == 20);
    if (std::string(name) == "s-pop")  // the session's own item first
      CHECK(recs.items.front() == data.item_vocab.token(data.test.input_items(0)[0]));
  }
}

TEST_CASE("popularity models: bad input is refused with a clear error", "[model][popularity]") {
  using Catch::Matchers::Contains;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  embsr::PopularityConfig c;
  CHECK_THROWS_WITH(embsr::PopModel<Exec>(c), Contains("num_items must be >= 1"));
  c.num_items = 3;
  c.num_ops = 1;
  embsr::SessionPopModel<Exec> model(c);
  embsr::ExampleSet train;
  const std::vector<index_t> items{0, 5}, ops{0, 0};
  train.add(embsr::Span<const index_t>(items.data(), 2), embsr::Span<const index_t>(ops.data(), 2), 1, 0, 0, 0.0);
  CHECK_THROWS_WITH(model.fit(train), Contains("example 0: input item 5 outside [0, 3)"));
  CHECK_THROWS_WITH(model.load_tables({{1, 2}}), Contains("one popularity table of 3 counts"));
  CHECK_THROWS_WITH(model.load_tables({{1, -2, 0}}), Contains("outside [0, 2^30)"));
  // A batch with an item outside the catalogue is named by the one batch validator.
  embsr::ExampleSet bad;
  bad.add(embsr::Span<const index_t>(items.data(), 2), embsr::Span<const index_t>(ops.data(), 2), 1, 0, 0, 0.0);
  const auto batch = embsr::test::make_batch<Exec::memory_space>(bad, {0});
  CHECK_THROWS_WITH(model.scores(batch), Contains("S-POP") && Contains("micro_items"));
}

}  // namespace test_popularity

}  // namespace test_popularity
