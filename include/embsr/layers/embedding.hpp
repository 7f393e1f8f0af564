#pragma once
// Embedding lookup (MODEL.md 4.1: item, operation, position and relation embeddings): rows of a
// table gathered by id, and the matching scatter-add of their gradients.
//
// Ids are not checked inside the kernels (a kernel cannot throw): callers validate them once,
// where the ids are built (vocabularies, batch assembly). Shapes are checked on the host.

#include <string>
#include <type_traits>

#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/parallel.hpp>

namespace embsr {

namespace detail {

// rows [n x d] and table [V x d] agree with ids [n].
template <class TableV, class IdsV, class RowsV>
void embedding_check_shapes(const char* who, const char* rows_name, const TableV& table, const IdsV& ids,
                            const RowsV& rows) {
  static_assert(TableV::rank == 2 && IdsV::rank == 1 && RowsV::rank == 2, "embedding: table/rows are 2-D, ids 1-D");
  static_assert(std::is_integral<typename IdsV::non_const_value_type>::value, "embedding: ids must be integers");
  require_shape(who, rows_name, rows, ids.extent(0), table.extent(1));
}

}  // namespace detail

// out[n x d] = table[ids[i]]      (table [V x d], ids int32 [n]; every id in [0, V))
template <class ExecSpace, class TableV, class IdsV, class OutV>
void embedding_forward(const ExecSpace& exec, const TableV& table, const IdsV& ids, const OutV& out) {
  assert_accessible<ExecSpace, TableV, IdsV, OutV>();
  detail::embedding_check_shapes("embedding_forward", "out", table, ids, out);
  const int n = static_cast<int>(out.extent(0)), d = static_cast<int>(out.extent(1));
  if (n == 0 || d == 0) return;
  parallel_for_2d(exec, "embsr::embedding::forward", n, d,
      KOKKOS_LAMBDA(const int i, const int j) { out(i, j) = table(ids(i), j); });
}

// From out_i = table[ids_i]:  dtable[ids_i] += dout_i for every i (a scatter-add: repeated ids
// accumulate, rows no id names are left untouched). On GPUs Kokkos::atomic_add resolves the collisions;
// the work is n x d, independent of the table's size V.
// dout [n x d], dtable [V x d] (adds).
template <class ExecSpace, class IdsV, class DOutV, class DTableV>
void embedding_backward(const ExecSpace& exec, const IdsV& ids, const DOutV& dout, const DTableV& dtable) {
  assert_accessible<ExecSpace, IdsV, DOutV, DTableV>();
  detail::embedding_check_shapes("embedding_backward", "dout", dtable, ids, dout);
  using S = typename DTableV::non_const_value_type;
  const int n = static_cast<int>(dout.extent(0)), d = static_cast<int>(dout.extent(1));
  if (n == 0 || d == 0) return;
  if constexpr (host_execution_space<ExecSpace>) {
    // Host: P parts, part p owns the table rows with id % P == p and scans every input row in
    // order, so no two threads write one row, no atomics are needed (a float atomic_add is a
    // compare-and-swap loop on a CPU), and each table row sums its inputs in input order whatever P is.
    const int parts = exec.concurrency();
    Kokkos::parallel_for("embsr::embedding::backward", Kokkos::RangePolicy<ExecSpace>(exec, 0, parts),
                         KOKKOS_LAMBDA(const int part) {
                           for (int i = 0; i < n; ++i) {
                             const auto id = ids(i);
                             if (static_cast<int>(id % parts) != part) continue;
                             for (int j = 0; j < d; ++j) dtable(id, j) += static_cast<S>(dout(i, j));
                           }
                         });
  } else {
    parallel_for_2d(exec, "embsr::embedding::backward", n, d, KOKKOS_LAMBDA(const int i, const int j) {
      Kokkos::atomic_add(&dtable(ids(i), j), static_cast<S>(dout(i, j)));
    });
  }
}

}  // namespace embsr
