// BERT4Rec (model/bert4rec.hpp): whole-model finite differences on every coordinate in double (the
// cloze loss at a fixed step: the same masks), the cloze masks (deterministic per (seed, step,
// example), the last position always masked, none else at mask_prob 0), batch invariance, backend
// agreement, freezing, memorising real sessions, registry and errors. Its PyTorch oracle comparison
// is tests/model/test_oracle_bert4rec.cpp.
#include <catch2/catch.hpp>

#include <cmath>

#include <embsr/model/bert4rec.hpp>
#include <embsr/model/registry.hpp>

#include "neural_model_checks.hpp"

namespace test_bert4rec {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

embsr::Bert4recConfig tiny_bert4rec(int num_layers = 2, int num_heads = 2) {
  embsr::Bert4recConfig c;
  c.num_items = 9;
  c.num_ops = 3;
  c.max_length = 8;
  c.d = 4;
  c.num_layers = num_layers;
  c.num_heads = num_heads;
  c.mask_prob = 0.5;  // several prefix positions masked at every step
  c.seed = 7;
  return c;
}

template <class Exec>
using FloatModel = embsr::BERT4Rec<Exec, float>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("bert4rec: gradients match finite differences on every coordinate", "[model][bert4rec][gradcheck]",
                        embsr::test::ModelExecutionSpaces) {
  int layers = 2, heads = 2;
  SECTION("two layers, two heads") {}
  SECTION("one layer, one head") { layers = 1, heads = 1; }
  embsr::BERT4Rec<TestType, double> model(tiny_bert4rec(layers, heads));
  embsr::test::check_model_gradients(model, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("bert4rec: the cloze masks are a function of (seed, step, example) and the last item is always masked",
                        "[model][bert4rec][cloze]", embsr::test::ModelExecutionSpaces) {
  using M = typename TestType::memory_space;
  const auto set = embsr::test::tiny_examples();
  const auto batch = embsr::test::make_batch<M>(set, embsr::test::all_ids(set));
  embsr::BERT4Rec<TestType, double> model(tiny_bert4rec());
  const double at3 = model.loss_and_backward(batch, 3, true);
  const auto grads3 = embsr::test::to_vector(model.parameters().grads());
  CHECK(model.loss_and_backward(batch, 3, true) == at3);  // same step: same masks, same function
  CHECK(embsr::test::to_vector(model.parameters().grads()) == grads3);
  // Other steps draw other masks (mask_prob 0.5 over 14 prefix positions): the loss changes.
  int differ = 0;
  for (std::uint64_t step = 4; step < 8; ++step) differ += model.loss_and_backward(batch, step, true) != at3;
  CHECK(differ >= 3);
  // training = false masks only the appended position: the evaluation loss, whatever the step.
  const double eval = model.loss(batch);
  CHECK(model.loss_and_backward(batch, 5, false) == Approx(eval).epsilon(1e-14));
  CHECK(std::abs(eval - at3) > 1e-6);
  // mask_prob 0: training masks only the last position too.
  auto c = tiny_bert4rec();
  c.mask_prob = 0;
  embsr::BERT4Rec<TestType, double> plain(c);
  CHECK(plain.loss_and_backward(batch, 9, true) == Approx(plain.loss(batch)).epsilon(1e-14));
  // The evaluation loss is the mean next-item cross-entropy of the scores.
  const auto scores = embsr::test::to_vector(plain.scores(batch));
  const std::size_t V = 9;
  double mean = 0;
  for (std::size_t b = 0; b < set.size(); ++b) {
    double mx = -1e300, z = 0;
    for (std::size_t v = 0; v < V; ++v) mx = std::max(mx, scores[b * V + v]);
    for (std::size_t v = 0; v < V; ++v) z += std::exp(scores[b * V + v] - mx);
    mean += (mx + std::log(z) - scores[b * V + static_cast<std::size_t>(set.targets[b])]) / static_cast<double>(set.size());
  }
  CHECK(plain.loss(batch) == Approx(mean).epsilon(1e-12));
}

TEMPLATE_LIST_TEST_CASE("bert4rec: a session's scores do not depend on the rest of its batch", "[model][bert4rec][invariance]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::BERT4Rec<TestType, double> model(tiny_bert4rec());
  embsr::test::check_batch_invariance(model, embsr::test::tiny_examples());
}

TEST_CASE("bert4rec: every enabled backend computes the same function (float)", "[model][bert4rec][invariance]") {
  auto config = tiny_bert4rec();
  config.d = 16;
  embsr::test::check_backends_agree<FloatModel>(config, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("bert4rec: a frozen model scores as before and refuses training", "[model][bert4rec][freeze]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::BERT4Rec<TestType, double> model(tiny_bert4rec());
  embsr::test::check_freeze(model, embsr::test::tiny_examples());
}

TEST_CASE("bert4rec: memorises 64 real JD sessions", "[model][bert4rec][training]") {
  using Exec = Kokkos::DefaultExecutionSpace;
  const auto& data = embsr::test::jd_appliances_for_memorising();
  embsr::Bert4recConfig config;
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  config.max_length = 40;
  config.seed = 3;
  embsr::BERT4Rec<Exec, float> model(config);
  embsr::test::check_memorises(model, 0.005);
}

TEST_CASE("bert4rec: registered, with its options, and bad configurations say what is wrong", "[model][bert4rec][registry]") {
  using Catch::Matchers::Contains;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const embsr::ModelOptions sizes{{"num_items", "7"}, {"num_ops", "3"}, {"max_length", "12"}};
  auto model = embsr::make_model<Exec>("bert4rec", sizes);
  CHECK(model->learns_by_gradients());
  CHECK(model->options().get_int32("d", 0) == 64);
  CHECK(model->options().get_int32("num_layers", 0) == 2);
  CHECK(model->options().get_int32("num_heads", 0) == 2);
  CHECK(model->options().get_double("mask_prob", 0) == 0.2);
  // items, [mask], 13 positions, input LayerNorm; per layer Q, K, V, O with biases, two LayerNorms,
  // the PFFN (4d inner); the output layer's W^P, b^P, LayerNorm and the per-item bias.
  const std::size_t d = 64, per_layer = 4 * (d * d + d) + 4 * d + (4 * d * d + 4 * d) + (4 * d * d + d);
  CHECK(model->parameters()->size() == 7 * d + d + 13 * d + 2 * d + 2 * per_layer + d * d + 3 * d + 7);
  auto with = [&](const char* key, const char* value) {
    embsr::ModelOptions o = sizes;
    o.set(key, value);
    return o;
  };
  CHECK_THROWS_WITH(embsr::make_model<Exec>("bert4rec", with("num_heads", "3")), Contains("num_heads must divide d = 64"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("bert4rec", with("mask_prob", "1")), Contains("mask_prob must be in [0, 1)"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("bert4rec", with("num_layers", "0")), Contains("num_layers must be in"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("bert4rec", with("d", "0")), Contains("d must be in"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("bert4rec", with("dropout", "0.1")), Contains("does not take option 'dropout'"));
}

TEST_CASE("bert4rec: a checkpoint restores the same model through the registry", "[model][bert4rec][checkpoint]") {
  embsr::test::check_checkpoint_round_trip("bert4rec", embsr::ModelOptions{{"d", "4"}, {"num_layers", "2"}},
                                           embsr::test::tiny_examples());
}

}  // namespace test_bert4rec
