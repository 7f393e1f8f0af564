#pragma once
// The hyper-parameter search of embsr-tune: what is searched, how a trial's values
// are drawn, and the validation objective's terms.
//
//   SearchDimension   one searched quantity: a model option whose OptionSpec::search is tuned, or a
//                     training hyper-parameter of a model that learns by gradients (lr, weight_decay:
//                     training_search_dimensions());
//   search_dimensions the dimensions of one model's search: its tuned options (spec order, data
//                     sizes never), then the training ones, less every key the user fixed;
//   sample_value /    seeded random search (core/random.hpp's SplitMix64). The value of a dimension
//   sample_trial      in trial t depends only on (seed, t, the dimension's key and space): a rerun
//                     with the same seed draws the same trials, and fixing or adding another option
//                     changes no other draw;
//   parse_objective   "h20+m20" -> the metric terms whose sum the search maximises.
//
// How a value is drawn from u, uniform in [0, 1) (SplitMix64 of the seed, trial and key):
//   Integer  uniform over the integers of [low, high]; log_scale: integer k with probability
//            proportional to log((k + 1) / k) (floor of a log-uniform draw in [low, high + 1));
//   Number   uniform in [low, high] (log-uniform when log_scale), rounded to 4 significant digits
//            (so that the printed value is the value used) and kept within [low, high];
//   Boolean  false or true, each with probability 1/2;
//   Choice   one of the space's choices (the option's own choices when empty), equally likely.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/random.hpp>
#include <embsr/model/model_options.hpp>

namespace embsr {

struct SearchDimension {
  std::string key;
  OptionKind kind = OptionKind::Number;
  SearchSpace space;                 // tuned
  std::vector<std::string> choices;  // Choice: the values drawn from (resolved from the option)
  bool training = false;             // a training hyper-parameter, not a model option
  std::string help;
};

// The training hyper-parameters searched for a model that learns by gradients. embsr-train trains
// with lr 0.001 and no weight decay (the authors' Adam setting); the search spans a decade and more
// on either side of that rate, and L2 penalties from negligible to the strongest the paper's
// family of models uses (SR-GNN 1e-5; 1e-4 already flattens EMBSR's scores on small data).
inline std::vector<SearchDimension> training_search_dimensions() {
  return {{"lr", OptionKind::Number, search_range(1e-4, 1e-2, true), {}, true, "Adam (AMSGrad) learning rate"},
          {"weight_decay", OptionKind::Number, search_range(1e-8, 1e-4, true), {}, true,
           "L2 penalty on every parameter (Adam weight decay)"}};
}

namespace detail {

// FNV-1a of a key: the dimension's stream.
inline std::uint64_t tuner_key_hash(const std::string& key) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}
// Uniform in [0, 1) (53 bits) for (seed, trial, key).
inline double tuner_uniform(std::uint64_t seed, std::uint64_t trial, const std::string& key) {
  const std::uint64_t stream = mix64(mix64(seed + golden_gamma()) ^ tuner_key_hash(key));
  return to_unit_double(mix64(stream + golden_gamma() * (trial + 1)));
}

inline std::string format_4g(double x) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.4g", x);
  return buf;
}

// The range of an Integer dimension: the integers of [low, high].
inline void integer_bounds(const SearchDimension& d, long long& lo, long long& hi) {
  lo = static_cast<long long>(std::ceil(d.space.low));
  hi = static_cast<long long>(std::floor(d.space.high));
}

}  // namespace detail

// Throws InvalidArgument (naming the dimension) for a space nothing can be drawn from: not tuned,
// low > high, non-finite bounds, log scale with low <= 0, an Integer range without an integer, a
// Choice without choices.
inline void validate_dimension(const SearchDimension& d) {
  auto fail = [&](const std::string& what) {
    throw InvalidArgument("search space of '" + d.key + "': " + what);
  };
  if (!d.space.tuned) fail("not tuned");
  if (d.kind == OptionKind::Integer || d.kind == OptionKind::Number) {
    if (!std::isfinite(d.space.low) || !std::isfinite(d.space.high)) fail("bounds must be finite");
    if (d.space.low > d.space.high) fail("low > high");
    if (d.space.log_scale && !(d.space.low > 0)) fail("a log scale needs low > 0");
    if (d.kind == OptionKind::Integer) {
      long long lo = 0, hi = 0;
      detail::integer_bounds(d, lo, hi);
      if (lo > hi) fail("no integer in [low, high]");
    }
  } else if (d.kind == OptionKind::Choice) {
    if (d.choices.empty()) fail("no choices");
  }
}

// The dimensions of `spec`'s search: each option with a tuned search space (never the data sizes),
// in the spec's order, then, for a model that learns by gradients, training_search_dimensions()
// (those whose key is not also an option of the model); minus every key in `fixed` (options and
// training hyper-parameters the user set). A Choice space
// without choices takes the option's own; a Choice space's choices must be the option's.
inline std::vector<SearchDimension> search_dimensions(const ModelSpec& spec, const std::vector<std::string>& fixed = {}) {
  auto is_fixed = [&](const std::string& key) {
    for (const auto& f : fixed)
      if (f == key) return true;
    return false;
  };
  std::vector<SearchDimension> out;
  for (const OptionSpec& o : spec.options) {
    if (o.from_data || !o.search.tuned || is_fixed(o.key)) continue;
    SearchDimension d{o.key, o.kind, o.search, {}, false, o.help};
    if (o.kind == OptionKind::Choice) {
      d.choices = o.search.choices.empty() ? o.choices : o.search.choices;
      for (const auto& c : d.choices) {
        bool known = false;
        for (const auto& own : o.choices) known = known || own == c;
        if (!known) throw InvalidArgument("search space of '" + o.key + "': '" + c + "' is not one of its choices");
      }
    }
    validate_dimension(d);
    out.push_back(std::move(d));
  }
  if (spec.info.learns_by_gradients)
    for (SearchDimension& d : training_search_dimensions())
      if (!is_fixed(d.key) && spec.option(d.key) == nullptr) out.push_back(std::move(d));
  return out;
}

