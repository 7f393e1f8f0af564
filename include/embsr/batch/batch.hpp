#pragma once
// Ragged batches: B sessions packed back to back without padding, with everything the model's
// kernels index (MODEL.md sections 2-4) precomputed on the host (batch/batch_builder.hpp).
//
// Session b owns, in every family of arrays, the range [x_offsets[b], x_offsets[b+1]):
//   micro  (t_b micro-behaviors)   micro_items / micro_ops / micro_alias
//   macro  (n_b macro items)       macro_items / macro_alias / run_begin / run_end
//   node   (c_b distinct items)    node_items / node_session / node_in_offsets / node_out_offsets
//   edge   (n_b - 1 edges e_k)     edge_src / edge_dst / edge_src_macro / edge_dst_macro and the
//                                  incidence lists node_in_edges / node_out_edges
// All indices are batch-global (a node index already includes the session's node offset), so a
// kernel can run flat over micro-behaviors, macro items, nodes or edges without any lookup. Per
// session, the layout is the session's own structure shifted by its offsets: a session packs to
// the same slice (after re-basing) whatever else shares the batch.
//
// One family is batch-wide rather than per session: the step schedule of the operation-run GRU
// (layers/gru.hpp), run_order / run_step_offsets. All N runs advance step-synchronously in the
// packed layout of PyTorch's PackedSequence: run_order lists the runs by length, descending, ties
// by run index, so the runs still active at step s are the first count_s of that order, and step s
// owns the packed rows [run_step_offsets[s], run_step_offsets[s+1]) (count_s rows; the packed rows
// tile the runs' micro-behaviors).
//
// HostBatch is built on the host (BatchBuilder); Batch<MemorySpace> holds the same arrays as
// Kokkos Views and is refilled in place with copy_from() (no reallocation once large enough).
// This header depends on core/ only; batch_validator.hpp checks a batch, batch_builder.hpp builds
// one (and is the only batch header that sees the session graph).

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/types.hpp>

namespace embsr {

struct BatchSizes {
  index_t num_sessions = 0;  // B
  index_t num_micro = 0;     // T = sum of t_b
  index_t num_macro = 0;     // N = sum of n_b
  index_t num_nodes = 0;     // C = sum of c_b
  index_t num_edges = 0;     // E = sum of (n_b - 1) = N - B
  index_t max_micro = 0;     // max t_b: sizes per-session scratch (attention over t_b + 1 positions)
  index_t max_macro = 0;     // max n_b
  index_t max_nodes = 0;     // max c_b
  index_t max_edges = 0;     // max n_b - 1
};

struct HostBatch {
  // Per-session offsets, [B+1] each, starting at 0.
  std::vector<index_t> micro_offsets;  // [B+1] into the micro arrays
  std::vector<index_t> macro_offsets;  // [B+1] into the macro arrays
  std::vector<index_t> node_offsets;   // [B+1] into the node arrays
  std::vector<index_t> edge_offsets;   // [B+1] into the edge arrays
  // Micro-behaviors, in session order.
  std::vector<index_t> micro_items;  // [T] item v_i
  std::vector<index_t> micro_ops;    // [T] operation o_i
  std::vector<index_t> micro_alias;  // [T] global node of v_i
  // Macro items v^k with their operation runs.
  std::vector<index_t> macro_items;  // [N] item v^k
  std::vector<index_t> macro_alias;  // [N] global node of v^k
  std::vector<index_t> run_begin;    // [N] operation run o^k = micro range [run_begin, run_end)
  std::vector<index_t> run_end;      // [N]
  // Graph nodes (satellites u_1..u_c of each session; the star is implicit, one per session).
  std::vector<index_t> node_items;        // [C] item u_i
  std::vector<index_t> node_session;      // [C] session b of the node
  std::vector<index_t> node_in_offsets;   // [C+1] in-edges of node v: node_in_edges[node_in_offsets[v] ..
                                          //       node_in_offsets[v+1]), ascending time
  std::vector<index_t> node_in_edges;     // [E] global edge ids
  std::vector<index_t> node_out_offsets;  // [C+1] same for out-edges
  std::vector<index_t> node_out_edges;    // [E]
  // Edges e_k: v^k -> v^{k+1}, in time order within each session.
  std::vector<index_t> edge_src;        // [E] global node of v^k
  std::vector<index_t> edge_dst;        // [E] global node of v^{k+1}
  std::vector<index_t> edge_src_macro;  // [E] global macro position of v^k (its run gives h~^k)
  std::vector<index_t> edge_dst_macro;  // [E] global macro position of v^{k+1}
  // Labels.
  std::vector<index_t> targets;      // [B] item to predict
  std::vector<index_t> next_ops;     // [B] next operation o_{t+1}
  std::vector<index_t> example_ids;  // [B] index of the example in its ExampleSet
  // Step schedule of the run GRU (batch-wide, see the top of this file).
  std::vector<index_t> run_order;         // [N] packed position j -> run k (length descending, then k)
  std::vector<index_t> run_step_offsets;  // [L+1] step s owns packed rows [run_step_offsets[s], ..[s+1]);
                                          //       L = the longest run (0 for an empty batch)

