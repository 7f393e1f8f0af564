#pragma once
// Builds ragged batches (batch/batch.hpp) from examples, and samples the examples of each batch.
// The only batch header that includes graph/: a session's structure and its multigraph lowering
// give the node, edge and incidence arrays. The builder also computes the batch-wide step schedule
// of the run GRU (run_order / run_step_offsets), so that layers only do arithmetic.
//
// BatchSampler gives reproducible per-epoch orders with the portable shuffle of core/random.hpp.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <embsr/batch/batch.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/random.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/graph/session_multigraph.hpp>
#include <embsr/graph/session_structure.hpp>

namespace embsr {

namespace detail {

// The run GRU's step schedule of a batch from its runs [run_begin[k], run_end[k]), k < N:
// run_order = the runs sorted by length, descending, stable (a counting sort), and
// run_step_offsets[s] = offset_s, s = 0..L (L = the longest run), where count_s = the number of
// runs longer than s and offset_{s+1} = offset_s + count_s. `count` is scratch (kept by the caller
// so that steady-state building does not allocate). Runs must be non-empty (the builder's are).
inline void schedule_run_steps(const std::vector<index_t>& run_begin, const std::vector<index_t>& run_end,
                               std::vector<index_t>& run_order, std::vector<index_t>& run_step_offsets,
                               std::vector<index_t>& count) {
  const std::size_t N = run_begin.size();
  index_t max_len = 0;
  for (std::size_t k = 0; k < N; ++k) max_len = std::max(max_len, run_end[k] - run_begin[k]);
  const auto L = static_cast<std::size_t>(max_len);
  // count[l] = number of runs of length l (l = 1..L), then start positions per length.
  count.assign(L + 2, 0);
  for (std::size_t k = 0; k < N; ++k) ++count[static_cast<std::size_t>(run_end[k] - run_begin[k])];
  // count_s = runs longer than s (stored at run_step_offsets[s + 1]), then prefix sums: offset_s.
  run_step_offsets.assign(L + 1, 0);
  {
    index_t longer = 0;
    for (std::size_t s = L; s-- > 0;) {
      longer += count[s + 1];
      run_step_offsets[s + 1] = longer;
    }
    for (std::size_t s = 0; s < L; ++s) run_step_offsets[s + 1] += run_step_offsets[s];
  }
  // Start of each length's block in sorted order: longest first.
  index_t pos = 0;
  for (std::size_t l = L; l >= 1; --l) {
    const index_t c = count[l];
    count[l] = pos;
    pos += c;
  }
  run_order.resize(N);
  for (std::size_t k = 0; k < N; ++k)
    run_order[static_cast<std::size_t>(count[static_cast<std::size_t>(run_end[k] - run_begin[k])]++)] =
        static_cast<index_t>(k);
}

}  // namespace detail

// Packs examples into a HostBatch. Holds the per-session scratch (SessionStructure, the Boost
// graph, its lowering), so one builder per thread, reused: in steady state, building allocates
// nothing.
class BatchBuilder {
 public:
  // Clears `out` and packs examples ids[0], ids[1], ... of `set` into it, in that order, then
  // computes the batch-wide run GRU schedule.
  void build(const ExampleSet& set, Span<const index_t> ids, HostBatch& out) {
    out.clear();
    for (const index_t id : ids) append(set, id, out);
    detail::schedule_run_steps(out.run_begin, out.run_end, out.run_order, out.run_step_offsets, count_);
  }
  HostBatch build(const ExampleSet& set, Span<const index_t> ids) {
    HostBatch out;
    build(set, ids, out);
    return out;
  }

 private:
  // Appends example `id` of `set` as the next session of `out` (every array but the batch-wide
  // schedule, which build() computes once all sessions are in).
  void append(const ExampleSet& set, index_t id, HostBatch& out) {
    if (id < 0 || static_cast<std::size_t>(id) >= set.size())
      throw InvalidArgument("BatchBuilder: example id " + std::to_string(id) + " outside [0, " +
                            std::to_string(set.size()) + ")");
    const auto e = static_cast<std::size_t>(id);
    const Span<const index_t> items = set.input_items(e);
    const Span<const index_t> ops = set.input_ops(e);
    structure_.compute(items);
    graph_.build_lowered(structure_, lowered_);

    const std::size_t t = items.size();
    const std::size_t n = structure_.num_macro();
    const std::size_t c = structure_.num_distinct();
    const std::size_t m = n - 1;
    if (static_cast<std::uint64_t>(out.micro_offsets.back()) + t >
        static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()))
      throw InvalidArgument("BatchBuilder: batch exceeds 2^31 - 1 micro-behaviors");
    const index_t micro_base = out.micro_offsets.back();
    const index_t macro_base = out.macro_offsets.back();
    const index_t node_base = out.node_offsets.back();
    const index_t edge_base = out.edge_offsets.back();
    const auto session = static_cast<index_t>(out.targets.size());

