// NARM (model/narm.hpp): whole-model finite differences on every coordinate in double, batch
// invariance, backend agreement, freezing, memorising real sessions, registry and errors. Its
// PyTorch oracle comparison is tests/model/test_oracle_narm.cpp.
#include <catch2/catch.hpp>

#include <embsr/model/narm.hpp>
#include <embsr/model/registry.hpp>

#include "neural_model_checks.hpp"

namespace test_narm {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

embsr::NarmConfig tiny_narm(int d = 4, int hidden = 3) {
  embsr::NarmConfig c;
  c.num_items = 9;
  c.num_ops = 3;
  c.max_length = 8;
  c.d = d;
  c.hidden = hidden;
  c.seed = 7;
  return c;
}

template <class Exec>
using FloatModel = embsr::NARM<Exec, float>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("narm: gradients match finite differences on every coordinate", "[model][narm][gradcheck]",
                        embsr::test::ModelExecutionSpaces) {
  int d = 4, hidden = 3;
  SECTION("embedding 4, hidden 3") {}
  SECTION("embedding 3, hidden 5") { d = 3, hidden = 5; }
  embsr::NARM<TestType, double> model(tiny_narm(d, hidden));
  embsr::test::check_model_gradients(model, embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("narm: a session's scores do not depend on the rest of its batch", "[model][narm][invariance]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::NARM<TestType, double> model(tiny_narm());
  embsr::test::check_batch_invariance(model, embsr::test::tiny_examples());
}

TEST_CASE("narm: every enabled backend computes the same function (float)", "[model][narm][invariance]") {
  embsr::test::check_backends_agree<FloatModel>(tiny_narm(16, 12), embsr::test::tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("narm: a frozen model scores as before and refuses training", "[model][narm][freeze]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::NARM<TestType, double> model(tiny_narm());
  embsr::test::check_freeze(model, embsr::test::tiny_examples());
}

TEST_CASE("narm: a session's repeated item counts once (macro items)", "[model][narm][invariance]") {
  // The session [2, 2, 5] reads as [2, 5]: NARM sees the macro items only.
  using Exec = Kokkos::DefaultExecutionSpace;
  embsr::NARM<Exec, double> model(tiny_narm());
  embsr::ExampleSet set;
  auto add = [&](std::vector<embsr::index_t> items) {
    std::vector<embsr::index_t> ops(items.size(), 1);
    set.add(embsr::Span<const embsr::index_t>(items.data(), items.size()),
            embsr::Span<const embsr::index_t>(ops.data(), ops.size()), 3, 0, static_cast<embsr::offset_t>(set.size()),
            static_cast<double>(set.size()));
  };
  add({2, 2, 5});
  add({2, 5});
  add({5, 2});
  const auto repeated = embsr::test::session_scores(model, set, {0}, 0);
  const auto merged = embsr::test::session_scores(model, set, {1}, 0);
  const auto other = embsr::test::session_scores(model, set, {2}, 0);
  REQUIRE(repeated.size() == 9);
  bool order_matters = false;
  for (std::size_t v = 0; v < repeated.size(); ++v) {
    CHECK(repeated[v] == merged[v]);
    order_matters = order_matters || std::abs(other[v] - merged[v]) > 1e-9;
  }
  CHECK(order_matters);  // a GRU reads the order
}

TEST_CASE("narm: memorises 64 real JD sessions", "[model][narm][training]") {
  using Exec = Kokkos::DefaultExecutionSpace;
  const auto& data = embsr::test::jd_appliances_for_memorising();
  embsr::NarmConfig config;
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  config.max_length = 40;
  config.seed = 3;
  embsr::NARM<Exec, float> model(config);
  embsr::test::check_memorises(model, 0.001);
}

TEST_CASE("narm: registered, with its options, and bad configurations say what is wrong", "[model][narm][registry]") {
  using Catch::Matchers::Contains;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const embsr::ModelOptions sizes{{"num_items", "7"}, {"num_ops", "3"}, {"max_length", "12"}};
  auto model = embsr::make_model<Exec>("narm", sizes);
  CHECK(model->learns_by_gradients());
  CHECK(model->options().get_int32("d", 0) == 100);
  CHECK(model->options().get_int32("hidden", 0) == 100);
  // items [7 x 100], GRU (W_ih [300 x 100], W_hh [300 x 100], two biases [300]), A_1, A_2 [100 x 100],
  // v [100], B [100 x 200].
  CHECK(model->parameters()->size() == 700 + (300 * 100 + 300 * 100 + 600) + (2 * 100 * 100 + 100) + 100 * 200);
  auto with = [&](const char* key, const char* value) {
    embsr::ModelOptions o = sizes;
    o.set(key, value);
    return o;
  };
  auto other = embsr::make_model<Exec>("narm", with("hidden", "30"));
  CHECK(other->parameters()->size() == 700 + (90 * 100 + 90 * 30 + 180) + (2 * 30 * 30 + 30) + 100 * 60);
  CHECK_THROWS_WITH(embsr::make_model<Exec>("narm", with("hidden", "0")), Contains("hidden must be in [1, 65536]"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("narm", with("d", "0")), Contains("d must be in [1, 65536]"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("narm", with("dropout", "0.1")), Contains("does not take option 'dropout'"));
  embsr::NarmConfig bad = tiny_narm();
  bad.num_items = 0;
  CHECK_THROWS_WITH((embsr::NARM<Exec, float>(bad)), Contains("NARM: num_items must be >= 1"));
}

TEST_CASE("narm: a checkpoint restores the same model through the registry", "[model][narm][checkpoint]") {
  embsr::test::check_checkpoint_round_trip("narm", embsr::ModelOptions{{"d", "4"}, {"hidden", "5"}},
                                           embsr::test::tiny_examples());
}

}  // namespace test_narm
