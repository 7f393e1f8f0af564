#pragma once
// Synthetic sessions for the timing benchmarks (only sizes matter there): lengths uniform in
// 1..max_length, each micro-behavior stays on the previous item with probability 1/2 (so macro runs
// and parallel edges occur) or picks a uniform item, operations uniform, target and next operation
// uniform. benchmarks/torch_embsr.py draws the same distribution for the PyTorch side.

#include <cstdint>
#include <vector>

#include <embsr/core/random.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>

namespace embsr::bench {

inline ExampleSet synthetic_sessions(int sessions, int items, int ops, int max_length, std::uint64_t seed = 2024) {
  ExampleSet set;
  Rng rng(seed, 0);
  std::vector<index_t> in_items, in_ops;
  for (int s = 0; s < sessions; ++s) {
    const auto t = 1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(max_length)));
    in_items.clear();
    in_ops.clear();
    for (int i = 0; i < t; ++i) {
      const bool repeat = i > 0 && rng.below(2) == 0;
      in_items.push_back(repeat ? in_items.back() : static_cast<index_t>(rng.below(static_cast<std::uint64_t>(items))));
      in_ops.push_back(static_cast<index_t>(rng.below(static_cast<std::uint64_t>(ops))));
    }
    set.add(Span<const index_t>(in_items.data(), in_items.size()), Span<const index_t>(in_ops.data(), in_ops.size()),
            static_cast<index_t>(rng.below(static_cast<std::uint64_t>(items))),
            static_cast<index_t>(rng.below(static_cast<std::uint64_t>(ops))), s, s);
  }
  return set;
}

// Example ids [first, first + count) of a set, for BatchBuilder::build.
inline std::vector<index_t> id_range(int first, int count) {
  std::vector<index_t> ids(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) ids[static_cast<std::size_t>(i)] = first + i;
  return ids;
}

}  // namespace embsr::bench
