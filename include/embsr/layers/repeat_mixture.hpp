#pragma once
// The repeat/explore mixture of EMBSR-R (docs/REPEAT.md, "The mixture"; the shape of RepeatNet,
// Ren et al., AAAI 2019, Sec. 3: a repeat-explore gate, a repeat decoder over the session's own
// items and an explore decoder over the items not in the session). For session b with distinct
// items S_b (its nodes c, node item v(c)), repeat scores r_c (layers/repeat.hpp) and the scoring
// layer's logits s_{b,v} = w_k cos(m_b, E_v) (layers/scoring.hpp):
//
//   gamma_b = u . m_b + w[o_0(b)]                    the gate logit (repeat_gate_forward)
//   g_b     = sigmoid(gamma_b)                       P(the next item is one of the session's)
//   P(v(c) | b) = g_b       softmax_{c' of b}(r)_c                     for a session item
//   P(v | b)    = (1 - g_b) softmax_{v' not in S_b}(s_{b,v'})_v         for every other item
//   loss    = mean_b -log P(t_b | b)
//
// The mixture's ranking scores are log P (the scoring buffer is rewritten in place). The two
// softmaxes share no item, so P sums to 1 and the loss splits per row into
//   t_b in S_b:      -log g_b - log softmax_r(t_b)          (a repeat target)
//   t_b not in S_b:  -log(1 - g_b) - log softmax_e(t_b)     (an explore target)
// whose gradients (derived above repeat_mixture_backward) are those of a binary cross-entropy on
// the gate plus the cross-entropy of the one decoder that holds the target. The explore decoder
// therefore learns only from explore targets, and never has to outscore the session's items.
//
// Shapes: batch with B sessions, C nodes (node_offsets [B+1], node_items [C]), V items;
//   m [B x d], op0 [B], u = gate [d x 1], w = gate_op [(O+1) x 1], gamma [B], r [C],
//   scores [B x V] (in: s; out: log P; backward: dL/ds), targets [B] (or empty: no loss).

#include <cstddef>
#include <limits>
#include <string>

#include <Eigen/Core>
#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/scoring.hpp>

namespace embsr {

template <class Scalar, class MemorySpace>
struct RepeatGateParams {
  MatRef<Scalar, MemorySpace> gate;     // [d x 1]      u
  MatRef<Scalar, MemorySpace> gate_op;  // [(O+1) x 1]  w, one entry per operation id at position 0
};

template <class Scalar, class MemorySpace>
struct RepeatMixtureCache {
  VecRef<Scalar, MemorySpace> log_gate;          // [B] log g_b
  VecRef<Scalar, MemorySpace> log_explore_gate;  // [B] log (1 - g_b)
  VecRef<Scalar, MemorySpace> row_loss;          // [B] -log P(t_b | b) (only with targets)
  Kokkos::View<int*, MemorySpace> target_node;   // [B] the node holding t_b, or -1 (explore target)
  bool has_loss = false;                         // the last forward had targets

  Vec<Scalar, MemorySpace> log_gate_storage, log_explore_gate_storage, row_loss_storage;
  Kokkos::View<int*, MemorySpace> target_node_storage;
};

namespace detail {

// log sigmoid(x) = min(x, 0) - log(1 + exp(-|x|)), exact for either sign without overflow.
template <class S>
KOKKOS_INLINE_FUNCTION S log_sigmoid(S x) {
  const S neg_abs = x < S(0) ? x : -x;
  return (x < S(0) ? x : S(0)) - math::log(S(1) + math::exp(neg_abs));
}

// What marks a session item while the explore softmax is computed: finite (our float exp turns
// -inf into NaN on purpose), and exp(sentinel - max) is exactly 0 on every backend.
template <class S>
KOKKOS_INLINE_FUNCTION S mixture_masked() {
  return -std::numeric_limits<S>::max();
}

// One row of repeat_mixture_forward once the explore logsumexp lse_e of row b is known (the
// session's items of the row are masked; has_explore is false when every item of the catalogue is
// in the session). Adding explore_offset to every entry turns s into log P (computed once per row:
// a log and an exp per entry made the mixture cost half a training step more at |V| = 75k); finish
// writes log P of the session's items over their masks, finds the target's node and the row's loss.
template <class S, class M, class RV, class GV, class TV>
struct MixtureRow {
  MatRef<S, M> scores;
  Kokkos::View<const index_t*, M> node_offsets, node_items;
  RV r;
  GV gamma;
  TV targets;
  VecRef<S, M> log_gate, log_explore_gate, row_loss;
  Kokkos::View<int*, M> target_node;
  bool with_loss;

