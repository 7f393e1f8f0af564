#pragma once
// The one batch validator: every structural invariant of a ragged batch (batch/batch.hpp) and
// the limits of its consumer (id ranges, session length), on a Batch in any memory space or on a
// HostBatch, with one set of checks.
//
//   validate_batch(exec, batch, limits, who)   a Batch<M>: the checks run as one kernel on `exec`
//                                              (a parallel_reduce finding the first problem); only
//                                              when there is one is the batch copied back to name it
//   validate_batch(host_batch, limits, who)    a HostBatch: the same checks on the host
//   validate_batch(host_batch, items, ops)     the same with num_items / num_ops only
//
// Problems are found in this order, and the first one throws InvalidArgument:
//   1. array lengths (against the batch's sizes):  "<who>: batch: <field>: has 8 entries, expected 9 (..)"
//   2. the lowest session with a problem, and its first problem in the order of check_session:
//        "<who>: batch session 3 (example 17): micro_items: item id 9 at position 2 outside [0, 5)"
//      (position = within the session; entry = batch-global index);
//   3. the run GRU's step schedule (run_order, run_step_offsets):  "<who>: batch: run_order: .."
// An empty batch is an error only when limits.allow_empty is false ("<who>: empty batch").

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>

namespace embsr {

// What a batch's consumer requires beyond its structure.
struct BatchLimits {
  index_t num_items = 0;       // item ids (micro_items, macro_items, node_items, targets) in [0, num_items)
  index_t num_ops = 0;         // operation ids (micro_ops, and next_ops when checked) in [0, num_ops)
  index_t max_length = 0;      // at most this many micro-behaviors per session; 0: no limit
  bool check_next_ops = true;  // next_ops in [0, num_ops) (a model that learns o_{t+1} ignores them)
  bool allow_empty = true;     // a batch of no sessions is valid

  // The limits of a model over num_items items and num_ops operations whose inputs hold at most
  // max_length micro-behaviors; uses_next_ops: it reads the given next operation of each session.
  static BatchLimits for_model(index_t num_items, index_t num_ops, index_t max_length, bool uses_next_ops) {
    BatchLimits limits;
    limits.num_items = num_items;
    limits.num_ops = num_ops;
    limits.max_length = max_length;
    limits.check_next_ops = uses_next_ops;
    return limits;
  }
};

namespace detail {

// One problem of a batch, found by BatchChecker::issue (code 0: none). `at` is the batch-global
// entry of the offending array, or the step; `family` picks the offsets array (0 micro, 1 macro,
// 2 node, 3 edge) or the incidence direction (0 in, 1 out).
enum BatchIssueCode : int {
  kBatchIssueNone = 0,
  kBatchIssueOffsetStart,
  kBatchIssueOffsetEnd,
  kBatchIssueOffsetRange,
  kBatchIssueEmpty,
  kBatchIssueLength,
  kBatchIssueMacroCount,
  kBatchIssueNodeCount,
  kBatchIssueEdgeCount,
  kBatchIssueTarget,
  kBatchIssueNextOp,
  kBatchIssueMicroItem,
  kBatchIssueMicroOp,
  kBatchIssueNodeItem,
  kBatchIssueNodeSession,
  kBatchIssueMicroAlias,
  kBatchIssueMicroAliasItem,
  kBatchIssueMacroItem,
  kBatchIssueMacroRepeat,
  kBatchIssueMacroAlias,
  kBatchIssueMacroAliasItem,
  kBatchIssueRunBegin,
  kBatchIssueRunEnd,
  kBatchIssueRunItem,
  kBatchIssueRunLast,
  kBatchIssueEdgeSrcMacro,
  kBatchIssueEdgeOrder,
  kBatchIssueEdgeDstMacro,
  kBatchIssueEdgeSrc,
  kBatchIssueEdgeDst,
  kBatchIssueIncidenceStart,
  kBatchIssueIncidenceEnd,
  kBatchIssueIncidenceRange,
  kBatchIssueIncidenceEdge,
  kBatchIssueIncidenceEndpoint,
  kBatchIssueIncidenceOrder,
  kBatchIssueRunOrderRange,
  kBatchIssueRunOrderLonger,
  kBatchIssueRunOrderSort,
  kBatchIssueStepStart,
  kBatchIssueStepCount,
};

struct BatchIssue {
  int code = kBatchIssueNone;
  index_t at = 0;
  int family = 0;
};

// The checks, on read-only Views of a batch's arrays in MemorySpace, callable on the host and in
// kernels. issue(i) checks item i of the flat range [0, B + N + L): session i for i < B, then
// entry i - B of run_order, then step i - B - N of run_step_offsets. Every index is bounds-checked
// before it is used, so a corrupt batch is never read out of bounds.
template <class MemorySpace>
struct BatchChecker {
  using view_type = Kokkos::View<const index_t*, MemorySpace>;
  view_type offsets[4];  // micro, macro, node, edge: [B+1]
  view_type micro_items, micro_ops, micro_alias, macro_items, macro_alias, run_begin, run_end, node_items,
      node_session, in_offsets[2], incidence[2], edge_src, edge_dst, edge_src_macro, edge_dst_macro, targets,
      next_ops, run_order, run_step_offsets;
  index_t B = 0, sizes[4] = {0, 0, 0, 0}, L = 0;  // sessions; T, N, C, E; steps of the schedule
  BatchLimits limits;

