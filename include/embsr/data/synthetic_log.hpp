#pragma once
// Synthetic micro-behavior logs of any size, shaped like a real one. `fit_log_shape` measures a
// loaded log (a LogShape); `SyntheticLogGenerator` draws sessions from a shape with the portable
// generator of core/random.hpp, so a seed gives the same log on every platform; the writers stream
// it as the generic CSV (`--format csv`) or as OTTO JSON lines (`--format otto`). Without a log to
// fit, `default_log_shape()` is the shape fitted on the shipped JD Appliances sample.
//
// The model of a session (every parameter is fitted, except items_per_group):
//  1. Its length L (micro-behaviors) is drawn from the empirical length distribution.
//  2. Operations follow a first-order Markov chain whose state also says whether the item changes:
//     the first operation is drawn from `initial_operation`; then from the row of the previous
//     operation, one of 2 * ops outcomes: "stay on the item with operation o" or "move to another
//     item with operation o". JD sessions have runs of several micro-behaviors on one item (detail
//     pages, comments, cart), and which operations start and continue a run is in this chain.
//  3. A move returns to an item seen earlier in the session (uniformly among them, when there is
//     one besides the current item) with probability `repeat_share_last_move` for the session's
//     last move and `repeat_share_by_position`[k] for the others, k the tenth of the session the
//     move falls in; otherwise it introduces an item new to the session.
//  4. Item popularity is a Zipf law: the item of popularity rank r has weight r^-item_weight_exponent.
//     Items are split into latent groups of `items_per_group` consecutive ids (popularity ranks are
//     a seeded shuffle of the ids, so every group mixes popular and rare items). A new item is drawn
//     by weight from the current item's group with probability `group_stay`, otherwise by weight
//     from all items (a jump). Either way an item's marginal frequency follows its weight, and the
//     co-visitation structure that kNN and graph models learn comes from the groups.
//  5. Times: sessions start `mean_session_interarrival` seconds apart on average (exponential gaps)
//     from `start_time`; the gap between two micro-behaviors is drawn from the empirical gap
//     quantiles (interpolated in log(1 + gap)), rounded to whole seconds.
//
// How the item-to-item structure is measured: `co_occurrence_share` is, over the moves a -> b to an
// item b new to the session, the share of pairs (a, b) that also occur together in at least one
// other session of the log. `group_stay` is not observable directly: the fit finds it by simulation
// (fixed-point steps until a log generated with it at the size of the input shows the input's
// co-occurrence share), and likewise `item_universe` and `item_weight_exponent`, the number of items
// the generator draws from and their Zipf exponent, so that a generated log of the input's size
// shows as many distinct items as the input and the same refitted `zipf_exponent`. Larger
// logs draw from item_universe * (events / fitted_events)^heaps_exponent items (Heaps' law, the
// exponent fitted on prefixes of the input), unless a count is given.
//
// The data layer only: no Kokkos runtime is needed (core/random.hpp is used for its integer
// generator; its Kokkos include is only for the function annotations).

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/random.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/load_options.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/vocabulary.hpp>

namespace embsr {

// The fitted statistics of a log. Weights need not be normalized (fitted shapes hold counts).
struct LogShape {
  std::vector<std::string> operation_names;
  std::vector<double> initial_operation;  // [ops] weight of each first operation
  // [ops][2 * ops] row = previous operation; column o: stay on the item with operation o, column
  // ops + o: move to another item with operation o.
  std::vector<std::vector<double>> operation_transitions;

  std::vector<std::size_t> session_length_values;  // distinct session lengths (micro-behaviors), ascending
  std::vector<double> session_length_weights;      // their weights (counts)

  double zipf_exponent = 1.0;         // measured: MLE on micro-behaviors per item over the items seen
  double item_weight_exponent = 1.0;  // generator: item weight = rank^-item_weight_exponent (calibrated)
  double repeat_share = 0.0;        // P(move returns to an earlier item | one other than the current exists)
  // The same by position, which is what the generator uses: the last move of a session apart
  // (repeat_share_last_move), and entry k for the other moves at micro-behavior i of a session of
  // length L with floor(K * i / L) = k (K entries). JD sessions return to earlier items more towards
  // their end (13% of moves in the first tenth, 51% in the last, 55% for the last move), and the
  // last move decides whether the item to predict is in the input (what S-POP exploits).
  std::vector<double> repeat_share_by_position;
  double repeat_share_last_move = 0.0;
  double co_occurrence_share = 0.0; // measured on the fitted log (see the header comment)
  double group_stay = 0.0;          // P(new item drawn from the current item's group): calibrated
  // Not fitted (the groups are latent): 50 makes the calibrated group_stay on the JD Appliances
  // sample 0.905, close to the share of its new-item moves that stay in the leaf category (0.894,
  // measured on the raw files' category field, which the loader does not keep).
  std::size_t items_per_group = 50;

  std::size_t fitted_sessions = 0;  // size of the log the item parameters were fitted / calibrated on
  std::size_t fitted_events = 0;
  std::size_t fitted_items = 0;     // distinct items in it
  std::size_t item_universe = 0;    // items the generator draws from at fitted_events (calibrated)
  double heaps_exponent = 1.0;      // distinct items ~ events^heaps_exponent

  std::vector<double> gap_quantiles;  // seconds between consecutive micro-behaviors at k / (n - 1), k = 0..n-1
  double start_time = 1793491200.0;   // unix seconds of the first session's start (2026-11-01 00:00 UTC)
  double mean_session_interarrival = 10.0;  // seconds between session starts

  std::size_t num_operations() const { return operation_names.size(); }

