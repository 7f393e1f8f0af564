#pragma once
// Operation-aware self-attention of the dyadic relational encoder (MODEL.md 4.2, paper eq. 14-17),
// evaluated for the star's query only: the model uses z'_0 alone, so per session b with t_b
// micro-behaviors there is one query (position 0) over t_b + 1 key positions j = 0..t_b:
//   x_0 = xs[b], x_j = xm[micro_offsets[b] + j - 1]                    (inputs of MODEL.md 4.1)
//   v_j = x_j + P[j] + Rt[op0[b] * (O+1) + o_j]   (o_0 = op0[b]; the Rt term only with use_relations)
//   q   = dropout_0(relu(W_Q x_0 + b_Q))
//   e_j = q . v_j / sqrt(d),  alpha = softmax_j(e),  z = sum_j alpha_j v_j
//   f   = W_2 relu(W_1 z + b_1) + b_2,  y = z + dropout_1(f),  out = LayerNorm(y) (gamma, beta, eps 1e-5)
// Position ids count from the session's start: p_0 = 0 is the star's dedicated row, p_j = j.
// Without relations the layer reads no operation of the batch, so it also runs over a batch seen
// over its macro items (batch/batch.hpp, batch_over_macro_items): positions 1..n_b are then the
// session's macro items (the standard self-attention of the paper's SGNN-Self variants).
// The relation term is read straight from the [(O+1)^2 x d] table: no [t x t x d] tensor exists,
// only per-session [t_b + 1] score / weight vectors (ragged [T + B], session b at micro_offsets[b] + b).

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include <Kokkos_Core.hpp>
#include <Kokkos_ScatterView.hpp>

#include <embsr/core/dropout.hpp>
#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>
#include <embsr/batch/batch.hpp>
#include <embsr/layers/linear.hpp>

namespace embsr {

// Weights of the layer (or, for attention_backward, the gradient slices of the same shapes).
template <class Scalar, class MemorySpace>
struct AttentionParams {
  MatRef<Scalar, MemorySpace> W_Q, W_1, W_2;     // [d x d]
  VecRef<Scalar, MemorySpace> b_Q, b_1, b_2;     // [d]
  VecRef<Scalar, MemorySpace> ln_gamma, ln_beta;  // [d]
  MatRef<Scalar, MemorySpace> positions;         // P [(L+1) x d]; row 0 = the star's position id
  MatRef<Scalar, MemorySpace> relations;         // Rt [(O+1)^2 x d]; unused (may be empty) without relations
};

struct AttentionOptions {
  int num_op_ids = 0;          // O + 1: operation ids including the [NEXT] id; op0 and micro_ops
                               // must lie in [0, num_op_ids) (not re-checked here: validate_batch)
  bool use_relations = true;   // false: standard attention (no R_0j anywhere)
  Dropout dropout;             // site 0: the query q, site 1: the FFN output f ([B x d], row = session)
};

inline constexpr std::uint64_t kAttentionQueryDropoutSite = 0;
inline constexpr std::uint64_t kAttentionFfnDropoutSite = 1;

// Everything attention_backward needs from the forward pass. The public views are the current
// batch's blocks of the storage below (valid until the next forward with this cache).
template <class Scalar, class MemorySpace>
struct AttentionCache {
  MatRef<Scalar, MemorySpace> q;     // [B x d] dropout_0(relu(W_Q x_0 + b_Q))
  VecRef<Scalar, MemorySpace> alpha;  // [T + B] attention weights, session b at micro_offsets[b] + b
  MatRef<Scalar, MemorySpace> z;     // [B x d] sum_j alpha_j v_j
  MatRef<Scalar, MemorySpace> h1;    // [B x d] relu(W_1 z + b_1)
  MatRef<Scalar, MemorySpace> yhat;  // [B x d] (y - mean) * rstd
  VecRef<Scalar, MemorySpace> rstd;  // [B] 1 / sqrt(var(y) + eps)
  index_t num_sessions = 0, num_micro = 0, dim = 0;

