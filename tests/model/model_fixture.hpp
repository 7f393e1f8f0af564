#pragma once
// Small models and batches shared by the whole-model tests.

#include <string>
#include <vector>

#include <embsr/data/example_set.hpp>
#include <embsr/batch/batch_builder.hpp>
#include <embsr/model/config.hpp>

namespace embsr::test {

// One micro-behavior of a hand-written example.
struct Event {
  index_t item, op;
};

// Appends the example (input micro-behaviors, target micro-behavior, order key) to `set`, its
// source being its position in the set.
inline void add_example(ExampleSet& set, const std::vector<Event>& input, Event target, double order_key) {
  std::vector<index_t> items, ops;
  for (const Event& e : input) items.push_back(e.item), ops.push_back(e.op);
  set.add(Span<const index_t>(items.data(), items.size()), Span<const index_t>(ops.data(), ops.size()), target.item,
          target.op, static_cast<offset_t>(set.size()), order_key);
}

// A tiny configuration where every code path is active (2 GNN steps, dropout, relations).
inline Config tiny_config(int num_items = 9, int num_ops = 3) {
  Config c;
  c.num_items = num_items;
  c.num_ops = num_ops;
  c.d = 4;
  c.max_length = 8;
  c.gnn_steps = 2;
  c.dropout = 0.25;
  c.w_k = 12.0;
  c.init_std = 0.3;  // larger than the paper's 0.1 so that tiny models are far from linear
  c.seed = 7;
  return c;
}

// Hand-made examples covering the structural cases: a single micro-behavior, a single macro item
// with a run, repeated transitions (parallel edges), a target seen in the input, a node without
// in-edges, the longest allowed input.
inline ExampleSet tiny_examples() {
  ExampleSet set;
  auto add = [&](std::vector<index_t> items, std::vector<index_t> ops, index_t target, index_t next_op) {
    set.add(Span<const index_t>(items.data(), items.size()), Span<const index_t>(ops.data(), ops.size()), target, next_op,
            static_cast<offset_t>(set.size()), static_cast<double>(set.size()));
  };
  add({3}, {1}, 4, 0);
  add({0, 0, 0}, {0, 2, 1}, 5, 2);
  add({1, 2, 1, 2, 1}, {0, 1, 0, 2, 2}, 1, 1);
  add({6, 7, 7, 8, 6}, {2, 2, 0, 1, 0}, 7, 0);
  add({2, 4, 4, 5, 2, 3, 3, 8}, {0, 0, 1, 2, 1, 0, 2, 2}, 0, 2);
  return set;
}

template <class MemorySpace>
Batch<MemorySpace> make_batch(const ExampleSet& set, const std::vector<index_t>& ids) {
  BatchBuilder builder;
  HostBatch host;
  builder.build(set, Span<const index_t>(ids.data(), ids.size()), host);
  return to_memory_space<MemorySpace>(host);
}

inline std::vector<index_t> all_ids(const ExampleSet& set) {
  std::vector<index_t> ids(set.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<index_t>(i);
  return ids;
}

}  // namespace embsr::test
