#pragma once
// Basic scalar types and a minimal non-owning span (C++17 has no std::span).

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace embsr {

using index_t = std::int32_t;   // dense item / operation ids, positions inside a batch
using offset_t = std::int64_t;  // offsets into flat dataset arrays (datasets may exceed 2^31 events)

template <class T>
class Span {
 public:
  constexpr Span() = default;
  constexpr Span(T* data, std::size_t size) : data_(data), size_(size) {}
  template <class U>
  Span(const std::vector<U>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT: implicit by design
  template <class U>
  Span(std::vector<U>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT: implicit by design

  constexpr T* data() const { return data_; }
  constexpr std::size_t size() const { return size_; }
  constexpr bool empty() const { return size_ == 0; }
  constexpr T& operator[](std::size_t i) const { return assert(i < size_), data_[i]; }
  constexpr T& front() const { return (*this)[0]; }
  constexpr T& back() const { return (*this)[size_ - 1]; }
  constexpr T* begin() const { return data_; }
  constexpr T* end() const { return data_ + size_; }
  constexpr Span subspan(std::size_t offset, std::size_t count) const {
    return assert(offset + count <= size_), Span(data_ + offset, count);
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace embsr
