// RIB (model/rib.hpp): whole-model finite differences on every coordinate in double (the dense
// softmax output layer and the tied one), batch invariance, backend agreement, freezing,
// memorising real sessions, registry and errors, checkpoints. Its PyTorch oracle comparison is
// tests/model/test_oracle_rib.cpp.
#include <catch2/catch.hpp>

#include <embsr/model/registry.hpp>
#include <embsr/model/rib.hpp>

#include "neural_model_checks.hpp"

namespace test_rib {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

embsr::RibConfig tiny_rib(bool tied_output = false) {
  embsr::RibConfig c;
  c.num_items = 9;
  c.num_ops = 3;
  c.max_length = 8;
  c.d = 4;
  c.tied_output = tied_output;
  c.seed = 7;
  return c;
}

template <class Exec>
using FloatModel = embsr::RIB<Exec, float>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("rib: gradients match finite differences on every coordinate", "[model][rib][gradcheck]",
                        embsr::test::ModelExecutionSpaces) {
  bool tied = false;
  SECTION("dense softmax output layer (the paper's)") {}
  SECTION("output tied to the item embeddings") { tied = true; }
  embsr::RIB<TestType, double> model(tiny_rib(tied));
  embsr::test::check_model_gradients(model, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("rib: a session's scores do not depend on the rest of its batch", "[model][rib][invariance]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::RIB<TestType, double> model(tiny_rib());
  embsr::test::check_batch_invariance(model, embsr::test::tiny_examples());
}

TEST_CASE("rib: every enabled backend computes the same function (float)", "[model][rib][invariance]") {
  auto config = tiny_rib();
  config.d = 16;
  embsr::test::check_backends_agree<FloatModel>(config, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("rib: a frozen model scores as before and refuses training", "[model][rib][freeze]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::RIB<TestType, double> model(tiny_rib());
  embsr::test::check_freeze(model, embsr::test::tiny_examples());
}

TEST_CASE("rib: the operations change the scores", "[model][rib]") {
  // RIB reads the micro-behaviors: the same items under other operations score differently.
  using Exec = Kokkos::DefaultExecutionSpace;
  using M = Exec::memory_space;
  embsr::RIB<Exec, double> model(tiny_rib());
  embsr::ExampleSet a, b;
  std::vector<embsr::index_t> items{1, 1, 4, 2}, ops_a{0, 1, 0, 2}, ops_b{2, 2, 1, 0};
  a.add(embsr::Span<const embsr::index_t>(items.data(), items.size()),
        embsr::Span<const embsr::index_t>(ops_a.data(), ops_a.size()), 3, 0, 0, 0.0);
  b.add(embsr::Span<const embsr::index_t>(items.data(), items.size()),
        embsr::Span<const embsr::index_t>(ops_b.data(), ops_b.size()), 3, 0, 0, 0.0);
  const auto sa = embsr::test::to_vector(model.scores(embsr::test::make_batch<M>(a, {0})));
  const auto sb = embsr::test::to_vector(model.scores(embsr::test::make_batch<M>(b, {0})));
  double diff = 0;
  for (std::size_t v = 0; v < sa.size(); ++v) diff = std::max(diff, std::abs(sa[v] - sb[v]));
  CHECK(diff > 1e-6);
}

TEST_CASE("rib: memorises 64 real JD sessions", "[model][rib][training]") {
  using Exec = Kokkos::DefaultExecutionSpace;
  const auto& data = embsr::test::jd_appliances_for_memorising();
  embsr::RibConfig config;
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  config.max_length = 40;
  config.seed = 3;
  embsr::RIB<Exec, float> model(config);
  embsr::test::check_memorises(model, 0.003);
}

TEST_CASE("rib: registered, with its options, and bad configurations say what is wrong", "[model][rib][registry]") {
  using Catch::Matchers::Contains;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const embsr::ModelOptions sizes{{"num_items", "7"}, {"num_ops", "3"}, {"max_length", "12"}};
  auto model = embsr::make_model<Exec>("rib", sizes);
  CHECK(model->learns_by_gradients());
  CHECK(model->options().get_int32("d", 0) == 100);
  CHECK(!model->options().get_bool("tied_output", true));
  // items, operations, GRU over [item ; operation] (2d in, d state), attention (W, b, c), the dense
  // output layer [V x (d+1)].
  const std::size_t gru = 300 * 200 + 300 * 100 + 600, att = 100 * 100 + 200, out = 7 * 101;
  CHECK(model->parameters()->size() == 700 + 300 + gru + att + out);
  embsr::ModelOptions tied = sizes;
  tied.set("tied_output", "true");
  CHECK(embsr::make_model<Exec>("rib", tied)->parameters()->size() == 700 + 300 + gru + att);
  auto with = [&](const char* key, const char* value) {
    embsr::ModelOptions o = sizes;
    o.set(key, value);
    return o;
  };
  CHECK_THROWS_WITH(embsr::make_model<Exec>("rib", with("d", "0")), Contains("d must be in [1, 65536]"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("rib", with("num_ops", "0")), Contains("num_ops must be >= 1"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("rib", with("dropout", "0.1")), Contains("does not take option 'dropout'"));
  CHECK_THROWS_AS(embsr::RIB<Exec>(embsr::RibConfig{}), embsr::InvalidArgument);  // no data sizes
}

TEST_CASE("rib: a checkpoint restores the same model through the registry", "[model][rib][checkpoint]") {
  SECTION("dense output layer") {
    embsr::test::check_checkpoint_round_trip("rib", embsr::ModelOptions{{"d", "4"}}, embsr::test::tiny_examples());
  }
  SECTION("tied output") {
    embsr::test::check_checkpoint_round_trip("rib", embsr::ModelOptions{{"d", "4"}, {"tied_output", "true"}},
                                             embsr::test::tiny_examples());
  }
}

}  // namespace test_rib
