#pragma once
// The activations of one EMBSR forward pass and their gradients, as two structs (in the manner of
// llm.c's ActivationTensors; the parameters are laid out by model/parameter_layout.hpp). Each field is
// a view of the current batch's leading block of its storage, grown with embsr::ensure, so a training
// loop stops allocating once batches stop growing. Sizes: B sessions, T micro-behaviors, N macro
// items, C nodes (distinct items), S = Config::gnn_steps, d = Config::d.
// Only the fields the configuration uses are sized (the GNN's without use_gnn, z without attention).
// R is the number of attention positions: T, or N when the attention runs over macro items
// (use_attention_ops off with the GNN or without an encoder; model/config.hpp). With the RNN encoder
// (RNN-Self) hf holds one row per micro-behavior: [T x d] instead of [C x d].

#include <cstddef>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/model/config.hpp>

namespace embsr {

namespace detail {

// R, the attention's positions: the micro-behaviors, or the macro items (each item once).
inline std::size_t embsr_positions(const BatchSizes& sizes, const Config& config) {
  return static_cast<std::size_t>(config.attention_over_macro_items() ? sizes.num_macro : sizes.num_micro);
}
// Columns [c0, c1) of a matrix, as a strided view (RNN-Self's two input blocks).
template <class Mat>
auto embsr_columns(const Mat& m, int c0, int c1) {
  return Kokkos::subview(m, Kokkos::ALL, std::make_pair(c0, c1));
}

}  // namespace detail

template <class Scalar, class MemorySpace>
struct EmbsrActivations {
  using matrix = MatRef<Scalar, MemorySpace>;

  Kokkos::View<int*, MemorySpace> op0;  // [B]       operation id of position 0 (MODEL.md 4.1)
  matrix eo;                            // [T x d]   op_embedding[micro_ops]
  matrix hrun;                          // [N x d]   run GRU states h~ (3.1; zeros without the run GRU); GNN only
  std::vector<matrix> h;                // S+1 x [C x d]  node states: h[0] = item_embedding[node_items],
                                        //                h[s+1] after GNN step s (GNN only for s >= 0)
  std::vector<matrix> hhat;             // S x [C x d]    GGNN output of step s (3.3); GNN only
  std::vector<matrix> star;             // S+1 x [B x d]  star[0] = mean of h[0], star[s+1] after step s (3.4)
  matrix star_last;                     // [B x d]   star[S] (star[0] without the GNN)
  matrix hf;                            // [C x d]   highway output (3.5; h[0] without the GNN); RNN: [T x d]
  matrix xrnn;                          // [T x 2d]  [item_embedding[micro_items] ; eo], the RNN's input; RNN only
  matrix xm;                            // [R x d]   hf[micro_alias] + eo (4.1)
  matrix xs;                            // [B x d]   star_last + op_embedding[op0] (4.1)
  matrix xt;                            // [B x d]   xm of each session's last micro-behavior (5)
  matrix z;                             // [B x d]   attention output z'_0 (4.2; star_last without attention)
  matrix m;                             // [B x d]   fused session vector (5)
  VecRef<Scalar, MemorySpace> repeat;   // [C]       repeat score r_c (docs/REPEAT.md); use_repeat only
  VecRef<Scalar, MemorySpace> gate;     // [B]       repeat/explore gate logit gamma_b; repeat_mixture only

