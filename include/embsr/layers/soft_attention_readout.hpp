#pragma once
// The soft-attention readout of the SR-GNN family: SR-GNN's (Wu et al., "Session-based
// Recommendation with Graph Neural Networks", AAAI 2019, Sec. 3.4, eq. 6-7), SGNN-HN's (Pan et al.,
// "Star Graph Neural Networks for Session-based Recommendation", CIKM 2020, the session
// representation: the same attention with the star x_s as a third term inside the sigmoid) and
// MKM-SR's (Meng et al., "Incorporating User Micro-behaviors and Item Knowledge into Multi-task
// Learning for Session-based Recommendation", SIGIR 2020, Sec. 3: SR-GNN's attention over the
// micro-behavior embeddings m_j = [item ; operation], width 2d, mapped back to d). See
// docs/GRAPH_MODELS.md, sections 1, 2 and 4.
//
// The input is one row per position, the sessions back to back: session b owns the rows
// v_1..v_n = X[offsets[b] .. offsets[b+1]) (n = n_b, v_n its LAST row), and c_b is its optional
// context row:
//
//   alpha_i = q . sigmoid(W1 v_n + b1 [+ W_s c_b + b_s] + W2 v_i + b2)     (SR-GNN eq. 6; the
//                                                     bracket is SGNN-HN's star term, absent for
//                                                     SR-GNN and MKM-SR)
//   s_g     = sum_i alpha_i v_i                       (eq. 6; alpha is NOT normalised, as in the
//                                                     papers and the authors' codes)
//   s_l     = v_n
//   s_h     = W3 [s_l ; s_g] + b3                     (eq. 7)
//
// The caller builds X: SR-GNN X = H[macro_alias] (embedding_forward of layers/embedding.hpp, and
// embedding_backward to scatter dX back to the nodes), SGNN-HN adds the position rows to that,
// MKM-SR X = [H[micro_alias] ; o'] (then D = 2d, d_out = d, offsets = the micro offsets).
// In the authors' codes W1 = linear_one, W2 = linear_two (SGNN-HN: linear_three), W_s = SGNN-HN's
// linear_two (nn.Linear with bias), q = linear_three (SGNN-HN: linear_four; no bias) and
// W3 = linear_transform (nn.Linear with bias); every linear map is stored [out x in], as in
// layers/linear.hpp.
//
// Shapes: B sessions, R rows, input width D, output width d_out, context width d_c:
//   offsets [B+1] (index_t; offsets[0] = 0 <= offsets[1] <= ... <= offsets[B] = R, not read on
//   the host: a Batch's macro_offsets (R = num_macro) or micro_offsets (R = num_micro) are);
//   X [R x D]; context [B x d_c], or an empty View without the context term;
//   W1 [D x D], b1 [D], W2 [D x D], b2 [D], q [D], W3 [d_out x 2D] (acting on [s_l ; s_g]),
//   b3 [d_out]; W_s [D x d_c], b_s [D], both empty without the context term;
//   s_h [B x d_out]. Sessions are non-empty (the BatchBuilder's are); an empty session would read
//   as v_n = 0, s_g = 0. An empty batch (B = 0) gives an empty s_h and adds no gradient.
// The linear maps are GEMMs over all rows / sessions (core/gemm.hpp); every other sum runs in a
// fixed order on one thread, so the forward and the gradients do not depend on the thread count
// or on the other sessions of the batch.

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>
#include <embsr/layers/linear.hpp>