// The value (as text, as ModelOptions holds it) of dimension `d` in trial `trial` of the search
// seeded with `seed`. See the top of this file for the distributions.
inline std::string sample_value(const SearchDimension& d, std::uint64_t seed, std::uint64_t trial) {
  validate_dimension(d);
  const double u = detail::tuner_uniform(seed, trial, d.key);
  switch (d.kind) {
    case OptionKind::Boolean:
      return u < 0.5 ? "false" : "true";
    case OptionKind::Choice: {
      std::size_t i = static_cast<std::size_t>(u * static_cast<double>(d.choices.size()));
      if (i >= d.choices.size()) i = d.choices.size() - 1;
      return d.choices[i];
    }
    case OptionKind::Integer: {
      long long lo = 0, hi = 0;
      detail::integer_bounds(d, lo, hi);
      long long k = lo;
      if (d.space.log_scale) {
        // lo >= 1 here (low > 0): floor of a log-uniform draw in [lo, hi + 1).
        const double a = static_cast<double>(lo), b = static_cast<double>(hi) + 1.0;
        k = static_cast<long long>(std::floor(a * std::exp(u * std::log(b / a))));
      } else {
        k = lo + static_cast<long long>(std::floor(u * (static_cast<double>(hi - lo) + 1.0)));
      }
      if (k < lo) k = lo;
      if (k > hi) k = hi;
      return std::to_string(k);
    }
    case OptionKind::Number:
    default: {
      const double lo = d.space.low, hi = d.space.high;
      const double x = d.space.log_scale ? lo * std::exp(u * std::log(hi / lo)) : lo + u * (hi - lo);
      const std::string text = detail::format_4g(x);
      const double rounded = std::strtod(text.c_str(), nullptr);
      if (rounded < lo) return format_option_double(lo);
      if (rounded > hi) return format_option_double(hi);
      return text;
    }
  }
}

// Trial `trial`'s values of every dimension, in the dimensions' order.
inline ModelOptions sample_trial(const std::vector<SearchDimension>& dims, std::uint64_t seed, std::uint64_t trial) {
  ModelOptions out;
  for (const auto& d : dims) out.set(d.key, sample_value(d, seed, trial));
  return out;
}

// One term of a validation objective: H@K, M@K (MRR) or NDCG@K.
struct ObjectiveTerm {
  char metric = 'h';  // 'h', 'm' or 'n'
  int k = 20;
};

// The K the objectives may name (those RankingMetrics keeps, train/metrics.hpp).
inline const std::vector<int>& objective_ks() {
  static const std::vector<int> ks = {1, 3, 5, 10, 20};
  return ks;
}

// "h20+m20" -> {H@20, M@20}: terms joined by '+', each a letter (h: hit rate, m: MRR, n: NDCG;
// either case) and a K of 1, 3, 5, 10 or 20, optionally with an '@' between ("H@20+M@20").
// InvalidArgument for anything else.
inline std::vector<ObjectiveTerm> parse_objective(const std::string& text) {
  auto bad = [&](const std::string& why) -> InvalidArgument {
    return InvalidArgument("metric '" + text + "': " + why +
                           " (expected terms hK, mK or nK joined by '+', K in 1, 3, 5, 10, 20; e.g. h20+m20)");
  };
  std::vector<ObjectiveTerm> terms;
  std::size_t start = 0;
  while (true) {
    const std::size_t plus = text.find('+', start);
    std::string term = text.substr(start, plus == std::string::npos ? std::string::npos : plus - start);
    if (term.empty()) throw bad("empty term");
    ObjectiveTerm t;
    const char m = static_cast<char>(term[0] | 0x20);  // lower case
    if (m != 'h' && m != 'm' && m != 'n') throw bad("unknown metric '" + term + "'");
    t.metric = m;
    std::size_t pos = 1;
    if (pos < term.size() && term[pos] == '@') ++pos;
    const std::string digits = term.substr(pos);
    bool numeric = !digits.empty() && digits.size() <= 3;
    for (const char c : digits) numeric = numeric && c >= '0' && c <= '9';
    if (!numeric) throw bad("no K in '" + term + "'");
    t.k = std::atoi(digits.c_str());
    bool known_k = false;
    for (const int k : objective_ks()) known_k = known_k || k == t.k;
    if (!known_k) throw bad("K of '" + term + "' is not one of 1, 3, 5, 10, 20");
    terms.push_back(t);
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  return terms;
}

// "H@20 + M@20" for printing.
inline std::string objective_name(const std::vector<ObjectiveTerm>& terms) {
  std::string out;
  for (const auto& t : terms)
    out += std::string(out.empty() ? "" : " + ") + (t.metric == 'h' ? "H@" : t.metric == 'm' ? "M@" : "NDCG@") +
           std::to_string(t.k);
  return out;
}

}  // namespace embsr
