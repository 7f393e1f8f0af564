#pragma once
// From a loaded SessionDataset to train / valid / test prediction examples (MODEL.md sections 1
// and 6). The steps, in order:
//  1. Item-support filter: an item's support is the number of micro-behaviors on it in the whole
//     dataset (all sessions, before any split); micro-behaviors on items with support <
//     min_item_support are removed. Surviving items get dense ids 0.. in order of first appearance
//     over the dataset (sessions in dataset order, events in session order). The operation
//     vocabulary is kept unchanged.
//  2. Target extraction on each filtered session: drop trailing micro-behaviors while their item
//     equals the item of the one before them; the last remaining micro-behavior gives the target
//     item and the next operation; everything before it is the input. Sessions whose input is empty
//     (fewer than 2 macro items after filtering, including sessions the filter emptied) are dropped.
//  3. Chronological split of the remaining sessions: stable sort by order_key (ties keep dataset
//     order); with n sessions, train = the first floor(n * train_fraction), valid = up to
//     floor(n * (train_fraction + valid_fraction)), test = the rest. Both floors add 1e-6 before
//     rounding down, so that decimal fractions such as 0.7 of 10 give 7 despite binary rounding.
//     Each split keeps chronological order.
//  4. Truncation: each input keeps its last max_length micro-behaviors (before any macro merging,
//     so a cut may fall inside an operation run).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/vocabulary.hpp>

namespace embsr {

struct PreprocessOptions {
  index_t min_item_support = 1;  // keep items with at least this many micro-behaviors (1 keeps all)
  index_t max_length = 50;       // L: micro-behaviors kept at the end of each input
  double train_fraction = 0.7;   // share of sessions (oldest first) used for training
  double valid_fraction = 0.1;   // next share for validation; test = the rest

  // Throws InvalidArgument naming the offending option.
  void validate() const {
    if (min_item_support < 1)
      throw InvalidArgument("PreprocessOptions: min_item_support must be >= 1 (1 keeps every item), got " +
                            std::to_string(min_item_support));
    if (max_length < 1)
      throw InvalidArgument("PreprocessOptions: max_length must be >= 1, got " + std::to_string(max_length));
    check_fraction("train_fraction", train_fraction);
    check_fraction("valid_fraction", valid_fraction);
    if (train_fraction + valid_fraction > 1.0 + 1e-12)
      throw InvalidArgument("PreprocessOptions: train_fraction + valid_fraction must be <= 1, got " +
                            std::to_string(train_fraction) + " + " + std::to_string(valid_fraction));
  }