  HostBatch() { clear(); }

  // Empties the batch; every vector keeps its capacity.
  void clear() {
    for_each([](const char*, std::vector<index_t>& v) { v.clear(); });
    for (auto* v : {&micro_offsets, &macro_offsets, &node_offsets, &edge_offsets, &node_in_offsets, &node_out_offsets,
                    &run_step_offsets})
      v->push_back(0);
  }

  index_t num_sessions() const { return static_cast<index_t>(targets.size()); }

  BatchSizes sizes() const {
    BatchSizes s;
    s.num_sessions = num_sessions();
    s.num_micro = micro_offsets.back();
    s.num_macro = macro_offsets.back();
    s.num_nodes = node_offsets.back();
    s.num_edges = edge_offsets.back();
    for (std::size_t b = 0; b + 1 < micro_offsets.size(); ++b) {
      s.max_micro = std::max(s.max_micro, micro_offsets[b + 1] - micro_offsets[b]);
      s.max_macro = std::max(s.max_macro, macro_offsets[b + 1] - macro_offsets[b]);
      s.max_nodes = std::max(s.max_nodes, node_offsets[b + 1] - node_offsets[b]);
      s.max_edges = std::max(s.max_edges, edge_offsets[b + 1] - edge_offsets[b]);
    }
    return s;
  }

  // f(name, array) for every array, in a fixed order.
  template <class F>
  void for_each(F&& f);
  template <class F>
  void for_each(F&& f) const;
};

namespace detail {
// f(name, a.array, b.array) for every array of two batch-like objects with HostBatch's member
// names (HostBatch, Batch<M>), in one fixed order. The single list of fields lives here.
template <class A, class B, class F>
void for_each_batch_array(A& a, B& b, F&& f) {
  f("micro_offsets", a.micro_offsets, b.micro_offsets);
  f("macro_offsets", a.macro_offsets, b.macro_offsets);
  f("node_offsets", a.node_offsets, b.node_offsets);
  f("edge_offsets", a.edge_offsets, b.edge_offsets);
  f("micro_items", a.micro_items, b.micro_items);
  f("micro_ops", a.micro_ops, b.micro_ops);
  f("micro_alias", a.micro_alias, b.micro_alias);
  f("macro_items", a.macro_items, b.macro_items);
  f("macro_alias", a.macro_alias, b.macro_alias);
  f("run_begin", a.run_begin, b.run_begin);
  f("run_end", a.run_end, b.run_end);
  f("node_items", a.node_items, b.node_items);
  f("node_session", a.node_session, b.node_session);
  f("node_in_offsets", a.node_in_offsets, b.node_in_offsets);
  f("node_in_edges", a.node_in_edges, b.node_in_edges);
  f("node_out_offsets", a.node_out_offsets, b.node_out_offsets);
  f("node_out_edges", a.node_out_edges, b.node_out_edges);
  f("edge_src", a.edge_src, b.edge_src);
  f("edge_dst", a.edge_dst, b.edge_dst);
  f("edge_src_macro", a.edge_src_macro, b.edge_src_macro);
  f("edge_dst_macro", a.edge_dst_macro, b.edge_dst_macro);
  f("targets", a.targets, b.targets);
  f("next_ops", a.next_ops, b.next_ops);
  f("example_ids", a.example_ids, b.example_ids);
  f("run_order", a.run_order, b.run_order);
  f("run_step_offsets", a.run_step_offsets, b.run_step_offsets);
}
inline constexpr std::size_t kNumBatchArrays = 26;
}  // namespace detail

template <class F>
void HostBatch::for_each(F&& f) {
  detail::for_each_batch_array(*this, *this, [&](const char* name, auto& v, auto&) { f(name, v); });
}
template <class F>
void HostBatch::for_each(F&& f) const {
  detail::for_each_batch_array(*this, *this, [&](const char* name, const auto& v, const auto&) { f(name, v); });
}

// The arrays of a HostBatch in `MemorySpace`. Each public View has exactly the length of the
// HostBatch array it mirrors; underneath, copy_from() keeps one buffer per array and only
// reallocates (with 25% headroom) when a batch outgrows it, so a training loop does not allocate
// per step. Copies of a Batch are shallow, like Views: they share those buffers.
template <class MemorySpace>
struct Batch {
  static_assert(Kokkos::is_memory_space<MemorySpace>::value, "embsr::Batch: MemorySpace must be a Kokkos memory space");
  using memory_space = MemorySpace;
  using array_type = Kokkos::View<index_t*, MemorySpace>;

