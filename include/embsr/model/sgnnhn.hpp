#pragma once
// SGNN-HN (Pan et al., "Star Graph Neural Networks for Session-based Recommendation", CIKM 2020) as a
// composition of the library's layers; the contract is docs/GRAPH_MODELS.md, "SGNN-HN".
//
// It reads the macro-item sequence of a session only (the EMBSR paper's protocol for the macro
// baselines). Data flow for a ragged batch (B sessions, N macro positions, C nodes):
//   h0[C]    = item_embedding[node_items];  x0[B] = mean of the session's h0       embedding, star_init
//   w[E]     = SR-GNN's normalised adjacency per edge                             ggnn_normalised_edge_weights
//   for s < gnn_steps, ONE GGNN and ONE star update for every step (the paper's weights have no
//   layer index; the authors' code loops one module):
//     hhat = GGNN(h_s);  (h_{s+1}, x_{s+1}) = star(hhat, x_s)                  ggnn, star_update (eq. 5-7)
//   hf[C]    = highway(h0, h_S)                                                highway
//   u[N]     = hf[macro_alias] + positions[n - i] (reversed: the last position reads row 0)
//   s_h[B]   = W3 [u_n ; sum_i gamma_i u_i] + b3,
//              gamma_i = q . sigmoid(W1 u_n + b1 + W_s x_S + b_s + W2 u_i + b2)  soft_attention_readout (context x_S)
//   scores   = w_k nrm(s_h) . nrm(E_v), nrm(x) = centred x / |centred x|; loss = mean CE
//                                                                    scoring, ScoreKind::CenteredCosine
// The paper's star equations are EMBSR's (layers/star.hpp, its biases kept: zero biases give the
// paper). The authors' code differs from the paper's star (no projections, a sigmoid gate): we
// follow the paper. Parameters start U(-1/sqrt(d), 1/sqrt(d)) (the authors' reset_parameters).
// No dropout (not part of the contract).

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_validator.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/embedding.hpp>
#include <embsr/layers/ggnn.hpp>
#include <embsr/layers/highway.hpp>
#include <embsr/layers/scoring.hpp>
#include <embsr/layers/soft_attention_readout.hpp>
#include <embsr/layers/star.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/neural_model.hpp>
#include <embsr/model/parameter_layout.hpp>
#include <embsr/model/srgnn.hpp>

namespace embsr {

struct SgnnhnConfig {
  int num_items = 0, num_ops = 0, max_length = 50;  // from the data
  int d = 100;
  int gnn_steps = 1;  // SGNN layers (GGNN + star), shared weights
  double w_k = 12.0;  // scale of the normalised scores (the EMBSR paper, Sec. V-A4, "following [9]")
  std::uint64_t seed = 1;

  void validate() const {
    auto fail = [](const std::string& what) { throw InvalidArgument("SGNN-HN: " + what); };
    if (num_items < 1) fail("num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1) fail("num_ops must be >= 1, got " + std::to_string(num_ops));
    if (max_length < 1 || max_length > (1 << 20)) fail("max_length must be in [1, 2^20], got " + std::to_string(max_length));
    if (d < 1 || d > (1 << 16)) fail("d must be in [1, 65536], got " + std::to_string(d));
    if (gnn_steps < 1 || gnn_steps > 16) fail("gnn_steps must be in [1, 16], got " + std::to_string(gnn_steps));
    if (!(w_k > 0 && std::isfinite(w_k))) fail("w_k must be finite and > 0, got " + std::to_string(w_k));
  }
};

// item_embedding, ggnn.*, star.*, highway.*, positions [L x d], readout.* (with W_s, b_s):
// docs/GRAPH_MODELS.md.
inline std::vector<ParameterEntry> sgnnhn_parameter_layout(const SgnnhnConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.d);
  return detail::layout_from([&](auto&& visit) {
    visit("item_embedding", static_cast<std::uint64_t>(c.num_items), d);
    detail::visit_srgnn_gnn(d, visit);
    for (const char* w : {"q1", "k1", "k2", "q2"}) {
      visit(std::string("star.W_") + w, d, d);
      visit(std::string("star.b_") + w, std::uint64_t(1), d);
    }
    visit("highway.W_g", d, 2 * d);
    visit("highway.b_g", std::uint64_t(1), d);
    visit("positions", static_cast<std::uint64_t>(c.max_length), d);
    detail::visit_soft_attention_readout(d, d, /*with_context=*/true, visit);
  });
}

namespace detail {

// rev[k] = n_b - 1 - (k - offsets[b]) for the macro positions k of session b: the reversed
// position (0 for the session's last item).
template <class ExecSpace, class OffV, class RevV>
void reversed_positions(const ExecSpace& exec, const OffV& offsets, const RevV& rev) {
  const int B = static_cast<int>(offsets.extent(0)) - 1;
  if (B <= 0) return;
  Kokkos::parallel_for(
      "embsr::reversed_positions", Kokkos::RangePolicy<ExecSpace>(exec, 0, B), KOKKOS_LAMBDA(const int b) {
        const int lo = offsets(b), hi = offsets(b + 1);
        for (int k = lo; k < hi; ++k) rev(k) = hi - 1 - k;
      });
}

// out[k] += table[ids[k]] for every row k (the reversed position embeddings added to u).
template <class ExecSpace, class TV, class IdsV, class OV>
void add_gathered_rows(const ExecSpace& exec, const TV& table, const IdsV& ids, const OV& out) {
  parallel_for_2d(exec, "embsr::sgnnhn::add_positions", static_cast<int>(out.extent(0)), static_cast<int>(out.extent(1)),
                  KOKKOS_LAMBDA(const int k, const int j) { out(k, j) += table(ids(k), j); });
}
// out += in, elementwise ([n x d]).
template <class ExecSpace, class IV, class OV>
void add_rows(const ExecSpace& exec, const IV& in, const OV& out) {
  parallel_for_2d(exec, "embsr::sgnnhn::add_rows", static_cast<int>(out.extent(0)), static_cast<int>(out.extent(1)),
                  KOKKOS_LAMBDA(const int i, const int j) { out(i, j) += in(i, j); });
}

}  // namespace detail

template <class ExecSpace, class Scalar = float>
class SGNNHN : public NeuralModel<SGNNHN<ExecSpace, Scalar>, ExecSpace, Scalar, SgnnhnConfig> {
  using Base = NeuralModel<SGNNHN<ExecSpace, Scalar>, ExecSpace, Scalar, SgnnhnConfig>;
  friend Base;
  using Base::config_;
  using Base::core_;

