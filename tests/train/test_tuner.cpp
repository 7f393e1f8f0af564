// The tuner's sampler (train/tuner.hpp): ranges, log scales, choices, determinism, fixed options,
// and the objective parser. Pure functions, no Kokkos.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <embsr/model/embsr_spec.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/train/tuner.hpp>

namespace test_tuner {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

embsr::SearchDimension dim(const std::string& key, embsr::OptionKind kind, embsr::SearchSpace space,
                           std::vector<std::string> choices = {}) {
  return embsr::SearchDimension{key, kind, space, std::move(choices), false, ""};
}

double number(const std::string& text) {
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  REQUIRE(end == text.c_str() + text.size());
  return x;
}

// A spec with every kind of option, tuned and not, and a data option.
embsr::ModelSpec toy_spec(bool gradients) {
  embsr::ModelSpec s;
  s.info.name = "toy";
  s.info.learns_by_gradients = gradients;
  s.options = embsr::data_option_specs();
  s.options.push_back({"d", embsr::OptionKind::Integer, "32", "size", {}, false, true, embsr::search_range(8, 64, true)});
  s.options.push_back({"p", embsr::OptionKind::Number, "0.1", "rate", {}, false, false, embsr::search_range(0, 0.5)});
  s.options.push_back({"flag", embsr::OptionKind::Boolean, "true", "switch", {}, false, true, embsr::search_choices()});
  s.options.push_back(
      {"mode", embsr::OptionKind::Choice, "a", "mode", {"a", "b", "c"}, false, true, embsr::search_choices()});
  s.options.push_back({"fixed_mode", embsr::OptionKind::Choice, "x", "mode", {"x", "y", "z"}, false, true,
                       embsr::search_choices({"y", "z"})});
  s.options.push_back({"seed", embsr::OptionKind::Integer, "1", "seed", {}, false, false, {}});  // not tuned
  return s;
}

std::vector<std::string> keys_of(const std::vector<embsr::SearchDimension>& dims) {
  std::vector<std::string> keys;
  for (const auto& d : dims) keys.push_back(d.key);
  return keys;
}

}  // namespace

