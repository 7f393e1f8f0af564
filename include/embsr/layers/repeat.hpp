#pragma once
// The repeat score of EMBSR-R (docs/REPEAT.md): for every node c (a distinct item of a session),
//   r_c = gamma + sum_o a_o log(1 + n_{c,o}) + sum_o N[o_0, o] [n_{c,o} > 0] + rho_{bucket(D_c)} + q . hf_c
// from the node's micro-behaviors (n_{c,o}: how many with operation o; D_c: micro-behaviors since
// its last one, bucket(D) = min(D, R - 1)), the operation id at position 0 of its session (o_0,
// MODEL.md 4.1) and its highway state hf_c. The scoring layer adds r_c to the logit of the node's
// item (layers/scoring.hpp, ScoringBonus), or the mixture scores the session's items with a
// softmax over r (layers/repeat_mixture.hpp).
//
// Shapes: batch with B sessions, T micro-behaviors, C nodes; op0 [B]; hf [C x d];
//   a = op_count [O x 1], N = next_op [(O+1) x O], rho = recency [R x 1], q = state [d x 1],
//   gamma = bias [1 x 1]; r [C].

#include <cstddef>
#include <string>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>

namespace embsr {

template <class Scalar, class MemorySpace>
struct RepeatParams {
  MatRef<Scalar, MemorySpace> op_count;  // [O x 1]      a
  MatRef<Scalar, MemorySpace> next_op;   // [(O+1) x O]  N
  MatRef<Scalar, MemorySpace> recency;   // [R x 1]      rho
  MatRef<Scalar, MemorySpace> state;     // [d x 1]      q
  MatRef<Scalar, MemorySpace> bias;      // [1 x 1]      gamma
};

template <class Scalar, class MemorySpace>
struct RepeatCache {
  MatRef<Scalar, MemorySpace> log_counts;        // [C x O] log(1 + n_{c,o})
  Kokkos::View<int*, MemorySpace> bucket;        // [C]     bucket(D_c)
  Kokkos::View<int*, MemorySpace> node_op0;      // [C]     o_0 of the node's session
  Mat<Scalar, MemorySpace> log_counts_storage;
  Kokkos::View<int*, MemorySpace> bucket_storage, node_op0_storage;
};

namespace detail {

template <class S, class M>
void repeat_check(const char* who, const RepeatParams<S, M>& p, std::size_t O, std::size_t R, std::size_t d) {
  require_shape(who, "op_count", p.op_count, O, 1);
  require_shape(who, "next_op", p.next_op, O + 1, O);
  require_shape(who, "recency", p.recency, R, 1);
  require_shape(who, "state", p.state, d, 1);
  require_shape(who, "bias", p.bias, 1, 1);
}

}  // namespace detail

// r[c] for every node of the batch; fills `cache` with the features (the backward needs them).
template <class ExecSpace, class OV, class HV, class S, class M, class RV>
void repeat_forward(const ExecSpace& exec, const Batch<M>& batch, const OV& op0, const HV& hf,
                    const RepeatParams<S, M>& p, const RV& r, RepeatCache<S, M>& cache) {
  assert_accessible<ExecSpace, OV, HV, RV, MatRef<S, M>>();
  const std::size_t C = static_cast<std::size_t>(batch.sizes.num_nodes), B = static_cast<std::size_t>(batch.sizes.num_sessions);
  const std::size_t O = p.op_count.extent(0), R = p.recency.extent(0), d = hf.extent(1);
  detail::repeat_check("repeat_forward", p, O, R, d);
  require_shape("repeat_forward", "hf", hf, C, d);
  require_length("repeat_forward", "op0", op0, B);
  require_length("repeat_forward", "r", r, C);
  cache.log_counts = ensure(cache.log_counts_storage, C, O, "embsr::repeat::log_counts");
  if (cache.bucket_storage.extent(0) < C) {
    cache.bucket_storage = Kokkos::View<int*, M>("embsr::repeat::bucket", C + C / 4 + 1);
    cache.node_op0_storage = Kokkos::View<int*, M>("embsr::repeat::node_op0", C + C / 4 + 1);
  }
  cache.bucket = Kokkos::subview(cache.bucket_storage, std::make_pair(std::size_t(0), C));
  cache.node_op0 = Kokkos::subview(cache.node_op0_storage, std::make_pair(std::size_t(0), C));
  if (C == 0) return;

  const auto micro_offsets = batch.micro_offsets;
  const auto micro_alias = batch.micro_alias;
  const auto micro_ops = batch.micro_ops;
  const auto node_session = batch.node_session;
  const auto L = cache.log_counts;
  const auto bucket = cache.bucket;
  const auto node_op0 = cache.node_op0;
  const auto a = p.op_count, N = p.next_op, rho = p.recency, q = p.state, gamma = p.bias;
  const int nO = static_cast<int>(O), nR = static_cast<int>(R), nd = static_cast<int>(d);
  Kokkos::parallel_for(
      "embsr::repeat::forward", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(C)), KOKKOS_LAMBDA(const int c) {
        const int b = node_session(c);
        for (int o = 0; o < nO; ++o) L(c, o) = S(0);
        int last = micro_offsets(b);
        for (int i = micro_offsets(b); i < micro_offsets(b + 1); ++i)
          if (micro_alias(i) == c) {
            L(c, micro_ops(i)) += S(1);  // the count n_{c,o} for now
            last = i;
          }
        const int D = micro_offsets(b + 1) - 1 - last;
        const int k = D < nR - 1 ? D : nR - 1;
        const int o0 = op0(b);
        bucket(c) = k;
        node_op0(c) = o0;
        S value = gamma(0, 0) + rho(k, 0);
        for (int o = 0; o < nO; ++o) {
          const S n = L(c, o);
          L(c, o) = math::log(S(1) + n);
          value += a(o, 0) * L(c, o);
          if (n > S(0)) value += N(o0, o);
        }
        for (int j = 0; j < nd; ++j) value += q(j, 0) * hf(c, j);
        r(c) = value;
      });
}