  // Sizes every field for a batch of `sizes` under `config`.
  void resize(const BatchSizes& sizes, const Config& config) {
    const std::size_t B = static_cast<std::size_t>(sizes.num_sessions), T = static_cast<std::size_t>(sizes.num_micro),
                      N = static_cast<std::size_t>(sizes.num_macro), C = static_cast<std::size_t>(sizes.num_nodes),
                      d = static_cast<std::size_t>(config.d);
    const auto S = static_cast<std::size_t>(config.gnn_steps);
    if (op0_storage.extent(0) < B) op0_storage = Kokkos::View<int*, MemorySpace>("embsr::model::op0", B + B / 4 + 1);
    op0 = Kokkos::subview(op0_storage, std::make_pair(std::size_t(0), B));
    eo = ensure(eo_storage, T, d, "embsr::model::eo");
    h.resize(S + 1);
    h_storage.resize(S + 1);
    hhat.resize(S);
    hhat_storage.resize(S);
    star.resize(S + 1);
    star_storage.resize(S + 1);
    h[0] = ensure(h_storage[0], C, d, "embsr::model::h0");
    star[0] = ensure(star_storage[0], B, d, "embsr::model::star0");
    star_last = star[0];
    hf = h[0];
    if (config.rnn_encoder()) {
      xrnn = ensure(xrnn_storage, T, 2 * d, "embsr::model::xrnn");
      hf = ensure(hf_storage, T, d, "embsr::model::hf");
    } else if (config.use_gnn) {
      hrun = ensure(hrun_storage, N, d, "embsr::model::hrun");
      for (std::size_t s = 0; s < S; ++s) {
        hhat[s] = ensure(hhat_storage[s], C, d, "embsr::model::hhat");
        h[s + 1] = ensure(h_storage[s + 1], C, d, "embsr::model::h");
        star[s + 1] = ensure(star_storage[s + 1], B, d, "embsr::model::star");
      }
      star_last = star[S];
      hf = ensure(hf_storage, C, d, "embsr::model::hf");
    }
    xm = ensure(xm_storage, detail::embsr_positions(sizes, config), d, "embsr::model::xm");
    xs = ensure(xs_storage, B, d, "embsr::model::xs");
    z = config.use_attention ? ensure(z_storage, B, d, "embsr::model::z") : star_last;  // EMBSR-NS: z is the star
    xt = ensure(xt_storage, B, d, "embsr::model::xt");
    m = ensure(m_storage, B, d, "embsr::model::m");
    if (config.use_repeat) repeat = ensure(repeat_storage, C, "embsr::model::repeat");
    if (config.repeat_mixture) gate = ensure(gate_storage, B, "embsr::model::gate");
  }

 private:
  Vec<Scalar, MemorySpace> repeat_storage, gate_storage;
  Kokkos::View<int*, MemorySpace> op0_storage;
  Mat<Scalar, MemorySpace> eo_storage, hrun_storage, hf_storage, xrnn_storage, xm_storage, xs_storage, z_storage,
      xt_storage, m_storage;
  std::vector<Mat<Scalar, MemorySpace>> h_storage, hhat_storage, star_storage;
};

// dL/d(activation) for the backward pass, named after EmbsrActivations' fields.
template <class Scalar, class MemorySpace>
struct EmbsrGradients {
  using matrix = MatRef<Scalar, MemorySpace>;

  matrix dm;          // [B x d]  dL/dm (from the scoring)
  matrix dz;          // [B x d]  dL/dz (the same view as dstar without attention: z is the star)
  matrix dxt;         // [B x d]  dL/dxt
  matrix dxm;         // [R x d]  dL/dxm
  matrix dxs;         // [B x d]  dL/dxs
  matrix dstar;       // [B x d]  dL/dstar[s], walking back from s = S to s = 0
  matrix deo;         // [T x d]  dL/deo (from the inputs and the run GRU)
  matrix dhf;         // [C x d]  dL/dhf ([T x d] with the RNN encoder)
  matrix dxrnn;       // [T x 2d] dL/dxrnn; RNN only
  matrix dh0;         // [C x d]  dL/dh[0]
  matrix dh;          // [C x d]  dL/dh[s+1], walking back; GNN only
  matrix dhrun;       // [N x d]  dL/dhrun; GNN only
  matrix dhhat;       // [C x d]  dL/dhhat[s] of the current step; GNN only
  matrix dh_prev;     // [C x d]  dL/dh[s] of the current step; GNN only
  matrix dstar_prev;  // [B x d]  dL/dstar[s] of the current step; GNN only
  VecRef<Scalar, MemorySpace> drepeat;  // [C]  dL/dr_c; use_repeat only
  VecRef<Scalar, MemorySpace> dgate;    // [B]  dL/dgamma_b; repeat_mixture only