  std::int64_t num_checks() const {
    return static_cast<std::int64_t>(B) + static_cast<std::int64_t>(sizes[1]) + static_cast<std::int64_t>(L);
  }

  KOKKOS_INLINE_FUNCTION static bool in(index_t v, index_t lo, index_t hi) { return v >= lo && v < hi; }
  KOKKOS_INLINE_FUNCTION static BatchIssue found(int code, index_t at = 0, int family = 0) {
    BatchIssue r;
    r.code = code;
    r.at = at;
    r.family = family;
    return r;
  }
  KOKKOS_INLINE_FUNCTION index_t run_length(index_t k) const {  // 0 for a run id out of range
    return in(k, 0, sizes[1]) ? run_end(k) - run_begin(k) : 0;
  }
  // Runs longer than s, by bisection over run_order (descending lengths once the order is checked).
  KOKKOS_INLINE_FUNCTION index_t runs_longer_than(index_t s) const {
    index_t lo = 0, hi = sizes[1];
    while (lo < hi) {
      const index_t mid = lo + (hi - lo) / 2;
      if (run_length(run_order(mid)) > s) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  KOKKOS_INLINE_FUNCTION BatchIssue issue(std::int64_t i) const {
    if (i < B) return check_session(static_cast<index_t>(i));
    i -= B;
    if (i < sizes[1]) return check_run_order(static_cast<index_t>(i));
    return check_step(static_cast<index_t>(i - sizes[1]));
  }

  KOKKOS_INLINE_FUNCTION BatchIssue check_session(const index_t b) const {
    // Offsets: inside their arrays, starting at 0, ending at the arrays' lengths.
    for (int f = 0; f < 4; ++f) {
      const index_t lo = offsets[f](b), hi = offsets[f](b + 1);
      if (b == 0 && lo != 0) return found(kBatchIssueOffsetStart, 0, f);
      if (b == B - 1 && hi != sizes[f]) return found(kBatchIssueOffsetEnd, B, f);
      if (lo < 0 || hi > sizes[f]) return found(kBatchIssueOffsetRange, b, f);
    }
    const index_t m0 = offsets[0](b), m1 = offsets[0](b + 1), k0 = offsets[1](b), k1 = offsets[1](b + 1);
    const index_t c0 = offsets[2](b), c1 = offsets[2](b + 1), e0 = offsets[3](b), e1 = offsets[3](b + 1);
    // Counts: non-empty sessions, n_b <= t_b macro items, c_b <= n_b nodes, n_b - 1 edges.
    const index_t t = m1 - m0, n = k1 - k0, c = c1 - c0, m = e1 - e0;
    if (t <= 0) return found(kBatchIssueEmpty);
    if (limits.max_length > 0 && t > limits.max_length) return found(kBatchIssueLength);
    if (n <= 0 || n > t) return found(kBatchIssueMacroCount);
    if (c <= 0 || c > n) return found(kBatchIssueNodeCount);
    if (m != n - 1) return found(kBatchIssueEdgeCount);
    // Labels and ids.
    if (!in(targets(b), 0, limits.num_items)) return found(kBatchIssueTarget, b);
    if (limits.check_next_ops && !in(next_ops(b), 0, limits.num_ops)) return found(kBatchIssueNextOp, b);
    for (index_t i = m0; i < m1; ++i) {
      if (!in(micro_items(i), 0, limits.num_items)) return found(kBatchIssueMicroItem, i);
      if (!in(micro_ops(i), 0, limits.num_ops)) return found(kBatchIssueMicroOp, i);
    }
    // Nodes, then the aliases into them.
    for (index_t v = c0; v < c1; ++v) {
      if (!in(node_items(v), 0, limits.num_items)) return found(kBatchIssueNodeItem, v);
      if (node_session(v) != b) return found(kBatchIssueNodeSession, v);
    }
    for (index_t i = m0; i < m1; ++i) {
      if (!in(micro_alias(i), c0, c1)) return found(kBatchIssueMicroAlias, i);
      if (node_items(micro_alias(i)) != micro_items(i)) return found(kBatchIssueMicroAliasItem, i);
    }
    // Macro items and their runs, which tile the session's micro-behaviors.
    for (index_t k = k0; k < k1; ++k) {
      if (!in(macro_items(k), 0, limits.num_items)) return found(kBatchIssueMacroItem, k);
      if (k != k0 && macro_items(k) == macro_items(k - 1)) return found(kBatchIssueMacroRepeat, k);
      if (!in(macro_alias(k), c0, c1)) return found(kBatchIssueMacroAlias, k);
      if (node_items(macro_alias(k)) != macro_items(k)) return found(kBatchIssueMacroAliasItem, k);
      if (run_begin(k) != (k == k0 ? m0 : run_end(k - 1))) return found(kBatchIssueRunBegin, k);
      if (!(run_end(k) > run_begin(k) && run_end(k) <= m1)) return found(kBatchIssueRunEnd, k);
      for (index_t i = run_begin(k); i < run_end(k); ++i)
        if (micro_items(i) != macro_items(k)) return found(kBatchIssueRunItem, k, static_cast<int>(i - run_begin(k)));
    }
    if (run_end(k1 - 1) != m1) return found(kBatchIssueRunLast, k1 - 1);
    // Edges e_k: v^k -> v^{k+1}, in time order.
    for (index_t e = e0; e < e1; ++e) {
      if (!in(edge_src_macro(e), k0, k1 - 1)) return found(kBatchIssueEdgeSrcMacro, e);
      if (edge_src_macro(e) != k0 + (e - e0)) return found(kBatchIssueEdgeOrder, e);
      if (edge_dst_macro(e) != edge_src_macro(e) + 1) return found(kBatchIssueEdgeDstMacro, e);
      if (edge_src(e) != macro_alias(edge_src_macro(e))) return found(kBatchIssueEdgeSrc, e);
      if (edge_dst(e) != macro_alias(edge_dst_macro(e))) return found(kBatchIssueEdgeDst, e);
    }
    // Incidence lists: per node, a contiguous ascending run of the session's edges that end (in)
    // or start (out) at that node, covering the session's edges.
    for (int dir = 0; dir < 2; ++dir) {
      const view_type& off = in_offsets[dir];
      const view_type& edges = incidence[dir];
      const view_type& endpoint = dir == 0 ? edge_dst : edge_src;
      if (off(c0) != e0) return found(kBatchIssueIncidenceStart, c0, dir);
      if (off(c1) != e1) return found(kBatchIssueIncidenceEnd, c1, dir);
      for (index_t v = c0; v < c1; ++v) {
        const index_t lo = off(v), hi = off(v + 1);
        if (!(lo <= hi && lo >= e0 && hi <= e1)) return found(kBatchIssueIncidenceRange, v + 1, dir);
        for (index_t j = lo; j < hi; ++j) {
          const index_t edge = edges(j);
          if (!in(edge, e0, e1)) return found(kBatchIssueIncidenceEdge, j, dir);
          if (endpoint(edge) != v) return found(kBatchIssueIncidenceEndpoint, j, dir);
          if (j != lo && edges(j - 1) >= edge) return found(kBatchIssueIncidenceOrder, j, dir);
        }
      }
    }
    return BatchIssue();
  }

  // run_order: a permutation of the runs sorted by length, descending, then by run index.
  KOKKOS_INLINE_FUNCTION BatchIssue check_run_order(const index_t j) const {
    const index_t k = run_order(j);
    if (!in(k, 0, sizes[1])) return found(kBatchIssueRunOrderRange, j);
    const index_t len = run_length(k);
    if (j == 0 && len > L) return found(kBatchIssueRunOrderLonger, j);
    if (j > 0) {
      const index_t kp = run_order(j - 1);
      if (in(kp, 0, sizes[1])) {  // else entry j - 1 is the (earlier) problem
        const index_t lp = run_length(kp);
        if (!(lp > len || (lp == len && kp < k))) return found(kBatchIssueRunOrderSort, j);
      }
    }
    return BatchIssue();
  }

  // run_step_offsets: starts at 0, and step s holds one packed row per run longer than s.
  KOKKOS_INLINE_FUNCTION BatchIssue check_step(const index_t s) const {
    if (s == 0 && run_step_offsets(0) != 0) return found(kBatchIssueStepStart, 0);
    if (run_step_offsets(s + 1) - run_step_offsets(s) != runs_longer_than(s)) return found(kBatchIssueStepCount, s);
    return BatchIssue();
  }
};

// A checker over any batch-like object with HostBatch's member names whose arrays convert to
// BatchChecker<M>::view_type (a Batch<M>'s Views, or unmanaged host Views over a HostBatch).
template <class MemorySpace, class Arrays>
BatchChecker<MemorySpace> make_batch_checker(const Arrays& a, index_t B, const index_t (&sizes)[4],
                                              const BatchLimits& limits) {
  BatchChecker<MemorySpace> c;
  c.offsets[0] = a.micro_offsets;
  c.offsets[1] = a.macro_offsets;
  c.offsets[2] = a.node_offsets;
  c.offsets[3] = a.edge_offsets;
  c.micro_items = a.micro_items;
  c.micro_ops = a.micro_ops;
  c.micro_alias = a.micro_alias;
  c.macro_items = a.macro_items;
  c.macro_alias = a.macro_alias;
  c.run_begin = a.run_begin;
  c.run_end = a.run_end;
  c.node_items = a.node_items;
  c.node_session = a.node_session;
  c.in_offsets[0] = a.node_in_offsets;
  c.in_offsets[1] = a.node_out_offsets;
  c.incidence[0] = a.node_in_edges;
  c.incidence[1] = a.node_out_edges;
  c.edge_src = a.edge_src;
  c.edge_dst = a.edge_dst;
  c.edge_src_macro = a.edge_src_macro;
  c.edge_dst_macro = a.edge_dst_macro;
  c.targets = a.targets;
  c.next_ops = a.next_ops;
  c.run_order = a.run_order;
  c.run_step_offsets = a.run_step_offsets;
  c.B = B;
  for (int f = 0; f < 4; ++f) c.sizes[f] = sizes[f];
  c.L = a.run_step_offsets.extent(0) > 0 ? static_cast<index_t>(a.run_step_offsets.extent(0) - 1) : 0;
  c.limits = limits;
  return c;
}

// Unmanaged read-only host Views over a HostBatch's vectors, with HostBatch's member names.
struct HostBatchViews {
  using view_type = Kokkos::View<const index_t*, Kokkos::HostSpace>;
  view_type micro_offsets, macro_offsets, node_offsets, edge_offsets, micro_items, micro_ops, micro_alias,
      macro_items, macro_alias, run_begin, run_end, node_items, node_session, node_in_offsets, node_in_edges,
      node_out_offsets, node_out_edges, edge_src, edge_dst, edge_src_macro, edge_dst_macro, targets, next_ops,
      example_ids, run_order, run_step_offsets;
  explicit HostBatchViews(const HostBatch& h) {
    for_each_batch_array(h, *this, [](const char*, const std::vector<index_t>& src, view_type& dst) {
      dst = view_type(src.data(), src.size());
    });
  }
};

inline std::string batch_range_text(std::int64_t value, std::int64_t lo, std::int64_t hi) {
  return std::to_string(value) + " outside [" + std::to_string(lo) + ", " + std::to_string(hi) + ")";
}

// Array lengths against the batch's sizes (B, T, N, C, E); "" when they all match.
template <class Arrays>
std::string batch_length_problem(const Arrays& a, index_t B, const index_t (&sizes)[4]) {
  std::string problem;
  auto expect = [&](const char* field, std::size_t have, std::int64_t n, const char* what) {
    if (problem.empty() && static_cast<std::int64_t>(have) != n)
      problem = std::string(field) + ": has " + std::to_string(have) + " entries, expected " + std::to_string(n) +
                " (" + what + ")";
  };
  expect("targets", a.targets.extent(0), B, "one per session");
  expect("next_ops", a.next_ops.extent(0), B, "one per session");
  expect("example_ids", a.example_ids.extent(0), B, "one per session");
  expect("micro_offsets", a.micro_offsets.extent(0), std::int64_t(B) + 1, "sessions + 1");
  expect("macro_offsets", a.macro_offsets.extent(0), std::int64_t(B) + 1, "sessions + 1");
  expect("node_offsets", a.node_offsets.extent(0), std::int64_t(B) + 1, "sessions + 1");
  expect("edge_offsets", a.edge_offsets.extent(0), std::int64_t(B) + 1, "sessions + 1");
  const std::int64_t T = sizes[0], N = sizes[1], C = sizes[2], E = sizes[3];
  expect("micro_items", a.micro_items.extent(0), T, "micro_offsets.back()");
  expect("micro_ops", a.micro_ops.extent(0), T, "micro_offsets.back()");
  expect("micro_alias", a.micro_alias.extent(0), T, "micro_offsets.back()");
  expect("macro_items", a.macro_items.extent(0), N, "macro_offsets.back()");
  expect("macro_alias", a.macro_alias.extent(0), N, "macro_offsets.back()");
  expect("run_begin", a.run_begin.extent(0), N, "macro_offsets.back()");
  expect("run_end", a.run_end.extent(0), N, "macro_offsets.back()");
  expect("node_items", a.node_items.extent(0), C, "node_offsets.back()");
  expect("node_session", a.node_session.extent(0), C, "node_offsets.back()");
  expect("node_in_offsets", a.node_in_offsets.extent(0), C + 1, "node_offsets.back() + 1");
  expect("node_out_offsets", a.node_out_offsets.extent(0), C + 1, "node_offsets.back() + 1");
  expect("node_in_edges", a.node_in_edges.extent(0), E, "edge_offsets.back()");
  expect("node_out_edges", a.node_out_edges.extent(0), E, "edge_offsets.back()");
  expect("edge_src", a.edge_src.extent(0), E, "edge_offsets.back()");
  expect("edge_dst", a.edge_dst.extent(0), E, "edge_offsets.back()");
  expect("edge_src_macro", a.edge_src_macro.extent(0), E, "edge_offsets.back()");
  expect("edge_dst_macro", a.edge_dst_macro.extent(0), E, "edge_offsets.back()");
  expect("run_order", a.run_order.extent(0), N, "macro_offsets.back()");
  if (problem.empty() && a.run_step_offsets.extent(0) == 0)
    problem = "run_step_offsets: has 0 entries, expected at least 1 (longest run + 1)";
  return problem;
}

// Names issue `p`, found by BatchChecker::issue(i) on `h` (the batch, or its host copy): the tail
// of the message, after "<who>: batch session b (example e): " (i = b < B) or "<who>: batch: ".
inline std::string describe_batch_issue(const HostBatch& h, const BatchLimits& limits, std::int64_t i,
                                        const BatchIssue& p) {
  static const char* const offsets_names[4] = {"micro_offsets", "macro_offsets", "node_offsets", "edge_offsets"};
  static const char* const incidence_offsets[2] = {"node_in_offsets", "node_out_offsets"};
  static const char* const incidence_edges[2] = {"node_in_edges", "node_out_edges"};
  const std::int64_t V = limits.num_items, O = limits.num_ops;
  const auto u = static_cast<std::size_t>(p.at);
  auto entry = [&](const char* field, const std::string& what) {
    return std::string(field) + ": entry " + std::to_string(p.at) + ": " + what;
  };
  auto num = [](std::int64_t v) { return std::to_string(v); };
  const std::size_t b = i < static_cast<std::int64_t>(h.targets.size()) ? static_cast<std::size_t>(i) : 0;
  auto off = [&](int f, std::size_t at) {
    const std::vector<index_t>* o[4] = {&h.micro_offsets, &h.macro_offsets, &h.node_offsets, &h.edge_offsets};
    return (*o[f])[at];
  };
  const std::int64_t m0 = h.micro_offsets.size() > b + 1 ? h.micro_offsets[b] : 0;
  const std::int64_t m1 = h.micro_offsets.size() > b + 1 ? h.micro_offsets[b + 1] : 0;
  switch (p.code) {
    case kBatchIssueOffsetStart: return std::string(offsets_names[p.family]) + ": does not start at 0";
    case kBatchIssueOffsetEnd: {
      const std::vector<index_t>* arrays[4] = {&h.micro_items, &h.macro_items, &h.node_items, &h.edge_src};
      return std::string(offsets_names[p.family]) + ": ends at " + num(off(p.family, h.targets.size())) + ", not at " +
             num(static_cast<std::int64_t>(arrays[p.family]->size())) + " (the length of the arrays it indexes)";
    }
    case kBatchIssueOffsetRange:
      return std::string(offsets_names[p.family]) + ": range [" + num(off(p.family, b)) + ", " +
             num(off(p.family, b + 1)) + ") is outside the arrays it indexes";
    case kBatchIssueEmpty: return "micro_offsets (empty session)";
    case kBatchIssueLength:
      return "micro_offsets (length above max_length): " + num(m1 - m0) + " > " + num(limits.max_length);
    case kBatchIssueMacroCount:
      return "macro_offsets: " + num(h.macro_offsets[b + 1] - h.macro_offsets[b]) + " macro items for " +
             num(m1 - m0) + " micro-behaviors";
    case kBatchIssueNodeCount:
      return "node_offsets: " + num(h.node_offsets[b + 1] - h.node_offsets[b]) + " nodes for " +
             num(h.macro_offsets[b + 1] - h.macro_offsets[b]) + " macro items";
    case kBatchIssueEdgeCount:
      return "edge_offsets: " + num(h.edge_offsets[b + 1] - h.edge_offsets[b]) + " edges for " +
             num(h.macro_offsets[b + 1] - h.macro_offsets[b]) + " macro items";
    case kBatchIssueTarget: return "targets: item id " + batch_range_text(h.targets[b], 0, V);
    case kBatchIssueNextOp: return "next_ops: operation id " + batch_range_text(h.next_ops[b], 0, O);
    case kBatchIssueMicroItem:
      return "micro_items: item id " + num(h.micro_items[u]) + " at position " + num(p.at - m0) + " outside [0, " +
             num(V) + ")";
    case kBatchIssueMicroOp:
      return "micro_ops: operation id " + num(h.micro_ops[u]) + " at position " + num(p.at - m0) + " outside [0, " +
             num(O) + ")";
    case kBatchIssueNodeItem: return entry("node_items", "item " + batch_range_text(h.node_items[u], 0, V));
    case kBatchIssueNodeSession:
      return entry("node_session", "is " + num(h.node_session[u]) + ", expected " + num(static_cast<std::int64_t>(b)));
    case kBatchIssueMicroAlias:
      return entry("micro_alias", "node " + batch_range_text(h.micro_alias[u], h.node_offsets[b], h.node_offsets[b + 1]));
    case kBatchIssueMicroAliasItem: return entry("micro_alias", "points to a node of another item");
    case kBatchIssueMacroItem: return entry("macro_items", "item " + batch_range_text(h.macro_items[u], 0, V));
    case kBatchIssueMacroRepeat: return entry("macro_items", "equals the previous macro item");
    case kBatchIssueMacroAlias:
      return entry("macro_alias", "node " + batch_range_text(h.macro_alias[u], h.node_offsets[b], h.node_offsets[b + 1]));
    case kBatchIssueMacroAliasItem: return entry("macro_alias", "points to a node of another item");
    case kBatchIssueRunBegin:
      return entry("run_begin", "is " + num(h.run_begin[u]) + ", expected " +
                                    num(p.at == h.macro_offsets[b] ? m0 : h.run_end[u - 1]) +
                                    " (runs must tile the session's micro-behaviors)");
    case kBatchIssueRunEnd:
      return entry("run_end", "is " + num(h.run_end[u]) + " for a run starting at " + num(h.run_begin[u]) +
                                  " in a session ending at " + num(m1));
    case kBatchIssueRunItem:
      return entry("run_begin", "run covers micro-behavior " + num(h.run_begin[u] + p.family) + " of another item");
    case kBatchIssueRunLast: return entry("run_end", "last run does not end the session");
    case kBatchIssueEdgeSrcMacro:
      return entry("edge_src_macro",
                   "macro " + batch_range_text(h.edge_src_macro[u], h.macro_offsets[b], h.macro_offsets[b + 1] - 1));
    case kBatchIssueEdgeOrder: return entry("edge_src_macro", "edges must be in time order");
    case kBatchIssueEdgeDstMacro: return entry("edge_dst_macro", "must be edge_src_macro + 1");
    case kBatchIssueEdgeSrc: return entry("edge_src", "is not the node of its source macro item");
    case kBatchIssueEdgeDst: return entry("edge_dst", "is not the node of its destination macro item");
    case kBatchIssueIncidenceStart:
      return entry(incidence_offsets[p.family], "does not start at the session's first edge");
    case kBatchIssueIncidenceEnd: return entry(incidence_offsets[p.family], "does not end at the session's last edge");
    case kBatchIssueIncidenceRange: {
      const auto& o = p.family == 0 ? h.node_in_offsets : h.node_out_offsets;
      return entry(incidence_offsets[p.family], "range [" + num(o[u - 1]) + ", " + num(o[u]) +
                                                    ") is not inside the session's edges [" + num(h.edge_offsets[b]) +
                                                    ", " + num(h.edge_offsets[b + 1]) + ")");
    }
    case kBatchIssueIncidenceEdge: {
      const auto& e = p.family == 0 ? h.node_in_edges : h.node_out_edges;
      return entry(incidence_edges[p.family],
                   "edge " + batch_range_text(e[u], h.edge_offsets[b], h.edge_offsets[b + 1]));
    }
    case kBatchIssueIncidenceEndpoint: return entry(incidence_edges[p.family], "edge is not incident to its node");
    case kBatchIssueIncidenceOrder: return entry(incidence_edges[p.family], "edges not in ascending order");
    case kBatchIssueRunOrderRange:
      return entry("run_order", "run " + batch_range_text(h.run_order[u], 0, static_cast<std::int64_t>(h.run_begin.size())));
    case kBatchIssueRunOrderLonger:
      return entry("run_order", "run " + num(h.run_order[u]) + " is longer than the " +
                                    num(static_cast<std::int64_t>(h.run_step_offsets.size()) - 1) +
                                    " steps of run_step_offsets");
    case kBatchIssueRunOrderSort:
      return entry("run_order", "run " + num(h.run_order[u]) + " follows run " + num(h.run_order[u - 1]) +
                                    ": runs must be sorted by length, descending, then by index");
    case kBatchIssueStepStart: return "run_step_offsets: does not start at 0";
    case kBatchIssueStepCount: {
      std::int64_t longer = 0;
      for (std::size_t k = 0; k < h.run_begin.size(); ++k) longer += h.run_end[k] - h.run_begin[k] > p.at ? 1 : 0;
      return "run_step_offsets: step " + num(p.at) + " has " + num(h.run_step_offsets[u + 1] - h.run_step_offsets[u]) +
             " rows, expected " + num(longer) + " (one per run longer than " + num(p.at) + ")";
    }
    default: return "unknown problem";
  }
}

// Throws the message of the first problem of a batch whose lengths were checked: issue `p` of
// check item `i` (session i for i < B).
[[noreturn]] inline void throw_batch_issue(const HostBatch& h, const BatchLimits& limits, std::int64_t i,
                                           const BatchIssue& p, const std::string& who) {
  const std::string tail = describe_batch_issue(h, limits, i, p);
  if (i < static_cast<std::int64_t>(h.targets.size()))
    throw InvalidArgument(who + ": batch session " + std::to_string(i) + " (example " +
                          std::to_string(h.example_ids[static_cast<std::size_t>(i)]) + "): " + tail);
  throw InvalidArgument(who + ": batch: " + tail);
}

// Index of the first check item with a problem (checker.num_checks() when none), on `exec`.
template <class ExecSpace, class MemorySpace>
std::int64_t first_batch_issue(const ExecSpace& exec, const BatchChecker<MemorySpace>& check) {
  const std::int64_t total = check.num_checks();
  if (total == 0) return 0;
  std::int64_t first = total;
  Kokkos::parallel_reduce(
      "embsr::validate_batch", Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>>(exec, 0, total),
      KOKKOS_LAMBDA(const std::int64_t i, std::int64_t& lowest) {
        if (i < lowest && check.issue(i).code != kBatchIssueNone) lowest = i;
      },
      Kokkos::Min<std::int64_t>(first));
  return first < total ? first : total;
}

}  // namespace detail

// Checks a batch in the memory space of `exec` (see the top of this file); throws InvalidArgument
// "<who>: ..." naming the first problem. On a valid batch: one kernel and no copy.
template <class ExecSpace, class MemorySpace>
void validate_batch(const ExecSpace& exec, const Batch<MemorySpace>& batch, const BatchLimits& limits,
                    const std::string& who) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "validate_batch: first argument must be an execution space");
  static_assert(Kokkos::SpaceAccessibility<ExecSpace, MemorySpace>::accessible,
                "validate_batch: the batch lives in a memory space that this execution space cannot access");
  const index_t B = batch.sizes.num_sessions;
  if (B == 0 && !limits.allow_empty) throw InvalidArgument(who + ": empty batch");
  const index_t sizes[4] = {batch.sizes.num_micro, batch.sizes.num_macro, batch.sizes.num_nodes, batch.sizes.num_edges};
  const std::string lengths = detail::batch_length_problem(batch, B, sizes);
  if (!lengths.empty()) throw InvalidArgument(who + ": batch: " + lengths);
  const auto check = detail::make_batch_checker<MemorySpace>(batch, B, sizes, limits);
  const std::int64_t first = detail::first_batch_issue(exec, check);
  if (first >= check.num_checks()) return;
  // Name the problem on the host (rare path), with the same checks.
  const HostBatch h = to_host(batch);
  const detail::HostBatchViews views(h);
  const auto host_check = detail::make_batch_checker<Kokkos::HostSpace>(views, B, sizes, limits);
  detail::throw_batch_issue(h, limits, first, host_check.issue(first), who);
}

// The same checks on a HostBatch (its sizes taken from its own arrays).
inline void validate_batch(const HostBatch& h, const BatchLimits& limits, const std::string& who) {
  const auto B = static_cast<index_t>(h.targets.size());
  if (B == 0 && !limits.allow_empty) throw InvalidArgument(who + ": empty batch");
  auto last = [](const std::vector<index_t>& v) { return v.empty() ? index_t(0) : v.back(); };
  const index_t sizes[4] = {last(h.micro_offsets), last(h.macro_offsets), last(h.node_offsets), last(h.edge_offsets)};
  const detail::HostBatchViews views(h);
  const std::string lengths = detail::batch_length_problem(views, B, sizes);
  if (!lengths.empty()) throw InvalidArgument(who + ": batch: " + lengths);
  const auto check = detail::make_batch_checker<Kokkos::HostSpace>(views, B, sizes, limits);
  const std::int64_t total = check.num_checks();
  for (std::int64_t i = 0; i < total; ++i) {
    const detail::BatchIssue p = check.issue(i);
    if (p.code != detail::kBatchIssueNone) detail::throw_batch_issue(h, limits, i, p, who);
  }
}

// Every structural invariant, item ids in [0, num_items) and operation ids (next_ops included) in
// [0, num_ops); messages start with "validate_batch: ".
inline void validate_batch(const HostBatch& h, index_t num_items, index_t num_ops) {
  BatchLimits limits;
  limits.num_items = num_items;
  limits.num_ops = num_ops;
  validate_batch(h, limits, "validate_batch");
}

}  // namespace embsr
