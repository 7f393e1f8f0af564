#pragma once
// All trainable parameters of a model in one flat buffer (and one flat gradient buffer of the same
// layout): the optimizer, gradient clearing, checkpoints and the oracle export each see a single
// array, while layers see named [rows x cols] matrices (a vector is a [1 x n] entry, read with vec()).

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/model/parameter_layout.hpp>  // ParameterEntry

namespace embsr {

template <class Scalar, class MemorySpace>
class Parameters {
  static_assert(Kokkos::is_memory_space<MemorySpace>::value, "Parameters: MemorySpace must be a Kokkos memory space");

 public:
  using matrix = MatRef<Scalar, MemorySpace>;
  using vector = VecRef<Scalar, MemorySpace>;
  using flat_type = Vec<Scalar, MemorySpace>;

  // Declares a parameter; returns its id. Only before allocate().
  std::size_t add(const std::string& name, std::size_t rows, std::size_t cols) {
    if (allocated()) throw InvalidArgument("Parameters::add('" + name + "') after allocate()");
    if (index_.count(name)) throw InvalidArgument("Parameters::add: duplicate parameter '" + name + "'");
    if (rows == 0 || cols == 0) throw InvalidArgument("Parameters::add: empty parameter '" + name + "'");
    entries_.push_back(ParameterEntry{name, size_, rows, cols});
    index_.emplace(name, entries_.size() - 1);
    size_ += rows * cols;
    return entries_.size() - 1;
  }

  // Allocates values and gradients (both zero).
  void allocate() {
    values_ = flat_type("embsr::parameters", size_);
    grads_ = flat_type("embsr::gradients", size_);
  }
  bool allocated() const { return values_.extent(0) == size_ && size_ > 0; }

  std::size_t id(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw InvalidArgument("Parameters: no parameter named '" + name + "'");
    return it->second;
  }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const ParameterEntry& entry(std::size_t id) const { return entries_.at(id); }
  const std::vector<ParameterEntry>& entries() const { return entries_; }
  std::size_t size() const { return size_; }  // number of scalars

  matrix value(std::size_t id) const { return slice(values_, id); }
  matrix grad(std::size_t id) const { return slice(grads_, id); }
  vector value_vec(std::size_t id) const { return vector(values_.data() + entries_.at(id).offset, entries_.at(id).size()); }
  vector grad_vec(std::size_t id) const { return vector(grads_.data() + entries_.at(id).offset, entries_.at(id).size()); }

  const flat_type& values() const { return values_; }
  const flat_type& grads() const { return grads_; }

  void zero_grads() const { Kokkos::deep_copy(grads_, Scalar(0)); }

 private:
  matrix slice(const flat_type& flat, std::size_t id) const {
    const auto& e = entries_.at(id);
    if (!allocated()) throw InvalidArgument("Parameters: '" + e.name + "' read before allocate()");
    return matrix(flat.data() + e.offset, e.rows, e.cols);
  }

  std::vector<ParameterEntry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
  std::size_t size_ = 0;
  flat_type values_, grads_;
};

}  // namespace embsr
