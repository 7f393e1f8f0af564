#pragma once
// Groups the rows of a log by a session (or user) id without assuming that a group's rows are
// contiguous, then orders each group by (time, tie-break, file order): sorting with the file position
// as last key makes the order stable and deterministic. Logs whose rows already come grouped and in
// time order (the usual case) skip the sort and the per-row group column (RowGrouper says how).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/vocabulary.hpp>

namespace embsr::detail {

// Session / user id -> dense group id in first-appearance order. Logs usually keep a session's rows
// together, so the previous row's id is checked first: no hash lookup, and no temporary string for
// ids too long for the small-string buffer.
class GroupIds {
 public:
  index_t id(std::string_view key) {
    if (last_ >= 0 && key == last_key_) return last_;
    last_ = ids_.add(key);
    last_key_.assign(key.data(), key.size());  // reuses capacity
    return last_;
  }
  std::size_t size() const { return static_cast<std::size_t>(ids_.size()); }
  const std::string& key(index_t g) const { return ids_.token(g); }

 private:
  Vocabulary ids_;
  std::string last_key_;
  index_t last_ = -1;
};

// Collects a log's rows and hands them back grouped and sorted. Rows are kept as columns (item,
// operation, time: 16 B a row; the tie-break only once a row has a non-zero one). Most logs already
// keep each group's rows together, groups in first-appearance order and times non-decreasing: while
// that holds, the grouper only remembers where each group starts, and for_each_group walks the
// columns as they are (no sort, no group column). The first row that breaks it (a group seen
// before, or a time going back) turns on the general path: the group column is rebuilt from the
// starts, and for_each_group sorts. Both paths give the same sessions.
class RowGrouper {
 public:
  void add(index_t group, index_t item, index_t op, double time, std::int64_t tie_break = 0) {
    const std::size_t row = items_.size();
    if (tie_break != 0 && !has_ties_) {
      ties_.assign(row, 0);
      has_ties_ = true;
    }
    if (in_order_) {
      if (group != current_) {
        if (static_cast<std::size_t>(group) == group_begin_.size()) {
          group_begin_.push_back(row);
          current_ = group;
        } else {
          materialize_groups();
        }
      } else if (time < times_.back() || (time == times_.back() && has_ties_ && tie_break < ties_.back())) {
        materialize_groups();
      }
    }
    if (!in_order_) groups_.push_back(group);
    items_.push_back(item);
    ops_.push_back(op);
    times_.push_back(time);
    if (has_ties_) ties_.push_back(tie_break);
  }
  std::size_t size() const { return items_.size(); }
  // True while the rows arrived grouped and sorted (for_each_group needs no sort).
  bool in_order() const { return in_order_; }

  // In order only: moves the columns out (rows in final order) with the first row of each group.
  // The grouper is empty afterwards.
  void take_in_order(std::vector<index_t>& items, std::vector<index_t>& ops, std::vector<double>& times,
                     std::vector<std::size_t>& group_begin) {
    if (!in_order_) throw InvalidArgument("RowGrouper::take_in_order: the rows are not in order");
    items = std::move(items_);
    ops = std::move(ops_);
    times = std::move(times_);
    group_begin = std::move(group_begin_);
    *this = RowGrouper();
  }

  // Calls f(group, Span<const MicroBehavior>) for every non-empty group, in group id order, with
  // the group's events sorted by (time, tie-break, file order). Groups are ids 0..num_groups-1.
  template <class F>
  void for_each_group(std::size_t num_groups, F&& f) {
    std::vector<MicroBehavior> events;
    if (in_order_) {
      for (std::size_t g = 0; g < group_begin_.size() && g < num_groups; ++g) {
        const std::size_t b = group_begin_[g];
        const std::size_t e = g + 1 < group_begin_.size() ? group_begin_[g + 1] : items_.size();
        events.clear();
        for (std::size_t i = b; i < e; ++i) events.push_back(MicroBehavior{items_[i], ops_[i], times_[i]});
        f(static_cast<index_t>(g), Span<const MicroBehavior>(events.data(), events.size()));
      }
      return;
    }
    // Counting sort of the row numbers by group, then a sort inside each group.
    std::vector<std::size_t> start(num_groups + 1, 0);
    for (const index_t g : groups_) ++start[static_cast<std::size_t>(g) + 1];
    for (std::size_t g = 0; g < num_groups; ++g) start[g + 1] += start[g];
    std::vector<std::size_t> order(groups_.size());
    {
      std::vector<std::size_t> fill(start.begin(), start.end() - 1);
      for (std::size_t i = 0; i < groups_.size(); ++i) order[fill[static_cast<std::size_t>(groups_[i])]++] = i;
    }
    for (std::size_t g = 0; g < num_groups; ++g) {
      const auto b = order.begin() + static_cast<std::ptrdiff_t>(start[g]);
      const auto e = order.begin() + static_cast<std::ptrdiff_t>(start[g + 1]);
      if (b == e) continue;
      std::sort(b, e, [&](std::size_t x, std::size_t y) {
        if (times_[x] != times_[y]) return times_[x] < times_[y];
        if (has_ties_ && ties_[x] != ties_[y]) return ties_[x] < ties_[y];
        return x < y;
      });
      events.clear();
      for (auto it = b; it != e; ++it) events.push_back(MicroBehavior{items_[*it], ops_[*it], times_[*it]});
      f(static_cast<index_t>(g), Span<const MicroBehavior>(events.data(), events.size()));
    }
  }

 private:
  // Leaves the in-order path: the group of every row so far, from the group starts.
  void materialize_groups() {
    in_order_ = false;
    groups_.resize(items_.size());
    for (std::size_t g = 0; g < group_begin_.size(); ++g) {
      const std::size_t e = g + 1 < group_begin_.size() ? group_begin_[g + 1] : items_.size();
      std::fill(groups_.begin() + static_cast<std::ptrdiff_t>(group_begin_[g]),
                groups_.begin() + static_cast<std::ptrdiff_t>(e), static_cast<index_t>(g));
    }
    group_begin_.clear();
    group_begin_.shrink_to_fit();
  }

  std::vector<index_t> items_, ops_;
  std::vector<double> times_;
  std::vector<std::int64_t> ties_;  // empty until a row has a non-zero tie-break
  bool has_ties_ = false;
  bool in_order_ = true;
  index_t current_ = -1;                 // in order: the group of the last row
  std::vector<std::size_t> group_begin_;  // in order: first row of each group
  std::vector<index_t> groups_;          // general path: the group of each row
};

}  // namespace embsr::detail