  // Throws InvalidArgument naming the first inconsistent field.
  void validate() const {
    const std::size_t ops = operation_names.size();
    auto fail = [](const std::string& what) { throw InvalidArgument("LogShape: " + what); };
    auto check_weights = [&](const std::vector<double>& w, const std::string& name) {
      double sum = 0;
      for (const double x : w) {
        if (!(x >= 0) || !std::isfinite(x)) fail(name + " has a negative or non-finite weight");
        sum += x;
      }
      if (!(sum > 0)) fail(name + " has no positive weight");
    };
    if (ops == 0) fail("no operations");
    for (const auto& n : operation_names)
      if (n.empty()) fail("empty operation name");
    if (initial_operation.size() != ops)
      fail("initial_operation has " + std::to_string(initial_operation.size()) + " weights for " +
           std::to_string(ops) + " operations");
    check_weights(initial_operation, "initial_operation");
    if (operation_transitions.size() != ops)
      fail("operation_transitions has " + std::to_string(operation_transitions.size()) + " rows for " +
           std::to_string(ops) + " operations");
    for (std::size_t o = 0; o < ops; ++o) {
      if (operation_transitions[o].size() != 2 * ops)
        fail("operation_transitions row " + std::to_string(o) + " has " +
             std::to_string(operation_transitions[o].size()) + " entries, expected " + std::to_string(2 * ops));
      check_weights(operation_transitions[o], "operation_transitions row " + std::to_string(o));
    }
    if (session_length_values.empty() || session_length_values.size() != session_length_weights.size())
      fail("session_length_values and session_length_weights must be non-empty and of equal size");
    for (std::size_t i = 0; i < session_length_values.size(); ++i) {
      if (session_length_values[i] < 1 || session_length_values[i] > 1000000)
        fail("session length " + std::to_string(session_length_values[i]) + " outside [1, 1000000]");
      if (i > 0 && session_length_values[i] <= session_length_values[i - 1])
        fail("session_length_values must be strictly ascending");
    }
    check_weights(session_length_weights, "session_length_weights");
    if (!(zipf_exponent >= 0 && zipf_exponent <= 10)) fail("zipf_exponent must be in [0, 10]");
    if (!(item_weight_exponent >= 0 && item_weight_exponent <= 10)) fail("item_weight_exponent must be in [0, 10]");
    if (!(repeat_share >= 0 && repeat_share <= 1)) fail("repeat_share must be in [0, 1]");
    if (repeat_share_by_position.empty() || repeat_share_by_position.size() > 1000)
      fail("repeat_share_by_position needs 1 to 1000 entries");
    for (const double r : repeat_share_by_position)
      if (!(r >= 0 && r <= 1)) fail("repeat_share_by_position entries must be in [0, 1]");
    if (!(repeat_share_last_move >= 0 && repeat_share_last_move <= 1)) fail("repeat_share_last_move must be in [0, 1]");
    if (!(group_stay >= 0 && group_stay <= 1)) fail("group_stay must be in [0, 1]");
    if (!(co_occurrence_share >= 0 && co_occurrence_share <= 1)) fail("co_occurrence_share must be in [0, 1]");
    if (items_per_group < 1) fail("items_per_group must be >= 1");
    if (fitted_events < 1 || item_universe < 1) fail("fitted_events and item_universe must be >= 1");
    if (!(heaps_exponent >= 0 && heaps_exponent <= 1)) fail("heaps_exponent must be in [0, 1]");
    if (gap_quantiles.size() < 2) fail("gap_quantiles needs at least 2 values");
    for (std::size_t i = 0; i < gap_quantiles.size(); ++i) {
      if (!(gap_quantiles[i] >= 0) || !std::isfinite(gap_quantiles[i]) || gap_quantiles[i] > 1e9)
        fail("gap quantile outside [0, 1e9] seconds");
      if (i > 0 && gap_quantiles[i] < gap_quantiles[i - 1]) fail("gap_quantiles must be non-decreasing");
    }
    if (!std::isfinite(start_time) || !detail::plausible_unix_time(start_time))
      fail("start_time must be a unix time in [1990, 2100)");
    if (!(mean_session_interarrival >= 0 && mean_session_interarrival <= 1e6))
      fail("mean_session_interarrival must be in [0, 1e6] seconds");
  }
};

// How much to generate. Exactly one of events / sessions is non-zero.
struct SynthOptions {
  std::uint64_t seed = 1;
  std::size_t events = 0;    // exactly this many micro-behaviors (the last session is cut to fit)
  std::size_t sessions = 0;  // exactly this many sessions
  std::size_t items = 0;     // item universe; 0 = scaled from the shape (Heaps' law)

  static constexpr std::size_t kMaxEvents = std::size_t(1) << 40;
  static constexpr std::size_t kMaxItems = 100000000;  // 16 B of tables per item: 1.6 GB at most