  void resize(const BatchSizes& sizes, const Config& config) {
    const std::size_t B = static_cast<std::size_t>(sizes.num_sessions), T = static_cast<std::size_t>(sizes.num_micro),
                      N = static_cast<std::size_t>(sizes.num_macro), C = static_cast<std::size_t>(sizes.num_nodes),
                      d = static_cast<std::size_t>(config.d);
    dm = ensure(dm_storage, B, d, "embsr::model::dm");
    dstar = ensure(dstar_storage, B, d, "embsr::model::dstar");
    dz = config.use_attention ? ensure(dz_storage, B, d, "embsr::model::dz") : dstar;
    dxt = ensure(dxt_storage, B, d, "embsr::model::dxt");
    dxm = ensure(dxm_storage, detail::embsr_positions(sizes, config), d, "embsr::model::dxm");
    dxs = ensure(dxs_storage, B, d, "embsr::model::dxs");
    deo = ensure(deo_storage, T, d, "embsr::model::deo");
    const bool rnn = config.rnn_encoder();
    dhf = ensure(dhf_storage, rnn ? T : C, d, "embsr::model::dhf");
    dh0 = ensure(dh0_storage, C, d, "embsr::model::dh0");
    if (rnn) {
      dxrnn = ensure(dxrnn_storage, T, 2 * d, "embsr::model::dxrnn");
    } else if (config.use_gnn) {
      dh = ensure(dh_storage, C, d, "embsr::model::dh");
      dhrun = ensure(dhrun_storage, N, d, "embsr::model::dhrun");
      dhhat = ensure(dhhat_storage, C, d, "embsr::model::dhhat");
      dh_prev = ensure(dh_prev_storage, C, d, "embsr::model::dh_prev");
      dstar_prev = ensure(dstar_prev_storage, B, d, "embsr::model::dstar_prev");
    }
    if (config.use_repeat) drepeat = ensure(drepeat_storage, C, "embsr::model::drepeat");
    if (config.repeat_mixture) dgate = ensure(dgate_storage, B, "embsr::model::dgate");
  }

  // Zeroes the gradients the layers add into (the per-step ones are zeroed by the GNN loop).
  template <class ExecSpace>
  void zero(const ExecSpace& exec, const Config& config) const {
    for (const matrix* g : {&dm, &dz, &dxt, &dxm, &dxs, &dstar, &deo, &dhf, &dh0}) Kokkos::deep_copy(exec, *g, Scalar(0));
    if (config.rnn_encoder()) Kokkos::deep_copy(exec, dxrnn, Scalar(0));
    else if (config.use_gnn)
      for (const matrix* g : {&dh, &dhrun}) Kokkos::deep_copy(exec, *g, Scalar(0));
  }

 private:
  Mat<Scalar, MemorySpace> dm_storage, dz_storage, dxt_storage, dxm_storage, dxs_storage, dstar_storage, deo_storage,
      dhf_storage, dh0_storage, dh_storage, dhrun_storage, dhhat_storage, dh_prev_storage, dstar_prev_storage,
      dxrnn_storage;
  Vec<Scalar, MemorySpace> drepeat_storage, dgate_storage;
};

namespace detail {

// y += x (same shape): a gradient reaching an activation along a second path.
template <class ExecSpace, class X, class Y>
void embsr_accumulate(const ExecSpace& exec, const X& x, const Y& y) {
  const int n = static_cast<int>(y.extent(0)), d = static_cast<int>(y.extent(1));
  parallel_for_2d(exec, "embsr::model::add", n, d, KOKKOS_LAMBDA(const int i, const int j) { y(i, j) += x(i, j); });
}

}  // namespace detail

}  // namespace embsr
