#pragma once
// Dataset statistics after preprocessing: the columns of the paper's Table II (train / validation /
// test sessions, items, micro-behaviors) plus operation counts and session-length percentiles.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/data/preprocess.hpp>

namespace embsr {

// Nearest-rank percentiles of a length distribution.
struct LengthSummary {
  double mean = 0.0;
  std::size_t min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
};

// p in (0, 100]: the smallest value with at least p% of the data at or below it (nearest rank).
inline std::size_t nearest_rank_percentile(const std::vector<std::size_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size()) - 1e-9));
  rank = std::min(std::max<std::size_t>(rank, 1), sorted.size());
  return sorted[rank - 1];
}

inline LengthSummary summarize_lengths(std::vector<std::size_t> lengths) {
  LengthSummary s;
  if (lengths.empty()) return s;
  std::sort(lengths.begin(), lengths.end());
  double total = 0.0;
  for (auto v : lengths) total += static_cast<double>(v);
  s.mean = total / static_cast<double>(lengths.size());
  s.min = lengths.front();
  s.p50 = nearest_rank_percentile(lengths, 50);
  s.p90 = nearest_rank_percentile(lengths, 90);
  s.p99 = nearest_rank_percentile(lengths, 99);
  s.max = lengths.back();
  return s;
}

struct DatasetStatistics {
  // Table II of the paper.
  std::size_t train_sessions = 0, valid_sessions = 0, test_sessions = 0;
  std::size_t items = 0;            // item vocabulary after the support filter
  std::size_t micro_behaviors = 0;  // input micro-behaviors of all splits (after truncation) + one target each
  // Operations.
  std::size_t operations = 0;                  // size of the operation vocabulary
  std::vector<std::size_t> operation_counts;   // [operations] over inputs of all splits
  // Per-session input lengths over all splits: micro-behaviors t, macro items n, distinct items c.
  LengthSummary micro_length, macro_length, distinct_items;
  // Share of sessions whose target item already occurs in its input (what S-POP can exploit).
  double target_in_input = 0.0;
};

inline DatasetStatistics compute_statistics(const PreparedData& data) {
  DatasetStatistics st;
  st.train_sessions = data.train.size();
  st.valid_sessions = data.valid.size();
  st.test_sessions = data.test.size();
  st.items = static_cast<std::size_t>(data.item_vocab.size());
  st.operations = static_cast<std::size_t>(data.op_vocab.size());
  st.operation_counts.assign(st.operations, 0);

  std::vector<std::size_t> micro, macro, distinct;
  std::vector<index_t> scratch;
  std::size_t with_target = 0, sessions = 0;
  for (const ExampleSet* split : {&data.train, &data.valid, &data.test}) {
    for (std::size_t e = 0; e < split->size(); ++e) {
      const auto items = split->input_items(e);
      const auto ops = split->input_ops(e);
      std::size_t n = 0;
      bool target_seen = false;
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i == 0 || items[i] != items[i - 1]) ++n;
        target_seen = target_seen || items[i] == split->targets[e];
        const auto op = static_cast<std::size_t>(ops[i]);
        if (op < st.operation_counts.size()) ++st.operation_counts[op];
      }
      scratch.assign(items.begin(), items.end());
      std::sort(scratch.begin(), scratch.end());
      const auto c = static_cast<std::size_t>(std::unique(scratch.begin(), scratch.end()) - scratch.begin());
      micro.push_back(items.size());
      macro.push_back(n);
      distinct.push_back(c);
      st.micro_behaviors += items.size() + 1;
      with_target += target_seen ? 1 : 0;
      ++sessions;
    }
  }
  st.micro_length = summarize_lengths(std::move(micro));
  st.macro_length = summarize_lengths(std::move(macro));
  st.distinct_items = summarize_lengths(std::move(distinct));
  st.target_in_input = sessions ? static_cast<double>(with_target) / static_cast<double>(sessions) : 0.0;
  return st;
}

}  // namespace embsr