  void validate() const {
    if ((events == 0) == (sessions == 0))
      throw InvalidArgument("SynthOptions: give exactly one of events and sessions (a positive count)");
    if (events > kMaxEvents || sessions > kMaxEvents)
      throw InvalidArgument("SynthOptions: at most " + std::to_string(kMaxEvents) + " events or sessions");
    if (items > kMaxItems)
      throw InvalidArgument("SynthOptions: items must be at most " + std::to_string(kMaxItems) + ", got " +
                            std::to_string(items));
  }
};

// One generated micro-behavior: item id in [0, num_items()), operation id, unix seconds.
struct SyntheticEvent {
  std::int64_t item = 0;
  index_t op = 0;
  std::int64_t time = 0;
};

namespace detail {

// Index of the first cumulative weight above u * total: cum is ascending, cum.back() = total.
inline std::size_t draw_cumulative(const double* cum, std::size_t n, double u) {
  const double target = u * cum[n - 1];
  const std::size_t i = static_cast<std::size_t>(std::upper_bound(cum, cum + n, target) - cum);
  return std::min(i, n - 1);
}

inline std::vector<double> cumulative(const std::vector<double>& w) {
  std::vector<double> c(w.size());
  double s = 0;
  for (std::size_t i = 0; i < w.size(); ++i) c[i] = s += w[i];
  return c;
}

}  // namespace detail

// Draws sessions one at a time (memory: the item tables, 16 B per item, and one session).
class SyntheticLogGenerator {
 public:
  SyntheticLogGenerator(const LogShape& shape, const SynthOptions& options) : shape_(shape), options_(options) {
    shape_.validate();
    options_.validate();
    ops_ = shape_.num_operations();
    initial_cum_ = detail::cumulative(shape_.initial_operation);
    for (const auto& row : shape_.operation_transitions) transition_cum_.push_back(detail::cumulative(row));
    length_cum_ = detail::cumulative(shape_.session_length_weights);
    double mean_length = 0;
    for (std::size_t i = 0; i < shape_.session_length_values.size(); ++i)
      mean_length += static_cast<double>(shape_.session_length_values[i]) * shape_.session_length_weights[i];
    mean_length /= length_cum_.back();

    num_items_ = options_.items;
    if (num_items_ == 0) {
      const double events = options_.events ? static_cast<double>(options_.events)
                                            : static_cast<double>(options_.sessions) * mean_length;
      const double scaled = static_cast<double>(shape_.item_universe) *
                            std::pow(events / static_cast<double>(shape_.fitted_events), shape_.heaps_exponent);
      // Never more items than micro-behaviors to generate (the rest could not even be drawn once).
      num_items_ = static_cast<std::size_t>(
          std::min({std::max(std::round(scaled), 1.0), std::max(std::round(events), 1.0),
                    static_cast<double>(SynthOptions::kMaxItems)}));
    }
    // Popularity ranks: a seeded shuffle of the ids, so that groups of consecutive ids mix ranks.
    std::vector<std::uint32_t> rank(num_items_);
    for (std::size_t i = 0; i < num_items_; ++i) rank[i] = static_cast<std::uint32_t>(i);
    Rng perm_rng(options_.seed, 1);
    shuffle(Span<std::uint32_t>(rank.data(), rank.size()), perm_rng);
    item_cum_.resize(num_items_);
    double s = 0;
    for (std::size_t i = 0; i < num_items_; ++i)
      item_cum_[i] = s += std::pow(static_cast<double>(rank[i]) + 1.0, -shape_.item_weight_exponent);
    log_gaps_.reserve(shape_.gap_quantiles.size());
    for (const double q : shape_.gap_quantiles) log_gaps_.push_back(std::log1p(q));
    next_start_ = shape_.start_time;
  }

  std::size_t num_items() const { return num_items_; }
  std::size_t sessions_done() const { return sessions_done_; }
  std::size_t events_done() const { return events_done_; }
  const LogShape& shape() const { return shape_; }

  // The next session into `out` (replaced); false when the requested size is reached.
  bool next(std::vector<SyntheticEvent>& out) {
    out.clear();
    if (options_.sessions ? sessions_done_ >= options_.sessions : events_done_ >= options_.events) return false;
    std::size_t length = shape_.session_length_values[detail::draw_cumulative(
        length_cum_.data(), length_cum_.size(), rng_.uniform())];
    if (options_.events) length = std::min(length, options_.events - events_done_);

    const auto start = static_cast<std::int64_t>(std::floor(next_start_));
    next_start_ += -std::log1p(-rng_.uniform()) * shape_.mean_session_interarrival;
    // The operations and the stay / move pattern first (the chain does not depend on the items),
    // so that the last move of the session is known when the items are drawn.
    auto op = static_cast<index_t>(detail::draw_cumulative(initial_cum_.data(), ops_, rng_.uniform()));
    out.push_back(SyntheticEvent{-1, op, start});
    std::size_t last_move = 0;
    for (std::size_t i = 1; i < length; ++i) {
      const auto& row = transition_cum_[static_cast<std::size_t>(op)];
      const std::size_t k = detail::draw_cumulative(row.data(), row.size(), rng_.uniform());
      op = static_cast<index_t>(k % ops_);
      if (k >= ops_) last_move = i;
      out.push_back(SyntheticEvent{k >= ops_ ? -1 : 0, op, out.back().time + gap()});
    }
    seen_.clear();
    std::int64_t item = new_item(-1);
    seen_.push_back(item);
    out[0].item = item;
    for (std::size_t i = 1; i < length; ++i) {
      if (out[i].item < 0) {  // a move to another item
        const double repeat = i == last_move ? shape_.repeat_share_last_move
                                             : shape_.repeat_share_by_position[i * shape_.repeat_share_by_position.size() / length];
        if (seen_.size() > 1 && rng_.uniform() < repeat) {
          // Uniform among the earlier items other than the current one.
          std::size_t j = static_cast<std::size_t>(rng_.below(seen_.size() - 1));
          if (seen_[j] == item) j = seen_.size() - 1;
          item = seen_[j];
        } else {
          item = new_item(item);
          seen_.push_back(item);
        }
      }
      out[i].item = item;
    }
    ++sessions_done_;
    events_done_ += out.size();
    return true;
  }

 private:
  std::size_t group_begin(std::int64_t item) const {
    return static_cast<std::size_t>(item) / shape_.items_per_group * shape_.items_per_group;
  }

  std::int64_t draw_item(std::int64_t current) {
    if (current >= 0 && rng_.uniform() < shape_.group_stay) {
      const std::size_t b = group_begin(current);
      const std::size_t e = std::min(b + shape_.items_per_group, num_items_);
      const double base = b == 0 ? 0.0 : item_cum_[b - 1];
      const double target = base + rng_.uniform() * (item_cum_[e - 1] - base);
      const auto it = std::upper_bound(item_cum_.begin() + static_cast<std::ptrdiff_t>(b),
                                       item_cum_.begin() + static_cast<std::ptrdiff_t>(e), target);
      return static_cast<std::int64_t>(std::min<std::size_t>(static_cast<std::size_t>(it - item_cum_.begin()), e - 1));
    }
    return static_cast<std::int64_t>(detail::draw_cumulative(item_cum_.data(), num_items_, rng_.uniform()));
  }

