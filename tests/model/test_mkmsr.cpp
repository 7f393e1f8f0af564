// MKM-SR (model/mkmsr.hpp): whole-model finite differences on every coordinate in double, batch
// invariance, backend agreement, freezing, memorising real sessions, registry and errors. Its
// PyTorch oracle comparison is tests/model/test_graph_oracle.cpp.
#include <catch2/catch.hpp>

#include <embsr/model/registry.hpp>
#include <embsr/model/mkmsr.hpp>

#include "neural_model_checks.hpp"

namespace test_mkmsr {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

embsr::MkmsrConfig tiny_mkmsr(int gnn_steps = 2) {
  embsr::MkmsrConfig c;
  c.num_items = 9;
  c.num_ops = 3;
  c.max_length = 8;
  c.d = 4;
  c.gnn_steps = gnn_steps;
  c.seed = 7;
  return c;
}

template <class Exec>
using FloatModel = embsr::MKMSR<Exec, float>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("mkm-sr: gradients match finite differences on every coordinate", "[model][mkmsr][gradcheck]",
                        embsr::test::ModelExecutionSpaces) {
  int steps = 2;
  SECTION("two GGNN steps with shared weights") {}
  SECTION("one GGNN step") { steps = 1; }
  embsr::MKMSR<TestType, double> model(tiny_mkmsr(steps));
  embsr::test::check_model_gradients(model, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("mkm-sr: a session's scores do not depend on the rest of its batch", "[model][mkmsr][invariance]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::MKMSR<TestType, double> model(tiny_mkmsr());
  embsr::test::check_batch_invariance(model, embsr::test::tiny_examples());
}

TEST_CASE("mkm-sr: every enabled backend computes the same function (float)", "[model][mkmsr][invariance]") {
  auto config = tiny_mkmsr();
  config.d = 16;
  embsr::test::check_backends_agree<FloatModel>(config, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("mkm-sr: a frozen model scores as before and refuses training", "[model][mkmsr][freeze]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::MKMSR<TestType, double> model(tiny_mkmsr());
  embsr::test::check_freeze(model, embsr::test::tiny_examples());
}

TEST_CASE("mkm-sr: memorises 64 real JD sessions", "[model][mkmsr][training]") {
  using Exec = Kokkos::DefaultExecutionSpace;
  const auto& data = embsr::test::jd_appliances_for_memorising();
  embsr::MkmsrConfig config;
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  config.max_length = 40;
  config.seed = 3;
  embsr::MKMSR<Exec, float> model(config);
  embsr::test::check_memorises(model, 0.001);
}

TEST_CASE("mkm-sr: registered, with its options, and bad configurations say what is wrong", "[model][mkmsr][registry]") {
  using Catch::Matchers::Contains;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const embsr::ModelOptions sizes{{"num_items", "7"}, {"num_ops", "3"}, {"max_length", "12"}};
  auto model = embsr::make_model<Exec>("mkm-sr", sizes);
  CHECK(model->learns_by_gradients());
  // items, operations, GGNN (4 maps + biases, GRU cell), operation GRU, readout at width 2d (W1, W2
  // with biases, q, W3 [d x 4d], b3).
  CHECK(model->parameters()->size() == 700 + 300 + (2 * 100 * 100 + 200) + (300 * 200 + 300 * 100 + 600) +
                                           (2 * 300 * 100 + 600) + (2 * (200 * 200 + 200) + 200 + 100 * 400 + 100));
  auto with = [&](const char* key, const char* value) {
    embsr::ModelOptions o = sizes;
    o.set(key, value);
    return o;
  };
  CHECK_THROWS_WITH(embsr::make_model<Exec>("mkm-sr", with("gnn_steps", "17")), Contains("gnn_steps must be in"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("mkm-sr", with("dropout", "0.1")), Contains("does not take option 'dropout'"));
}

TEST_CASE("mkm-sr: a checkpoint restores the same model through the registry", "[model][mkmsr][checkpoint]") {
  embsr::test::check_checkpoint_round_trip("mkm-sr", embsr::ModelOptions{{"d", "4"}}, embsr::test::tiny_examples());
}

}  // namespace test_mkmsr
