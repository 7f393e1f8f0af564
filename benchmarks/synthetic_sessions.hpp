#pragma once
// Sessions for the timing benchmarks: synthetic ones, real ones from a JD log, and a plain-text
// exchange format so that benchmarks/torch_embsr.py times the very same sessions.
//
// Synthetic sessions (only sizes matter for timing): lengths uniform in
// 1..max_length, each micro-behavior stays on the previous item with probability 1/2 (so macro runs
// and parallel edges occur) or picks a uniform item, operations uniform, target and next operation
// uniform. benchmarks/torch_embsr.py draws the same distribution for the PyTorch side.

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <embsr/core/random.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/data/jd_loader.hpp>
#include <embsr/data/preprocess.hpp>

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

// Real sessions: the first `count` training examples of a JD micro-behavior log after the paper's
// preprocessing (inputs truncated to the last max_length micro-behaviors), repeated in order if the
// log has fewer. num_ops receives the log's operation vocabulary size, num_items its item count.
inline ExampleSet jd_sessions(const std::string& path, int max_length, int count, int& num_ops, int& num_items) {
  PreprocessOptions pre;
  pre.max_length = max_length;
  const PreparedData data = preprocess(load_jd(std::vector<std::string>{path}), pre);
  if (data.train.empty()) throw InvalidArgument("jd_sessions: " + path + " gives no training examples");
  num_ops = static_cast<int>(data.op_vocab.size());
  num_items = static_cast<int>(data.item_vocab.size());
  ExampleSet set;
  for (int e = 0; e < count; ++e) {
    const std::size_t i = static_cast<std::size_t>(e) % data.train.size();
    set.add(data.train.input_items(i), data.train.input_ops(i), data.train.targets[i], data.train.next_ops[i], e, e);
  }
  return set;
}

// One session per line: input items, tab, input operations, tab, target, tab, next operation
// (lists space-separated). A first line "# items V ops O" gives the vocabulary sizes.
inline void write_sessions(const ExampleSet& set, int num_items, int num_ops, const std::string& path) {
  std::ofstream out(path);
  if (!out) throw InvalidArgument("write_sessions: cannot write " + path);
  out << "# items " << num_items << " ops " << num_ops << "\n";
  for (std::size_t e = 0; e < set.size(); ++e) {
    const auto items = set.input_items(e), ops = set.input_ops(e);
    for (std::size_t i = 0; i < items.size(); ++i) out << (i ? " " : "") << items[i];
    out << '\t';
    for (std::size_t i = 0; i < ops.size(); ++i) out << (i ? " " : "") << ops[i];
    out << '\t' << set.targets[e] << '\t' << set.next_ops[e] << '\n';
  }
  if (!out) throw InvalidArgument("write_sessions: writing " + path + " failed");
}

// Example ids [first, first + count) of a set, for BatchBuilder::build.
inline std::vector<index_t> id_range(int first, int count) {
  std::vector<index_t> ids(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) ids[static_cast<std::size_t>(i)] = first + i;
  return ids;
}

}  // namespace embsr::bench