  // An item not yet in the session (a few tries, then whatever came: tiny universes repeat).
  std::int64_t new_item(std::int64_t current) {
    std::int64_t cand = 0;
    for (int attempt = 0; attempt < 16; ++attempt) {
      cand = draw_item(current);
      if (std::find(seen_.begin(), seen_.end(), cand) == seen_.end()) break;
    }
    return cand;
  }

  std::int64_t gap() {
    const double pos = rng_.uniform() * static_cast<double>(log_gaps_.size() - 1);
    const auto k = static_cast<std::size_t>(pos);
    const double frac = pos - static_cast<double>(k);
    const double lg = k + 1 < log_gaps_.size() ? log_gaps_[k] + frac * (log_gaps_[k + 1] - log_gaps_[k]) : log_gaps_[k];
    return static_cast<std::int64_t>(std::llround(std::expm1(lg)));
  }

  LogShape shape_;
  SynthOptions options_;
  std::size_t ops_ = 0;
  std::vector<double> initial_cum_, length_cum_, item_cum_, log_gaps_;
  std::vector<std::vector<double>> transition_cum_;
  std::size_t num_items_ = 0;
  Rng rng_{options_.seed, 0};
  double next_start_ = 0;
  std::vector<std::int64_t> seen_;  // distinct items of the current session, in order of first visit
  std::size_t sessions_done_ = 0, events_done_ = 0;
};

// A whole generated log as a SessionDataset (tests, small logs): item tokens are the decimal ids,
// operation tokens the shape's names, keys the 1-based session numbers, order_key the last time.
inline SessionDataset generate_dataset(const LogShape& shape, const SynthOptions& options) {
  SyntheticLogGenerator gen(shape, options);
  SessionDataset ds;
  ds.op_vocab = Vocabulary(shape.operation_names);
  std::vector<SyntheticEvent> session;
  std::vector<MicroBehavior> events;
  while (gen.next(session)) {
    events.clear();
    for (const auto& e : session)
      events.push_back(MicroBehavior{ds.item_vocab.add(std::to_string(e.item)), e.op, static_cast<double>(e.time)});
    ds.add_session(Span<const MicroBehavior>(events.data(), events.size()), events.back().time,
                   std::to_string(gen.sessions_done()));
  }
  return ds;
}

// ---------------------------------------------------------------------------------------------
// Measuring a log.

namespace detail {

// Zipf exponent by maximum likelihood on the rank-frequency data: with ranks r = 1..n by
// descending count c_r, the likelihood of the micro-behaviors under P(r) ~ r^-s is maximal where
// E_s[ln r] equals the observed mean of ln r; E_s[ln r] falls as s grows, so bisection finds it.
inline double fit_zipf_exponent(std::vector<std::uint64_t> counts) {
  std::sort(counts.begin(), counts.end(), std::greater<std::uint64_t>());
  while (!counts.empty() && counts.back() == 0) counts.pop_back();
  if (counts.size() < 2) return 0.0;
  double total = 0, weighted = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    total += static_cast<double>(counts[r]);
    weighted += static_cast<double>(counts[r]) * std::log(static_cast<double>(r + 1));
  }
  const double target = weighted / total;
  std::vector<double> log_rank(counts.size());
  for (std::size_t r = 0; r < counts.size(); ++r) log_rank[r] = std::log(static_cast<double>(r + 1));
  double lo = 0.0, hi = 10.0;
  for (int it = 0; it < 50; ++it) {
    const double s = 0.5 * (lo + hi);
    double z = 0, e = 0;
    for (const double lr : log_rank) {
      const double w = std::exp(-s * lr);
      z += w;
      e += w * lr;
    }
    (e / z > target ? lo : hi) = s;
  }
  return 0.5 * (lo + hi);
}

// Measured co-occurrence share (see the header comment) over sessions [0, num_sessions) of a log in
// flat form (offsets, items with ids < num_items). Sessions' item sets are kept as sorted postings
// per item, and a pair co-occurs elsewhere when both items' postings share >= 2 sessions.
inline double measure_co_occurrence(const std::vector<offset_t>& offsets, const index_t* items,
                                    std::size_t num_sessions, std::size_t num_items) {
  std::vector<offset_t> start(num_items + 1, 0);
  std::vector<std::uint32_t> last(num_items, std::numeric_limits<std::uint32_t>::max());
  for (std::size_t s = 0; s < num_sessions; ++s)
    for (offset_t i = offsets[s]; i < offsets[s + 1]; ++i) {
      const auto it = static_cast<std::size_t>(items[i]);
      if (last[it] == s) continue;
      last[it] = static_cast<std::uint32_t>(s);
      ++start[it + 1];
    }
  for (std::size_t i = 0; i < num_items; ++i) start[i + 1] += start[i];
  std::vector<std::uint32_t> postings(static_cast<std::size_t>(start[num_items]));
  std::fill(last.begin(), last.end(), std::numeric_limits<std::uint32_t>::max());
  {
    std::vector<offset_t> fill(start.begin(), start.end() - 1);
    for (std::size_t s = 0; s < num_sessions; ++s)
      for (offset_t i = offsets[s]; i < offsets[s + 1]; ++i) {
        const auto it = static_cast<std::size_t>(items[i]);
        if (last[it] == s) continue;
        last[it] = static_cast<std::uint32_t>(s);
        postings[static_cast<std::size_t>(fill[it]++)] = static_cast<std::uint32_t>(s);
      }
  }
  auto shared_sessions_at_least_2 = [&](std::size_t a, std::size_t b) {
    auto pa = postings.begin() + start[a], ea = postings.begin() + start[a + 1];
    auto pb = postings.begin() + start[b], eb = postings.begin() + start[b + 1];
    int common = 0;
    while (pa != ea && pb != eb) {
      if (*pa < *pb) ++pa;
      else if (*pb < *pa) ++pb;
      else {
        if (++common >= 2) return true;
        ++pa, ++pb;
      }
    }
    return false;
  };
  std::size_t moves = 0, co = 0;
  std::vector<index_t> seen;
  for (std::size_t s = 0; s < num_sessions; ++s) {
    seen.clear();
    for (offset_t i = offsets[s]; i < offsets[s + 1]; ++i) {
      const index_t b = items[i];
      const bool is_new = std::find(seen.begin(), seen.end(), b) == seen.end();
      if (i > offsets[s] && is_new) {
        ++moves;
        co += shared_sessions_at_least_2(static_cast<std::size_t>(items[i - 1]), static_cast<std::size_t>(b));
      }
      if (is_new) seen.push_back(b);
    }
  }
  return moves ? static_cast<double>(co) / static_cast<double>(moves) : 0.0;
}

// The sessions of a generated log in flat form, items relabelled densely in first-appearance order.
struct FlatLog {
  std::vector<offset_t> offsets{0};
  std::vector<index_t> items;
  std::size_t num_items = 0;
};

inline FlatLog generate_flat(const LogShape& shape, const SynthOptions& options) {
  SyntheticLogGenerator gen(shape, options);
  FlatLog log;
  std::vector<index_t> dense(gen.num_items(), -1);
  std::vector<SyntheticEvent> session;
  while (gen.next(session)) {
    for (const auto& e : session) {
      index_t& d = dense[static_cast<std::size_t>(e.item)];
      if (d < 0) d = static_cast<index_t>(log.num_items++);
      log.items.push_back(d);
    }
    log.offsets.push_back(static_cast<offset_t>(log.items.size()));
  }
  return log;
}

}  // namespace detail