  KOKKOS_INLINE_FUNCTION S explore_offset(const int b, const S lse_e) const {
    return log_sigmoid(-static_cast<S>(gamma(b))) - lse_e;  // masked entries get it too; finish overwrites them
  }
  KOKKOS_INLINE_FUNCTION void finish(const int b) const {
    const int c0 = node_offsets(b), c1 = node_offsets(b + 1);
    const S lg = log_sigmoid(static_cast<S>(gamma(b)));
    log_gate(b) = lg;
    log_explore_gate(b) = log_sigmoid(-static_cast<S>(gamma(b)));
    S mr = static_cast<S>(r(c0));
    for (int c = c0 + 1; c < c1; ++c) mr = math::max(mr, static_cast<S>(r(c)));
    S sr = 0;
    for (int c = c0; c < c1; ++c) sr += math::exp(static_cast<S>(r(c)) - mr);
    const S lse_r = mr + math::log(sr);
    int tn = -1;
    for (int c = c0; c < c1; ++c) {
      scores(b, node_items(c)) = lg + static_cast<S>(r(c)) - lse_r;
      if (with_loss && node_items(c) == targets(b)) tn = c;
    }
    target_node(b) = tn;
    if (with_loss) row_loss(b) = -scores(b, targets(b));
  }
};

}  // namespace detail

// gamma[b] = u . m[b] + w[op0[b]].
template <class ExecSpace, class MV, class OV, class S, class M, class GV>
void repeat_gate_forward(const ExecSpace& exec, const MV& m, const OV& op0, const RepeatGateParams<S, M>& p,
                         const GV& gamma) {
  assert_accessible<ExecSpace, MV, OV, GV, MatRef<S, M>>();
  const std::size_t B = m.extent(0), d = m.extent(1);
  require_shape("repeat_gate_forward", "gate", p.gate, d, 1);
  require(p.gate_op.extent(1) == 1, "repeat_gate_forward", "gate_op has one column");
  require_length("repeat_gate_forward", "op0", op0, B);
  require_length("repeat_gate_forward", "gamma", gamma, B);
  const auto u = p.gate, w = p.gate_op;
  const int nd = static_cast<int>(d);
  Kokkos::parallel_for(
      "embsr::repeat_gate::forward", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(B)), KOKKOS_LAMBDA(const int b) {
        S value = w(op0(b), 0);
        for (int j = 0; j < nd; ++j) value += u(j, 0) * static_cast<S>(m(b, j));
        gamma(b) = value;
      });
}

// From dgamma [B]:  du += sum_b dgamma_b m_b;  dw[o] += sum_{b : op0 = o} dgamma_b;  dm_b += dgamma_b u.
// Sums over b run in row order on one thread per coordinate (deterministic). Adds into grads, dm.
template <class ExecSpace, class MV, class OV, class S, class M, class DGV, class DMV>
void repeat_gate_backward(const ExecSpace& exec, const MV& m, const OV& op0, const RepeatGateParams<S, M>& p,
                          const DGV& dgamma, const DMV& dm, const RepeatGateParams<S, M>& grads) {
  assert_accessible<ExecSpace, MV, OV, DGV, DMV, MatRef<S, M>>();
  const std::size_t B = m.extent(0), d = m.extent(1), ops = p.gate_op.extent(0);
  require_shape("repeat_gate_backward", "gate", p.gate, d, 1);
  require_shape("repeat_gate_backward", "gate (gradient)", grads.gate, d, 1);
  require_shape("repeat_gate_backward", "gate_op (gradient)", grads.gate_op, ops, 1);
  require_shape("repeat_gate_backward", "dm", dm, B, d);
  require_length("repeat_gate_backward", "op0", op0, B);
  require_length("repeat_gate_backward", "dgamma", dgamma, B);
  if (B == 0) return;
  const auto u = p.gate, du = grads.gate, dw = grads.gate_op;
  const int nb = static_cast<int>(B);
  Kokkos::parallel_for(
      "embsr::repeat_gate::d_gate", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(d)), KOKKOS_LAMBDA(const int j) {
        S acc = 0;
        for (int b = 0; b < nb; ++b) acc += dgamma(b) * static_cast<S>(m(b, j));
        du(j, 0) += acc;
      });
  Kokkos::parallel_for(
      "embsr::repeat_gate::d_gate_op", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(ops)), KOKKOS_LAMBDA(const int o) {
        S acc = 0;
        for (int b = 0; b < nb; ++b)
          if (op0(b) == o) acc += dgamma(b);
        dw(o, 0) += acc;
      });
  parallel_for_2d(exec, "embsr::repeat_gate::d_m", B, d,
                  KOKKOS_LAMBDA(const int b, const int j) { dm(b, j) += dgamma(b) * u(j, 0); });
}

