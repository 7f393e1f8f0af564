#pragma once
// Prediction examples stored flat (like SessionDataset): example e's input micro-behaviors are
// [offsets[e], offsets[e+1]) of items / ops; its label is targets[e] with next_ops[e].
// preprocess() produces three of these (train / valid / test); batching reads them.

#include <cstddef>
#include <string>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>

namespace embsr {

struct ExampleSet {
  std::vector<offset_t> offsets{0};  // [n+1] input of example e = [offsets[e], offsets[e+1])
  std::vector<index_t> items;        // [events] dense item ids of the input micro-behaviors
  std::vector<index_t> ops;          // [events] operation ids of the input micro-behaviors
  std::vector<index_t> targets;      // [n] item to predict
  std::vector<index_t> next_ops;     // [n] operation of the target micro-behavior (o_{t+1})
  std::vector<offset_t> sources;     // [n] index of the session in the SessionDataset it came from
  std::vector<double> order_keys;    // [n] that session's order key (chronology of the split)

  std::size_t size() const { return targets.size(); }
  bool empty() const { return targets.empty(); }
  std::size_t num_events() const { return items.size(); }
  std::size_t input_size(std::size_t e) const {
    return static_cast<std::size_t>(offsets[e + 1] - offsets[e]);
  }
  Span<const index_t> input_items(std::size_t e) const {
    check(e);
    return Span<const index_t>(items.data() + offsets[e], input_size(e));
  }
  Span<const index_t> input_ops(std::size_t e) const {
    check(e);
    return Span<const index_t>(ops.data() + offsets[e], input_size(e));
  }

  void add(Span<const index_t> in_items, Span<const index_t> in_ops, index_t target, index_t next_op,
           offset_t source, double order_key) {
    if (in_items.empty() || in_items.size() != in_ops.size())
      throw InvalidArgument("ExampleSet::add: input must be non-empty with one operation per item (got " +
                            std::to_string(in_items.size()) + " items, " +
                            std::to_string(in_ops.size()) + " operations)");
    items.insert(items.end(), in_items.begin(), in_items.end());
    ops.insert(ops.end(), in_ops.begin(), in_ops.end());
    offsets.push_back(static_cast<offset_t>(items.size()));
    targets.push_back(target);
    next_ops.push_back(next_op);
    sources.push_back(source);
    order_keys.push_back(order_key);
  }

  void reserve(std::size_t examples, std::size_t events) {
    offsets.reserve(examples + 1);
    items.reserve(events);
    ops.reserve(events);
    targets.reserve(examples);
    next_ops.reserve(examples);
    sources.reserve(examples);
    order_keys.reserve(examples);
  }

 private:
  void check(std::size_t e) const {
    if (e >= size())
      throw InvalidArgument("ExampleSet: example " + std::to_string(e) + " out of range [0, " +
                            std::to_string(size()) + ")");
  }
};

}  // namespace embsr
