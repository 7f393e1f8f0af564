#pragma once
// Array conventions of the model code: every tensor is a Kokkos::View in LayoutRight (row-major,
// so a [n x d] matrix is n contiguous rows, as Eigen's RowMajor and PyTorch expect), living in the
// memory space of the execution space that runs the kernels.

#include <cstddef>
#include <string>
#include <utility>

#include <Kokkos_Core.hpp>

namespace embsr {

template <class Scalar, class MemorySpace>
using Vec = Kokkos::View<Scalar*, Kokkos::LayoutRight, MemorySpace>;
template <class Scalar, class MemorySpace>
using Mat = Kokkos::View<Scalar**, Kokkos::LayoutRight, MemorySpace>;

// Unmanaged views into memory owned elsewhere (parameter slices, workspace slices).
template <class Scalar, class MemorySpace>
using VecRef = Kokkos::View<Scalar*, Kokkos::LayoutRight, MemorySpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
template <class Scalar, class MemorySpace>
using MatRef = Kokkos::View<Scalar**, Kokkos::LayoutRight, MemorySpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

// Grows `v` to at least n x m (keeping it when large enough) and returns the leading n x m block.
// Activation caches use this so that a training loop allocates only while batches grow.
template <class Scalar, class MemorySpace>
MatRef<Scalar, MemorySpace> ensure(Mat<Scalar, MemorySpace>& storage, std::size_t n, std::size_t m,
                                   const std::string& label) {
  if (storage.extent(0) * storage.extent(1) < n * m || storage.extent(1) != m) {
    const std::size_t rows = n + n / 4 + 1;
    storage = Mat<Scalar, MemorySpace>(Kokkos::view_alloc(label, Kokkos::WithoutInitializing), rows, m);
  }
  return MatRef<Scalar, MemorySpace>(storage.data(), n, m);
}
template <class Scalar, class MemorySpace>
VecRef<Scalar, MemorySpace> ensure(Vec<Scalar, MemorySpace>& storage, std::size_t n, const std::string& label) {
  if (storage.extent(0) < n)
    storage = Vec<Scalar, MemorySpace>(Kokkos::view_alloc(label, Kokkos::WithoutInitializing), n + n / 4 + 1);
  return VecRef<Scalar, MemorySpace>(storage.data(), n);
}

// The same for a 1-D View of any layout (the integer index arrays of the caches: row -> session,
// score offsets, token ids): grows `storage` to at least n and returns its leading n, as a subview.
template <class T, class... Props>
Kokkos::View<T*, Props...> ensure_prefix(Kokkos::View<T*, Props...>& storage, std::size_t n, const std::string& label) {
  using View = Kokkos::View<T*, Props...>;
  if (storage.extent(0) < n) {
    storage = View();  // free the old one first: the peak is one array, not two
    storage = View(Kokkos::view_alloc(label, Kokkos::WithoutInitializing), n + n / 4 + 1);
  }
  return Kokkos::subview(storage, std::make_pair(std::size_t(0), n));
}

}  // namespace embsr