// Rewrites scores [B x V] from the scoring layer's s to log P (see the top of this file); with
// targets returns the mean of -log P(t_b | b), with an empty targets View returns 0.
template <class ExecSpace, class RV, class GV, class TV, class S, class M>
double repeat_mixture_forward(const ExecSpace& exec, const Batch<M>& batch, const RV& r, const GV& gamma, const TV& targets,
                              const MatRef<S, M>& scores, RepeatMixtureCache<S, M>& cache) {
  assert_accessible<ExecSpace, RV, GV, TV, MatRef<S, M>>();
  const std::size_t B = static_cast<std::size_t>(batch.sizes.num_sessions), C = static_cast<std::size_t>(batch.sizes.num_nodes);
  const std::size_t V = scores.extent(1);
  const bool with_loss = targets.extent(0) != 0;
  require(scores.extent(0) == B, "repeat_mixture_forward", "scores has one row per session");
  require_length("repeat_mixture_forward", "r", r, C);
  require_length("repeat_mixture_forward", "gamma", gamma, B);
  if (with_loss) require_length("repeat_mixture_forward", "targets", targets, B);
  cache.log_gate = ensure(cache.log_gate_storage, B, "embsr::repeat_mixture::log_gate");
  cache.log_explore_gate = ensure(cache.log_explore_gate_storage, B, "embsr::repeat_mixture::log_explore_gate");
  cache.row_loss = ensure(cache.row_loss_storage, B, "embsr::repeat_mixture::row_loss");
  if (cache.target_node_storage.extent(0) < B)
    cache.target_node_storage = Kokkos::View<int*, M>("embsr::repeat_mixture::target_node", B + B / 4 + 1);
  cache.target_node = Kokkos::subview(cache.target_node_storage, std::make_pair(std::size_t(0), B));
  cache.has_loss = with_loss;
  if (B == 0) return 0.0;

  const auto node_offsets = batch.node_offsets;
  const auto node_items = batch.node_items;
  const int nv = static_cast<int>(V);
  const detail::MixtureRow<S, M, RV, GV, TV> row_op{scores,         node_offsets,           node_items,     r,
                                                    gamma,          targets,                cache.log_gate,
                                                    cache.log_explore_gate, cache.row_loss, cache.target_node,
                                                    with_loss};
  if constexpr (host_execution_space<ExecSpace>) {
    // Host: one row per iteration with the scoring layer's vectorised max and exp-sum.
    Kokkos::parallel_for("embsr::repeat_mixture::forward", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(B)),
                         [=](const int b) {
                           for (int c = node_offsets(b); c < node_offsets(b + 1); ++c)
                             scores(b, node_items(c)) = detail::mixture_masked<S>();
                           const auto row = detail::scoring_host_row(scores, b);
                           const S mx = row.maxCoeff();
                           if (mx > detail::mixture_masked<S>()) {
                             const S lse_e = mx + std::log(detail::scoring_sum_exp_shifted(row.data(), nv, mx));
                             const S offset = row_op.explore_offset(b, lse_e);
                             S* row_data = scores.data() + static_cast<std::size_t>(b) * scores.stride(0);
                             EMBSR_IVDEP
                             for (int v = 0; v < nv; ++v) row_data[v] += offset;
                           }
                           row_op.finish(b);
                         });
  } else {
    using Policy = Kokkos::TeamPolicy<ExecSpace>;
    using Member = typename Policy::member_type;
    Kokkos::parallel_for(
        "embsr::repeat_mixture::forward", Policy(exec, static_cast<int>(B), Kokkos::AUTO), KOKKOS_LAMBDA(const Member& team) {
          const int b = team.league_rank();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, node_offsets(b), node_offsets(b + 1)),
                               [&](const int c) { scores(b, node_items(c)) = detail::mixture_masked<S>(); });
          team.team_barrier();
          S mx = detail::mixture_masked<S>();
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, nv), [&](const int v, S& acc) { acc = math::max(acc, scores(b, v)); },
              Kokkos::Max<S>(mx));
          if (mx > detail::mixture_masked<S>()) {
            S sum = 0;
            Kokkos::parallel_reduce(
                Kokkos::TeamThreadRange(team, nv), [&](const int v, S& acc) { acc += math::exp(scores(b, v) - mx); }, sum);
            team.team_barrier();
            const S offset = row_op.explore_offset(b, mx + math::log(sum));
            Kokkos::parallel_for(Kokkos::TeamThreadRange(team, nv), [&](const int v) { scores(b, v) += offset; });
          }
          team.team_barrier();
          Kokkos::single(Kokkos::PerTeam(team), [&]() { row_op.finish(b); });
        });
  }
  return with_loss ? detail::mean_in_row_order(exec, cache.row_loss, "embsr::repeat_mixture::loss") : 0.0;
}