 public:
  using typename Base::batch_type;
  using typename Base::M;
  using typename Base::matrix;

  explicit SGNNHN(const SgnnhnConfig& config, ExecSpace exec = ExecSpace())
      : Base((config.validate(), config), "SGNN-HN", sgnnhn_parameter_layout(config), ScoreKind::CenteredCosine, exec) {
    ggnn_cache_.resize(static_cast<std::size_t>(config_.gnn_steps));
    star_cache_.resize(static_cast<std::size_t>(config_.gnn_steps));
    item_ = core_.id("item_embedding");
    positions_ = core_.id("positions");
  }

 private:
  GgnnParams<Scalar, M> ggnn(bool grad) const { return detail::srgnn_ggnn_params<Scalar, M>(core_, grad); }
  StarParams<Scalar, M> star(bool grad) const {
    auto mat = [&](const char* n) { return core_.mat(core_.id(n), grad); };
    auto vec = [&](const char* n) { return core_.vec(core_.id(n), grad); };
    return StarParams<Scalar, M>{mat("star.W_q1"), mat("star.W_k1"), mat("star.W_k2"), mat("star.W_q2"),
                                 vec("star.b_q1"), vec("star.b_k1"), vec("star.b_k2"), vec("star.b_q2")};
  }
  HighwayParams<Scalar, M> highway(bool grad) const {
    return HighwayParams<Scalar, M>{core_.mat(core_.id("highway.W_g"), grad), core_.vec(core_.id("highway.b_g"), grad)};
  }
  SoftAttentionReadoutParams<Scalar, M> readout(bool grad) const {
    return detail::soft_attention_readout_params<Scalar, M>(core_, grad, /*with_context=*/true);
  }
  GgnnEdgeWeights<Scalar, M> edge_weights() const { return GgnnEdgeWeights<Scalar, M>{w_in_, w_out_, {}, {}}; }