  BatchSizes sizes;
  array_type micro_offsets, macro_offsets, node_offsets, edge_offsets;                     // [B+1]
  array_type micro_items, micro_ops, micro_alias;                                          // [T]
  array_type macro_items, macro_alias, run_begin, run_end;                                 // [N]
  array_type node_items, node_session;                                                     // [C]
  array_type node_in_offsets, node_out_offsets;                                            // [C+1]
  array_type node_in_edges, node_out_edges, edge_src, edge_dst, edge_src_macro, edge_dst_macro;  // [E]
  array_type targets, next_ops, example_ids;                                               // [B]
  array_type run_order;                                                                    // [N]
  array_type run_step_offsets;                                                             // [L+1]
  // Host copy of run_step_offsets, kept by copy_from: the run GRU sizes its per-step GEMMs on the
  // host, and reading them here spares a device-to-host copy (and a sync) in every forward.
  // Empty when the Views were filled some other way (the GRU then copies them back).
  std::vector<index_t> host_run_step_offsets;

  // Uploads `host` (blocking deep copies), reusing the buffers when they are large enough.
  void copy_from(const HostBatch& host) {
    sizes = host.sizes();
    host_run_step_offsets = host.run_step_offsets;
    std::size_t i = 0;
    detail::for_each_batch_array(host, *this, [&](const char* name, const std::vector<index_t>& src, array_type& dst) {
      array_type& buffer = buffers_[i++];
      const std::size_t n = src.size();
      if (buffer.extent(0) < std::max<std::size_t>(n, 1)) {
        dst = array_type();
        buffer = array_type();  // release before allocating: lower peak memory
        buffer = array_type(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("embsr::Batch::") + name),
                            std::max<std::size_t>(n + n / 4, 1));
      }
      dst = Kokkos::subview(buffer, std::make_pair(std::size_t(0), n));
      if (n > 0) {
        Kokkos::View<const index_t*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> view(src.data(), n);
        Kokkos::deep_copy(dst, view);
      }
    });
  }

  // Bytes held by the buffers (capacity, not the current batch).
  std::size_t capacity_bytes() const {
    std::size_t bytes = 0;
    for (const auto& b : buffers_) bytes += b.extent(0) * sizeof(index_t);
    return bytes;
  }

 private:
  std::array<array_type, detail::kNumBatchArrays> buffers_;
};

template <class MemorySpace>
Batch<MemorySpace> to_memory_space(const HostBatch& host) {
  Batch<MemorySpace> batch;
  batch.copy_from(host);
  return batch;
}

// The batch seen over its macro items: they stand in the place of the micro-behaviors
// (micro_offsets = macro_offsets, micro_items = macro_items, micro_alias = macro_alias, T = N,
// max_micro = max_macro), and there are no operations (micro_ops is empty). For a layer that runs
// over a session's positions and must see each macro item once and no operation (EMBSR's attention
// in the SGNN-Self variants, model/config.hpp use_attention_ops). Shares the arrays: nothing is copied.
template <class MemorySpace>
Batch<MemorySpace> batch_over_macro_items(const Batch<MemorySpace>& batch) {
  Batch<MemorySpace> view;
  detail::for_each_batch_array(view, batch, [](const char*, auto& dst, const auto& src) { dst = src; });
  view.sizes = batch.sizes;
  view.micro_offsets = batch.macro_offsets;
  view.micro_items = batch.macro_items;
  view.micro_alias = batch.macro_alias;
  view.micro_ops = typename Batch<MemorySpace>::array_type();
  view.sizes.num_micro = batch.sizes.num_macro;
  view.sizes.max_micro = batch.sizes.max_macro;
  return view;
}

// Copies a Batch back to the host (tests, debugging, the error messages of validate_batch).
template <class MemorySpace>
HostBatch to_host(const Batch<MemorySpace>& batch) {
  HostBatch host;
  detail::for_each_batch_array(host, batch, [](const char*, std::vector<index_t>& dst, const auto& src) {
    const auto mirror = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), src);
    dst.assign(mirror.data(), mirror.data() + mirror.extent(0));
  });
  return host;
}

}  // namespace embsr