    index_t* p = grow(out.micro_items, t);
    for (std::size_t i = 0; i < t; ++i) p[i] = items[i];
    p = grow(out.micro_ops, t);
    for (std::size_t i = 0; i < t; ++i) p[i] = ops[i];
    shifted(out.micro_alias, structure_.micro_alias(), node_base);

    shifted(out.macro_items, structure_.macro_items(), 0);
    shifted(out.macro_alias, structure_.macro_alias(), node_base);
    shifted(out.run_begin, structure_.run_begin(), micro_base);
    shifted(out.run_end, structure_.run_end(), micro_base);

    shifted(out.node_items, lowered_.node_items, 0);
    p = grow(out.node_session, c);
    for (std::size_t i = 0; i < c; ++i) p[i] = session;
    shifted_tail(out.node_in_offsets, lowered_.in_offsets, edge_base);
    shifted(out.node_in_edges, lowered_.in_edges, edge_base);
    shifted_tail(out.node_out_offsets, lowered_.out_offsets, edge_base);
    shifted(out.node_out_edges, lowered_.out_edges, edge_base);

    shifted(out.edge_src, lowered_.edge_src, node_base);
    shifted(out.edge_dst, lowered_.edge_dst, node_base);
    shifted(out.edge_src_macro, lowered_.edge_src_macro, macro_base);
    shifted(out.edge_dst_macro, lowered_.edge_dst_macro, macro_base);

    out.targets.push_back(set.targets[e]);
    out.next_ops.push_back(set.next_ops[e]);
    out.example_ids.push_back(id);
    out.micro_offsets.push_back(micro_base + static_cast<index_t>(t));
    out.macro_offsets.push_back(macro_base + static_cast<index_t>(n));
    out.node_offsets.push_back(node_base + static_cast<index_t>(c));
    out.edge_offsets.push_back(edge_base + static_cast<index_t>(m));
  }

  static index_t* grow(std::vector<index_t>& v, std::size_t count) {
    const std::size_t old = v.size();
    v.resize(old + count);
    return v.data() + old;
  }
  static void shifted(std::vector<index_t>& dst, const std::vector<index_t>& src, index_t shift) {
    index_t* p = grow(dst, src.size());
    for (std::size_t i = 0; i < src.size(); ++i) p[i] = src[i] + shift;
  }
  // Local CSR offsets [c+1] appended after the batch's last offset (their leading 0 is dropped).
  static void shifted_tail(std::vector<index_t>& dst, const std::vector<index_t>& src, index_t shift) {
    index_t* p = grow(dst, src.size() - 1);
    for (std::size_t i = 1; i < src.size(); ++i) p[i - 1] = src[i] + shift;
  }

  SessionStructure structure_;
  SessionMultigraphBuilder graph_;
  LoweredGraph lowered_;
  std::vector<index_t> count_;  // scratch of schedule_run_steps
};

// Splits 0..num_examples-1 into batches of batch_size (the last one may be smaller). With
// shuffling, epoch e's order is the Fisher-Yates shuffle of the identity under Rng(seed, e): it
// depends only on (seed, e, num_examples), not on earlier epochs or the platform.
class BatchSampler {
 public:
  BatchSampler(std::size_t num_examples, std::size_t batch_size, bool shuffle, std::uint64_t seed)
      : batch_size_(batch_size), shuffle_(shuffle), seed_(seed) {
    if (batch_size == 0) throw InvalidArgument("BatchSampler: batch_size must be >= 1");
    if (num_examples > static_cast<std::size_t>(std::numeric_limits<index_t>::max()))
      throw InvalidArgument("BatchSampler: more than 2^31 - 1 examples");
    order_.resize(num_examples);
    set_epoch(0);
  }

  // Reorders for epoch `epoch` (identity order when not shuffling).
  void set_epoch(std::uint64_t epoch) {
    epoch_ = epoch;
    for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<index_t>(i);
    if (shuffle_) {
      Rng rng(seed_, epoch);
      shuffle(Span<index_t>(order_), rng);
    }
  }

  std::uint64_t epoch() const { return epoch_; }
  std::size_t num_examples() const { return order_.size(); }
  std::size_t batch_size() const { return batch_size_; }
  std::size_t num_batches() const { return (order_.size() + batch_size_ - 1) / batch_size_; }
  const std::vector<index_t>& order() const { return order_; }  // [num_examples] this epoch's order

  // Example ids of batch b of the current epoch.
  Span<const index_t> batch(std::size_t b) const {
    if (b >= num_batches())
      throw InvalidArgument("BatchSampler: batch " + std::to_string(b) + " outside [0, " +
                            std::to_string(num_batches()) + ")");
    const std::size_t begin = b * batch_size_;
    return Span<const index_t>(order_.data() + begin, std::min(batch_size_, order_.size() - begin));
  }

 private:
  std::size_t batch_size_;
  bool shuffle_;
  std::uint64_t seed_;
  std::uint64_t epoch_ = 0;
  std::vector<index_t> order_;
};

}  // namespace embsr