namespace embsr {

template <class Scalar, class MemorySpace>
struct SoftAttentionReadoutParams {
  MatRef<Scalar, MemorySpace> W1;   // [D x D]       linear_one, acts on v_n
  VecRef<Scalar, MemorySpace> b1;   // [D]
  MatRef<Scalar, MemorySpace> W2;   // [D x D]       linear_two (SGNN-HN: linear_three), acts on v_i
  VecRef<Scalar, MemorySpace> b2;   // [D]
  VecRef<Scalar, MemorySpace> q;    // [D]           linear_three (SGNN-HN: linear_four; no bias)
  MatRef<Scalar, MemorySpace> W3;   // [d_out x 2D]  linear_transform, acts on [s_l ; s_g]
  VecRef<Scalar, MemorySpace> b3;   // [d_out]
  MatRef<Scalar, MemorySpace> W_s;  // [D x d_c]     SGNN-HN's linear_two, acts on the context c_b; empty: no context term
  VecRef<Scalar, MemorySpace> b_s;  // [D]           empty with W_s
};

template <class Scalar, class MemorySpace>
struct SoftAttentionReadoutCache {
  // What the last forward saw (-1: no forward yet).
  int num_sessions = -1, num_rows = -1, input_dim = -1, output_dim = -1, context_dim = -1;  // context_dim -1: none
  Kokkos::View<int*, MemorySpace> session;  // [R]       session b of each row
  MatRef<Scalar, MemorySpace> x;            // [B x 2D]  [s_l ; s_g]
  MatRef<Scalar, MemorySpace> gate;         // [R x D]   sigmoid(W1 v_n + b1 [+ W_s c_b + b_s] + W2 v_i + b2)
  VecRef<Scalar, MemorySpace> alpha;        // [R]       alpha_i