  // Storage, grown with embsr::ensure.
  Mat<Scalar, MemorySpace> q_storage, z_storage, h1_storage, f_storage, yhat_storage;
  Vec<Scalar, MemorySpace> alpha_storage, rstd_storage;
  // Backward workspace: attention_backward reads the cache as const, these only hold scratch.
  mutable Mat<Scalar, MemorySpace> dz_storage, df_storage, dh1_storage, dq_storage;
  mutable Vec<Scalar, MemorySpace> de_storage;
  // attention_backward's ScatterViews for dP and dR (their type depends on the execution space,
  // so they are kept type-erased; scatter_tag says which type), reused so a step does not allocate.
  mutable std::shared_ptr<void> scatter;
  mutable const void* scatter_tag = nullptr;
};

namespace detail {

inline constexpr double kAttentionLayerNormEps = 1e-5;

struct AttentionDims {
  index_t B = 0, T = 0, d = 0, L = 0;
};

// The ScatterViews of attention_backward for one execution space and scalar type.
template <class ExecSpace, class Scalar>
struct AttentionScatters {
  using SV = Kokkos::Experimental::ScatterView<Scalar**, Kokkos::LayoutRight, ExecSpace>;
  SV dP, dR;
  const void* dP_data = nullptr;
  const void* dR_data = nullptr;
  std::size_t p0 = 0, p1 = 0, r0 = 0, r1 = 0;  // the extents they were made for
  template <class PV, class RV>
  AttentionScatters(const PV& p, const RV& r, bool rel)
      : dP(p), dR(rel ? SV(r) : SV()), dP_data(p.data()), dR_data(rel ? r.data() : nullptr), p0(p.extent(0)),
        p1(p.extent(1)), r0(rel ? r.extent(0) : 0), r1(rel ? r.extent(1) : 0) {}
  // Built for these gradient Views (on GPUs a ScatterView adds into the View it was made from).
  template <class PV, class RV>
  bool fits(const PV& p, const RV& r, bool rel) const {
    return p.data() == dP_data && p.extent(0) == p0 && p.extent(1) == p1 &&
           (rel ? r.data() == dR_data && r.extent(0) == r0 && r.extent(1) == r1 : dR_data == nullptr);
  }
  static const void* tag() {
    static const char t = 0;
    return &t;
  }
};

// Shapes of every argument, and t_b <= L for every session (the error names the first session
// that is too long). Only the error path reads device memory.
template <class MemorySpace, class Scalar, class OpV, class XSV, class XMV>
AttentionDims attention_check(const char* fn, const Batch<MemorySpace>& batch, const OpV& op0, const XSV& xs, const XMV& xm,
           const AttentionParams<Scalar, MemorySpace>& p, const AttentionOptions& opt) {
  static_assert(OpV::rank == 1 && XSV::rank == 2 && XMV::rank == 2, "attention: op0 is 1-D, xs and xm are 2-D");
  const std::string f = std::string(fn) + ": ";
  if (batch.micro_offsets.extent(0) == 0) throw InvalidArgument(f + "empty batch (micro_offsets not uploaded)");
  AttentionDims dims;
  dims.B = static_cast<index_t>(batch.micro_offsets.extent(0) - 1);
  dims.T = batch.sizes.num_micro;
  dims.d = static_cast<index_t>(xs.extent(1));
  const auto B = static_cast<std::size_t>(dims.B), T = static_cast<std::size_t>(dims.T),
             d = static_cast<std::size_t>(dims.d);
  // The operations are read by the relation term only: a batch over macro items has none
  // (batch/batch.hpp, batch_over_macro_items).
  if (batch.sizes.num_sessions != dims.B || (opt.use_relations && batch.micro_ops.extent(0) != T))
    throw InvalidArgument(f + "batch.sizes does not describe the batch's arrays");
  require_length(fn, "op0", op0, B);
  require_shape(fn, "xs", xs, B, d);
  require_shape(fn, "xm", xm, T, d);
  require_shape(fn, "W_Q", p.W_Q, d, d);
  require_shape(fn, "W_1", p.W_1, d, d);
  require_shape(fn, "W_2", p.W_2, d, d);
  require_length(fn, "b_Q", p.b_Q, d);
  require_length(fn, "b_1", p.b_1, d);
  require_length(fn, "b_2", p.b_2, d);
  require_length(fn, "ln_gamma", p.ln_gamma, d);
  require_length(fn, "ln_beta", p.ln_beta, d);
  if (p.positions.extent(0) == 0 || p.positions.extent(1) != d)
    throw InvalidArgument(f + "positions is " + shape_of(p.positions) + ", expected [(L+1) x " + std::to_string(d) + "]");
  dims.L = static_cast<index_t>(p.positions.extent(0) - 1);
  if (opt.use_relations) {
    if (opt.num_op_ids <= 0) throw InvalidArgument(f + "num_op_ids must be >= 1 with relations");
    const auto n = static_cast<std::size_t>(opt.num_op_ids);
    if (p.relations.extent(0) != n * n || p.relations.extent(1) != d)
      throw InvalidArgument(f + "relations is " + shape_of(p.relations) + ", expected [" + std::to_string(n * n) + " x " +
                            std::to_string(d) + "] for " + std::to_string(n) + " operation ids");
  }
  if (batch.sizes.max_micro > dims.L) {
    const auto offsets = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.micro_offsets);
    const auto examples = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.example_ids);
    for (std::size_t b = 0; b < B; ++b) {
      const index_t t = offsets(b + 1) - offsets(b);
      if (t > dims.L)
        throw InvalidArgument(f + "session " + std::to_string(b) +
                              (b < examples.extent(0) ? " (example " + std::to_string(examples(b)) + ")" : std::string()) +
                              " has " + std::to_string(t) + " micro-behaviors, more than the " + std::to_string(dims.L) +
                              " positions of the position table (truncate sessions to max_length)");
    }
  }
  return dims;
}

}  // namespace detail

