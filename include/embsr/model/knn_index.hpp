#pragma once
// The index of the neighbourhood models (model/session_knn.hpp), laid out for serving as in
// VMIS-kNN (Kersbergen et al., "Serenade", SIGMOD 2022): flat CSR arrays, so that a request reads
// only the sessions that share one of its items, and nothing is allocated per request.
//
// Indexed sessions. Training example e of the training split (one per session, data/preprocess.hpp)
// gives one session: its input micro-behaviors, then its target micro-behavior (target, next_op).
// Consecutive micro-behaviors on one item form one macro item (as in MODEL.md 2), so a session is a
// sequence of macro items x_1..x_L, and positions count macro items. Sessions are numbered by
// recency: n < n' when n's order key (the loader's chronology: a timestamp, or the load order) is
// smaller, ties by position in the split, so "the m most recent sessions" are the m largest numbers.
//
// Per session n (CSR over [session_offsets[n], session_offsets[n+1])), one entry per distinct item
// v, in order of first appearance: the item, last_n(v) = its last macro position (1-based), and
// the set of operations of every micro-behavior on v in n (bit o of a 64-bit mask).
// Per item v (CSR over [item_offsets[v], item_offsets[v+1])): the sessions containing v, most
// recent first. The list length is v's document frequency df(v).
// Per operation o: uses_o = #(training example, distinct input item v with o among v's operations),
// hits_o = how many of those v are the example's target: what vstan-ops' operation weights are
// made from (model/session_knn.hpp).
//
// The index is saved as int64 tables (checkpoint container, io/checkpoint_format.hpp) and checked
// completely when loaded: a corrupt or hostile table gives InvalidArgument, never a crash.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>

namespace embsr {

// Operations per micro-behavior set: a 64-bit mask.
inline constexpr int kKnnMaxOperations = 64;

struct KnnIndex {
  int num_items = 0, num_ops = 0;
  // Sessions [S], by recency.
  std::vector<std::int64_t> session_offsets{0};  // [S+1] into the entries
  std::vector<std::int32_t> session_length;      // [S] macro items L_n
  std::vector<double> session_time;              // [S] order key
  // Entries [E].
  std::vector<std::int32_t> entry_item;       // [E] v
  std::vector<std::int32_t> entry_last_pos;   // [E] last_n(v), 1-based
  std::vector<std::uint64_t> entry_op_mask;   // [E] operations on v in n
  // Items [V].
  std::vector<std::int64_t> item_offsets;     // [V+1] into item_sessions
  std::vector<std::int32_t> item_sessions;    // [E] sessions containing v, most recent first
  // Operations [O].
  std::vector<std::int64_t> op_hits, op_uses;

