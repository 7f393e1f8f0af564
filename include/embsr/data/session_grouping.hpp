#pragma once
// Groups the rows of a log by a session (or user) id without assuming that a group's rows are
// contiguous, then orders each group by (time, tie-break, file order): sorting with the file position
// as last key makes the order stable and deterministic.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

class RowGrouper {
 public:
  void add(index_t group, index_t item, index_t op, double time, std::int64_t tie_break = 0) {
    rows_.push_back(Row{time, tie_break, static_cast<std::uint64_t>(rows_.size()), group, item, op});
  }
  std::size_t size() const { return rows_.size(); }

  // Calls f(group, Span<const MicroBehavior>) for every non-empty group, in group id order, with
  // the group's events sorted. Groups are ids 0..num_groups-1.
  template <class F>
  void for_each_group(std::size_t num_groups, F&& f) {
    // Counting sort by group, then a sort inside each group.
    std::vector<std::size_t> start(num_groups + 1, 0);
    for (const Row& r : rows_) ++start[static_cast<std::size_t>(r.group) + 1];
    for (std::size_t g = 0; g < num_groups; ++g) start[g + 1] += start[g];
    std::vector<Row> sorted(rows_.size());
    {
      std::vector<std::size_t> fill(start.begin(), start.end() - 1);
      for (const Row& r : rows_) sorted[fill[static_cast<std::size_t>(r.group)]++] = r;
    }
    std::vector<MicroBehavior> events;
    for (std::size_t g = 0; g < num_groups; ++g) {
      const auto b = sorted.begin() + static_cast<std::ptrdiff_t>(start[g]);
      const auto e = sorted.begin() + static_cast<std::ptrdiff_t>(start[g + 1]);
      if (b == e) continue;
      std::sort(b, e, [](const Row& x, const Row& y) {
        if (x.time != y.time) return x.time < y.time;
        if (x.tie_break != y.tie_break) return x.tie_break < y.tie_break;
        return x.seq < y.seq;
      });
      events.clear();
      for (auto it = b; it != e; ++it) events.push_back(MicroBehavior{it->item, it->op, it->time});
      f(static_cast<index_t>(g), Span<const MicroBehavior>(events.data(), events.size()));
    }
  }

 private:
  struct Row {
    double time;
    std::int64_t tie_break;
    std::uint64_t seq;  // file order
    index_t group;
    index_t item;
    index_t op;
  };
  std::vector<Row> rows_;
};

}  // namespace embsr::detail