// op0[B], xs[B x d], xm[T x d] -> out[B x d] = z'_0 of every session; fills `cache`.
template <class ExecSpace, class MemorySpace, class Scalar, class OpV, class XSV, class XMV, class OutV>
void attention_forward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const OpV& op0, const XSV& xs,
                       const XMV& xm, const AttentionParams<Scalar, MemorySpace>& p, const AttentionOptions& opt,
                       const OutV& out, AttentionCache<Scalar, MemorySpace>& cache) {
  assert_accessible<ExecSpace, Batch<MemorySpace>, OpV, XSV, XMV, OutV, MatRef<Scalar, MemorySpace>>();
  static_assert(OutV::rank == 2, "attention_forward: out is 2-D");
  const auto dims = detail::attention_check("attention_forward", batch, op0, xs, xm, p, opt);
  const index_t B = dims.B, T = dims.T, d = dims.d;
  require_shape("attention_forward", "out", out, static_cast<std::size_t>(B), static_cast<std::size_t>(d));
  cache.num_sessions = B;
  cache.num_micro = T;
  cache.dim = d;
  const auto q = cache.q = ensure(cache.q_storage, B, d, "embsr::attention::q");
  const auto alpha = cache.alpha = ensure(cache.alpha_storage, T + B, "embsr::attention::alpha");
  const auto z = cache.z = ensure(cache.z_storage, B, d, "embsr::attention::z");
  const auto h1 = cache.h1 = ensure(cache.h1_storage, B, d, "embsr::attention::h1");
  const auto yhat = cache.yhat = ensure(cache.yhat_storage, B, d, "embsr::attention::yhat");
  const auto rstd = cache.rstd = ensure(cache.rstd_storage, B, "embsr::attention::rstd");
  const auto f = ensure(cache.f_storage, B, d, "embsr::attention::f");
  if (B == 0) return;

  const bool drop = opt.dropout.active();
  const double rate = opt.dropout.rate;
  const auto cols = static_cast<std::uint64_t>(d);

  // q = dropout_0(relu(W_Q x_0 + b_Q))
  linear_forward(exec, xs, p.W_Q, p.b_Q, q);
  const CounterRng rng0 = opt.dropout.site(kAttentionQueryDropoutSite);
  parallel_for_2d(exec, "embsr::attention::query", B, d, KOKKOS_LAMBDA(const int b, const int k) {
    Scalar v = q(b, k) > Scalar(0) ? q(b, k) : Scalar(0);
    if (drop) v *= dropout_scale<Scalar>(rng0, rate, static_cast<std::uint64_t>(b), cols, static_cast<std::uint64_t>(k));
    q(b, k) = v;
  });

  // One team per session: scores, softmax, weighted sum. Every sum runs in a fixed order (one
  // thread per score / per column), so results do not depend on the team size.
  const auto offsets = batch.micro_offsets;
  const auto ops = batch.micro_ops;
  const auto P = p.positions;
  const auto R = p.relations;
  const bool rel = opt.use_relations;
  const index_t n_ops = opt.num_op_ids;
  const Scalar inv_sqrt_d = Scalar(1) / math::sqrt(static_cast<Scalar>(d));
  using Team = typename Kokkos::TeamPolicy<ExecSpace>::member_type;
  Kokkos::parallel_for(
      "embsr::attention::attend", Kokkos::TeamPolicy<ExecSpace>(exec, B, Kokkos::AUTO),
      KOKKOS_LAMBDA(const Team& team) {
        const int b = team.league_rank();
        const index_t m0 = offsets(b), t = offsets(b + 1) - m0, a0 = m0 + b;
        const index_t o0 = op0(b);
        // v_j[k] = x_j[k] + P[j][k] (+ Rt[r_0j][k])
        auto value = [&](const index_t j, const index_t k) {
          Scalar v = (j == 0 ? xs(b, k) : xm(m0 + j - 1, k)) + P(j, k);
          if (rel) v += R(o0 * n_ops + (j == 0 ? o0 : ops(m0 + j - 1)), k);
          return v;
        };
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t + 1), [&](const index_t j) {
          Scalar e = 0;
          for (index_t k = 0; k < d; ++k) e += q(b, k) * value(j, k);
          alpha(a0 + j) = e * inv_sqrt_d;
        });
        team.team_barrier();
        Kokkos::single(Kokkos::PerTeam(team), [&]() {  // stable softmax over j = 0..t
          Scalar mx = alpha(a0);
          for (index_t j = 1; j <= t; ++j) mx = math::max(mx, alpha(a0 + j));
          Scalar sum = 0;
          for (index_t j = 0; j <= t; ++j) {
            const Scalar w = math::exp(alpha(a0 + j) - mx);
            alpha(a0 + j) = w;
            sum += w;
          }
          for (index_t j = 0; j <= t; ++j) alpha(a0 + j) /= sum;
        });
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, d), [&](const index_t k) {
          Scalar acc = 0;
          for (index_t j = 0; j <= t; ++j) acc += alpha(a0 + j) * value(j, k);
          z(b, k) = acc;
        });
      });

  // f = W_2 relu(W_1 z + b_1) + b_2
  linear_forward(exec, z, p.W_1, p.b_1, h1);
  parallel_for_2d(exec, "embsr::attention::ffn_relu", B, d, KOKKOS_LAMBDA(const int b, const int k) {
    if (!(h1(b, k) > Scalar(0))) h1(b, k) = 0;
  });
  linear_forward(exec, h1, p.W_2, p.b_2, f);

  // y = z + dropout_1(f) (kept in f), out = gamma * (y - mean) / sqrt(var + eps) + beta, biased var.
  const CounterRng rng1 = opt.dropout.site(kAttentionFfnDropoutSite);
  const auto gamma = p.ln_gamma;
  const auto beta = p.ln_beta;
  const Scalar eps = static_cast<Scalar>(detail::kAttentionLayerNormEps);
  Kokkos::parallel_for(
      "embsr::attention::layer_norm", Kokkos::RangePolicy<ExecSpace>(exec, 0, B), KOKKOS_LAMBDA(const int b) {
        Scalar mean = 0;
        for (index_t k = 0; k < d; ++k) {
          Scalar fk = f(b, k);
          if (drop) fk *= dropout_scale<Scalar>(rng1, rate, static_cast<std::uint64_t>(b), cols, static_cast<std::uint64_t>(k));
          f(b, k) = z(b, k) + fk;
          mean += f(b, k);
        }
        mean /= static_cast<Scalar>(d);
        Scalar var = 0;
        for (index_t k = 0; k < d; ++k) var += (f(b, k) - mean) * (f(b, k) - mean);
        var /= static_cast<Scalar>(d);
        const Scalar r = Scalar(1) / math::sqrt(var + eps);
        rstd(b) = r;
        for (index_t k = 0; k < d; ++k) {
          const Scalar yh = (f(b, k) - mean) * r;
          yhat(b, k) = yh;
          out(b, k) = gamma(k) * yh + beta(k);
        }
      });
}