  double run_forward(const batch_type& batch, bool with_loss) {
    this->validate(batch);
    const auto& exec = core_.exec();
    const auto C = static_cast<std::size_t>(batch.sizes.num_nodes), E = static_cast<std::size_t>(batch.sizes.num_edges),
               B = static_cast<std::size_t>(batch.sizes.num_sessions), N = static_cast<std::size_t>(batch.sizes.num_macro),
               d = static_cast<std::size_t>(config_.d);
    const auto S = static_cast<std::size_t>(config_.gnn_steps);
    h_.resize(S + 1), h_storage_.resize(S + 1), hhat_.resize(S), hhat_storage_.resize(S);
    x_.resize(S + 1), x_storage_.resize(S + 1);
    for (std::size_t s = 0; s <= S; ++s) {
      h_[s] = ensure(h_storage_[s], C, d, "embsr::sgnnhn::h");
      x_[s] = ensure(x_storage_[s], B, d, "embsr::sgnnhn::star");
      if (s < S) hhat_[s] = ensure(hhat_storage_[s], C, d, "embsr::sgnnhn::hhat");
    }
    w_in_ = ensure(w_in_storage_, E, "embsr::sgnnhn::w_in");
    w_out_ = ensure(w_out_storage_, E, "embsr::sgnnhn::w_out");
    hf_ = ensure(hf_storage_, C, d, "embsr::sgnnhn::hf");
    u_ = ensure(u_storage_, N, d, "embsr::sgnnhn::u");
    if (rev_.extent(0) < N) rev_ = Kokkos::View<index_t*, M>("embsr::sgnnhn::reversed_positions", N + N / 4 + 1);
    s_h_ = ensure(s_h_storage_, B, d, "embsr::sgnnhn::s_h");

    const auto items = core_.mat(item_, false);
    embedding_forward(exec, items, batch.node_items, h_[0]);
    star_init_forward(exec, batch, h_[0], x_[0]);
    ggnn_normalised_edge_weights(exec, batch, w_in_, w_out_);
    for (std::size_t s = 0; s < S; ++s) {
      ggnn_forward(exec, batch, h_[s], no_runs_, ggnn(false), hhat_[s], ggnn_cache_[s], edge_weights());
      star_update_forward(exec, batch, hhat_[s], x_[s], star(false), h_[s + 1], x_[s + 1], star_cache_[s]);
    }
    highway_forward(exec, h_[0], h_[S], highway(false), hf_, highway_cache_);
    const auto rev = reversed_positions(N);
    detail::reversed_positions(exec, batch.macro_offsets, rev);
    embedding_forward(exec, hf_, batch.macro_alias, u_);
    detail::add_gathered_rows(exec, core_.mat(positions_, false), rev, u_);
    soft_attention_readout_forward(exec, batch.macro_offsets, u_, readout(false), x_[S], s_h_, readout_cache_);
    return this->score(batch, s_h_, items, config_.w_k, with_loss);
  }

  // run_forward's layer calls in reverse; every backward adds into its gradients.
  void run_backward(const batch_type& batch) {
    const auto& exec = core_.exec();
    const auto C = static_cast<std::size_t>(batch.sizes.num_nodes), B = static_cast<std::size_t>(batch.sizes.num_sessions),
               N = static_cast<std::size_t>(batch.sizes.num_macro), d = static_cast<std::size_t>(config_.d);
    const auto S = static_cast<std::size_t>(config_.gnn_steps);
    auto zeroed = [&](Mat<Scalar, M>& storage, std::size_t rows, const char* label) {
      return this->zeroed(storage, rows, d, label);
    };
    const auto ds_h = zeroed(ds_h_storage_, B, "embsr::sgnnhn::ds_h");
    const auto du = zeroed(du_storage_, N, "embsr::sgnnhn::du");
    const auto dx = zeroed(dx_storage_, B, "embsr::sgnnhn::dstar");
    const auto dx_prev = zeroed(dx_prev_storage_, B, "embsr::sgnnhn::dstar_prev");
    const auto dhf = zeroed(dhf_storage_, C, "embsr::sgnnhn::dhf");
    const auto dh0 = zeroed(dh0_storage_, C, "embsr::sgnnhn::dh0");
    const auto dh = zeroed(dh_storage_, C, "embsr::sgnnhn::dh");
    const auto dh_prev = zeroed(dh_prev_storage_, C, "embsr::sgnnhn::dh_prev");
    const auto dhhat = zeroed(dhhat_storage_, C, "embsr::sgnnhn::dhhat");
    const auto items = core_.mat(item_, false);

    this->score_backward(batch, s_h_, items, config_.w_k, ds_h, core_.mat(item_, true));
    soft_attention_readout_backward(exec, batch.macro_offsets, u_, readout(false), x_[S], readout_cache_, ds_h, du, dx,
                                    readout(true));
    embedding_backward(exec, reversed_positions(N), du, core_.mat(positions_, true));
    embedding_backward(exec, batch.macro_alias, du, dhf);
    highway_backward(exec, h_[0], h_[S], highway(false), highway_cache_, dhf, dh0, dh, highway(true));
    for (std::size_t s = S; s-- > 0;) {  // (dh, dx): dL/dh[s+1], dL/dx[s+1] -> dL/dh[s], dL/dx[s]
      Kokkos::deep_copy(exec, dhhat, Scalar(0));
      Kokkos::deep_copy(exec, dx_prev, Scalar(0));
      star_update_backward(exec, batch, hhat_[s], x_[s], star(false), star_cache_[s], dh, dx, dhhat, dx_prev, star(true));
      Kokkos::deep_copy(exec, dh_prev, Scalar(0));
      ggnn_backward(exec, batch, h_[s], no_runs_, ggnn(false), ggnn_cache_[s], dhhat, dh_prev, matrix(), ggnn(true),
                    edge_weights());
      Kokkos::deep_copy(exec, dh, dh_prev);
      Kokkos::deep_copy(exec, dx, dx_prev);
    }
    detail::add_rows(exec, dh, dh0);  // h0 feeds step 0 too
    star_init_backward(exec, batch, dx, dh0);
    embedding_backward(exec, batch.node_items, dh0, core_.mat(item_, true));
  }

