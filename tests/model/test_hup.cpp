// HUP (model/hup.hpp): whole-model finite differences on every coordinate in double (one and two
// pyramid levels), batch invariance, backend agreement, freezing, memorising real sessions,
// registry and errors, checkpoints. Its PyTorch oracle comparison is tests/model/test_oracle_hup.cpp.
#include <catch2/catch.hpp>

#include <embsr/model/hup.hpp>
#include <embsr/model/registry.hpp>

#include "neural_model_checks.hpp"

namespace test_hup {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

embsr::HupConfig tiny_hup(int levels = 2) {
  embsr::HupConfig c;
  c.num_items = 9;
  c.num_ops = 3;
  c.max_length = 8;
  c.d = 4;
  c.levels = levels;
  c.seed = 7;
  return c;
}

template <class Exec>
using FloatModel = embsr::HUP<Exec, float>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("hup: gradients match finite differences on every coordinate", "[model][hup][gradcheck]",
                        embsr::test::ModelExecutionSpaces) {
  int levels = 2;
  SECTION("two levels: micro-behavior and item") {}
  SECTION("one level: micro-behavior") { levels = 1; }
  embsr::HUP<TestType, double> model(tiny_hup(levels));
  embsr::test::check_model_gradients(model, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("hup: a session's scores do not depend on the rest of its batch", "[model][hup][invariance]",
                        embsr::test::ModelExecutionSpaces) {
  for (const int levels : {1, 2}) {
    INFO("levels " << levels);
    embsr::HUP<TestType, double> model(tiny_hup(levels));
    embsr::test::check_batch_invariance(model, embsr::test::tiny_examples());
  }
}

TEST_CASE("hup: every enabled backend computes the same function (float)", "[model][hup][invariance]") {
  auto config = tiny_hup();
  config.d = 16;
  embsr::test::check_backends_agree<FloatModel>(config, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("hup: a frozen model scores as before and refuses training", "[model][hup][freeze]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::HUP<TestType, double> model(tiny_hup());
  embsr::test::check_freeze(model, embsr::test::tiny_examples());
}

TEST_CASE("hup: memorises 64 real JD sessions", "[model][hup][training]") {
  using Exec = Kokkos::DefaultExecutionSpace;
  const auto& data = embsr::test::jd_appliances_for_memorising();
  embsr::HupConfig config;
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  config.max_length = 40;
  config.seed = 3;
  embsr::HUP<Exec, float> model(config);
  embsr::test::check_memorises(model, 0.01);
}

TEST_CASE("hup: registered, with its options, and bad configurations say what is wrong", "[model][hup][registry]") {
  using Catch::Matchers::Contains;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const embsr::ModelOptions sizes{{"num_items", "7"}, {"num_ops", "3"}, {"max_length", "12"}};
  auto model = embsr::make_model<Exec>("hup", sizes);
  CHECK(model->learns_by_gradients());
  CHECK(model->options().get_int32("d", 0) == 100);
  CHECK(model->options().get_int32("levels", 0) == 2);
  // items, operations, Behavior-LSTM (W_x 5d x 2d, W_b 4d x d, W_h 4d x d, b 5d), item LSTM
  // (W_x 4d x 2d, W_h 4d x d, b 4d), attention (w 2d, c), output map (d x d, d).
  const std::size_t d = 100;
  CHECK(model->parameters()->size() == 7 * d + 3 * d + (10 * d * d + 4 * d * d + 4 * d * d + 5 * d) +
                                           (8 * d * d + 4 * d * d + 4 * d) + (2 * d + 1) + (d * d + d));
  auto one_level = embsr::make_model<Exec>("hup", embsr::ModelOptions(sizes).set("levels", "1"));
  CHECK(one_level->parameters()->size() ==
        7 * d + 3 * d + (10 * d * d + 4 * d * d + 4 * d * d + 5 * d) + (3 * d + 1) + (d * d + d));
  auto with = [&](const char* key, const char* value) {
    embsr::ModelOptions o = sizes;
    o.set(key, value);
    return o;
  };
  CHECK_THROWS_WITH(embsr::make_model<Exec>("hup", with("levels", "3")), Contains("levels must be 1 or 2"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("hup", with("d", "0")), Contains("d must be in"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("hup", with("dropout", "0.1")), Contains("does not take option 'dropout'"));
  CHECK_THROWS_WITH(embsr::HUP<Exec>(embsr::HupConfig{}), Contains("num_items must be >= 1"));
}

TEST_CASE("hup: a checkpoint restores the same model through the registry", "[model][hup][checkpoint]") {
  embsr::test::check_checkpoint_round_trip("hup", embsr::ModelOptions{{"d", "4"}}, embsr::test::tiny_examples());
  embsr::test::check_checkpoint_round_trip("hup", embsr::ModelOptions{{"d", "4"}, {"levels", "1"}},
                                           embsr::test::tiny_examples());
}

}  // namespace test_hup
