#pragma once
// Stable two-way map between raw tokens (item ids, operation names as they appear in the logs)
// and dense ids 0..size()-1, assigned in order of first insertion. Saved inside checkpoints later,
// so the mapping must depend only on the insertion order, never on hashing.

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>

namespace embsr {

class Vocabulary {
 public:
  Vocabulary() = default;
  explicit Vocabulary(const std::vector<std::string>& tokens) {
    for (const auto& t : tokens) {
      if (find(t)) throw InvalidArgument("Vocabulary: duplicate token '" + t + "'");
      add(t);
    }
  }

  // Returns the id of `token`, inserting it if new.
  index_t add(std::string_view token) {
    std::string key(token);
    auto it = ids_.find(key);
    if (it != ids_.end()) return it->second;
    const auto id = static_cast<index_t>(tokens_.size());
    tokens_.push_back(key);
    ids_.emplace(std::move(key), id);
    return id;
  }

  // Thread-safe for concurrent readers (no scratch state); short tokens stay in SSO, no allocation.
  std::optional<index_t> find(std::string_view token) const {
    auto it = ids_.find(std::string(token));
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  bool contains(std::string_view token) const { return find(token).has_value(); }

  const std::string& token(index_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size())
      throw InvalidArgument("Vocabulary: id " + std::to_string(id) + " out of range [0, " +
                            std::to_string(tokens_.size()) + ")");
    return tokens_[static_cast<std::size_t>(id)];
  }
  const std::vector<std::string>& tokens() const { return tokens_; }
  index_t size() const { return static_cast<index_t>(tokens_.size()); }
  bool empty() const { return tokens_.empty(); }

  friend bool operator==(const Vocabulary& a, const Vocabulary& b) { return a.tokens_ == b.tokens_; }
  friend bool operator!=(const Vocabulary& a, const Vocabulary& b) { return !(a == b); }

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, index_t> ids_;
};

}  // namespace embsr