 private:
  static void check_fraction(const char* name, double value) {
    if (!(value >= 0.0 && value <= 1.0))  // also rejects NaN
      throw InvalidArgument(std::string("PreprocessOptions: ") + name + " must be in [0, 1], got " +
                            std::to_string(value));
  }
};

struct PreprocessStats {
  std::size_t raw_sessions = 0;               // sessions in the input dataset
  std::size_t raw_events = 0;                 // micro-behaviors in the input dataset
  std::size_t events_removed_by_support = 0;  // micro-behaviors on items below min_item_support
  std::size_t items_before = 0;               // size of the input item vocabulary
  std::size_t items_after = 0;                // items that pass the support filter
  std::size_t sessions_too_short = 0;         // dropped: < 2 macro items after filtering
  std::size_t train_sessions = 0, valid_sessions = 0, test_sessions = 0;
  std::size_t train_events = 0, valid_events = 0, test_events = 0;  // input micro-behaviors after truncation
  std::size_t truncated_sessions = 0;         // inputs longer than max_length
  std::size_t events_removed_by_truncation = 0;
};

struct PreparedData {
  Vocabulary item_vocab;  // items that passed the filter; ids used by every ExampleSet below
  Vocabulary op_vocab;    // the dataset's operation vocabulary, unchanged
  ExampleSet train, valid, test;
  PreprocessStats stats;
};

// Number of the first n sessions that a cumulative fraction covers (see step 3 above).
inline std::size_t split_boundary(std::size_t n, double cumulative_fraction) {
  const double b = std::floor(static_cast<double>(n) * cumulative_fraction + 1e-6);
  if (b <= 0.0) return 0;
  return std::min(n, static_cast<std::size_t>(b));
}

namespace detail {
// Writes session s's micro-behaviors that survive the filter into items / ops (dense new item
// ids) and returns the input length p: the target is items[p], its operation ops[p], the input is
// [0, p). Returns 0 when the session yields no example.
inline std::size_t extract(const SessionDataset& data, std::size_t s, const std::vector<index_t>& remap,
                           std::vector<index_t>& items, std::vector<index_t>& ops) {
  const SessionView view = data.session(s);
  items.clear();
  ops.clear();
  for (std::size_t i = 0; i < view.size(); ++i) {
    const index_t item = remap[static_cast<std::size_t>(view.items[i])];
    if (item < 0) continue;
    items.push_back(item);
    ops.push_back(view.ops[i]);
  }
  if (items.empty()) return 0;
  std::size_t p = items.size() - 1;
  while (p > 0 && items[p] == items[p - 1]) --p;
  return p;
}
}  // namespace detail

inline PreparedData preprocess(const SessionDataset& data, const PreprocessOptions& options = {}) {
  options.validate();
  PreparedData out;
  PreprocessStats& stats = out.stats;
  const auto num_items = static_cast<std::size_t>(data.item_vocab.size());
  stats.raw_sessions = data.num_sessions();
  stats.raw_events = data.num_events();
  stats.items_before = num_items;

  // 1. Support filter and dense re-indexing.
  std::vector<offset_t> support(num_items, 0);
  for (const index_t item : data.items()) ++support[static_cast<std::size_t>(item)];
  std::vector<index_t> remap(num_items, -1);
  for (const index_t item : data.items()) {
    const auto i = static_cast<std::size_t>(item);
    if (support[i] < options.min_item_support) {
      ++stats.events_removed_by_support;
    } else if (remap[i] < 0) {
      remap[i] = out.item_vocab.add(data.item_vocab.token(item));
    }
  }
  stats.items_after = static_cast<std::size_t>(out.item_vocab.size());
  out.op_vocab = data.op_vocab;

  // 2. Sessions that yield an example.
  std::vector<index_t> items, ops;
  std::vector<std::size_t> kept;
  kept.reserve(data.num_sessions());
  for (std::size_t s = 0; s < data.num_sessions(); ++s) {
    if (std::isnan(data.order_keys()[s]))
      throw InvalidArgument("preprocess: session '" + data.keys()[s] + "' has a NaN order key");
    if (detail::extract(data, s, remap, items, ops) > 0)
      kept.push_back(s);
    else
      ++stats.sessions_too_short;
  }

  // 3. Chronological split.
  std::stable_sort(kept.begin(), kept.end(), [&](std::size_t a, std::size_t b) {
    return data.order_keys()[a] < data.order_keys()[b];
  });
  const std::size_t n = kept.size();
  const std::size_t train_end = split_boundary(n, options.train_fraction);
  const std::size_t valid_end =
      std::max(train_end, split_boundary(n, options.train_fraction + options.valid_fraction));

  // 4. Truncation, then the examples.
  const auto max_length = static_cast<std::size_t>(options.max_length);
  auto fill = [&](ExampleSet& set, std::size_t begin, std::size_t end, std::size_t& sessions,
                  std::size_t& events) {
    set.reserve(end - begin, (end - begin) * std::min<std::size_t>(max_length, 16));
    for (std::size_t r = begin; r < end; ++r) {
      const std::size_t s = kept[r];
      const std::size_t p = detail::extract(data, s, remap, items, ops);
      const std::size_t first = p > max_length ? p - max_length : 0;
      if (first > 0) {
        ++stats.truncated_sessions;
        stats.events_removed_by_truncation += first;
      }
      set.add(Span<const index_t>(items.data() + first, p - first), Span<const index_t>(ops.data() + first, p - first),
              items[p], ops[p], static_cast<offset_t>(s), data.order_keys()[s]);
      events += p - first;
    }
    sessions = end - begin;
  };
  fill(out.train, 0, train_end, stats.train_sessions, stats.train_events);
  fill(out.valid, train_end, valid_end, stats.valid_sessions, stats.valid_events);
  fill(out.test, valid_end, n, stats.test_sessions, stats.test_events);
  return out;
}

}  // namespace embsr