  Kokkos::View<int*, MemorySpace> session_storage;
  Mat<Scalar, MemorySpace> x_storage, gate_storage, query_storage;  // query: [B x D] W1 v_n + b1 [+ W_s c_b + b_s]
  Vec<Scalar, MemorySpace> alpha_storage;
  // Backward scratch.
  mutable Mat<Scalar, MemorySpace> grad_x, grad_pre, grad_query, grad_last;  // [B x 2D] [R x D] [B x D] [B x D]
  mutable Vec<Scalar, MemorySpace> grad_alpha;                               // [R]
};

namespace detail {

struct SoftAttentionReadoutDims {
  std::size_t output = 0;   // d_out
  std::size_t context = 0;  // d_c
  bool with_context = false;
};

template <class S, class M>
SoftAttentionReadoutDims soft_attention_readout_check(const std::string& who, const char* what,
                                                      const SoftAttentionReadoutParams<S, M>& p, std::size_t D) {
  const std::string w = who + (what[0] != '\0' ? std::string(" (") + what + ")" : std::string());
  SoftAttentionReadoutDims dims;
  dims.output = p.W3.extent(0);
  require_shape(w, "W1", p.W1, D, D);
  require_length(w, "b1", p.b1, D);
  require_shape(w, "W2", p.W2, D, D);
  require_length(w, "b2", p.b2, D);
  require_length(w, "q", p.q, D);
  require_shape(w, "W3", p.W3, dims.output, 2 * D);
  require_length(w, "b3", p.b3, dims.output);
  dims.with_context = p.W_s.extent(0) != 0 || p.W_s.extent(1) != 0 || p.b_s.extent(0) != 0;
  if (dims.with_context) {
    dims.context = p.W_s.extent(1);
    require_shape(w, "W_s", p.W_s, D, dims.context);
    require_length(w, "b_s", p.b_s, D);
  }
  return dims;
}

// B from offsets [B+1]; the context [B x d_c], or empty without the context term.
template <class OffV, class CtxV>
std::size_t soft_attention_readout_sessions(const std::string& who, const OffV& offsets, const CtxV& context,
                                            const SoftAttentionReadoutDims& dims) {
  static_assert(OffV::rank == 1 && std::is_integral<typename OffV::non_const_value_type>::value,
                "soft_attention_readout: offsets is a 1-D View of integers");
  static_assert(CtxV::rank == 2, "soft_attention_readout: context is a 2-D View");
  require(offsets.extent(0) >= 1, who, "offsets is [0], expected [B+1] with B >= 0");
  const std::size_t B = offsets.extent(0) - 1;
  if (dims.with_context) require_shape(who, "context", context, B, dims.context);
  else
    require(context.extent(0) == 0 && context.extent(1) == 0, who,
            "context is " + shape_of(context) + ", expected an empty View: the parameters have no W_s, b_s");
  return B;
}

template <class M>
Kokkos::View<int*, M> soft_attention_readout_ints(Kokkos::View<int*, M>& storage, std::size_t n, const char* label) {
  if (storage.extent(0) < n) {
    storage = Kokkos::View<int*, M>();
    storage = Kokkos::View<int*, M>(Kokkos::view_alloc(std::string(label), Kokkos::WithoutInitializing), n + n / 4 + 1);
  }
  return Kokkos::subview(storage, std::make_pair(std::size_t(0), n));
}

}  // namespace detail

// X [R x D] (rows of the sessions given by offsets [B+1]), context [B x d_c] or empty ->
// s_h [B x d_out]; fills `cache` with what the backward needs.
template <class ExecSpace, class Scalar, class MemorySpace, class OffV, class XV, class CtxV, class SHV>
void soft_attention_readout_forward(const ExecSpace& exec, const OffV& offsets, const XV& X,
                                    const SoftAttentionReadoutParams<Scalar, MemorySpace>& p, const CtxV& context,
                                    const SHV& s_h, SoftAttentionReadoutCache<Scalar, MemorySpace>& cache) {
  assert_accessible<ExecSpace, OffV, XV, CtxV, SHV, MatRef<Scalar, MemorySpace>>();
  static_assert(XV::rank == 2 && SHV::rank == 2, "soft_attention_readout_forward: X and s_h are 2-D");
  using S = Scalar;
  const char* who = "soft_attention_readout_forward";
  const std::size_t R = X.extent(0), D = X.extent(1);
  const auto dims = detail::soft_attention_readout_check(who, "", p, D);
  const std::size_t B = detail::soft_attention_readout_sessions(who, offsets, context, dims), d_out = dims.output;
  require_shape(who, "s_h", s_h, B, d_out);
  cache.num_sessions = -1;  // until this forward has filled the cache
  cache.session = detail::soft_attention_readout_ints(cache.session_storage, R, "embsr::soft_attention_readout::session");
  cache.x = ensure(cache.x_storage, B, 2 * D, "embsr::soft_attention_readout::x");
  cache.gate = ensure(cache.gate_storage, R, D, "embsr::soft_attention_readout::gate");
  cache.alpha = ensure(cache.alpha_storage, R, "embsr::soft_attention_readout::alpha");
  const auto query = ensure(cache.query_storage, B, D, "embsr::soft_attention_readout::query");
  cache.num_rows = static_cast<int>(R);
  cache.input_dim = static_cast<int>(D);
  cache.output_dim = static_cast<int>(d_out);
  cache.context_dim = dims.with_context ? static_cast<int>(dims.context) : -1;
  cache.num_sessions = static_cast<int>(B);
  if (B == 0) return;

  const auto session = cache.session;
  const auto x = cache.x, gate = cache.gate;
  const auto alpha = cache.alpha;
  const auto q = p.q;
  const int nD = static_cast<int>(D);
  Kokkos::parallel_for(
      "embsr::soft_attention_readout::sessions", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(B)),
      KOKKOS_LAMBDA(const int b) {
        for (int i = static_cast<int>(offsets(b)); i < static_cast<int>(offsets(b + 1)); ++i) session(i) = b;
      });
  // x = [s_l ; .]: s_l = v_n, the session's last row.
  parallel_for_2d(exec, "embsr::soft_attention_readout::last", B, D, KOKKOS_LAMBDA(const int b, const int j) {
    const int begin = static_cast<int>(offsets(b)), end = static_cast<int>(offsets(b + 1));
    x(b, j) = end > begin ? S(X(end - 1, j)) : S(0);
  });
  const auto s_l = Kokkos::subview(x, Kokkos::ALL, std::make_pair(0, nD));
  linear_forward(exec, s_l, p.W1, p.b1, query);  // W1 v_n + b1                [B x D]
  if (dims.with_context) {                       // + W_s c_b + b_s
    gemm(exec, Trans::No, Trans::Yes, S(1), context, p.W_s, S(1), query);
    const auto b_s = p.b_s;
    parallel_for_2d(exec, "embsr::soft_attention_readout::context_bias", B, D,
                    KOKKOS_LAMBDA(const int b, const int j) { query(b, j) += b_s(j); });
  }
  linear_forward(exec, X, p.W2, p.b2, gate);  // W2 v_i + b2 (for now)  [R x D]
  Kokkos::parallel_for(
      "embsr::soft_attention_readout::attention", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(R)),
      KOKKOS_LAMBDA(const int i) {
        const int b = session(i);
        S acc = 0;
        for (int j = 0; j < nD; ++j) {
          const S g = math::sigmoid(query(b, j) + gate(i, j));
          gate(i, j) = g;
          acc += q(j) * g;
        }
        alpha(i) = acc;
      });
  // x = [. ; s_g]: s_g = sum_i alpha_i v_i, rows in order.
  parallel_for_2d(exec, "embsr::soft_attention_readout::global", B, D, KOKKOS_LAMBDA(const int b, const int j) {
    S acc = 0;
    for (int i = static_cast<int>(offsets(b)); i < static_cast<int>(offsets(b + 1)); ++i) acc += alpha(i) * S(X(i, j));
    x(b, nD + j) = acc;
  });
  linear_forward(exec, x, p.W3, p.b3, s_h);  // eq. 7
}