// From dr [C] (dL/dr_c), docs/REPEAT.md:
//   dgamma += sum_c dr_c;   da_o += sum_c dr_c log(1 + n_{c,o});
//   dN[o', o] += sum_{c : o_0 = o'} dr_c [n_{c,o} > 0];   drho_k += sum_{c : bucket_c = k} dr_c;
//   dq += sum_c dr_c hf_c;   dhf_c += dr_c q.
// Every parameter sum runs over the nodes in order on one thread per coordinate (deterministic).
// Gradients are added into `grads` and `dhf`.
template <class ExecSpace, class HV, class S, class M, class DRV, class DHV>
void repeat_backward(const ExecSpace& exec, const HV& hf, const RepeatParams<S, M>& p, const RepeatCache<S, M>& cache,
                     const DRV& dr, const DHV& dhf, const RepeatParams<S, M>& grads) {
  assert_accessible<ExecSpace, HV, DRV, DHV, MatRef<S, M>>();
  const std::size_t C = cache.log_counts.extent(0), O = p.op_count.extent(0), R = p.recency.extent(0), d = hf.extent(1);
  detail::repeat_check("repeat_backward", p, O, R, d);
  detail::repeat_check("repeat_backward (gradients)", grads, O, R, d);
  require_shape("repeat_backward", "hf", hf, C, d);
  require_shape("repeat_backward", "dhf", dhf, C, d);
  require_length("repeat_backward", "dr", dr, C);
  if (C == 0) return;
  const auto L = cache.log_counts;
  const auto bucket = cache.bucket;
  const auto node_op0 = cache.node_op0;
  const auto q = p.state;
  const auto da = grads.op_count, dN = grads.next_op, drho = grads.recency, dq = grads.state, dgamma = grads.bias;
  const int nC = static_cast<int>(C), nO = static_cast<int>(O);

  Kokkos::parallel_for(
      "embsr::repeat::d_counts", Kokkos::RangePolicy<ExecSpace>(exec, 0, nO + 1), KOKKOS_LAMBDA(const int o) {
        S acc = 0;
        if (o == nO) {  // the bias
          for (int c = 0; c < nC; ++c) acc += dr(c);
          dgamma(0, 0) += acc;
        } else {
          for (int c = 0; c < nC; ++c) acc += dr(c) * L(c, o);
          da(o, 0) += acc;
        }
      });
  parallel_for_2d(exec, "embsr::repeat::d_next_op", O + 1, O, KOKKOS_LAMBDA(const int op_id, const int o) {
    S acc = 0;
    for (int c = 0; c < nC; ++c)
      if (node_op0(c) == op_id && L(c, o) > S(0)) acc += dr(c);
    dN(op_id, o) += acc;
  });
  Kokkos::parallel_for(
      "embsr::repeat::d_recency", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(R)), KOKKOS_LAMBDA(const int k) {
        S acc = 0;
        for (int c = 0; c < nC; ++c)
          if (bucket(c) == k) acc += dr(c);
        drho(k, 0) += acc;
      });
  Kokkos::parallel_for(
      "embsr::repeat::d_state", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(d)), KOKKOS_LAMBDA(const int j) {
        S acc = 0;
        for (int c = 0; c < nC; ++c) acc += dr(c) * hf(c, j);
        dq(j, 0) += acc;
      });
  parallel_for_2d(exec, "embsr::repeat::d_hf", C, d,
                  KOKKOS_LAMBDA(const int c, const int j) { dhf(c, j) += dr(c) * q(j, 0); });
}

}  // namespace embsr
