// SGNN-HN (model/sgnnhn.hpp): whole-model finite differences on every coordinate in double, batch
// invariance, backend agreement, freezing, memorising real sessions, registry and errors. Its
// PyTorch oracle comparison is tests/model/test_graph_oracle.cpp.
#include <catch2/catch.hpp>

#include <embsr/model/registry.hpp>
#include <embsr/model/sgnnhn.hpp>

#include "neural_model_checks.hpp"

namespace test_sgnnhn {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

embsr::SgnnhnConfig tiny_sgnnhn(int gnn_steps = 2) {
  embsr::SgnnhnConfig c;
  c.num_items = 9;
  c.num_ops = 3;
  c.max_length = 8;
  c.d = 4;
  c.gnn_steps = gnn_steps;
  c.w_k = 6.0;
  c.seed = 7;
  return c;
}

template <class Exec>
using FloatModel = embsr::SGNNHN<Exec, float>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("sgnn-hn: gradients match finite differences on every coordinate", "[model][sgnnhn][gradcheck]",
                        embsr::test::ModelExecutionSpaces) {
  int steps = 2;
  SECTION("two SGNN layers with shared weights") {}
  SECTION("one SGNN layer") { steps = 1; }
  embsr::SGNNHN<TestType, double> model(tiny_sgnnhn(steps));
  embsr::test::check_model_gradients(model, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("sgnn-hn: a session's scores do not depend on the rest of its batch", "[model][sgnnhn][invariance]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::SGNNHN<TestType, double> model(tiny_sgnnhn());
  embsr::test::check_batch_invariance(model, embsr::test::tiny_examples());
}

TEST_CASE("sgnn-hn: every enabled backend computes the same function (float)", "[model][sgnnhn][invariance]") {
  auto config = tiny_sgnnhn();
  config.d = 16;
  embsr::test::check_backends_agree<FloatModel>(config, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("sgnn-hn: a frozen model scores as before and refuses training", "[model][sgnnhn][freeze]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::SGNNHN<TestType, double> model(tiny_sgnnhn());
  embsr::test::check_freeze(model, embsr::test::tiny_examples());
}

TEST_CASE("sgnn-hn: memorises 64 real JD sessions", "[model][sgnnhn][training]") {
  using Exec = Kokkos::DefaultExecutionSpace;
  const auto& data = embsr::test::jd_appliances_for_memorising();
  embsr::SgnnhnConfig config;
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  config.max_length = 40;
  config.seed = 3;
  embsr::SGNNHN<Exec, float> model(config);
  embsr::test::check_memorises(model, 0.001);
}

TEST_CASE("sgnn-hn: registered, with its options, and bad configurations say what is wrong", "[model][sgnnhn][registry]") {
  using Catch::Matchers::Contains;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const embsr::ModelOptions sizes{{"num_items", "7"}, {"num_ops", "3"}, {"max_length", "12"}};
  auto model = embsr::make_model<Exec>("sgnn-hn", sizes);
  CHECK(model->learns_by_gradients());
  CHECK(model->options().get_double("w_k", 0) == 12.0);
  // items, GGNN (4 maps + biases, GRU cell), star (4 maps + biases), highway, 12 positions, readout
  // (W1, W2, W_s with biases, q, W3, b3).
  CHECK(model->parameters()->size() == 700 + (2 * 100 * 100 + 200) + (300 * 200 + 300 * 100 + 600) +
                                           4 * (100 * 100 + 100) + (100 * 200 + 100) + 12 * 100 +
                                           (3 * (100 * 100 + 100) + 100 + 100 * 200 + 100));
  auto with = [&](const char* key, const char* value) {
    embsr::ModelOptions o = sizes;
    o.set(key, value);
    return o;
  };
  CHECK_THROWS_WITH(embsr::make_model<Exec>("sgnn-hn", with("w_k", "0")), Contains("w_k must be finite and > 0"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("sgnn-hn", with("gnn_steps", "17")), Contains("gnn_steps must be in"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("sgnn-hn", with("dropout", "0.1")), Contains("does not take option 'dropout'"));
}

TEST_CASE("sgnn-hn: a checkpoint restores the same model through the registry", "[model][sgnnhn][checkpoint]") {
  embsr::test::check_checkpoint_round_trip("sgnn-hn", embsr::ModelOptions{{"d", "4"}, {"gnn_steps", "2"}}, embsr::test::tiny_examples());
}

}  // namespace test_sgnnhn
