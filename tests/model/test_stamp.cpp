// STAMP (model/stamp.hpp): whole-model finite differences on every coordinate in double, batch
// invariance, backend agreement, freezing, memorising real sessions, registry and errors. Its
// PyTorch oracle comparison is tests/model/test_oracle_stamp.cpp.
#include <catch2/catch.hpp>

#include <embsr/model/registry.hpp>
#include <embsr/model/stamp.hpp>

#include "neural_model_checks.hpp"

namespace test_stamp {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

embsr::StampConfig tiny_stamp(bool mean_residual = false) {
  embsr::StampConfig c;
  c.num_items = 9;
  c.num_ops = 3;
  c.max_length = 8;
  c.d = 4;
  c.mean_residual = mean_residual;
  c.seed = 7;
  return c;
}

template <class Exec>
using FloatModel = embsr::STAMP<Exec, float>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("stamp: gradients match finite differences on every coordinate", "[model][stamp][gradcheck]",
                        embsr::test::ModelExecutionSpaces) {
  bool mean_residual = false;
  SECTION("the paper's m_a (eq. 9)") {}
  SECTION("the authors' code: m_a + m_s") { mean_residual = true; }
  embsr::STAMP<TestType, double> model(tiny_stamp(mean_residual));
  embsr::test::check_model_gradients(model, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("stamp: a session's scores do not depend on the rest of its batch", "[model][stamp][invariance]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::STAMP<TestType, double> model(tiny_stamp(true));
  embsr::test::check_batch_invariance(model, embsr::test::tiny_examples());
}

TEST_CASE("stamp: every enabled backend computes the same function (float)", "[model][stamp][invariance]") {
  auto config = tiny_stamp();
  config.d = 16;
  embsr::test::check_backends_agree<FloatModel>(config, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("stamp: a frozen model scores as before and refuses training", "[model][stamp][freeze]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::STAMP<TestType, double> model(tiny_stamp());
  embsr::test::check_freeze(model, embsr::test::tiny_examples());
}

TEST_CASE("stamp: memorises 64 real JD sessions", "[model][stamp][training]") {
  using Exec = Kokkos::DefaultExecutionSpace;
  const auto& data = embsr::test::jd_appliances_for_memorising();
  embsr::StampConfig config;
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  config.max_length = 40;
  config.seed = 3;
  embsr::STAMP<Exec, float> model(config);
  embsr::test::check_memorises(model, 0.001);
}

TEST_CASE("stamp: registered, with its options, and bad configurations say what is wrong", "[model][stamp][registry]") {
  using Catch::Matchers::Contains;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const embsr::ModelOptions sizes{{"num_items", "7"}, {"num_ops", "3"}, {"max_length", "12"}};
  auto model = embsr::make_model<Exec>("stamp", sizes);
  CHECK(model->learns_by_gradients());
  CHECK(model->options().get_int("d", 0) == 100);
  CHECK(model->options().get_bool("mean_residual", true) == false);
  // items; W_0, b_a; W_1, W_2, W_3; W_s, b_s; W_t, b_t.
  CHECK(model->parameters()->size() == 700 + 2 * 100 + 3 * 100 * 100 + 2 * (100 * 100 + 100));
  auto with = [&](const char* key, const char* value) {
    embsr::ModelOptions o = sizes;
    o.set(key, value);
    return o;
  };
  CHECK(embsr::make_model<Exec>("stamp", with("mean_residual", "true"))->options().get_bool("mean_residual", false));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("stamp", with("d", "0")), Contains("d must be in [1, 65536]"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("stamp", with("mean_residual", "maybe")), Contains("true or false"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("stamp", with("num_items", "0")), Contains("num_items must be >= 1"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("stamp", with("dropout", "0.1")), Contains("does not take option 'dropout'"));
  using FloatStamp = embsr::STAMP<Exec, float>;
  CHECK_THROWS_WITH(FloatStamp(embsr::StampConfig{}), Contains("STAMP: num_items must be >= 1"));
}

TEST_CASE("stamp: a checkpoint restores the same model through the registry", "[model][stamp][checkpoint]") {
  embsr::test::check_checkpoint_round_trip("stamp", embsr::ModelOptions{{"d", "4"}, {"mean_residual", "true"}},
                                           embsr::test::tiny_examples());
}

}  // namespace test_stamp
