#pragma once
// A dataset of micro-behavior sessions stored flat: session s owns events
// [offsets[s], offsets[s+1]) of the parallel arrays items / ops / times. No vector of vectors, so a
// dataset of millions of sessions is five allocations, and slices are cheap spans.

#include <cstddef>
#include <string>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/vocabulary.hpp>

namespace embsr {

// One micro-behavior: the user did operation `op` on item `item` at `time` (seconds).
struct MicroBehavior {
  index_t item = 0;
  index_t op = 0;
  double time = 0.0;
};

// Read-only view of one session of a SessionDataset.
struct SessionView {
  Span<const index_t> items;
  Span<const index_t> ops;
  Span<const double> times;
  double order_key = 0.0;   // chronology key used by the train/valid/test split
  const std::string* key = nullptr;  // raw session id (or "file:line" where the format has none)
  std::size_t size() const { return items.size(); }
};

class SessionDataset {
 public:
  // Dense id spaces of the items and operations referenced by `items()` / `ops()`.
  Vocabulary item_vocab;
  Vocabulary op_vocab;

  std::size_t num_sessions() const { return offsets_.size() - 1; }
  std::size_t num_events() const { return items_.size(); }
  bool empty() const { return num_sessions() == 0; }

  // Appends one session. `order_key` orders sessions in time for the chronological split: the
  // session's last timestamp where the log has absolute times, its position in the file otherwise.
  void add_session(Span<const MicroBehavior> events, double order_key, std::string key) {
    if (events.empty()) throw InvalidArgument("SessionDataset::add_session: empty session '" + key + "'");
    for (const auto& e : events) {
      if (e.item < 0 || e.item >= item_vocab.size())
        throw InvalidArgument("SessionDataset::add_session: item id " + std::to_string(e.item) +
                              " outside the item vocabulary in session '" + key + "'");
      if (e.op < 0 || e.op >= op_vocab.size())
        throw InvalidArgument("SessionDataset::add_session: operation id " + std::to_string(e.op) +
                              " outside the operation vocabulary in session '" + key + "'");
      items_.push_back(e.item);
      ops_.push_back(e.op);
      times_.push_back(e.time);
    }
    offsets_.push_back(static_cast<offset_t>(items_.size()));
    order_keys_.push_back(order_key);
    keys_.push_back(std::move(key));
  }

  // Replaces the contents with sessions already laid out flat (the arrays are moved in, not
  // copied: what a loader that reads a log in session order builds anyway). Session s = events
  // [offsets[s], offsets[s+1]); checks everything add_session checks, and the array sizes.
  void assign_flat(std::vector<offset_t> offsets, std::vector<index_t> items, std::vector<index_t> ops,
                   std::vector<double> times, std::vector<double> order_keys, std::vector<std::string> keys) {
    const std::size_t n = items.size();
    if (ops.size() != n || times.size() != n)
      throw InvalidArgument("SessionDataset::assign_flat: items, ops and times differ in size");
    if (offsets.empty() || offsets.front() != 0 || static_cast<std::size_t>(offsets.back()) != n ||
        order_keys.size() + 1 != offsets.size() || keys.size() + 1 != offsets.size())
      throw InvalidArgument("SessionDataset::assign_flat: offsets must run from 0 to the event count, one per session + 1");
    for (std::size_t s = 0; s + 1 < offsets.size(); ++s)
      if (offsets[s + 1] <= offsets[s]) throw InvalidArgument("SessionDataset::assign_flat: empty session '" + keys[s] + "'");
    const index_t num_items = item_vocab.size(), num_ops = op_vocab.size();
    for (std::size_t i = 0; i < n; ++i)
      if (items[i] < 0 || items[i] >= num_items || ops[i] < 0 || ops[i] >= num_ops)
        throw InvalidArgument("SessionDataset::assign_flat: event " + std::to_string(i) +
                              " has an item or operation id outside the vocabularies");
    offsets_ = std::move(offsets);
    items_ = std::move(items);
    ops_ = std::move(ops);
    times_ = std::move(times);
    order_keys_ = std::move(order_keys);
    keys_ = std::move(keys);
  }

  SessionView session(std::size_t s) const {
    if (s >= num_sessions())
      throw InvalidArgument("SessionDataset::session: index " + std::to_string(s) + " out of range");
    const auto b = static_cast<std::size_t>(offsets_[s]);
    const auto n = static_cast<std::size_t>(offsets_[s + 1]) - b;
    return SessionView{Span<const index_t>(items_.data() + b, n), Span<const index_t>(ops_.data() + b, n),
                       Span<const double>(times_.data() + b, n), order_keys_[s], &keys_[s]};
  }

  void reserve(std::size_t sessions, std::size_t events) {
    offsets_.reserve(sessions + 1);
    order_keys_.reserve(sessions);
    keys_.reserve(sessions);
    items_.reserve(events);
    ops_.reserve(events);
    times_.reserve(events);
  }

  // Flat arrays (read-only): offsets has num_sessions()+1 entries, starting at 0.
  const std::vector<offset_t>& offsets() const { return offsets_; }
  const std::vector<index_t>& items() const { return items_; }
  const std::vector<index_t>& ops() const { return ops_; }
  const std::vector<double>& times() const { return times_; }
  const std::vector<double>& order_keys() const { return order_keys_; }
  const std::vector<std::string>& keys() const { return keys_; }

 private:
  std::vector<offset_t> offsets_{0};
  std::vector<index_t> items_;
  std::vector<index_t> ops_;
  std::vector<double> times_;
  std::vector<double> order_keys_;
  std::vector<std::string> keys_;
};

}  // namespace embsr