  std::size_t num_sessions() const { return session_length.size(); }
  std::size_t num_entries() const { return entry_item.size(); }
  std::int64_t document_frequency(int v) const { return item_offsets[v + 1] - item_offsets[v]; }
};

namespace detail {

// item_offsets / item_sessions from the session side (counting sort; sessions visited from the
// most recent, so every list comes out most recent first).
inline void build_item_lists(KnnIndex& index) {
  const auto V = static_cast<std::size_t>(index.num_items);
  index.item_offsets.assign(V + 1, 0);
  for (const std::int32_t v : index.entry_item) ++index.item_offsets[static_cast<std::size_t>(v) + 1];
  for (std::size_t v = 0; v < V; ++v) index.item_offsets[v + 1] += index.item_offsets[v];
  std::vector<std::int64_t> next(index.item_offsets.begin(), index.item_offsets.end() - 1);
  index.item_sessions.assign(index.num_entries(), 0);
  for (std::size_t n = index.num_sessions(); n-- > 0;)
    for (std::int64_t e = index.session_offsets[n]; e < index.session_offsets[n + 1]; ++e)
      index.item_sessions[static_cast<std::size_t>(next[static_cast<std::size_t>(index.entry_item[e])]++)] =
          static_cast<std::int32_t>(n);
}

inline void check_knn_event(index_t item, index_t op, int num_items, int num_ops, std::size_t example,
                            const char* field) {
  if (item < 0 || item >= num_items)
    throw InvalidArgument("session kNN: training example " + std::to_string(example) + ": " + field + " item " +
                          std::to_string(item) + " outside [0, " + std::to_string(num_items) + ")");
  if (op < 0 || op >= num_ops)
    throw InvalidArgument("session kNN: training example " + std::to_string(example) + ": " + field +
                          " operation " + std::to_string(op) + " outside [0, " + std::to_string(num_ops) + ")");
}

}  // namespace detail

// The index of the training split. InvalidArgument for an empty split, ids out of range, or more
// sessions or entries than 32-bit session numbers and item positions allow.
inline KnnIndex build_knn_index(const ExampleSet& train, int num_items, int num_ops) {
  if (num_items < 1) throw InvalidArgument("session kNN: num_items must be >= 1, got " + std::to_string(num_items));
  if (num_ops < 1 || num_ops > kKnnMaxOperations)
    throw InvalidArgument("session kNN: num_ops must be in [1, " + std::to_string(kKnnMaxOperations) + "], got " +
                          std::to_string(num_ops));
  if (train.empty()) throw InvalidArgument("session kNN: the training split is empty: nothing to index");
  if (train.size() >= static_cast<std::size_t>(INT32_MAX))
    throw InvalidArgument("session kNN: " + std::to_string(train.size()) + " training sessions, at most 2^31 - 2");
  KnnIndex index;
  index.num_items = num_items;
  index.num_ops = num_ops;
  index.op_hits.assign(static_cast<std::size_t>(num_ops), 0);
  index.op_uses.assign(static_cast<std::size_t>(num_ops), 0);

  if (train.order_keys.size() != train.size() || train.next_ops.size() != train.size() ||
      train.offsets.size() != train.size() + 1 || train.items.size() != train.ops.size() ||
      static_cast<std::size_t>(train.offsets.back()) != train.items.size())
    throw InvalidArgument("session kNN: the training split's arrays disagree in size (build it with ExampleSet::add)");
  for (std::size_t e = 0; e < train.size(); ++e)
    if (!std::isfinite(train.order_keys[e]))
      throw InvalidArgument("session kNN: training example " + std::to_string(e) + " has a non-finite order key (" +
                            std::to_string(train.order_keys[e]) + "): sessions cannot be ordered by recency");
  // Recency order: by order key, ties by position in the split (stable).
  std::vector<std::size_t> order(train.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return train.order_keys[a] < train.order_keys[b]; });

  // Scratch over items: the entry of v in the session being built (-1: none yet).
  std::vector<std::int64_t> entry_of(static_cast<std::size_t>(num_items), -1);
  std::vector<std::uint64_t> input_ops(static_cast<std::size_t>(num_items), 0);
  index.session_offsets.reserve(train.size() + 1);
  index.session_length.reserve(train.size());
  index.session_time.reserve(train.size());
  for (const std::size_t e : order) {
    const auto items = train.input_items(e);
    const auto ops = train.input_ops(e);
    const std::size_t first_entry = index.entry_item.size();
    std::int32_t position = 0;
    index_t previous = -1;
    auto add = [&](index_t item, index_t op, const char* field) {
      detail::check_knn_event(item, op, num_items, num_ops, e, field);
      if (item != previous) ++position;  // a new macro item
      previous = item;
      std::int64_t& entry = entry_of[static_cast<std::size_t>(item)];
      if (entry < 0) {
        entry = static_cast<std::int64_t>(index.entry_item.size());
        index.entry_item.push_back(item);
        index.entry_last_pos.push_back(position);
        index.entry_op_mask.push_back(0);
      }
      index.entry_last_pos[static_cast<std::size_t>(entry)] = position;
      index.entry_op_mask[static_cast<std::size_t>(entry)] |= std::uint64_t(1) << op;
    };
    for (std::size_t i = 0; i < items.size(); ++i) {
      add(items[i], ops[i], "input");
      input_ops[static_cast<std::size_t>(items[i])] |= std::uint64_t(1) << ops[i];
    }
    // The operation statistics: distinct input items by operation, and whether each is the target.
    const index_t target = train.targets[e];
    for (std::size_t i = 0; i < items.size(); ++i) {
      std::uint64_t& mask = input_ops[static_cast<std::size_t>(items[i])];
      for (int o = 0; o < num_ops; ++o)
        if (mask >> o & 1) {
          ++index.op_uses[static_cast<std::size_t>(o)];
          if (items[i] == target) ++index.op_hits[static_cast<std::size_t>(o)];
        }
      mask = 0;  // each distinct item once
    }
    add(target, train.next_ops[e], "target");
    for (std::size_t x = first_entry; x < index.entry_item.size(); ++x)
      entry_of[static_cast<std::size_t>(index.entry_item[x])] = -1;
    if (index.entry_item.size() >= static_cast<std::size_t>(INT32_MAX))
      throw InvalidArgument("session kNN: more than 2^31 - 1 (session, item) entries");
    index.session_offsets.push_back(static_cast<std::int64_t>(index.entry_item.size()));
    index.session_length.push_back(position);
    index.session_time.push_back(train.order_keys[e]);
  }
  index.entry_item.shrink_to_fit();  // grown by push_back: up to a quarter of the bytes unused
  index.entry_last_pos.shrink_to_fit();
  index.entry_op_mask.shrink_to_fit();
  detail::build_item_lists(index);
  return index;
}

