#pragma once
// Stable two-way map between raw tokens (item ids, operation names as they appear in the logs)
// and dense ids 0..size()-1, assigned in order of first insertion. Saved inside checkpoints later,
// so the mapping must depend only on the insertion order, never on hashing.
//
// The lookup is an open-addressing hash table of ids (linear probing, at most half full) over the
// tokens themselves, not a std::unordered_map<std::string, index_t>: a lookup hashes the
// string_view as it is, so finding a token never builds a std::string (C++17 has no heterogeneous
// unordered_map lookup), and a slot holds the first 8 bytes of its token, so that a token of up to
// 8 bytes (item ids, operation names) is found by one probe of 16-byte slots without touching the
// token's string: one cache miss where the node map took two or more. The loaders call add() once per
// event, so at 10^7 events this is the data path's hottest line.

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
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
    if ((tokens_.size() + 1) * 2 > slots_.size()) grow();
    const Key key = key_of(token);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = key.hash & mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.id < 0) {
        const auto id = static_cast<index_t>(tokens_.size());
        tokens_.emplace_back(token);
        slot = Slot{key.head, key.meta, id};
        return id;
      }
      if (matches(slot, key, token)) return slot.id;
    }
  }

  // Thread-safe for concurrent readers (no scratch state); never allocates.
  std::optional<index_t> find(std::string_view token) const {
    if (slots_.empty()) return std::nullopt;
    const Key key = key_of(token);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = key.hash & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return std::nullopt;
      if (matches(slot, key, token)) return slot.id;
    }
  }
  bool contains(std::string_view token) const { return find(token).has_value(); }

  // A hint that `token` is looked up soon: starts loading its slot from memory, so that a loader
  // that knows a whole session's tokens overlaps their cache misses. Changes nothing.
  void prefetch(std::string_view token) const {
#if defined(__GNUC__) || defined(__clang__)
    if (!slots_.empty()) __builtin_prefetch(&slots_[key_of(token).hash & (slots_.size() - 1)]);
#else
    (void)token;
#endif
  }

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
  // A slot of the table: the token's first 8 bytes (zero-padded), its meta word and its id (-1:
  // empty). meta is the length for a token of up to 8 bytes, so `head` and `meta` are the token
  // itself; for a longer token it is 32 bits of its hash with the low 4 bits set (never a length
  // 0..8), and a match is confirmed on the stored string.
  struct Slot {
    std::uint64_t head = 0;
    std::uint32_t meta = 0;
    index_t id = -1;
  };
  struct Key {
    std::uint64_t head;
    std::uint32_t meta;
    std::size_t hash;
  };
  static constexpr std::size_t kInline = 8;

  static std::uint64_t mix(std::uint64_t h) {  // MurmurHash3's 64-bit finaliser
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
  }
  static std::uint64_t seed(std::size_t length) {
    return 0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(length) + 1);
  }
  // The hash picks the slot; the ids never depend on it.
  static Key key_of(std::string_view s) {
    Key key{0, 0, 0};
    if (!s.empty()) std::memcpy(&key.head, s.data(), s.size() < kInline ? s.size() : kInline);
    if (s.size() <= kInline) {
      key.meta = static_cast<std::uint32_t>(s.size());
      key.hash = static_cast<std::size_t>(mix(seed(s.size()) ^ key.head));
      return key;
    }
    std::uint64_t h = seed(s.size()) ^ key.head;
    for (std::size_t p = kInline; p < s.size(); p += 8) {
      std::uint64_t w = 0;
      std::memcpy(&w, s.data() + p, s.size() - p < 8 ? s.size() - p : 8);
      h = mix(h) ^ w;
    }
    h = mix(h);
    key.hash = static_cast<std::size_t>(h);
    key.meta = static_cast<std::uint32_t>(h >> 32) | 0xFu;
    return key;
  }
  bool matches(const Slot& slot, const Key& key, std::string_view token) const {
    if (slot.head != key.head || slot.meta != key.meta) return false;
    return key.meta <= kInline || tokens_[static_cast<std::size_t>(slot.id)] == token;
  }

  // Doubles the table (at least 16 slots) and re-places every id (a short token is rehashed from
  // its slot, a long one from its string).
  void grow() {
    std::vector<Slot> old(slots_.empty() ? 16 : slots_.size() * 2);
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (const Slot& slot : old) {
      if (slot.id < 0) continue;
      const std::size_t hash = slot.meta <= kInline ? static_cast<std::size_t>(mix(seed(slot.meta) ^ slot.head))
                                                    : key_of(tokens_[static_cast<std::size_t>(slot.id)]).hash;
      std::size_t i = hash & mask;
      while (slots_[i].id >= 0) i = (i + 1) & mask;
      slots_[i] = slot;
    }
  }

  std::vector<std::string> tokens_;
  std::vector<Slot> slots_;  // size 0 or a power of two, at most half full
};

}  // namespace embsr
