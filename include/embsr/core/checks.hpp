#pragma once
// The checks every layer entry point makes, in one place:
//   - at compile time, that the first argument is a Kokkos execution space and that every View it
//     is given lives in a memory space that this execution space can access
//     (assert_accessible<ExecSpace, Views...>(), a static_assert with a readable message);
//   - at run time, that a View has the shape the layer expects (require_shape, require_length),
//     throwing InvalidArgument("<layer>: <name> is [r x c], expected [R x C]"), and that an output
//     does not share memory with an input (views_overlap).
// Shapes are written "[r x c]" (rows x columns) everywhere, as in the shape comments of the layers.

#include <cstddef>
#include <string>
#include <type_traits>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>

namespace embsr {

namespace detail {

template <class T, class = void>
struct has_memory_space : std::false_type {};
template <class T>
struct has_memory_space<T, std::void_t<typename T::memory_space>> : std::true_type {};

// Every View among Views is accessible from ExecSpace (non-View arguments are ignored).
template <class ExecSpace, class View>
constexpr bool accessible_from() {
  if constexpr (has_memory_space<View>::value)
    return Kokkos::SpaceAccessibility<ExecSpace, typename View::memory_space>::accessible;
  else
    return true;
}

}  // namespace detail

// In a layer's entry point: assert_accessible<ExecSpace, XV, YV, ...>(). Compiles to nothing.
template <class ExecSpace, class... Views>
constexpr void assert_accessible() {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value,
                "embsr layer: the first argument must be a Kokkos execution space instance");
  static_assert((detail::accessible_from<ExecSpace, Views>() && ...),
                "embsr layer: a View argument lives in a memory space that this execution space cannot access "
                "(copy it there first, e.g. with Kokkos::create_mirror_view_and_copy)");
}

// "[r x c]" for a rank-2 View, "[n]" for a rank-1 View.
template <class View>
std::string shape_of(const View& v) {
  if constexpr (View::rank == 1) return "[" + std::to_string(v.extent(0)) + "]";
  else return "[" + std::to_string(v.extent(0)) + " x " + std::to_string(v.extent(1)) + "]";
}

// Throws InvalidArgument("<who>: <what>") unless ok.
// The memory of two Views intersects (a layer that needs separate input and output buffers checks
// this at entry: an aliased output would be read after being written).
template <class A, class B>
bool views_overlap(const A& a, const B& b) {
  if (a.span() == 0 || b.span() == 0) return false;
  const auto* a0 = reinterpret_cast<const char*>(a.data());
  const auto* b0 = reinterpret_cast<const char*>(b.data());
  const auto* a1 = a0 + a.span() * sizeof(typename A::value_type);
  const auto* b1 = b0 + b.span() * sizeof(typename B::value_type);
  return a0 < b1 && b0 < a1;
}

inline void require(bool ok, const std::string& who, const std::string& what) {
  if (!ok) throw InvalidArgument(who + ": " + what);
}

// A rank-2 View of exactly rows x cols.
template <class View>
void require_shape(const std::string& who, const char* name, const View& v, std::size_t rows, std::size_t cols) {
  static_assert(View::rank == 2, "require_shape: a rank-2 View");
  if (v.extent(0) != rows || v.extent(1) != cols)
    throw InvalidArgument(who + ": " + name + " is " + shape_of(v) + ", expected [" + std::to_string(rows) + " x " +
                          std::to_string(cols) + "]");
}

// A rank-1 View of exactly n entries.
template <class View>
void require_length(const std::string& who, const char* name, const View& v, std::size_t n) {
  static_assert(View::rank == 1, "require_length: a rank-1 View");
  if (v.extent(0) != n)
    throw InvalidArgument(who + ": " + name + " is " + shape_of(v) + ", expected [" + std::to_string(n) + "]");
}

}  // namespace embsr