// The index as int64 tables, in the order of knn_table_specs (model/session_knn.hpp):
//   session_offsets [S+1], session_info [S x 2] (L_n, bits of the order key),
//   session_entries [E x 3] (v, last_n(v), operation mask), item_offsets [V+1],
//   item_sessions [E], operation_counts [O x 2] (hits_o, uses_o).
inline std::vector<std::vector<std::int64_t>> knn_index_tables(const KnnIndex& index) {
  std::vector<std::vector<std::int64_t>> t(6);
  t[0] = index.session_offsets;
  t[1].reserve(2 * index.num_sessions());
  for (std::size_t n = 0; n < index.num_sessions(); ++n) {
    std::int64_t bits = 0;
    std::memcpy(&bits, &index.session_time[n], sizeof(bits));
    t[1].push_back(index.session_length[n]);
    t[1].push_back(bits);
  }
  t[2].reserve(3 * index.num_entries());
  for (std::size_t x = 0; x < index.num_entries(); ++x) {
    std::int64_t mask = 0;
    std::memcpy(&mask, &index.entry_op_mask[x], sizeof(mask));
    t[2].push_back(index.entry_item[x]);
    t[2].push_back(index.entry_last_pos[x]);
    t[2].push_back(mask);
  }
  t[3] = index.item_offsets;
  t[4].assign(index.item_sessions.begin(), index.item_sessions.end());
  for (std::size_t o = 0; o < index.op_hits.size(); ++o) {
    t[5].push_back(index.op_hits[o]);
    t[5].push_back(index.op_uses[o]);
  }
  return t;
}