TEST_CASE("tuner: integer and number draws stay within their ranges and cover them", "[tuner]") {
  const auto integer = dim("k", embsr::OptionKind::Integer, embsr::search_range(3, 7));
  const auto real = dim("x", embsr::OptionKind::Number, embsr::search_range(-2.5, 4.0));
  std::map<long long, int> counts;
  double lo = 1e9, hi = -1e9;
  for (std::uint64_t t = 0; t < 2000; ++t) {
    const long long k = std::stoll(embsr::sample_value(integer, 42, t));
    REQUIRE(k >= 3);
    REQUIRE(k <= 7);
    ++counts[k];
    const double x = number(embsr::sample_value(real, 42, t));
    REQUIRE(x >= -2.5);
    REQUIRE(x <= 4.0);
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  CHECK(counts.size() == 5);  // every integer of [3, 7], endpoints included
  for (const auto& [k, n] : counts) CHECK(n > 300);  // 400 expected each
  CHECK(lo < -2.4);
  CHECK(hi > 3.9);
  // A one-point range gives its point.
  CHECK(embsr::sample_value(dim("k", embsr::OptionKind::Integer, embsr::search_range(5, 5)), 1, 0) == "5");
  CHECK(number(embsr::sample_value(dim("x", embsr::OptionKind::Number, embsr::search_range(0.25, 0.25)), 1, 0)) ==
        0.25);
}

TEST_CASE("tuner: a log scale is uniform in the logarithm", "[tuner]") {
  const auto lr = dim("lr", embsr::OptionKind::Number, embsr::search_range(1e-4, 1e-2, true));
  int per_decade[2] = {0, 0};
  const int n = 4000;
  for (int t = 0; t < n; ++t) {
    const double x = number(embsr::sample_value(lr, 7, static_cast<std::uint64_t>(t)));
    REQUIRE(x >= 1e-4);
    REQUIRE(x <= 1e-2);
    ++per_decade[x < 1e-3 ? 0 : 1];
  }
  // Half the draws in each decade (a uniform scale would put 9% below 1e-3).
  CHECK(per_decade[0] > 0.45 * n);
  CHECK(per_decade[1] > 0.45 * n);
  // Integers: k with probability log((k + 1) / k) / log(65 / 8): more small sizes than large ones.
  const auto d = dim("d", embsr::OptionKind::Integer, embsr::search_range(8, 64, true));
  int small = 0;
  for (int t = 0; t < n; ++t) {
    const long long k = std::stoll(embsr::sample_value(d, 7, static_cast<std::uint64_t>(t)));
    REQUIRE(k >= 8);
    REQUIRE(k <= 64);
    small += k < 16;
  }
  // P(k < 16) = log(16 / 8) / log(65 / 8) = 0.332 (uniform: 8 / 57 = 0.14).
  CHECK(small > 0.29 * n);
  CHECK(small < 0.38 * n);
  // Numbers are rounded to 4 significant digits: the text is the value used.
  const std::string text = embsr::sample_value(lr, 7, 3);
  CHECK(text.find_first_of("123456789") != std::string::npos);
  CHECK(text.size() <= 10);
}

TEST_CASE("tuner: booleans and choices draw every allowed value and nothing else", "[tuner]") {
  const auto spec = toy_spec(false);
  const auto dims = embsr::search_dimensions(spec);
  REQUIRE(keys_of(dims) == std::vector<std::string>{"d", "p", "flag", "mode", "fixed_mode"});
  std::map<std::string, std::set<std::string>> seen;
  for (std::uint64_t t = 0; t < 200; ++t) {
    const embsr::ModelOptions o = embsr::sample_trial(dims, 3, t);
    for (const char* key : {"flag", "mode", "fixed_mode"}) seen[key].insert(*o.find(key));
  }
  CHECK(seen["flag"] == std::set<std::string>{"false", "true"});
  CHECK(seen["mode"] == std::set<std::string>{"a", "b", "c"});        // the option's own choices
  CHECK(seen["fixed_mode"] == std::set<std::string>{"y", "z"});       // the space's subset
  // A space's choice that the option does not take is a spec error.
  auto bad = toy_spec(false);
  bad.options.back().search = embsr::search_choices({"w"});
  bad.options.back().kind = embsr::OptionKind::Choice;
  bad.options.back().choices = {"x"};
  CHECK_THROWS_WITH(embsr::search_dimensions(bad), Catch::Contains("'w' is not one of its choices"));
}

TEST_CASE("tuner: a trial depends only on the seed, its index and the space", "[tuner]") {
  const auto dims = embsr::search_dimensions(toy_spec(true));
  for (std::uint64_t t = 0; t < 20; ++t) CHECK(embsr::sample_trial(dims, 11, t) == embsr::sample_trial(dims, 11, t));
  // Other trials and other seeds differ (in at least one of many trials).
  int differ_trial = 0, differ_seed = 0;
  for (std::uint64_t t = 0; t < 20; ++t) {
    differ_trial += embsr::sample_trial(dims, 11, t) != embsr::sample_trial(dims, 11, t + 1);
    differ_seed += embsr::sample_trial(dims, 11, t) != embsr::sample_trial(dims, 12, t);
  }
  CHECK(differ_trial >= 19);
  CHECK(differ_seed >= 19);
  // A dimension's draw does not depend on the other dimensions (nor on their order).
  std::vector<embsr::SearchDimension> reversed(dims.rbegin(), dims.rend());
  const std::vector<embsr::SearchDimension> only_p = {dims[1]};
  for (std::uint64_t t = 0; t < 20; ++t) {
    const embsr::ModelOptions a = embsr::sample_trial(dims, 5, t), b = embsr::sample_trial(reversed, 5, t),
                              c = embsr::sample_trial(only_p, 5, t);
    for (const auto& [key, value] : a.items()) CHECK(*b.find(key) == value);
    CHECK(*c.find("p") == *a.find("p"));
  }
  // Known values: a change of the generator or of the distributions shows here (earlier searches
  // would no longer reproduce their trials from their seeds).
  const embsr::ModelOptions first = embsr::sample_trial(dims, 1, 1), second = embsr::sample_trial(dims, 1, 2);
  CHECK(first == embsr::ModelOptions{{"d", "8"}, {"p", "0.4013"}, {"flag", "false"}, {"mode", "c"}, {"fixed_mode", "y"},
                                     {"lr", "0.0002679"}, {"weight_decay", "4.244e-05"}});
  CHECK(second == embsr::ModelOptions{{"d", "53"}, {"p", "0.3905"}, {"flag", "true"}, {"mode", "b"}, {"fixed_mode", "z"},
                                      {"lr", "0.007806"}, {"weight_decay", "4.403e-05"}});
}

TEST_CASE("tuner: EMBSR's search space (every preset's), architecture switches untuned", "[tuner]") {
  const auto keys = keys_of(embsr::search_dimensions(embsr::EmbsrSpec<embsr::embsr_presets::Full>::spec()));
  CHECK(keys == std::vector<std::string>{"d", "gnn_steps", "dropout", "w_k", "lr", "weight_decay"});
  CHECK(keys_of(embsr::search_dimensions(embsr::EmbsrSpec<embsr::embsr_presets::NoSelfAttention>::spec())) == keys);
  CHECK(keys_of(embsr::search_dimensions(embsr::EmbsrSpec<embsr::embsr_presets::NoFusionGate>::spec())) == keys);
  // Every draw is a valid configuration.
  const auto spec = embsr::EmbsrSpec<embsr::embsr_presets::Full>::spec();
  const auto dims = embsr::search_dimensions(spec, {"lr", "weight_decay"});
  for (std::uint64_t t = 0; t < 50; ++t) {
    embsr::ModelOptions o = embsr::sample_trial(dims, 1, t);
    o.set("num_items", 100).set("num_ops", 5);
    CHECK_NOTHROW(spec.validate(spec.with_defaults(o)));
  }
}

TEST_CASE("tuner: data sizes, untuned and fixed options are never sampled", "[tuner]") {
  const auto spec = toy_spec(true);
  const auto all = embsr::search_dimensions(spec);
  // Gradient models add the training hyper-parameters, after the model's options.
  CHECK(keys_of(all) == std::vector<std::string>{"d", "p", "flag", "mode", "fixed_mode", "lr", "weight_decay"});
  for (const auto& d : all) CHECK(d.training == (d.key == "lr" || d.key == "weight_decay"));
  const auto some = embsr::search_dimensions(spec, {"d", "lr", "mode"});
  CHECK(keys_of(some) == std::vector<std::string>{"p", "flag", "fixed_mode", "weight_decay"});
  const embsr::ModelOptions o = embsr::sample_trial(some, 9, 4);
  CHECK_FALSE(o.has("d"));
  CHECK_FALSE(o.has("lr"));
  CHECK_FALSE(o.has("mode"));
  CHECK_FALSE(o.has("seed"));
  CHECK_FALSE(o.has("num_items"));
  // The values of the dimensions left are those of the full search (fixing one changes no other).
  const embsr::ModelOptions full = embsr::sample_trial(all, 9, 4);
  for (const auto& [key, value] : o.items()) CHECK(*full.find(key) == value);
  // A model without tuned options (POP, S-POP): nothing to search.
  embsr::ModelSpec pop;
  pop.info.name = "pop";
  pop.options = embsr::data_option_specs();
  CHECK(embsr::search_dimensions(pop).empty());
  CHECK(embsr::sample_trial({}, 1, 1).empty());
  // The training ranges: log-uniform, positive.
  for (const auto& d : embsr::training_search_dimensions()) {
    CHECK(d.space.tuned);
    CHECK(d.space.log_scale);
    CHECK(d.space.low > 0);
    CHECK(d.space.low < d.space.high);
  }
}

TEST_CASE("tuner: spaces nothing can be drawn from are refused", "[tuner]") {
  using K = embsr::OptionKind;
  CHECK_THROWS_WITH(embsr::validate_dimension(dim("a", K::Number, embsr::search_range(0, 1, true))),
                    Catch::Contains("'a'") && Catch::Contains("log scale needs low > 0"));
  CHECK_THROWS_WITH(embsr::validate_dimension(dim("b", K::Number, embsr::search_range(2, 1))), Catch::Contains("low > high"));
  CHECK_THROWS_WITH(embsr::validate_dimension(dim("c", K::Integer, embsr::search_range(1.2, 1.8))),
                    Catch::Contains("no integer"));
  CHECK_THROWS_WITH(embsr::validate_dimension(dim("d", K::Choice, embsr::search_choices())), Catch::Contains("no choices"));
  CHECK_THROWS_WITH(embsr::validate_dimension(dim("e", K::Number, embsr::SearchSpace{})), Catch::Contains("not tuned"));
  CHECK_NOTHROW(embsr::validate_dimension(dim("f", K::Boolean, embsr::search_choices())));
}

TEST_CASE("tuner: objectives", "[tuner]") {
  const auto terms = embsr::parse_objective("h20+m20");
  REQUIRE(terms.size() == 2);
  CHECK(terms[0].metric == 'h');
  CHECK(terms[0].k == 20);
  CHECK(terms[1].metric == 'm');
  CHECK(terms[1].k == 20);
  CHECK(embsr::objective_name(terms) == "H@20 + M@20");
  CHECK(embsr::objective_name(embsr::parse_objective("H@10+n5")) == "H@10 + NDCG@5");
  for (const char* ok : {"h20", "m20", "h10", "m10", "h5", "m5", "h1+m3+n20"}) CHECK_NOTHROW(embsr::parse_objective(ok));
  for (const char* bad : {"", "h", "h7", "x20", "h20+", "+m20", "h20 + m20", "h200", "recall"})
    CHECK_THROWS_WITH(embsr::parse_objective(bad), Catch::Contains("metric '") && Catch::Contains("e.g. h20+m20"));
}

}  // namespace test_tuner