struct FitOptions {
  // The item-structure calibration simulates logs of the fitted size; a larger input is measured on
  // its first max_calibration_sessions sessions (the co-occurrence share depends on the log's size,
  // so the measurement and the simulation use the same size).
  std::size_t max_calibration_sessions = 20000;
  std::size_t gap_quantile_count = 21;      // 0%, 5%, ..., 100%
  std::size_t repeat_position_bins = 10;    // tenths of the session
  std::uint64_t calibration_seed = 20261130;
  int calibration_steps = 40;  // the parameters are the mean of the last half (the steps jitter by noise)
  std::size_t items_per_group = 50;  // LogShape::items_per_group says why
};

// Measures a loaded log. Throws InvalidArgument on an empty dataset.
inline LogShape fit_log_shape(const SessionDataset& data, const FitOptions& options = {}) {
  if (data.empty()) throw InvalidArgument("fit_log_shape: the dataset has no sessions");
  if (options.gap_quantile_count < 2) throw InvalidArgument("fit_log_shape: gap_quantile_count must be >= 2");
  if (options.items_per_group < 1) throw InvalidArgument("fit_log_shape: items_per_group must be >= 1");
  if (options.calibration_steps < 2) throw InvalidArgument("fit_log_shape: calibration_steps must be >= 2");
  if (options.repeat_position_bins < 1 || options.repeat_position_bins > 1000)
    throw InvalidArgument("fit_log_shape: repeat_position_bins must be in [1, 1000]");
  LogShape shape;
  const std::size_t ops = static_cast<std::size_t>(data.op_vocab.size());
  shape.operation_names = data.op_vocab.tokens();
  shape.initial_operation.assign(ops, 0.0);
  shape.operation_transitions.assign(ops, std::vector<double>(2 * ops, 0.0));
  shape.items_per_group = options.items_per_group;
  const auto& offsets = data.offsets();
  const auto& items = data.items();
  const auto& op_ids = data.ops();
  const auto& times = data.times();
  const std::size_t S = data.num_sessions();

  // Operations, lengths, repeats, gaps.
  std::vector<std::size_t> lengths;
  lengths.reserve(S);
  std::vector<double> gaps;
  std::size_t repeat_possible = 0, repeats = 0;
  const std::size_t bins = options.repeat_position_bins;
  std::vector<double> bin_possible(bins, 0.0), bin_repeats(bins, 0.0);
  double last_possible = 0, last_repeats = 0;
  std::vector<index_t> seen;
  bool absolute = true;
  std::vector<double> starts;
  starts.reserve(S);
  for (std::size_t s = 0; s < S; ++s) {
    const auto b = static_cast<std::size_t>(offsets[s]), e = static_cast<std::size_t>(offsets[s + 1]);
    lengths.push_back(e - b);
    shape.initial_operation[static_cast<std::size_t>(op_ids[b])] += 1;
    starts.push_back(times[b]);
    absolute = absolute && detail::plausible_unix_time(times[b]);
    seen.assign(1, items[b]);
    std::size_t last_move = e;
    for (std::size_t i = e - 1; i > b; --i)
      if (items[i] != items[i - 1]) {
        last_move = i;
        break;
      }
    for (std::size_t i = b + 1; i < e; ++i) {
      const bool move = items[i] != items[i - 1];
      shape.operation_transitions[static_cast<std::size_t>(op_ids[i - 1])]
                                 [(move ? ops : 0) + static_cast<std::size_t>(op_ids[i])] += 1;
      gaps.push_back(std::max(0.0, times[i] - times[i - 1]));
      if (!move) continue;
      const bool was_seen = std::find(seen.begin(), seen.end(), items[i]) != seen.end();
      if (seen.size() > 1) {
        ++repeat_possible;
        repeats += was_seen;
        if (i == last_move) {
          last_possible += 1;
          last_repeats += was_seen;
        } else {
          const std::size_t bin = (i - b) * bins / (e - b);
          bin_possible[bin] += 1;
          bin_repeats[bin] += was_seen;
        }
      }
      if (!was_seen) seen.push_back(items[i]);
    }
  }
  // A previous operation never followed by anything: use the pooled transitions (only reachable
  // through the chain if the operation is drawn, which it then can be only as a first operation).
  std::vector<double> pooled(2 * ops, 0.0);
  for (const auto& row : shape.operation_transitions)
    for (std::size_t k = 0; k < 2 * ops; ++k) pooled[k] += row[k];
  double pooled_sum = 0;
  for (const double x : pooled) pooled_sum += x;
  if (pooled_sum == 0) pooled.assign(2 * ops, 1.0);  // no session has two events
  for (auto& row : shape.operation_transitions) {
    double sum = 0;
    for (const double x : row) sum += x;
    if (sum == 0) row = pooled;
  }
  std::sort(lengths.begin(), lengths.end());
  for (const std::size_t len : lengths) {
    if (shape.session_length_values.empty() || shape.session_length_values.back() != len) {
      shape.session_length_values.push_back(len);
      shape.session_length_weights.push_back(0);
    }
    shape.session_length_weights.back() += 1;
  }
  shape.repeat_share = repeat_possible ? static_cast<double>(repeats) / static_cast<double>(repeat_possible) : 0.0;
  for (std::size_t k = 0; k < bins; ++k)
    shape.repeat_share_by_position.push_back(bin_possible[k] > 0 ? bin_repeats[k] / bin_possible[k] : shape.repeat_share);
  shape.repeat_share_last_move = last_possible > 0 ? last_repeats / last_possible : shape.repeat_share;
  std::sort(gaps.begin(), gaps.end());
  for (std::size_t k = 0; k < options.gap_quantile_count; ++k) {
    if (gaps.empty()) {
      shape.gap_quantiles.push_back(0.0);
      continue;
    }
    const double pos = static_cast<double>(k) / static_cast<double>(options.gap_quantile_count - 1) *
                       static_cast<double>(gaps.size() - 1);
    shape.gap_quantiles.push_back(std::min(gaps[static_cast<std::size_t>(std::llround(pos))], 1e9));
  }
  if (absolute) {
    std::sort(starts.begin(), starts.end());
    shape.start_time = starts.front();
    if (S > 1) shape.mean_session_interarrival = std::min((starts.back() - starts.front()) / static_cast<double>(S - 1), 1e6);
  }

  // Popularity and Heaps' law on the whole log.
  const auto num_items = static_cast<std::size_t>(data.item_vocab.size());
  {
    std::vector<std::uint64_t> counts(num_items, 0);
    for (const index_t it : items) ++counts[static_cast<std::size_t>(it)];
    shape.zipf_exponent = detail::fit_zipf_exponent(std::move(counts));
    // Distinct items among the first E/8, E/4, E/2 and E micro-behaviors: least-squares slope in log-log.
    const std::size_t E = items.size();
    if (E >= 64) {
      std::vector<char> hit(num_items, 0);
      std::size_t distinct = 0, next = 0;
      double sx = 0, sy = 0, sxx = 0, sxy = 0;
      for (int k = 3; k >= 0; --k) {
        const std::size_t upto = E >> k;
        for (; next < upto; ++next) distinct += !hit[static_cast<std::size_t>(items[next])]++;
        const double x = std::log(static_cast<double>(upto)), y = std::log(static_cast<double>(distinct));
        sx += x, sy += y, sxx += x * x, sxy += x * y;
      }
      const double slope = (4 * sxy - sx * sy) / (4 * sxx - sx * sx);
      shape.heaps_exponent = std::min(1.0, std::max(0.0, slope));
    }
  }

  // Item structure, on the calibration sample: the first max_calibration_sessions sessions.
  const std::size_t S_cal = std::min(S, std::max<std::size_t>(options.max_calibration_sessions, 1));
  const auto E_cal = static_cast<std::size_t>(offsets[S_cal]);
  std::size_t distinct_cal = 0;
  {
    std::vector<char> hit(num_items, 0);
    for (std::size_t i = 0; i < E_cal; ++i) distinct_cal += !hit[static_cast<std::size_t>(items[i])]++;
  }
  shape.fitted_sessions = S_cal;
  shape.fitted_events = E_cal;
  shape.fitted_items = distinct_cal;
  shape.co_occurrence_share = detail::measure_co_occurrence(offsets, items.data(), S_cal, num_items);

  // The calibration simulates logs with the sample's number of sessions (lengths drawn from the
  // fitted distribution) under a fixed seed, and adjusts the generator's parameters until the
  // simulated log, measured like the input, shows the input's statistics:
  //  - item_weight_exponent and item_universe: the generator draws from a universe larger than the
  //    items a log of this size shows, and the Zipf exponent refitted on the items a log shows is
  //    lower than the one it was drawn with (the unseen tail is cut off);
  //  - group_stay: the co-occurrence share grows with it.
  // The three interact (new items avoid the session's, which groups make likelier), so one loop of
  // fixed-point steps moves all three: the exponent by the gap in refitted exponent, the universe
  // by the ratio of distinct items (to the power 1.5: distinct items grow slower than the universe),
  // group_stay by the gap in co-occurrence share. Each step is one simulated log, so the iterates
  // jitter around the solution; the result is the mean of the last half of them.
  SynthOptions sim;
  sim.seed = options.calibration_seed;
  sim.sessions = S_cal;
  auto simulate = [&](std::size_t universe, double exponent, double stay) {
    LogShape trial = shape;
    trial.item_universe = universe;
    trial.item_weight_exponent = exponent;
    trial.group_stay = stay;
    sim.items = universe;
    return detail::generate_flat(trial, sim);
  };
  auto refit_zipf = [](const detail::FlatLog& log) {
    std::vector<std::uint64_t> counts(log.num_items, 0);
    for (const index_t it : log.items) ++counts[static_cast<std::size_t>(it)];
    return detail::fit_zipf_exponent(std::move(counts));
  };
  double exponent = shape.zipf_exponent, stay = 0.5;
  double universe = static_cast<double>(std::max<std::size_t>(distinct_cal, 1));
  // A universe larger than the sample's micro-behaviors cannot be told apart from a smaller one (a
  // log that sparse is nearly all singletons): the bound keeps the steps from running away on it.
  const double max_universe = static_cast<double>(std::min(SynthOptions::kMaxItems / 2, std::max<std::size_t>(E_cal, 1)));
  double sum_universe = 0, sum_exponent = 0, sum_stay = 0;
  int averaged = 0;
  for (int it = 0; it < options.calibration_steps; ++it) {
    const detail::FlatLog log = simulate(static_cast<std::size_t>(universe), exponent, stay);
    const double z = refit_zipf(log);
    const double co =
        detail::measure_co_occurrence(log.offsets, log.items.data(), log.offsets.size() - 1, log.num_items);
    exponent = std::min(10.0, std::max(0.0, exponent + (shape.zipf_exponent - z)));
    const double ratio = static_cast<double>(distinct_cal) / static_cast<double>(std::max<std::size_t>(log.num_items, 1));
    universe = std::min(max_universe, std::max(1.0, std::round(universe * std::pow(ratio, 1.5))));
    stay = std::min(1.0, std::max(0.0, stay + (shape.co_occurrence_share - co)));
    if (2 * (it + 1) > options.calibration_steps) {
      sum_universe += universe, sum_exponent += exponent, sum_stay += stay;
      ++averaged;
    }
  }
  universe = std::round(sum_universe / averaged);
  exponent = sum_exponent / averaged;
  stay = sum_stay / averaged;
  shape.item_universe = static_cast<std::size_t>(universe);
  shape.item_weight_exponent = exponent;
  shape.group_stay = stay;
  shape.validate();
  return shape;
}

