#pragma once
// Structure of one input session (MODEL.md section 1): macro items (consecutive micro-behaviors on
// the same item merged) with their operation runs, the distinct items u_1..u_c in order of first
// occurrence, and the alias of every micro and macro position into u_1..u_c.
//
// compute() is called once per session while batching, so it writes into buffers kept between
// calls: after the first few sessions it never allocates. Distinct items are found by a linear
// scan while c is small (the common case: c <= L = 50 and usually < 10) and by a stamped
// open-addressing table once c grows past kLinearScanLimit, so long sessions stay O(t).

#include <cstddef>
#include <cstdint>
#include <vector>

#include <embsr/core/types.hpp>

namespace embsr {

class SessionStructure {
 public:
  // Up to this many distinct items a linear scan beats hashing.
  static constexpr std::size_t kLinearScanLimit = 16;

  // Recomputes everything for the micro item sequence `items` (t = items.size() >= 0).
  void compute(Span<const index_t> items) {
    const std::size_t t = items.size();
    macro_items_.clear();
    run_begin_.clear();
    run_end_.clear();
    distinct_.clear();
    micro_alias_.clear();
    macro_alias_.clear();
    hashing_ = false;
    if (t > kLinearScanLimit) prepare_table(t);

    for (std::size_t i = 0; i < t; ++i) {
      const index_t item = items[i];
      if (i == 0 || item != items[i - 1]) {  // a new macro item starts here
        if (i > 0) run_end_.push_back(static_cast<index_t>(i));
        macro_items_.push_back(item);
        run_begin_.push_back(static_cast<index_t>(i));
        macro_alias_.push_back(find_or_add(item));
      }
      micro_alias_.push_back(macro_alias_.back());
    }
    if (t > 0) run_end_.push_back(static_cast<index_t>(t));
  }

  std::size_t num_micro() const { return micro_alias_.size(); }      // t
  std::size_t num_macro() const { return macro_items_.size(); }      // n
  std::size_t num_distinct() const { return distinct_.size(); }      // c

  const std::vector<index_t>& macro_items() const { return macro_items_; }  // [n] v^1..v^n
  // [n] operation run of macro k = micro positions [run_begin[k], run_end[k]); runs tile [0, t)
  const std::vector<index_t>& run_begin() const { return run_begin_; }
  const std::vector<index_t>& run_end() const { return run_end_; }
  const std::vector<index_t>& distinct() const { return distinct_; }        // [c] u_1..u_c
  const std::vector<index_t>& micro_alias() const { return micro_alias_; }  // [t] index into distinct
  const std::vector<index_t>& macro_alias() const { return macro_alias_; }  // [n] index into distinct

 private:
  index_t find_or_add(index_t item) {
    if (!hashing_) {
      for (std::size_t i = 0; i < distinct_.size(); ++i)
        if (distinct_[i] == item) return static_cast<index_t>(i);
      const auto id = static_cast<index_t>(distinct_.size());
      distinct_.push_back(item);
      if (distinct_.size() > kLinearScanLimit) {  // switch: move what we have into the table
        hashing_ = true;
        for (std::size_t i = 0; i < distinct_.size(); ++i) insert(distinct_[i], static_cast<index_t>(i));
      }
      return id;
    }
    std::size_t slot = home(item);
    while (stamp_[slot] == generation_) {
      if (slot_item_[slot] == item) return slot_id_[slot];
      slot = (slot + 1) & mask_;
    }
    const auto id = static_cast<index_t>(distinct_.size());
    distinct_.push_back(item);
    occupy(slot, item, id);
    return id;
  }

  void insert(index_t item, index_t id) {
    std::size_t slot = home(item);
    while (stamp_[slot] == generation_) slot = (slot + 1) & mask_;
    occupy(slot, item, id);
  }
  void occupy(std::size_t slot, index_t item, index_t id) {
    stamp_[slot] = generation_;
    slot_item_[slot] = item;
    slot_id_[slot] = id;
  }
  std::size_t home(index_t item) const {
    return static_cast<std::size_t>((static_cast<std::uint32_t>(item) * 0x9e3779b1U) >> shift_) & mask_;
  }

  // Table of at least 2t slots (load <= 1/2). A new generation stamp empties it in O(1); the
  // stamps are only rewritten when the table grows or the 32-bit generation wraps.
  void prepare_table(std::size_t t) {
    std::size_t capacity = 64;
    unsigned bits = 6;
    while (capacity < 2 * t) {
      capacity *= 2;
      ++bits;
    }
    if (capacity > stamp_.size()) {
      stamp_.assign(capacity, 0);
      slot_item_.resize(capacity);
      slot_id_.resize(capacity);
      generation_ = 0;
    }
    if (++generation_ == 0) {
      stamp_.assign(stamp_.size(), 0);
      generation_ = 1;
    }
    mask_ = capacity - 1;
    shift_ = 32 - bits;
  }

  std::vector<index_t> macro_items_, run_begin_, run_end_, distinct_, micro_alias_, macro_alias_;
  bool hashing_ = false;
  std::vector<std::uint32_t> stamp_;
  std::vector<index_t> slot_item_, slot_id_;
  std::uint32_t generation_ = 0;
  std::size_t mask_ = 0;
  unsigned shift_ = 0;
};

}  // namespace embsr
