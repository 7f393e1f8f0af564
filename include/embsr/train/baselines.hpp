#pragma once
// POP and S-POP as rank-only host code: the reference that model/popularity.hpp's session models
// (which score the whole catalogue like any model) are tested against, and a fast path for a
// target's rank without scoring. Ranked with the same pessimistic tie rule as the models (MODEL.md
// 7: an item scoring exactly the target's score counts above it).
//   POP   global popularity: occurrences of the item in the training set (input micro-behaviors
//         and targets).
//   S-POP the item's micro-behavior count in the session's own input, ties (including every item
//         absent from the session) broken by global popularity: score = count + pop / (max_pop + 1).
// Neither sorts the catalogue per session: a target's rank is a count of the items scoring at
// least as much, from the popularity order precomputed once plus the session's own items.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/model/popularity.hpp>
#include <embsr/train/metrics.hpp>

namespace embsr {

namespace detail {

// Global popularity of the items [num_items] (model/popularity.hpp's count) and, per item, the
// number of items (itself included) whose popularity is >= its own: its pessimistic popularity rank.
struct PopularityRanks {
  std::vector<std::int64_t> count;
  std::vector<std::int64_t> rank;

  PopularityRanks(const ExampleSet& train, index_t num_items, const char* who)
      : count(count_popularity(train, num_items, who)) {
    const auto V = count.size();
    std::vector<std::int64_t> sorted(count);
    std::sort(sorted.begin(), sorted.end());
    rank.resize(V);
    for (std::size_t v = 0; v < V; ++v)  // items with count >= count[v]
      rank[v] = static_cast<std::int64_t>(sorted.end() - std::lower_bound(sorted.begin(), sorted.end(), count[v]));
  }
};

}  // namespace detail

// Global popularity: items ranked by their number of occurrences (inputs' micro-behaviors +
// targets) in the training set.
class PopularityBaseline {
 public:
  PopularityBaseline(const ExampleSet& train, index_t num_items)
      : num_items_(num_items), pop_(train, num_items, "PopularityBaseline") {}

  index_t num_items() const { return num_items_; }
  const std::vector<std::int64_t>& popularity() const { return pop_.count; }  // [num_items]

  // Pessimistic rank of `target` (1-based), 0 if it is outside the catalogue.
  std::size_t rank(index_t target) const {
    if (target < 0 || target >= num_items_) return 0;
    return static_cast<std::size_t>(pop_.rank[static_cast<std::size_t>(target)]);
  }

  // Ranks of every example's target, in set order.
  std::vector<std::size_t> ranks(const ExampleSet& set) const {
    std::vector<std::size_t> out(set.size());
    for (std::size_t e = 0; e < set.size(); ++e) out[e] = rank(set.targets[e]);
    return out;
  }

  RankingMetrics evaluate(const ExampleSet& set) const {
    RankingMetrics metrics;
    for (const std::size_t r : ranks(set)) metrics.add_rank(r);
    return metrics;
  }

 private:
  index_t num_items_;
  detail::PopularityRanks pop_;
};

// S-POP: items ranked by their number of micro-behaviors in the session's own input; items with
// equal in-session counts (including all items absent from the session) are ordered by global
// popularity (as PopularityBaseline), i.e. score = count + pop / (max_pop + 1), compared exactly
// as the pair (count, pop).
class SessionPopularityBaseline {
 public:
  SessionPopularityBaseline(const ExampleSet& train, index_t num_items)
      : num_items_(num_items), pop_(train, num_items, "SessionPopularityBaseline") {}

  index_t num_items() const { return num_items_; }
  const std::vector<std::int64_t>& popularity() const { return pop_.count; }  // [num_items]

  // Pessimistic rank (1-based) of the target of example e of `set`; 0 if the target is outside
  // the catalogue.
  std::size_t rank(const ExampleSet& set, std::size_t e) const {
    Scratch scratch;
    return rank(set, e, scratch);
  }

  // Ranks of every example's target, in set order.
  std::vector<std::size_t> ranks(const ExampleSet& set) const {
    std::vector<std::size_t> out(set.size());
    Scratch scratch;
    for (std::size_t e = 0; e < set.size(); ++e) out[e] = rank(set, e, scratch);
    return out;
  }

  RankingMetrics evaluate(const ExampleSet& set) const {
    RankingMetrics metrics;
    for (const std::size_t r : ranks(set)) metrics.add_rank(r);
    return metrics;
  }

 private:
  // Per-call scratch: in-session counts [num_items] (kept zeroed between sessions) and the
  // session's distinct items.
  struct Scratch {
    std::vector<std::int64_t> counts;
    std::vector<index_t> distinct;
  };

  // O(t) for an input of t micro-behaviors (once the scratch is allocated).
  std::size_t rank(const ExampleSet& set, std::size_t e, Scratch& scratch) const {
    const Span<const index_t> items = set.input_items(e);
    const index_t target = set.targets[e];
    for (const index_t item : items) detail::check_popularity_item(item, num_items_, "SessionPopularityBaseline", "input", e);
    if (target < 0 || target >= num_items_) return 0;
    auto& counts = scratch.counts;
    auto& distinct = scratch.distinct;
    if (counts.size() != static_cast<std::size_t>(num_items_)) counts.assign(static_cast<std::size_t>(num_items_), 0);
    distinct.clear();
    for (const index_t item : items)
      if (counts[static_cast<std::size_t>(item)]++ == 0) distinct.push_back(item);
    const auto t = static_cast<std::size_t>(target);
    const std::int64_t ct = counts[t], pt = pop_.count[t];
    std::int64_t above = 0;  // items v != target with (count_v, pop_v) >= (count_t, pop_t)
    if (ct > 0) {
      // Items absent from the session have count 0 < ct: only the session's items can be above.
      for (const index_t v : distinct) {
        const auto u = static_cast<std::size_t>(v);
        if (v != target && (counts[u] > ct || (counts[u] == ct && pop_.count[u] >= pt))) ++above;
      }
    } else {
      // Every session item is above; among the others, those with pop >= pt (popularity rank,
      // minus the target itself, minus the session items already counted).
      std::int64_t session_ge = 0;
      for (const index_t v : distinct)
        if (pop_.count[static_cast<std::size_t>(v)] >= pt) ++session_ge;
      above = static_cast<std::int64_t>(distinct.size()) + (pop_.rank[t] - 1) - session_ge;
    }
    for (const index_t v : distinct) counts[static_cast<std::size_t>(v)] = 0;
    return static_cast<std::size_t>(above + 1);
  }

  index_t num_items_;
  detail::PopularityRanks pop_;
};

}  // namespace embsr