// ---------------------------------------------------------------------------------------------
// Writers.

// OTTO's event type of an operation: "cart" / "carts" -> carts, "order" / "orders" -> orders
// (case-insensitive, whole name), everything else -> clicks. For JD: Cart (add to cart) -> carts,
// Order -> orders, the 8 page-visit behaviors (Cart2Product too: a visit coming from the cart) -> clicks.
inline const char* otto_event_type(std::string_view operation) {
  std::string lower(operation);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower == "cart" || lower == "carts") return "carts";
  if (lower == "order" || lower == "orders") return "orders";
  return "clicks";
}

enum class SynthFormat { Csv, Otto };

namespace detail {
// Appends to a large buffer, written out whenever it fills: one write per MiB.
class OutputBuffer {
 public:
  explicit OutputBuffer(std::ostream& out, std::string name) : out_(out), name_(std::move(name)) { buf_.reserve(kSize + 256); }
  void put(std::string_view s) {
    buf_.append(s.data(), s.size());
    if (buf_.size() >= kSize) flush();
  }
  void put(std::int64_t v) {
    char tmp[24];
    const auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
    buf_.append(tmp, static_cast<std::size_t>(r.ptr - tmp));
  }
  void flush() {
    out_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    if (!out_) throw DataError(name_, 0, "write error (disk full or the output was closed)");
    buf_.clear();
  }