// ds_h [B x d_out] -> dX [R x D] (add), dcontext [B x d_c] (add), grads (add). With
// g_i = sigmoid(pre_i), pre_i = query_b + W2 v_i + b2, query_b = W1 v_n + b1 [+ W_s c_b + b_s],
// x = [s_l ; s_g], and b the session of row i:
//   s_h = W3 x + b3:          dW3 += ds_h^T x,  db3 += sum_b ds_h,  dx = ds_h W3 = [ds_l ; ds_g]
//   s_g = sum_i alpha_i v_i:  dalpha_i = ds_g(b) . v_i,  dv_i = alpha_i ds_g(b)
//   alpha_i = q . g_i:        dq += sum_i dalpha_i g_i,  dpre_i = dalpha_i q * g_i * (1 - g_i)
//   pre_i (W2 v_i + b2 part): dW2 += dpre^T X,  db2 += sum_i dpre_i,  dv_i += dpre_i W2
//   pre_i (query_b part):     dquery_b = sum_{i of b} dpre_i
//   query_b (W1 v_n + b1):    dW1 += dquery^T S_l,  db1 += sum_b dquery_b,  dv_n += dquery_b W1
//   query_b (W_s c_b + b_s):  dW_s += dquery^T C,  db_s += sum_b dquery_b,  dc_b += dquery_b W_s
//   s_l = v_n:                dv_n += ds_l
//   dX_i += dv_i
// Every row belongs to one session, so dX gathers its terms per row (the v_n terms on the last row
// of its session) without atomics, in a fixed order. dX and dcontext may be empty Views (not
// needed); the context arguments must match the parameters (empty without W_s).
template <class ExecSpace, class Scalar, class MemorySpace, class OffV, class XV, class CtxV, class DSHV, class DXV,
          class DCV>
