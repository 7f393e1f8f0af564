// The session-model interface (model/session_model.hpp) and the registry (model/registry.hpp):
// which types are session models, the registered names, option handling (unknown models and
// options, values out of range), presets that are the model they name, and options that describe a
// Config exactly.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include <embsr/io/checkpoint.hpp>
#include <embsr/model/embsr.hpp>
#include <embsr/model/popularity.hpp>
#include <embsr/model/registry.hpp>
#include <embsr/model/session_model.hpp>

#include "../model/model_fixture.hpp"

namespace test_session_model {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace test_session_model {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using Exec = Kokkos::DefaultHostExecutionSpace;

// A type that looks like a model but cannot learn: neither gradients nor fit.
struct NotAModel {
  using execution_space = Exec;
  using memory_space = Exec::memory_space;
  using scalar_type = float;
  using config_type = int;
  static constexpr bool learns_by_gradients = false;
};

}  // namespace

TEST_CASE("session model: the library's models meet the requirements, others do not", "[model][interface]") {
  STATIC_REQUIRE(embsr::is_session_model<embsr::EMBSR<Exec, float>>::value);
  STATIC_REQUIRE(embsr::is_session_model<embsr::EMBSR<Exec, double>>::value);
  STATIC_REQUIRE(embsr::is_session_model<embsr::PopModel<Exec>>::value);
  STATIC_REQUIRE(embsr::is_session_model<embsr::SessionPopModel<Exec>>::value);
  STATIC_REQUIRE_FALSE(embsr::is_session_model<NotAModel>::value);
  STATIC_REQUIRE_FALSE(embsr::is_session_model<int>::value);
  STATIC_REQUIRE_FALSE(embsr::is_session_model<embsr::SessionModel<Exec>>::value);  // the abstract face
}

TEST_CASE("registry: the models of the library by name", "[model][registry]") {
  std::vector<std::string> names;
  for (const auto& spec : embsr::model_catalog()) {
    names.push_back(spec.info.name);
    CHECK_FALSE(spec.info.description.empty());
    CHECK_FALSE(spec.info.paper.empty());
    CHECK_FALSE(spec.info.family.empty());
    // Every spec is complete and its defaults (with data sizes) are valid.
    REQUIRE(spec.validate != nullptr);
    REQUIRE(spec.layout != nullptr);
    embsr::ModelOptions sizes{{"num_items", "7"}, {"num_ops", "3"}, {"max_length", "12"}};
    CHECK_NOTHROW(spec.validate(spec.with_defaults(sizes)));
    std::set<std::string> keys;
    for (const auto& o : spec.options) CHECK(keys.insert(o.key).second);  // no option twice
  }
  CHECK(names == std::vector<std::string>{"pop", "s-pop", "embsr", "embsr-ns", "embsr-ng", "embsr-nf", "embsr-r", "sgnn-dyadic", "sgnn-abs-self", "sgnn-self", "sgnn-seq-self", "rnn-self", "sknn", "v-sknn",
                                          "stan", "vstan", "vstan-ops", "sr-gnn", "sgnn-hn", "gc-san", "mkm-sr",
                                          "narm", "stamp", "rib", "hup", "bert4rec"});
  CHECK(embsr::find_model_spec("s-pop").info.learns_by_gradients == false);
  CHECK(embsr::find_model_spec("vstan-ops").info.learns_by_gradients == false);
  CHECK(embsr::find_model_spec("embsr-ns").info.learns_by_gradients == true);
}

TEST_CASE("registry: unknown models, options a model does not take and bad values are errors that say so",
          "[model][registry]") {
  using Catch::Matchers::Contains;
  const embsr::ModelOptions sizes{{"num_items", "7"}, {"num_ops", "3"}, {"max_length", "12"}};
  CHECK_THROWS_WITH(embsr::make_model<Exec>("no-such-model", sizes),
                    Contains("unknown model 'no-such-model'") && Contains("known: pop, s-pop, embsr"));
  auto with = [&](const char* key, const char* value) {
    embsr::ModelOptions o = sizes;
    o.set(key, value);
    return o;
  };
  CHECK_THROWS_WITH(embsr::make_model<Exec>("s-pop", with("d", "16")),
                    Contains("model 's-pop' does not take option 'd'"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("embsr", with("neighbours", "100")),
                    Contains("model 'embsr' does not take option 'neighbours'") && Contains("gnn_steps"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("embsr", with("d", "sixteen")), Contains("option 'd': 'sixteen' is not an integer"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("embsr", with("d", "0")), Contains("d must be >= 1"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("embsr", with("fusion", "average")), Contains("one of gate, mlp, fixed"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("embsr", with("attention", "maybe")), Contains("true or false"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("embsr", with("dropout", "0.2x")), Contains("is not a number"));
  // The Sec. V-D switches: the combinations that mean nothing are refused with the reason.
  CHECK_THROWS_WITH(embsr::make_model<Exec>("embsr", with("attention_ops", "false")), Contains("relations need attention_ops"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("embsr", with("encoder", "cnn")), Contains("one of gnn, rnn"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("embsr", with("encoder", "rnn")), Contains("needs run_gru = false"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("rnn-self", with("gnn", "false")), Contains("needs gnn = true"));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("rnn-self", with("repeat", "true")), Contains("encoder = rnn"));
  CHECK_NOTHROW(embsr::make_model<Exec>("sgnn-self", sizes));
  CHECK_THROWS_WITH(embsr::make_model<Exec>("s-pop", embsr::ModelOptions{}), Contains("num_items must be >= 1"));
}

TEST_CASE("registry: a preset is the model it names, with its own defaults", "[model][registry]") {
  auto config = embsr::test::tiny_config();
  const embsr::ModelOptions sizes{{"num_items", std::to_string(config.num_items)},
                                  {"num_ops", std::to_string(config.num_ops)},
                                  {"max_length", std::to_string(config.max_length)},
                                  {"d", std::to_string(config.d)}};
  const auto set = embsr::test::tiny_examples();
  const auto batch = embsr::test::make_batch<Exec::memory_space>(set, embsr::test::all_ids(set));
  struct Preset {
    const char* name;
    void (*apply)(embsr::Config&);
  };
  for (const Preset& p : {Preset{"embsr", [](embsr::Config&) {}},
                          Preset{"embsr-ns", [](embsr::Config& c) { c.use_attention = false; }},
                          Preset{"embsr-ng", [](embsr::Config& c) { c.use_gnn = false; }},
                          Preset{"embsr-nf", [](embsr::Config& c) { c.fusion = embsr::FusionMode::Mlp; }}}) {
    INFO(p.name);
    auto registered = embsr::make_model<Exec>(p.name, sizes);
    embsr::Config c = embsr::Config{};
    c.num_items = config.num_items;
    c.num_ops = config.num_ops;
    c.max_length = config.max_length;
    c.d = config.d;
    p.apply(c);
    embsr::EMBSR<Exec, float> direct(c);
    CHECK(registered->options() == embsr::embsr_options(c));
    REQUIRE(registered->parameters() != nullptr);
    CHECK(registered->parameters()->size() == direct.num_parameters());
    // Same initial parameters (same seed and layout), hence the same losses.
    const double a = registered->loss_and_backward(batch, 0, false), b = direct.loss_and_backward(batch, 0, false);
    CHECK(a == b);
    // Its checkpoint restores into the concrete model, and names the preset.
    const auto ck = embsr::make_checkpoint<Exec>(*registered, {}, {}, nullptr, {});
    CHECK(ck.model == p.name);
    CHECK_NOTHROW(embsr::restore(ck, direct, nullptr));
  }
  // A checkpoint of another model is refused by name.
  auto spop = embsr::make_model<Exec>("s-pop", embsr::ModelOptions{{"num_items", "9"}, {"num_ops", "3"}});
  const auto ck = embsr::make_checkpoint<Exec>(*spop, {}, {}, nullptr, {});
  embsr::EMBSR<Exec, float> model(config);
  CHECK_THROWS_WITH(embsr::restore(ck, model, nullptr), Catch::Matchers::Contains("holds model 's-pop'"));
}

TEST_CASE("options: a Config as options and back is the same Config, doubles bit for bit", "[model][registry]") {
  embsr::Config c = embsr::test::tiny_config();
  c.dropout = 0.1 + 0.2;  // not a short decimal
  c.w_k = 12.000000000000002;
  c.init_std = 1.0 / 3.0;
  c.seed = 0xfedcba9876543210ULL;
  c.next_op = embsr::NextOpMode::Learned;
  c.use_relations = false;
  c.fusion = embsr::FusionMode::Fixed;
  c.fixed_beta = 0.7;
  const embsr::Config back = embsr::embsr_config(embsr::embsr_options(c));
  CHECK(back.dropout == c.dropout);
  CHECK(back.w_k == c.w_k);
  CHECK(back.init_std == c.init_std);
  CHECK(back.seed == c.seed);
  CHECK(back.fixed_beta == c.fixed_beta);
  CHECK(embsr::embsr_options(back) == embsr::embsr_options(c));
}

}  // namespace test_session_model

}  // namespace test_session_model