// Backward of attention_forward, from dout[B x d]: adds into dxs[B x d], dxm[T x d] (either may
// be an empty View: not needed) and every gradient slice of `g` (positions and relations rows with
// atomics, the rest with fixed-order sums).
//
// Derivation (per session b, notation of the file header; s = 1/sqrt(d)):
//  LayerNorm: out = gamma yhat + beta, yhat = (y - mu) rstd.
//    dgamma += dout * yhat, dbeta += dout, and with g = dout * gamma:
//    dy = rstd (g - mean_k(g) - yhat mean_k(g * yhat)).
//  Residual + dropout_1: y = z + m1 * f  =>  dz = dy, df = m1 * dy (m1 recomputed from (seed, step)).
//  FFN: f = h1 W_2^T + b_2, h1 = relu(a1), a1 = z W_1^T + b_1:
//    dW_2 += df^T h1, db_2 += sum df, dh1 = df W_2, da1 = dh1 * [h1 > 0],
//    dW_1 += da1^T z, db_1 += sum da1, dz += da1 W_1.
//  Attention: z = sum_j alpha_j v_j, alpha = softmax(e), e_j = s q . v_j:
//    dalpha_j = dz . v_j, de_j = alpha_j (dalpha_j - sum_i alpha_i dalpha_i),
//    dv_j = alpha_j dz + s de_j q,  dq = s sum_j de_j v_j;
//    dv_j goes to x_j (dxs row b for j = 0, dxm row micro_offsets[b] + j - 1), P row j and Rt row r_0j.
//  Query: q = m0 * relu(a0), a0 = x_0 W_Q^T + b_Q  =>  da0 = dq * m0 * [a0 > 0]; since q > 0 exactly
//    when the element is kept and a0 > 0, da0 = dq * (q > 0 ? 1/(1 - rate) : 0) (1 without dropout).
//    dW_Q += da0^T xs, db_Q += sum da0, dxs += da0 W_Q.
template <class ExecSpace, class MemorySpace, class Scalar, class OpV, class XSV, class XMV, class DOutV, class DXSV,
          class DXMV>