// The index from its tables, every invariant checked (InvalidArgument naming the first broken one):
// offsets start at 0, never decrease and end at the entry count; items, positions, operations and
// session numbers in range; items distinct within a session; finite, non-decreasing order keys;
// every item list exactly the sessions holding the item, most recent first; 0 <= hits <= uses.
inline KnnIndex knn_index_from_tables(const std::vector<std::vector<std::int64_t>>& t, int num_items, int num_ops) {
  auto fail = [](const std::string& what) -> void { throw InvalidArgument("session kNN index: " + what); };
  if (t.size() != 6) fail("expected 6 tables, got " + std::to_string(t.size()));
  KnnIndex index;
  index.num_items = num_items;
  index.num_ops = num_ops;
  const auto V = static_cast<std::size_t>(num_items), O = static_cast<std::size_t>(num_ops);
  if (t[0].empty() || t[0][0] != 0) fail("session offsets must start at 0");
  const std::size_t S = t[0].size() - 1;
  if (S == 0) fail("no indexed session");
  if (S >= static_cast<std::size_t>(INT32_MAX)) fail("too many sessions");
  if (t[1].size() != 2 * S) fail("session info has " + std::to_string(t[1].size()) + " values, expected " + std::to_string(2 * S));
  if (t[2].size() % 3 != 0) fail("session entries are not whole rows of 3");
  const std::size_t E = t[2].size() / 3;
  if (E >= static_cast<std::size_t>(INT32_MAX)) fail("too many entries");
  if (t[3].size() != V + 1) fail("item offsets have " + std::to_string(t[3].size()) + " values, expected " + std::to_string(V + 1));
  if (t[4].size() != E) fail("item sessions have " + std::to_string(t[4].size()) + " values, expected " + std::to_string(E));
  if (t[5].size() != 2 * O) fail("operation counts have " + std::to_string(t[5].size()) + " values, expected " + std::to_string(2 * O));

  index.session_offsets = t[0];
  for (std::size_t n = 0; n < S; ++n)
    if (t[0][n + 1] < t[0][n] || t[0][n + 1] == t[0][n]) fail("session " + std::to_string(n) + " has no entry (offsets must increase)");
  if (static_cast<std::size_t>(t[0][S]) != E) fail("session offsets end at " + std::to_string(t[0][S]) + ", not at the " + std::to_string(E) + " entries");
  index.session_length.resize(S);
  index.session_time.resize(S);
  for (std::size_t n = 0; n < S; ++n) {
    const std::int64_t length = t[1][2 * n];
    const std::int64_t entries = t[0][n + 1] - t[0][n];
    if (length < entries || length > INT32_MAX)
      fail("session " + std::to_string(n) + " has length " + std::to_string(length) + " with " + std::to_string(entries) + " distinct items");
    index.session_length[n] = static_cast<std::int32_t>(length);
    std::memcpy(&index.session_time[n], &t[1][2 * n + 1], sizeof(double));
    if (!std::isfinite(index.session_time[n])) fail("session " + std::to_string(n) + " has a non-finite order key");
    if (n > 0 && index.session_time[n] < index.session_time[n - 1]) fail("sessions are not in recency order at " + std::to_string(n));
  }
  index.entry_item.resize(E);
  index.entry_last_pos.resize(E);
  index.entry_op_mask.resize(E);
  const std::uint64_t op_bits = num_ops >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << num_ops) - 1;
  std::vector<std::int32_t> seen(V, -1);
  for (std::size_t n = 0; n < S; ++n)
    for (auto x = static_cast<std::size_t>(t[0][n]); x < static_cast<std::size_t>(t[0][n + 1]); ++x) {
      const std::int64_t v = t[2][3 * x], pos = t[2][3 * x + 1];
      std::uint64_t mask = 0;
      std::memcpy(&mask, &t[2][3 * x + 2], sizeof(mask));
      if (v < 0 || v >= num_items) fail("entry " + std::to_string(x) + ": item " + std::to_string(v) + " outside [0, " + std::to_string(num_items) + ")");
      if (seen[static_cast<std::size_t>(v)] == static_cast<std::int32_t>(n)) fail("session " + std::to_string(n) + " lists item " + std::to_string(v) + " twice");
      seen[static_cast<std::size_t>(v)] = static_cast<std::int32_t>(n);
      if (pos < 1 || pos > index.session_length[n]) fail("entry " + std::to_string(x) + ": position " + std::to_string(pos) + " outside [1, " + std::to_string(index.session_length[n]) + "]");
      if (mask == 0 || (mask & ~op_bits) != 0) fail("entry " + std::to_string(x) + ": operation mask outside the " + std::to_string(num_ops) + " operations");
      index.entry_item[x] = static_cast<std::int32_t>(v);
      index.entry_last_pos[x] = static_cast<std::int32_t>(pos);
      index.entry_op_mask[x] = mask;
    }
  // The item lists must be exactly what the sessions imply: rebuild them and compare.
  detail::build_item_lists(index);
  if (index.item_offsets != t[3]) fail("item offsets disagree with the sessions");
  for (std::size_t x = 0; x < E; ++x)
    if (index.item_sessions[x] != t[4][x]) fail("item sessions disagree with the sessions at " + std::to_string(x));
  index.op_hits.resize(O);
  index.op_uses.resize(O);
  for (std::size_t o = 0; o < O; ++o) {
    index.op_hits[o] = t[5][2 * o];
    index.op_uses[o] = t[5][2 * o + 1];
    if (index.op_hits[o] < 0 || index.op_hits[o] > index.op_uses[o]) fail("operation " + std::to_string(o) + ": hits " + std::to_string(index.op_hits[o]) + " outside [0, uses " + std::to_string(index.op_uses[o]) + "]");
  }
  return index;
}

}  // namespace embsr
