// GC-SAN (model/gcsan.hpp): whole-model finite differences on every coordinate in double, batch
// invariance, backend agreement, freezing, memorising real sessions, registry and errors. Its
// PyTorch oracle comparison is tests/model/test_graph_oracle.cpp.
#include <catch2/catch.hpp>

#include <embsr/model/registry.hpp>
#include <embsr/model/gcsan.hpp>

#include "neural_model_checks.hpp"

namespace test_gcsan {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

embsr::GcsanConfig tiny_gcsan(int gnn_steps = 2, int num_blocks = 2) {
  embsr::GcsanConfig c;
  c.num_items = 9;
  c.num_ops = 3;
  c.max_length = 8;
  c.d = 4;
  c.gnn_steps = gnn_steps;
  c.num_blocks = num_blocks;
  c.omega = 0.7;
  c.seed = 7;
  return c;
}

template <class Exec>
using FloatModel = embsr::GCSAN<Exec, float>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("gc-san: gradients match finite differences on every coordinate", "[model][gcsan][gradcheck]",
                        embsr::test::ModelExecutionSpaces) {
  int steps = 2, blocks = 2;
  SECTION("two GGNN steps, two self-attention blocks") {}
  SECTION("one GGNN step, one block") { steps = 1, blocks = 1; }
  embsr::GCSAN<TestType, double> model(tiny_gcsan(steps, blocks));
  embsr::test::check_model_gradients(model, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("gc-san: a session's scores do not depend on the rest of its batch", "[model][gcsan][invariance]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::GCSAN<TestType, double> model(tiny_gcsan());
  embsr::test::check_batch_invariance(model, embsr::test::tiny_examples());
}

TEST_CASE("gc-san: every enabled backend computes the same function (float)", "[model][gcsan][invariance]") {
  auto config = tiny_gcsan();
  config.d = 16;
  embsr::test::check_backends_agree<FloatModel>(config, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("gc-san: a frozen model scores as before and refuses training", "[model][gcsan][freeze]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::GCSAN<TestType, double> model(tiny_gcsan());
  embsr::test::check_freeze(model, embsr::test::tiny_examples());
}

TEST_CASE("gc-san: memorises 64 real JD sessions", "[model][gcsan][training]") {
  using Exec = Kokkos::DefaultExecutionSpace;
  const auto& data = embsr::test::jd_appliances_for_memorising();
  embsr::GcsanConfig config;
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  config.max_length = 40;
  config.seed = 3;
  embsr::GCSAN<Exec, float> model(config);
  embsr::test::check_memorises(model, 0.001);
}

TEST_CASE("gc-san: registered, with its options, and bad configurations say what is wrong", "[model][gcsan][registry]") {
  using Catch::Matchers::Contains;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const embsr::ModelOptions sizes{{"num_items", "7"}, {"num_ops", "3"}, {"max_length", "12"}};
  auto model = embsr::make_model<Exec>("gc-san", sizes);
  CHECK(model->learns_by_gradients());
  CHECK(model->options().get_double("omega", 0) == 0.6);
  // items, GGNN (4 maps + biases, GRU cell), one block (Q, K, V, FFN with biases).
  CHECK(model->parameters()->size() == 700 + (2 * 100 * 100 + 200) + (300 * 200 + 300 * 100 + 600) +
                                           (5 * 100 * 100 + 200));
  auto with = [&](const char* key, const char* value) {
    embsr::ModelOptions o = sizes;
    o.set(key, value);
    return o;
  };
  CHECK_THROWS_WITH(embsr::make_model<Exec>("gc-san", with("omega", "1.5")), Contains("omega must be in [0, 1]"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("gc-san", with("num_blocks", "0")), Contains("num_blocks must be in"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("gc-san", with("gnn_steps", "17")), Contains("gnn_steps must be in"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("gc-san", with("dropout", "0.1")), Contains("does not take option 'dropout'"));
}

TEST_CASE("gc-san: a checkpoint restores the same model through the registry", "[model][gcsan][checkpoint]") {
  embsr::test::check_checkpoint_round_trip("gc-san", embsr::ModelOptions{{"d", "4"}, {"num_blocks", "2"}}, embsr::test::tiny_examples());
}

}  // namespace test_gcsan
