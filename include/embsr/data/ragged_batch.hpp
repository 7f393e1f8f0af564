#pragma once
// Ragged batches: B sessions packed back to back without padding, with everything the model's
// kernels index (MODEL.md sections 2-4) precomputed on the host.
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
// HostBatch is built on the host (BatchBuilder); Batch<MemorySpace> holds the same arrays as
// Kokkos Views and is refilled in place with copy_from() (no reallocation once large enough).
// BatchSampler gives reproducible per-epoch orders with the portable shuffle of core/random.hpp.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/random.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/data/session_structure.hpp>
#include <embsr/graph/session_multigraph.hpp>

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

  HostBatch() { clear(); }

  // Empties the batch; every vector keeps its capacity.
  void clear() {
    for_each([](const char*, std::vector<index_t>& v) { v.clear(); });
    for (auto* v : {&micro_offsets, &macro_offsets, &node_offsets, &edge_offsets, &node_in_offsets, &node_out_offsets})
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

namespace batch_detail {
// f(name, a.array, b.array) for every array of two batch-like objects with HostBatch's member
// names (HostBatch, Batch<M>), in one fixed order. The single list of fields lives here.
template <class A, class B, class F>
void for_each_array(A& a, B& b, F&& f) {
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
}
inline constexpr std::size_t kNumArrays = 24;
}  // namespace batch_detail

template <class F>
void HostBatch::for_each(F&& f) {
  batch_detail::for_each_array(*this, *this, [&](const char* name, auto& v, auto&) { f(name, v); });
}
template <class F>
void HostBatch::for_each(F&& f) const {
  batch_detail::for_each_array(*this, *this, [&](const char* name, const auto& v, const auto&) { f(name, v); });
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
  // Host copies of run_begin / run_end, kept by copy_from: the run GRU schedules its time steps on
  // the host, and reading them here spares a device-to-host copy (and a sync) inside every step.
  // Empty when the Views were filled some other way (the GRU then copies them back).
  std::vector<index_t> host_run_begin, host_run_end;

  // Uploads `host` (blocking deep copies), reusing the buffers when they are large enough.
  void copy_from(const HostBatch& host) {
    sizes = host.sizes();
    host_run_begin = host.run_begin;
    host_run_end = host.run_end;
    std::size_t i = 0;
    batch_detail::for_each_array(host, *this, [&](const char* name, const std::vector<index_t>& src, array_type& dst) {
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
  std::array<array_type, batch_detail::kNumArrays> buffers_;
};

template <class MemorySpace>
Batch<MemorySpace> to_memory_space(const HostBatch& host) {
  Batch<MemorySpace> batch;
  batch.copy_from(host);
  return batch;
}

// Copies a Batch back to the host (tests, debugging, validate_batch of a device batch).
template <class MemorySpace>
HostBatch to_host(const Batch<MemorySpace>& batch) {
  HostBatch host;
  batch_detail::for_each_array(host, batch, [](const char*, std::vector<index_t>& dst, const auto& src) {
    const auto mirror = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), src);
    dst.assign(mirror.data(), mirror.data() + mirror.extent(0));
  });
  return host;
}

// Packs examples into a HostBatch. Holds the per-session scratch (SessionStructure, the Boost
// graph, its lowering), so one builder per thread, reused: in steady state, building allocates
// nothing.
class BatchBuilder {
 public:
  // Clears `out` and packs examples ids[0], ids[1], ... of `set` into it, in that order.
  void build(const ExampleSet& set, Span<const index_t> ids, HostBatch& out) {
    out.clear();
    for (const index_t id : ids) append(set, id, out);
  }
  HostBatch build(const ExampleSet& set, Span<const index_t> ids) {
    HostBatch out;
    build(set, ids, out);
    return out;
  }

  // Appends example `id` of `set` as the next session of `out`.
  void append(const ExampleSet& set, index_t id, HostBatch& out) {
    if (id < 0 || static_cast<std::size_t>(id) >= set.size())
      throw InvalidArgument("BatchBuilder: example id " + std::to_string(id) + " outside [0, " +
                            std::to_string(set.size()) + ")");
    const auto e = static_cast<std::size_t>(id);
    const Span<const index_t> items = set.input_items(e);
    const Span<const index_t> ops = set.input_ops(e);
    structure_.compute(items);
    graph_.build_lowered(structure_, lowered_);

    const std::size_t t = items.size();
    const std::size_t n = structure_.num_macro();
    const std::size_t c = structure_.num_distinct();
    const std::size_t m = n - 1;
    if (static_cast<std::uint64_t>(out.micro_offsets.back()) + t >
        static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()))
      throw InvalidArgument("BatchBuilder: batch exceeds 2^31 - 1 micro-behaviors");
    const index_t micro_base = out.micro_offsets.back();
    const index_t macro_base = out.macro_offsets.back();
    const index_t node_base = out.node_offsets.back();
    const index_t edge_base = out.edge_offsets.back();
    const auto session = static_cast<index_t>(out.targets.size());

    index_t* p = grow(out.micro_items, t);
    for (std::size_t i = 0; i < t; ++i) p[i] = items[i];
    p = grow(out.micro_ops, t);
    for (std::size_t i = 0; i < t; ++i) p[i] = ops[i];
    shifted(out.micro_alias, structure_.micro_alias(), node_base);

    shifted(out.macro_items, structure_.macro_items(), 0);
    shifted(out.macro_alias, structure_.macro_alias(), node_base);
    shifted(out.run_begin, structure_.run_begin(), micro_base);
    shifted(out.run_end, structure_.run_end(), micro_base);

    shifted(out.node_items, lowered_.node_items, 0);
    p = grow(out.node_session, c);
    for (std::size_t i = 0; i < c; ++i) p[i] = session;
    shifted_tail(out.node_in_offsets, lowered_.in_offsets, edge_base);
    shifted(out.node_in_edges, lowered_.in_edges, edge_base);
    shifted_tail(out.node_out_offsets, lowered_.out_offsets, edge_base);
    shifted(out.node_out_edges, lowered_.out_edges, edge_base);

    shifted(out.edge_src, lowered_.edge_src, node_base);
    shifted(out.edge_dst, lowered_.edge_dst, node_base);
    shifted(out.edge_src_macro, lowered_.edge_src_macro, macro_base);
    shifted(out.edge_dst_macro, lowered_.edge_dst_macro, macro_base);

    out.targets.push_back(set.targets[e]);
    out.next_ops.push_back(set.next_ops[e]);
    out.example_ids.push_back(id);
    out.micro_offsets.push_back(micro_base + static_cast<index_t>(t));
    out.macro_offsets.push_back(macro_base + static_cast<index_t>(n));
    out.node_offsets.push_back(node_base + static_cast<index_t>(c));
    out.edge_offsets.push_back(edge_base + static_cast<index_t>(m));
  }

 private:
  static index_t* grow(std::vector<index_t>& v, std::size_t count) {
    const std::size_t old = v.size();
    v.resize(old + count);
    return v.data() + old;
  }
  static void shifted(std::vector<index_t>& dst, const std::vector<index_t>& src, index_t shift) {
    index_t* p = grow(dst, src.size());
    for (std::size_t i = 0; i < src.size(); ++i) p[i] = src[i] + shift;
  }
  // Local CSR offsets [c+1] appended after the batch's last offset (their leading 0 is dropped).
  static void shifted_tail(std::vector<index_t>& dst, const std::vector<index_t>& src, index_t shift) {
    index_t* p = grow(dst, src.size() - 1);
    for (std::size_t i = 1; i < src.size(); ++i) p[i - 1] = src[i] + shift;
  }

  SessionStructure structure_;
  SessionMultigraphBuilder graph_;
  LoweredGraph lowered_;
};

// Splits 0..num_examples-1 into batches of batch_size (the last one may be smaller). With
// shuffling, epoch e's order is the Fisher-Yates shuffle of the identity under Rng(seed, e): it
// depends only on (seed, e, num_examples), not on earlier epochs or the platform.
class BatchSampler {
 public:
  BatchSampler(std::size_t num_examples, std::size_t batch_size, bool shuffle, std::uint64_t seed)
      : batch_size_(batch_size), shuffle_(shuffle), seed_(seed) {
    if (batch_size == 0) throw InvalidArgument("BatchSampler: batch_size must be >= 1");
    if (num_examples > static_cast<std::size_t>(std::numeric_limits<index_t>::max()))
      throw InvalidArgument("BatchSampler: more than 2^31 - 1 examples");
    order_.resize(num_examples);
    set_epoch(0);
  }

  // Reorders for epoch `epoch` (identity order when not shuffling).
  void set_epoch(std::uint64_t epoch) {
    epoch_ = epoch;
    for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<index_t>(i);
    if (shuffle_) {
      Rng rng(seed_, epoch);
      shuffle(Span<index_t>(order_), rng);
    }
  }

  std::uint64_t epoch() const { return epoch_; }
  std::size_t num_examples() const { return order_.size(); }
  std::size_t batch_size() const { return batch_size_; }
  std::size_t num_batches() const { return (order_.size() + batch_size_ - 1) / batch_size_; }
  const std::vector<index_t>& order() const { return order_; }  // [num_examples] this epoch's order

  // Example ids of batch b of the current epoch.
  Span<const index_t> batch(std::size_t b) const {
    if (b >= num_batches())
      throw InvalidArgument("BatchSampler: batch " + std::to_string(b) + " outside [0, " +
                            std::to_string(num_batches()) + ")");
    const std::size_t begin = b * batch_size_;
    return Span<const index_t>(order_.data() + begin, std::min(batch_size_, order_.size() - begin));
  }

 private:
  std::size_t batch_size_;
  bool shuffle_;
  std::uint64_t seed_;
  std::uint64_t epoch_ = 0;
  std::vector<index_t> order_;
};

namespace batch_detail {
[[noreturn]] inline void fail_batch(const std::string& field, const std::string& what) {
  throw InvalidArgument("validate_batch: field '" + field + "': " + what);
}
[[noreturn]] inline void fail_session(std::size_t b, index_t example, const std::string& field,
                                      const std::string& what) {
  throw InvalidArgument("validate_batch: session " + std::to_string(b) + " (example " + std::to_string(example) +
                        "), field '" + field + "': " + what);
}
inline std::string range_text(std::int64_t value, std::int64_t lo, std::int64_t hi) {
  return std::to_string(value) + " outside [" + std::to_string(lo) + ", " + std::to_string(hi) + ")";
}
}  // namespace batch_detail

// Checks every structural invariant of a batch and that item / operation ids lie in
// [0, num_items) / [0, num_ops). Throws InvalidArgument naming the session (position and example
// id) and the field; problems with the batch as a whole (array lengths) name the field only.
inline void validate_batch(const HostBatch& h, index_t num_items, index_t num_ops) {
  using batch_detail::fail_batch;
  using batch_detail::fail_session;
  using batch_detail::range_text;
  const std::size_t B = h.targets.size();
  auto expect_size = [](const char* field, const std::vector<index_t>& v, std::size_t n, const char* what) {
    if (v.size() != n)
      fail_batch(field, "has " + std::to_string(v.size()) + " entries, expected " + std::to_string(n) + " (" + what + ")");
  };
  expect_size("next_ops", h.next_ops, B, "one per session");
  expect_size("example_ids", h.example_ids, B, "one per session");
  for (const auto* f : {&h.micro_offsets, &h.macro_offsets, &h.node_offsets, &h.edge_offsets}) {
    const char* name = f == &h.micro_offsets   ? "micro_offsets"
                       : f == &h.macro_offsets ? "macro_offsets"
                       : f == &h.node_offsets  ? "node_offsets"
                                               : "edge_offsets";
    expect_size(name, *f, B + 1, "sessions + 1");
    if ((*f)[0] != 0) fail_batch(name, "does not start at 0");
  }

  // Per-session counts: non-empty sessions, monotone offsets, n_b - 1 edges.
  for (std::size_t b = 0; b < B; ++b) {
    const index_t ex = h.example_ids[b];
    const index_t t = h.micro_offsets[b + 1] - h.micro_offsets[b];
    const index_t n = h.macro_offsets[b + 1] - h.macro_offsets[b];
    const index_t c = h.node_offsets[b + 1] - h.node_offsets[b];
    const index_t m = h.edge_offsets[b + 1] - h.edge_offsets[b];
    if (t <= 0) fail_session(b, ex, "micro_offsets", "session has " + std::to_string(t) + " micro-behaviors");
    if (n <= 0 || n > t)
      fail_session(b, ex, "macro_offsets", std::to_string(n) + " macro items for " + std::to_string(t) + " micro-behaviors");
    if (c <= 0 || c > n)
      fail_session(b, ex, "node_offsets", std::to_string(c) + " nodes for " + std::to_string(n) + " macro items");
    if (m != n - 1)
      fail_session(b, ex, "edge_offsets", std::to_string(m) + " edges for " + std::to_string(n) + " macro items");
  }
  const auto T = static_cast<std::size_t>(h.micro_offsets[B]);
  const auto N = static_cast<std::size_t>(h.macro_offsets[B]);
  const auto C = static_cast<std::size_t>(h.node_offsets[B]);
  const auto E = static_cast<std::size_t>(h.edge_offsets[B]);
  expect_size("micro_items", h.micro_items, T, "micro_offsets.back()");
  expect_size("micro_ops", h.micro_ops, T, "micro_offsets.back()");
  expect_size("micro_alias", h.micro_alias, T, "micro_offsets.back()");
  expect_size("macro_items", h.macro_items, N, "macro_offsets.back()");
  expect_size("macro_alias", h.macro_alias, N, "macro_offsets.back()");
  expect_size("run_begin", h.run_begin, N, "macro_offsets.back()");
  expect_size("run_end", h.run_end, N, "macro_offsets.back()");
  expect_size("node_items", h.node_items, C, "node_offsets.back()");
  expect_size("node_session", h.node_session, C, "node_offsets.back()");
  expect_size("node_in_offsets", h.node_in_offsets, C + 1, "node_offsets.back() + 1");
  expect_size("node_out_offsets", h.node_out_offsets, C + 1, "node_offsets.back() + 1");
  expect_size("node_in_edges", h.node_in_edges, E, "edge_offsets.back()");
  expect_size("node_out_edges", h.node_out_edges, E, "edge_offsets.back()");
  expect_size("edge_src", h.edge_src, E, "edge_offsets.back()");
  expect_size("edge_dst", h.edge_dst, E, "edge_offsets.back()");
  expect_size("edge_src_macro", h.edge_src_macro, E, "edge_offsets.back()");
  expect_size("edge_dst_macro", h.edge_dst_macro, E, "edge_offsets.back()");

  for (std::size_t b = 0; b < B; ++b) {
    const index_t ex = h.example_ids[b];
    const index_t m0 = h.micro_offsets[b], m1 = h.micro_offsets[b + 1];
    const index_t k0 = h.macro_offsets[b], k1 = h.macro_offsets[b + 1];
    const index_t c0 = h.node_offsets[b], c1 = h.node_offsets[b + 1];
    const index_t e0 = h.edge_offsets[b], e1 = h.edge_offsets[b + 1];
    auto in = [](index_t v, index_t lo, index_t hi) { return v >= lo && v < hi; };
    auto check = [&](bool ok, const char* field, index_t at, const std::string& what) {
      if (!ok) fail_session(b, ex, field, "entry " + std::to_string(at) + ": " + what);
    };

    if (!in(h.targets[b], 0, num_items)) fail_session(b, ex, "targets", "item " + range_text(h.targets[b], 0, num_items));
    if (!in(h.next_ops[b], 0, num_ops)) fail_session(b, ex, "next_ops", "operation " + range_text(h.next_ops[b], 0, num_ops));

    for (index_t v = c0; v < c1; ++v) {
      const auto i = static_cast<std::size_t>(v);
      check(in(h.node_items[i], 0, num_items), "node_items", v, "item " + range_text(h.node_items[i], 0, num_items));
      check(h.node_session[i] == static_cast<index_t>(b), "node_session", v,
            "is " + std::to_string(h.node_session[i]) + ", expected " + std::to_string(b));
    }
    for (index_t i = m0; i < m1; ++i) {
      const auto u = static_cast<std::size_t>(i);
      check(in(h.micro_items[u], 0, num_items), "micro_items", i, "item " + range_text(h.micro_items[u], 0, num_items));
      check(in(h.micro_ops[u], 0, num_ops), "micro_ops", i, "operation " + range_text(h.micro_ops[u], 0, num_ops));
      check(in(h.micro_alias[u], c0, c1), "micro_alias", i, "node " + range_text(h.micro_alias[u], c0, c1));
      check(h.node_items[static_cast<std::size_t>(h.micro_alias[u])] == h.micro_items[u], "micro_alias", i,
            "points to a node of another item");
    }
    for (index_t k = k0; k < k1; ++k) {
      const auto u = static_cast<std::size_t>(k);
      check(in(h.macro_items[u], 0, num_items), "macro_items", k, "item " + range_text(h.macro_items[u], 0, num_items));
      check(k == k0 || h.macro_items[u] != h.macro_items[u - 1], "macro_items", k, "equals the previous macro item");
      check(in(h.macro_alias[u], c0, c1), "macro_alias", k, "node " + range_text(h.macro_alias[u], c0, c1));
      check(h.node_items[static_cast<std::size_t>(h.macro_alias[u])] == h.macro_items[u], "macro_alias", k,
            "points to a node of another item");
      const index_t expected_begin = k == k0 ? m0 : h.run_end[u - 1];
      check(h.run_begin[u] == expected_begin, "run_begin", k,
            "is " + std::to_string(h.run_begin[u]) + ", expected " + std::to_string(expected_begin) +
                " (runs must tile the session's micro-behaviors)");
      check(h.run_end[u] > h.run_begin[u] && h.run_end[u] <= m1, "run_end", k,
            "is " + std::to_string(h.run_end[u]) + " for a run starting at " + std::to_string(h.run_begin[u]) +
                " in a session ending at " + std::to_string(m1));
      for (index_t i = h.run_begin[u]; i < h.run_end[u]; ++i)
        check(h.micro_items[static_cast<std::size_t>(i)] == h.macro_items[u], "run_begin", k,
              "run covers micro-behavior " + std::to_string(i) + " of another item");
    }
    check(h.run_end[static_cast<std::size_t>(k1 - 1)] == m1, "run_end", k1 - 1, "last run does not end the session");
    for (index_t e = e0; e < e1; ++e) {
      const auto u = static_cast<std::size_t>(e);
      check(in(h.edge_src_macro[u], k0, k1 - 1), "edge_src_macro", e, "macro " + range_text(h.edge_src_macro[u], k0, k1 - 1));
      check(h.edge_src_macro[u] == k0 + (e - e0), "edge_src_macro", e, "edges must be in time order");
      check(h.edge_dst_macro[u] == h.edge_src_macro[u] + 1, "edge_dst_macro", e, "must be edge_src_macro + 1");
      check(h.edge_src[u] == h.macro_alias[static_cast<std::size_t>(h.edge_src_macro[u])], "edge_src", e,
            "is not the node of its source macro item");
      check(h.edge_dst[u] == h.macro_alias[static_cast<std::size_t>(h.edge_dst_macro[u])], "edge_dst", e,
            "is not the node of its destination macro item");
    }
    // Incidence lists: per node, a contiguous ascending run of the session's edges that end
    // (in) or start (out) at that node, covering the session's edges.
    auto check_csr = [&](const char* offsets_name, const std::vector<index_t>& offsets, const char* edges_name,
                         const std::vector<index_t>& edges, const std::vector<index_t>& endpoint) {
      check(offsets[static_cast<std::size_t>(c0)] == e0, offsets_name, c0, "does not start at the session's first edge");
      check(offsets[static_cast<std::size_t>(c1)] == e1, offsets_name, c1, "does not end at the session's last edge");
      for (index_t v = c0; v < c1; ++v) {
        const index_t lo = offsets[static_cast<std::size_t>(v)], hi = offsets[static_cast<std::size_t>(v) + 1];
        check(lo <= hi && lo >= e0 && hi <= e1, offsets_name, v + 1,
              "range [" + std::to_string(lo) + ", " + std::to_string(hi) + ") is not inside the session's edges [" +
                  std::to_string(e0) + ", " + std::to_string(e1) + ")");
        for (index_t j = lo; j < hi; ++j) {
          const index_t edge = edges[static_cast<std::size_t>(j)];
          check(in(edge, e0, e1), edges_name, j, "edge " + range_text(edge, e0, e1));
          check(endpoint[static_cast<std::size_t>(edge)] == v, edges_name, j, "edge is not incident to its node");
          check(j == lo || edges[static_cast<std::size_t>(j) - 1] < edge, edges_name, j, "edges not in ascending order");
        }
      }
    };
    check_csr("node_in_offsets", h.node_in_offsets, "node_in_edges", h.node_in_edges, h.edge_dst);
    check_csr("node_out_offsets", h.node_out_offsets, "node_out_edges", h.node_out_edges, h.edge_src);
  }
}

}  // namespace embsr