void attention_backward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const OpV& op0, const XSV& xs,
                        const XMV& xm, const AttentionParams<Scalar, MemorySpace>& p, const AttentionOptions& opt,
                        const AttentionCache<Scalar, MemorySpace>& cache, const DOutV& dout, const DXSV& dxs,
                        const DXMV& dxm, const AttentionParams<Scalar, MemorySpace>& g) {
  assert_accessible<ExecSpace, Batch<MemorySpace>, OpV, XSV, XMV, DOutV, DXSV, DXMV, MatRef<Scalar, MemorySpace>>();
  static_assert(DOutV::rank == 2 && DXSV::rank == 2 && DXMV::rank == 2, "attention_backward: dout, dxs, dxm are 2-D");
  const auto dims = detail::attention_check("attention_backward", batch, op0, xs, xm, p, opt);
  const index_t B = dims.B, T = dims.T, d = dims.d;
  const std::string f = "attention_backward: ";
  if (cache.num_sessions != B || cache.num_micro != T || cache.dim != d)
    throw InvalidArgument(f + "the cache was filled by a forward pass on another batch");
  const auto uB = static_cast<std::size_t>(B), uT = static_cast<std::size_t>(T), ud = static_cast<std::size_t>(d);
  require_shape("attention_backward", "dout", dout, uB, ud);
  const bool has_dxs = dxs.extent(0) != 0, has_dxm = dxm.extent(0) != 0;
  if (has_dxs) require_shape("attention_backward", "dxs", dxs, uB, ud);
  if (has_dxm) require_shape("attention_backward", "dxm", dxm, uT, ud);
  require_shape("attention_backward", "gradient of positions", g.positions, p.positions.extent(0), ud);
  if (opt.use_relations)
    require_shape("attention_backward", "gradient of relations", g.relations, p.relations.extent(0), ud);
  if (B == 0) return;

  const auto dz = ensure(cache.dz_storage, B, d, "embsr::attention::dz");
  const auto df = ensure(cache.df_storage, B, d, "embsr::attention::df");
  const auto dh1 = ensure(cache.dh1_storage, B, d, "embsr::attention::dh1");
  const auto dq = ensure(cache.dq_storage, B, d, "embsr::attention::dq");
  const auto de = ensure(cache.de_storage, T + B, "embsr::attention::de");
  const auto q = cache.q;
  const auto alpha = cache.alpha;
  const auto z = cache.z;
  const auto h1 = cache.h1;
  const auto yhat = cache.yhat;
  const auto rstd = cache.rstd;

  const bool drop = opt.dropout.active();
  const double rate = opt.dropout.rate;
  const auto cols = static_cast<std::uint64_t>(d);

  // LayerNorm parameters: column sums over sessions in a fixed order.
  const auto gamma = p.ln_gamma;
  const auto dgamma = g.ln_gamma;
  const auto dbeta = g.ln_beta;
  Kokkos::parallel_for(
      "embsr::attention::layer_norm_param_grad", Kokkos::RangePolicy<ExecSpace>(exec, 0, d), KOKKOS_LAMBDA(const int k) {
        Scalar sg = 0, sb = 0;
        for (index_t b = 0; b < B; ++b) {
          sg += dout(b, k) * yhat(b, k);
          sb += dout(b, k);
        }
        dgamma(k) += sg;
        dbeta(k) += sb;
      });
  // dy -> dz (residual) and df = m1 * dy.
  const CounterRng rng1 = opt.dropout.site(kAttentionFfnDropoutSite);
  Kokkos::parallel_for(
      "embsr::attention::layer_norm_grad", Kokkos::RangePolicy<ExecSpace>(exec, 0, B), KOKKOS_LAMBDA(const int b) {
        Scalar mg = 0, mgy = 0;
        for (index_t k = 0; k < d; ++k) {
          const Scalar gk = dout(b, k) * gamma(k);
          mg += gk;
          mgy += gk * yhat(b, k);
        }
        mg /= static_cast<Scalar>(d);
        mgy /= static_cast<Scalar>(d);
        for (index_t k = 0; k < d; ++k) {
          const Scalar dy = rstd(b) * (dout(b, k) * gamma(k) - mg - yhat(b, k) * mgy);
          dz(b, k) = dy;
          df(b, k) = drop ? dy * dropout_scale<Scalar>(rng1, rate, static_cast<std::uint64_t>(b), cols,
                                                        static_cast<std::uint64_t>(k))
                          : dy;
        }
      });

  // FFN.
  gemm(exec, Trans::No, Trans::No, Scalar(1), df, p.W_2, Scalar(0), dh1);
  linear_backward(exec, h1, p.W_2, df, MatRef<Scalar, MemorySpace>(), g.W_2, g.b_2);
  parallel_for_2d(exec, "embsr::attention::ffn_relu_grad", B, d, KOKKOS_LAMBDA(const int b, const int k) {
    if (!(h1(b, k) > Scalar(0))) dh1(b, k) = 0;
  });
  linear_backward(exec, z, p.W_1, dh1, dz, g.W_1, g.b_1);

  // Attention, one team per session.
  const auto offsets = batch.micro_offsets;
  const auto ops = batch.micro_ops;
  const auto P = p.positions;
  const auto R = p.relations;
  const auto dP = g.positions;
  const auto dR = g.relations;
  const bool rel = opt.use_relations;
  const index_t n_ops = opt.num_op_ids;
  const Scalar inv_sqrt_d = Scalar(1) / math::sqrt(static_cast<Scalar>(d));
  const Scalar keep = drop ? static_cast<Scalar>(1.0 / (1.0 - rate)) : Scalar(1);
  // dP and dR receive from every session: a ScatterView makes those sums per-thread copies on host
  // backends (a float atomic_add there is a compare-and-swap loop, and made this kernel 4% of a
  // training step) and atomics on GPUs. Kept in the cache and zeroed here, not reallocated.
  using Scatters = detail::AttentionScatters<ExecSpace, Scalar>;
  auto scatters = std::static_pointer_cast<Scatters>(cache.scatter);
  if (cache.scatter_tag != Scatters::tag() || !scatters->fits(dP, dR, rel)) {
    scatters = std::make_shared<Scatters>(dP, dR, rel);
    cache.scatter = scatters;
    cache.scatter_tag = Scatters::tag();
  } else {
    // reset_except: where the ScatterView is the gradient View itself (GPUs, Serial), leave it.
    scatters->dP.reset_except(exec, dP);
    if (rel) scatters->dR.reset_except(exec, dR);
  }
  const auto scatter_dP = scatters->dP;
  const auto scatter_dR = scatters->dR;
  using Team = typename Kokkos::TeamPolicy<ExecSpace>::member_type;
  Kokkos::parallel_for(
      "embsr::attention::attend_grad", Kokkos::TeamPolicy<ExecSpace>(exec, B, Kokkos::AUTO),
      KOKKOS_LAMBDA(const Team& team) {
        const int b = team.league_rank();
        const index_t m0 = offsets(b), t = offsets(b + 1) - m0, a0 = m0 + b;
        const index_t o0 = op0(b);
        auto relation = [&](const index_t j) { return o0 * n_ops + (j == 0 ? o0 : ops(m0 + j - 1)); };
        auto value = [&](const index_t j, const index_t k) {
          Scalar v = (j == 0 ? xs(b, k) : xm(m0 + j - 1, k)) + P(j, k);
          if (rel) v += R(relation(j), k);
          return v;
        };
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t + 1), [&](const index_t j) {
          Scalar da = 0;
          for (index_t k = 0; k < d; ++k) da += dz(b, k) * value(j, k);
          de(a0 + j) = da;
        });
        team.team_barrier();
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          Scalar s = 0;
          for (index_t j = 0; j <= t; ++j) s += alpha(a0 + j) * de(a0 + j);
          for (index_t j = 0; j <= t; ++j) de(a0 + j) = alpha(a0 + j) * (de(a0 + j) - s);
        });
        team.team_barrier();
        auto dP_acc = scatter_dP.access();
        auto dR_acc = scatter_dR.access();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, d), [&](const index_t k) {
          Scalar acc = 0;
          for (index_t j = 0; j <= t; ++j) {
            acc += de(a0 + j) * value(j, k);
            const Scalar dv = alpha(a0 + j) * dz(b, k) + inv_sqrt_d * de(a0 + j) * q(b, k);
            if (j == 0) {
              if (has_dxs) dxs(b, k) += dv;  // row b belongs to this team alone
            } else if (has_dxm) {
              dxm(m0 + j - 1, k) += dv;  // so does the session's micro row
            }
            dP_acc(j, k) += dv;
            if (rel) dR_acc(relation(j), k) += dv;
          }
          dq(b, k) = q(b, k) > Scalar(0) ? inv_sqrt_d * acc * keep : Scalar(0);
        });
      });

  scatter_dP.contribute_into(exec, dP);
  if (rel) scatter_dR.contribute_into(exec, dR);

  // Query: dq now holds da0.
  linear_backward(exec, xs, p.W_Q, dq, dxs, g.W_Q, g.b_Q);
}

}  // namespace embsr