 private:
  static constexpr std::size_t kSize = std::size_t(1) << 20;
  std::ostream& out_;
  std::string name_;
  std::string buf_;
};
}  // namespace detail

// Generates and writes a log. CSV: header "session,timestamp,item,operation", one row per
// micro-behavior, times in unix seconds (read it with --format csv --session-column session). OTTO:
// one JSON object per session, ts in milliseconds, type by otto_event_type. Returns the generator
// after the last session (counts of sessions, events, items). `name` goes into error messages.
inline SyntheticLogGenerator write_synthetic_log(std::ostream& out, const std::string& name, SynthFormat format,
                                                 const LogShape& shape, const SynthOptions& options) {
  SyntheticLogGenerator gen(shape, options);
  detail::OutputBuffer buf(out, name);
  std::vector<std::string> op_text;  // per operation: ",NAME\n" (csv) or the OTTO type
  for (const auto& n : shape.operation_names) {
    if (format == SynthFormat::Csv) {
      if (n.find_first_of(",\"\r\n") != std::string::npos)
        throw InvalidArgument("write_synthetic_log: operation name '" + n +
                              "' contains a comma, quote or line break (not written to CSV unquoted)");
      op_text.push_back("," + n + "\n");
    } else {
      op_text.push_back(std::string(",\"type\":\"") + otto_event_type(n) + "\"}");
    }
  }
  if (format == SynthFormat::Csv) buf.put("session,timestamp,item,operation\n");
  std::vector<SyntheticEvent> session;
  while (gen.next(session)) {
    const auto id = static_cast<std::int64_t>(gen.sessions_done());
    if (format == SynthFormat::Csv) {
      for (const auto& e : session) {
        buf.put(id);
        buf.put(",");
        buf.put(e.time);
        buf.put(",");
        buf.put(e.item);
        buf.put(op_text[static_cast<std::size_t>(e.op)]);
      }
    } else {
      buf.put("{\"session\":");
      buf.put(id);
      buf.put(",\"events\":[");
      for (std::size_t i = 0; i < session.size(); ++i) {
        buf.put(i ? ",{\"aid\":" : "{\"aid\":");
        buf.put(session[i].item);
        buf.put(",\"ts\":");
        buf.put(session[i].time * 1000);
        buf.put(op_text[static_cast<std::size_t>(session[i].op)]);
      }
      buf.put("]}\n");
    }
  }
  buf.flush();
  out.flush();
  if (!out) throw DataError(name, 0, "write error (disk full or the output was closed)");
  return gen;
}