  Kokkos::View<index_t*, M> reversed_positions(std::size_t n) const {
    return Kokkos::subview(rev_, std::make_pair(std::size_t(0), n));
  }

  std::size_t item_ = 0, positions_ = 0;
  // Activations of the last forward.
  std::vector<matrix> h_, hhat_, x_;
  std::vector<Mat<Scalar, M>> h_storage_, hhat_storage_, x_storage_;
  VecRef<Scalar, M> w_in_, w_out_;
  Vec<Scalar, M> w_in_storage_, w_out_storage_;
  matrix hf_, u_, s_h_;
  Mat<Scalar, M> hf_storage_, u_storage_, s_h_storage_;
  Kokkos::View<index_t*, M> rev_;
  const matrix no_runs_{};
  // Gradient buffers.
  Mat<Scalar, M> ds_h_storage_, du_storage_, dx_storage_, dx_prev_storage_, dhf_storage_, dh0_storage_, dh_storage_,
      dh_prev_storage_, dhhat_storage_;
  // Layer caches.
  std::vector<GgnnCache<Scalar, M>> ggnn_cache_;
  std::vector<StarCache<Scalar, M>> star_cache_;
  HighwayCache<Scalar, M> highway_cache_;
  SoftAttentionReadoutCache<Scalar, M> readout_cache_;
};

// ---- the registry's view of SGNN-HN -----------------------------------------

inline ModelOptions sgnnhn_options(const SgnnhnConfig& c) {
  ModelOptions o;
  detail::set_data_options(o, c);
  o.set("d", c.d).set("gnn_steps", c.gnn_steps).set("w_k", c.w_k).set("seed", c.seed);
  return o;
}

struct SgnnhnSpec {
  template <class ExecSpace>
  using model = SGNNHN<ExecSpace, float>;
  using config_type = SgnnhnConfig;

  static ModelOptions options_of(const SgnnhnConfig& c) { return sgnnhn_options(c); }
  static SgnnhnConfig config_of(const ModelOptions& o) {
    SgnnhnConfig c;
    detail::get_data_options(o, c);
    c.d = o.get_int32("d", c.d);
    c.gnn_steps = o.get_int32("gnn_steps", c.gnn_steps);
    c.w_k = o.get_double("w_k", c.w_k);
    c.seed = o.get_uint("seed", c.seed);
    c.validate();
    return c;
  }
  static std::vector<ParameterEntry> layout(const SgnnhnConfig& c) { return sgnnhn_parameter_layout(c); }
  // d-vectors per micro-behavior: node states, star, highway and readout (~12) and the GGNN and
  // star caches (~28 per step); beyond them the scoring's normalised copy of the item table.
  static std::uint64_t activation_vectors(const SgnnhnConfig& c) { return 12 + 28 * static_cast<std::uint64_t>(c.gnn_steps); }
  static std::uint64_t extra_bytes(const SgnnhnConfig& c, std::uint64_t) {
    return 8 * static_cast<std::uint64_t>(c.num_items) * static_cast<std::uint64_t>(c.d);
  }
  static ModelInfo info() {
    return ModelInfo{"sgnn-hn", "graph neural network",
                     "SGNN-HN: star graph neural network, highway network, reversed position embeddings, "
                     "soft-attention readout with the star, normalised scores (macro items only)",
                     "Pan et al., Star Graph Neural Networks for Session-based Recommendation, CIKM 2020 (a baseline "
                     "of the EMBSR paper, Table III)",
                     true, ""};
  }
  static std::vector<OptionSpec> own_options() {
    const ModelOptions d = sgnnhn_options(SgnnhnConfig{});
    return {{"d", OptionKind::Integer, *d.find("d"), "embedding size", {}, false, true, search_range(16, 64, true)},
            {"gnn_steps", OptionKind::Integer, *d.find("gnn_steps"), "SGNN layers (GGNN + star, shared weights)", {},
             false, true, search_range(1, 3)},
            {"w_k", OptionKind::Number, *d.find("w_k"), "normalised-scoring weight", {}, false, true, search_range(8.0, 20.0)},
            {"seed", OptionKind::Integer, *d.find("seed"), "seed of the initialisation", {}, false, false, {}}};
  }
  static ModelSpec spec() { return neural_model_spec<SgnnhnSpec>(); }
};

template <class ExecSpace, class Scalar>
struct model_spec_of<SGNNHN<ExecSpace, Scalar>> {
  using type = SgnnhnSpec;
};

}  // namespace embsr