void soft_attention_readout_backward(const ExecSpace& exec, const OffV& offsets, const XV& X,
                                     const SoftAttentionReadoutParams<Scalar, MemorySpace>& p, const CtxV& context,
                                     const SoftAttentionReadoutCache<Scalar, MemorySpace>& cache, const DSHV& ds_h,
                                     const DXV& dX, const DCV& dcontext,
                                     const SoftAttentionReadoutParams<Scalar, MemorySpace>& grads) {
  assert_accessible<ExecSpace, OffV, XV, CtxV, DSHV, DXV, DCV, MatRef<Scalar, MemorySpace>>();
  static_assert(XV::rank == 2 && DSHV::rank == 2 && DXV::rank == 2 && DCV::rank == 2,
                "soft_attention_readout_backward: X, ds_h, dX and dcontext are 2-D");
  using S = Scalar;
  const char* who = "soft_attention_readout_backward";
  const std::size_t R = X.extent(0), D = X.extent(1);
  const auto dims = detail::soft_attention_readout_check(who, "", p, D);
  const auto gdims = detail::soft_attention_readout_check(who, "gradients", grads, D);
  require(gdims.output == dims.output && gdims.with_context == dims.with_context && gdims.context == dims.context, who,
          "the gradients' W3 / W_s have other shapes than the parameters'");
  const std::size_t B = detail::soft_attention_readout_sessions(who, offsets, context, dims), d_out = dims.output;
  require(cache.num_sessions == static_cast<int>(B) && cache.num_rows == static_cast<int>(R) &&
              cache.input_dim == static_cast<int>(D) && cache.output_dim == static_cast<int>(d_out) &&
              cache.context_dim == (dims.with_context ? static_cast<int>(dims.context) : -1),
          who, "the cache does not hold a forward pass of these offsets, X and parameters");
  require_shape(who, "ds_h", ds_h, B, d_out);
  const bool want_dX = dX.extent(0) != 0, want_dc = dcontext.extent(0) != 0;
  if (want_dX) require_shape(who, "dX (empty or [R x D])", dX, R, D);
  if (want_dc) {
    require(dims.with_context, who, "dcontext is " + shape_of(dcontext) + ", expected an empty View: no context term");
    require_shape(who, "dcontext (empty or [B x d_c])", dcontext, B, dims.context);
  }
  const auto dx = ensure(cache.grad_x, B, 2 * D, "embsr::soft_attention_readout::grad_x");
  const auto dpre = ensure(cache.grad_pre, R, D, "embsr::soft_attention_readout::grad_pre");
  const auto dquery = ensure(cache.grad_query, B, D, "embsr::soft_attention_readout::grad_query");
  const auto dlast = ensure(cache.grad_last, B, D, "embsr::soft_attention_readout::grad_last");
  const auto dalpha = ensure(cache.grad_alpha, R, "embsr::soft_attention_readout::grad_alpha");
  if (B == 0) return;

  const auto session = cache.session;
  const auto x = cache.x, gate = cache.gate;
  const auto alpha = cache.alpha;
  const auto q = p.q, dq = grads.q;
  const int nD = static_cast<int>(D), nR = static_cast<int>(R);

  // eq. 7: dW3, db3, and dx = ds_h W3.
  linear_backward(exec, x, p.W3, ds_h, MatRef<S, MemorySpace>(), grads.W3, grads.b3);
  gemm(exec, Trans::No, Trans::No, S(1), ds_h, p.W3, S(0), dx);
  // s_g and alpha: dalpha_i, dpre_i.
  Kokkos::parallel_for(
      "embsr::soft_attention_readout::d_alpha", Kokkos::RangePolicy<ExecSpace>(exec, 0, nR), KOKKOS_LAMBDA(const int i) {
        const int b = session(i);
        S da = 0;
        for (int j = 0; j < nD; ++j) da += dx(b, nD + j) * S(X(i, j));
        dalpha(i) = da;
        for (int j = 0; j < nD; ++j) {
          const S g = gate(i, j);
          dpre(i, j) = da * q(j) * g * (S(1) - g);
        }
      });
  Kokkos::parallel_for(
      "embsr::soft_attention_readout::d_q", Kokkos::RangePolicy<ExecSpace>(exec, 0, nD), KOKKOS_LAMBDA(const int j) {
        S acc = 0;
        for (int i = 0; i < nR; ++i) acc += dalpha(i) * gate(i, j);
        dq(j) += acc;
      });
  // The query part: dquery_b = sum of the session's dpre_i (in order), then dW1, db1 and dlast = dquery W1.
  parallel_for_2d(exec, "embsr::soft_attention_readout::d_query", B, D, KOKKOS_LAMBDA(const int b, const int j) {
    S acc = 0;
    for (int i = static_cast<int>(offsets(b)); i < static_cast<int>(offsets(b + 1)); ++i) acc += dpre(i, j);
    dquery(b, j) = acc;
  });
  const auto s_l = Kokkos::subview(x, Kokkos::ALL, std::make_pair(0, nD));
  linear_backward(exec, s_l, p.W1, dquery, MatRef<S, MemorySpace>(), grads.W1, grads.b1);
  // The context term: dW_s, db_s, dcontext += dquery W_s.
  if (dims.with_context) linear_backward(exec, context, p.W_s, dquery, dcontext, grads.W_s, grads.b_s);
  if (want_dX) {
    gemm(exec, Trans::No, Trans::No, S(1), dquery, p.W1, S(0), dlast);
    // dX_i += alpha_i ds_g(b) (+ ds_l + dquery_b W1 on the session's last row).
    parallel_for_2d(exec, "embsr::soft_attention_readout::d_X", R, D, KOKKOS_LAMBDA(const int i, const int j) {
      const int b = session(i);
      S acc = alpha(i) * dx(b, nD + j);
      if (i == static_cast<int>(offsets(b + 1)) - 1) acc += dx(b, j) + dlast(b, j);
      dX(i, j) += acc;
    });
  }
  // W2 v_i + b2: dW2, db2, dX += dpre W2 (skipped with an empty dX).
  linear_backward(exec, X, p.W2, dpre, dX, grads.W2, grads.b2);
}

}  // namespace embsr