// ---------------------------------------------------------------------------------------------
// The built-in shape: fitted on the shipped JD Appliances sample (both files, identical sessions
// removed: 1,866 sessions, 78,040 micro-behaviors). Produced by
//   embsr-data synth --fit --format jd --print-shape data/jd_appliances/HUP_Data/JD_Applicances_sample
//     data/jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample   (one line)
// and hard-coded (not fitted at run time) so that the tool generates without the repository's data
// beside it; tests/data/test_synthetic_log.cpp refits the sample and checks these numbers.
inline LogShape default_log_shape() {
  LogShape s;
  // The --print-shape JSON of the command above, as C++ (counts are exact; doubles have 17 digits).
  s.operation_names = {"Home2Product",    "ShopList2Product",     "Sale2Product",  "Cart2Product", "SearchList2Product",
                       "Detail_comments", "Detail_specification", "Detail_bottom", "Cart",         "Order"};
  s.initial_operation = {
      33.0, 72.0, 79.0, 194.0, 1488.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  s.operation_transitions = {
      {
          0.0, 0.0, 0.0, 1.0, 2.0, 135.0, 88.0, 33.0, 51.0, 0.0,
          349.0, 14.0, 3.0, 22.0, 53.0, 0.0, 0.0, 0.0, 0.0, 0.0},
      {
          1.0, 0.0, 0.0, 12.0, 8.0, 418.0, 576.0, 263.0, 279.0, 0.0,
          15.0, 2141.0, 3.0, 114.0, 201.0, 0.0, 0.0, 0.0, 0.0, 0.0},
      {
          0.0, 0.0, 0.0, 0.0, 0.0, 94.0, 48.0, 13.0, 27.0, 0.0,
          7.0, 13.0, 106.0, 27.0, 58.0, 0.0, 0.0, 0.0, 0.0, 0.0},
      {
          1.0, 13.0, 2.0, 0.0, 48.0, 842.0, 1390.0, 554.0, 124.0, 95.0,
          21.0, 153.0, 20.0, 2329.0, 685.0, 0.0, 0.0, 0.0, 0.0, 0.0},
      {
          4.0, 18.0, 2.0, 59.0, 0.0, 5716.0, 6880.0, 2614.0, 2793.0, 14.0,
          52.0, 251.0, 33.0, 463.0, 18381.0, 0.0, 1.0, 0.0, 2.0, 0.0},
      {
          5.0, 42.0, 16.0, 154.0, 527.0, 0.0, 583.0, 714.0, 487.0, 9.0,
          111.0, 318.0, 51.0, 577.0, 4495.0, 0.0, 0.0, 0.0, 0.0, 0.0},
      {
          9.0, 48.0, 15.0, 276.0, 559.0, 603.0, 0.0, 274.0, 796.0, 33.0,
          68.0, 463.0, 26.0, 959.0, 5715.0, 0.0, 3.0, 0.0, 0.0, 0.0},
      {
          7.0, 63.0, 6.0, 163.0, 488.0, 231.0, 185.0, 0.0, 400.0, 7.0,
          37.0, 221.0, 17.0, 379.0, 2259.0, 0.0, 0.0, 0.0, 0.0, 0.0},
      {
          2.0, 27.0, 1.0, 455.0, 258.0, 235.0, 278.0, 83.0, 0.0, 132.0,
          56.0, 236.0, 29.0, 396.0, 2619.0, 0.0, 0.0, 0.0, 0.0, 0.0},
      {
          0.0, 3.0, 0.0, 1.0, 18.0, 9.0, 28.0, 6.0, 57.0, 0.0,
          2.0, 5.0, 2.0, 30.0, 72.0, 0.0, 0.0, 0.0, 0.0, 0.0}};
  s.session_length_values = {
      7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
      23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37,
      38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52,
      53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67,
      68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82,
      83, 84, 85, 86, 87, 88, 90, 92, 93, 94, 95, 96, 97, 98, 100,
      102, 103, 104, 105, 108, 109, 110, 111, 112, 113, 114, 115, 116, 119, 121,
      122, 128, 136, 139, 146, 148, 149, 168, 171, 200, 222, 236};
  s.session_length_weights = {
      1.0, 1.0, 3.0, 2.0, 12.0, 7.0, 11.0, 17.0, 32.0, 59.0, 59.0, 70.0, 76.0, 46.0, 55.0,
      47.0, 54.0, 39.0, 28.0, 31.0, 33.0, 27.0, 16.0, 16.0, 23.0, 12.0, 17.0, 15.0, 9.0, 14.0,
      14.0, 6.0, 57.0, 58.0, 46.0, 49.0, 49.0, 47.0, 46.0, 40.0, 26.0, 31.0, 27.0, 31.0, 22.0,
      17.0, 31.0, 26.0, 19.0, 28.0, 20.0, 17.0, 23.0, 19.0, 17.0, 16.0, 12.0, 11.0, 15.0, 7.0,
      19.0, 9.0, 7.0, 7.0, 11.0, 8.0, 7.0, 4.0, 8.0, 6.0, 4.0, 7.0, 4.0, 3.0, 3.0,
      8.0, 9.0, 6.0, 6.0, 4.0, 4.0, 4.0, 3.0, 4.0, 6.0, 3.0, 1.0, 4.0, 2.0, 2.0,
      2.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 2.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0,
      1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
  s.zipf_exponent = 0.6864796315709265;
  s.item_weight_exponent = 0.9178190761964296;
  s.repeat_share = 0.36808654812253194;
  s.repeat_share_last_move = 0.552518756698821;
  s.co_occurrence_share = 0.412175717744725;
  s.group_stay = 0.8837950049877337;
  s.items_per_group = 50;
  s.fitted_sessions = 1866;
  s.fitted_events = 78040;
  s.fitted_items = 11444;
  s.item_universe = 19508;
  s.heaps_exponent = 0.6321246117048905;
  s.repeat_share_by_position = {
      0.13256006628003314, 0.21250855968956858, 0.2819364470036255, 0.33340669014084506, 0.37389530931339227,
      0.390498020420921, 0.42088126763620576, 0.4365221278497988, 0.48369188063844554, 0.49278530826410144};
  s.gap_quantiles = {
      0.0, 3.0, 5.0, 6.0, 8.0, 10.0, 12.0, 14.0, 17.0, 20.0, 23.0,
      28.0, 33.0, 40.0, 50.0, 62.0, 79.0, 106.0, 159.0, 326.0, 103157.0};
  s.start_time = 1793491200.0;
  s.mean_session_interarrival = 10.0;  // the JD log has no absolute times: a default
  return s;
}

}  // namespace embsr