// Gradients of loss = (1/B) sum_b l_b, with the split of the top of this file. For a repeat
// target (t_b = v(c*), c* a node of b):
//   l_b = -log g_b - r_{c*} + logsumexp_{c of b} r_c
//   dl/dr_c = softmax_r(c) - [c = c*],  dl/dgamma_b = -(1 - g_b) = g_b - 1,  dl/ds_{b,v} = 0.
// For an explore target:
//   l_b = -log(1 - g_b) - s_{b,t} + logsumexp_{v not in S_b} s_{b,v}
//   dl/ds_{b,v} = softmax_e(v) - [v = t_b] for v not in S_b, 0 for v in S_b,
//   dl/dgamma_b = g_b (d(-log(1 - sigmoid(x)))/dx = sigmoid(x)),  dl/dr_c = 0.
// (-log g = -log sigmoid(gamma) has derivative sigmoid(gamma) - 1.) The softmaxes come back from
// the forward's log P: softmax_r(c) = exp(log P_{v(c)} - log g_b) and softmax_e(v) =
// exp(log P_v - log(1 - g_b)). Writes dL/ds over scores (the scoring layer's
// scoring_backward_from_dscores takes it from there), dL/dr into dr [C] and dL/dgamma into dgamma
// [B] (both overwritten, like the scoring layer's ScoringBonus::gradients).
template <class ExecSpace, class TV, class S, class M, class DRV, class DGV>
void repeat_mixture_backward(const ExecSpace& exec, const Batch<M>& batch, const TV& targets, RepeatMixtureCache<S, M>& cache,
                             const MatRef<S, M>& scores, const DRV& dr, const DGV& dgamma) {
  assert_accessible<ExecSpace, TV, DRV, DGV, MatRef<S, M>>();
  const std::size_t B = static_cast<std::size_t>(batch.sizes.num_sessions), C = static_cast<std::size_t>(batch.sizes.num_nodes);
  const std::size_t V = scores.extent(1);
  require(cache.has_loss && targets.extent(0) == B && scores.extent(0) == B && cache.target_node.extent(0) == B,
          "repeat_mixture_backward", "needs the cache of a repeat_mixture_forward with targets on the same batch");
  require_length("repeat_mixture_backward", "dr", dr, C);
  require_length("repeat_mixture_backward", "dgamma", dgamma, B);
  cache.has_loss = false;  // the scores are about to be overwritten
  if (B == 0) return;
  const auto node_offsets = batch.node_offsets;
  const auto node_items = batch.node_items;
  const auto log_gate = cache.log_gate;
  const auto log_explore_gate = cache.log_explore_gate;
  const auto target_node = cache.target_node;
  const S inv_b = S(1) / static_cast<S>(B);
  const int nb = static_cast<int>(B), nv = static_cast<int>(V);
  // dr and dgamma first: a repeat row's softmax_r is read from the session items' log P.
  Kokkos::parallel_for(
      "embsr::repeat_mixture::d_repeat", Kokkos::RangePolicy<ExecSpace>(exec, 0, nb), KOKKOS_LAMBDA(const int b) {
        const int tn = target_node(b);
        for (int c = node_offsets(b); c < node_offsets(b + 1); ++c)
          dr(c) = tn < 0 ? S(0) : (math::exp(scores(b, node_items(c)) - log_gate(b)) - (c == tn ? S(1) : S(0))) * inv_b;
        dgamma(b) = (math::exp(log_gate(b)) - (tn < 0 ? S(0) : S(1))) * inv_b;
      });
  // dL/ds: softmax_e on an explore row (0 on a repeat row), then the session items to 0, -1/B at the target.
  if constexpr (host_execution_space<ExecSpace>) {
    Kokkos::parallel_for("embsr::repeat_mixture::d_scores", Kokkos::RangePolicy<ExecSpace>(exec, 0, nb), [=](const int b) {
      S* row = scores.data() + static_cast<std::size_t>(b) * scores.stride(0);
      if (target_node(b) >= 0) {
        for (int v = 0; v < nv; ++v) row[v] = S(0);
        return;
      }
      const S l1g = log_explore_gate(b);
      EMBSR_IVDEP
      for (int v = 0; v < nv; ++v) row[v] = math::exp(row[v] - l1g) * inv_b;
    });
  } else {
    parallel_for_2d(exec, "embsr::repeat_mixture::d_scores", nb, nv, KOKKOS_LAMBDA(const int b, const int v) {
      scores(b, v) = target_node(b) >= 0 ? S(0) : math::exp(scores(b, v) - log_explore_gate(b)) * inv_b;
    });
  }
  Kokkos::parallel_for(
      "embsr::repeat_mixture::d_scores_session", Kokkos::RangePolicy<ExecSpace>(exec, 0, nb), KOKKOS_LAMBDA(const int b) {
        if (target_node(b) >= 0) return;
        for (int c = node_offsets(b); c < node_offsets(b + 1); ++c) scores(b, node_items(c)) = S(0);
        scores(b, targets(b)) -= inv_b;
      });
}

}  // namespace embsr
