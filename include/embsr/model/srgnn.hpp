#pragma once
// SR-GNN (Wu et al., "Session-based Recommendation with Graph Neural Networks", AAAI 2019) as a
// composition of the library's layers; the contract is docs/GRAPH_MODELS.md, "SR-GNN".
//
// It reads the macro-item sequence v^1..v^n of a session (the EMBSR paper's protocol for the
// macro-behavior baselines: successive micro-behaviors on one item merged); it does not see the
// operations. Data flow for a ragged batch (B sessions, N macro positions, C nodes, E edges):
//   h0[C]   = item_embedding[node_items]                                embedding (Sec. 3.2)
//   w[E]    = the normalised adjacency of the session graph, per edge    ggnn_normalised_edge_weights
//             (A_in by distinct in-degree, A_out by distinct out-degree: eq. 1 and the authors' code)
//   h_{s+1} = GGNN(h_s) for s < gnn_steps, ONE set of weights for every step (eq. 1-5; the
//             authors' code loops one GNN module `step` times)                  ggnn (no run inputs)
//   v[N]    = h_S[macro_alias]: one row per macro position                   embedding (gather)
//   s_h[B]  = W3 [v_n ; sum_i alpha_i v_i] + b3 over each session's rows     soft_attention_readout (eq. 6-7)
//   scores  = s_h . item_embedding[v] for every item v; loss = mean CE        scoring, ScoreKind::Dot (eq. 8-9)
// The paper's L2 penalty is the optimiser's weight decay (embsr-train --weight-decay). SR-GNN has
// no dropout. Parameters start U(-1/sqrt(d), 1/sqrt(d)) (the authors' reset_parameters).
// Left out, on purpose: the authors' code adds two more biases to a_i (b_iah, b_oah) that are
// exactly redundant with the cell's b_ih (W_ih (a + c) + b_ih = W_ih a + (W_ih c + b_ih)); the
// paper's GRU convention h' = (1 - z) h + z n is used (the code's (1 - z) n + z h is the same
// family, z's pre-activation negated).

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
#include <embsr/layers/scoring.hpp>
#include <embsr/layers/soft_attention_readout.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/neural_model.hpp>
#include <embsr/model/parameter_layout.hpp>

namespace embsr {

struct SrgnnConfig {
  int num_items = 0, num_ops = 0, max_length = 50;  // from the data
  int d = 100;                                      // embedding size (the paper's 100)
  int gnn_steps = 1;                                // GGNN propagation steps (the authors' default 1)
  std::uint64_t seed = 1;

  void validate() const {
    auto fail = [](const std::string& what) { throw InvalidArgument("SR-GNN: " + what); };
    if (num_items < 1) fail("num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1) fail("num_ops must be >= 1, got " + std::to_string(num_ops));
    if (max_length < 1) fail("max_length must be >= 1, got " + std::to_string(max_length));
    if (d < 1 || d > (1 << 16)) fail("d must be in [1, 65536], got " + std::to_string(d));
    if (gnn_steps < 1 || gnn_steps > 16) fail("gnn_steps must be in [1, 16], got " + std::to_string(gnn_steps));
  }
};

namespace detail {

// The parameters of the session graph layer and of the readout, shared by the SR-GNN family.
template <class Visit>
void visit_srgnn_gnn(std::uint64_t d, Visit&& visit) {
  visit("ggnn.W_in", d, d);
  visit("ggnn.b_in", std::uint64_t(1), d);
  visit("ggnn.W_out", d, d);
  visit("ggnn.b_out", std::uint64_t(1), d);
  visit("ggnn.W_ih", 3 * d, 2 * d);
  visit("ggnn.W_hh", 3 * d, d);
  visit("ggnn.b_ih", std::uint64_t(1), 3 * d);
  visit("ggnn.b_hh", std::uint64_t(1), 3 * d);
}
// The readout's parameters (layers/soft_attention_readout.hpp) at input width D and output width
// d_out (SR-GNN, SGNN-HN: D = d_out = d; MKM-SR: D = 2d, d_out = d); with_context adds W_s, b_s
// between b2 and q, the context having width D (SGNN-HN's star: d).
template <class Visit>
void visit_soft_attention_readout(std::uint64_t D, std::uint64_t d_out, bool with_context, Visit&& visit) {
  visit("readout.W1", D, D);
  visit("readout.b1", std::uint64_t(1), D);
  visit("readout.W2", D, D);
  visit("readout.b2", std::uint64_t(1), D);
  if (with_context) {
    visit("readout.W_s", D, D);
    visit("readout.b_s", std::uint64_t(1), D);
  }
  visit("readout.q", std::uint64_t(1), D);
  visit("readout.W3", d_out, 2 * D);
  visit("readout.b3", std::uint64_t(1), d_out);
}

template <class Scalar, class M, class Core>
GgnnParams<Scalar, M> srgnn_ggnn_params(const Core& core, bool grad) {
  auto mat = [&](const char* n) { return core.mat(core.id(n), grad); };
  auto vec = [&](const char* n) { return core.vec(core.id(n), grad); };
  return GgnnParams<Scalar, M>{mat("ggnn.W_in"), mat("ggnn.W_out"), vec("ggnn.b_in"), vec("ggnn.b_out"),
                               GruParams<Scalar, M>{mat("ggnn.W_ih"), mat("ggnn.W_hh"), vec("ggnn.b_ih"), vec("ggnn.b_hh")}};
}
// The parameters (grad: their gradients) of visit_soft_attention_readout; W_s, b_s stay empty
// without the context term.
template <class Scalar, class M, class Core>
SoftAttentionReadoutParams<Scalar, M> soft_attention_readout_params(const Core& core, bool grad, bool with_context = false) {
  auto mat = [&](const char* n) { return core.mat(core.id(n), grad); };
  auto vec = [&](const char* n) { return core.vec(core.id(n), grad); };
  SoftAttentionReadoutParams<Scalar, M> p{mat("readout.W1"), vec("readout.b1"), mat("readout.W2"), vec("readout.b2"),
                                          vec("readout.q"),  mat("readout.W3"), vec("readout.b3"), {},  {}};
  if (with_context) {
    p.W_s = mat("readout.W_s");
    p.b_s = vec("readout.b_s");
  }
  return p;
}

// SR-GNN's gated GNN (eq. 1-5) applied h.size() - 1 times with one set of weights, h[0] -> h[S], no
// run inputs (SR-GNN, GC-SAN, MKM-SR; SGNN-HN puts its star update between the steps and keeps
// its own loop).
template <class ExecSpace, class MatV, class BatchT, class Params, class Caches, class Weights>
void srgnn_gnn_forward(const ExecSpace& exec, const BatchT& batch, const std::vector<MatV>& h, const Params& params,
                       Caches& caches, const Weights& weights) {
  for (std::size_t s = 0; s + 1 < h.size(); ++s) ggnn_forward(exec, batch, h[s], MatV(), params, h[s + 1], caches[s], weights);
}
// Its backward: dh holds dL/dh[S] on entry and dL/dh[0] on return (dh_prev is scratch of the same
// shape); the shared weights' gradients add up over the steps in `grads`.
template <class ExecSpace, class MatV, class BatchT, class Params, class Caches, class Weights>
void srgnn_gnn_backward(const ExecSpace& exec, const BatchT& batch, const std::vector<MatV>& h, const Params& params,
                        const Caches& caches, const Weights& weights, const MatV& dh, const MatV& dh_prev,
                        const Params& grads) {
  using S = typename MatV::non_const_value_type;
  for (std::size_t s = h.size() - 1; s-- > 0;) {  // dh: dL/dh[s+1] -> dL/dh[s]
    Kokkos::deep_copy(exec, dh_prev, S(0));
    ggnn_backward(exec, batch, h[s], MatV(), params, caches[s], dh, dh_prev, MatV(), grads, weights);
    Kokkos::deep_copy(exec, dh, dh_prev);
  }
}

}  // namespace detail

// item_embedding [V x d], ggnn.* (one set for every step), readout.*: docs/GRAPH_MODELS.md.
inline std::vector<ParameterEntry> srgnn_parameter_layout(const SrgnnConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.d);
  return detail::layout_from([&](auto&& visit) {
    visit("item_embedding", static_cast<std::uint64_t>(c.num_items), d);
    detail::visit_srgnn_gnn(d, visit);
    detail::visit_soft_attention_readout(d, d, /*with_context=*/false, visit);
  });
}

template <class ExecSpace, class Scalar = float>
class SRGNN : public NeuralModel<SRGNN<ExecSpace, Scalar>, ExecSpace, Scalar, SrgnnConfig> {
  using Base = NeuralModel<SRGNN<ExecSpace, Scalar>, ExecSpace, Scalar, SrgnnConfig>;
  friend Base;
  using Base::config_;
  using Base::core_;

 public:
  using typename Base::batch_type;
  using typename Base::M;
  using typename Base::matrix;

  explicit SRGNN(const SrgnnConfig& config, ExecSpace exec = ExecSpace())
      : Base((config.validate(), config), "SR-GNN", srgnn_parameter_layout(config), ScoreKind::Dot, exec) {
    ggnn_cache_.resize(static_cast<std::size_t>(config_.gnn_steps));
    item_ = core_.id("item_embedding");
  }

 private:
  GgnnParams<Scalar, M> ggnn(bool grad) const { return detail::srgnn_ggnn_params<Scalar, M>(core_, grad); }
  // SR-GNN's readout has no context term: W_s, b_s stay empty.
  SoftAttentionReadoutParams<Scalar, M> readout(bool grad) const {
    return detail::soft_attention_readout_params<Scalar, M>(core_, grad);
  }
  GgnnEdgeWeights<Scalar, M> edge_weights() const { return GgnnEdgeWeights<Scalar, M>{w_in_, w_out_, {}, {}}; }

  double run_forward(const batch_type& batch, bool with_loss) {
    this->validate(batch);
    const auto& exec = core_.exec();
    const auto C = static_cast<std::size_t>(batch.sizes.num_nodes), E = static_cast<std::size_t>(batch.sizes.num_edges),
               B = static_cast<std::size_t>(batch.sizes.num_sessions), N = static_cast<std::size_t>(batch.sizes.num_macro),
               d = static_cast<std::size_t>(config_.d);
    const auto S = static_cast<std::size_t>(config_.gnn_steps);
    h_.resize(S + 1);
    h_storage_.resize(S + 1);
    for (std::size_t s = 0; s <= S; ++s) h_[s] = ensure(h_storage_[s], C, d, "embsr::srgnn::h");
    w_in_ = ensure(w_in_storage_, E, "embsr::srgnn::w_in");
    w_out_ = ensure(w_out_storage_, E, "embsr::srgnn::w_out");
    v_ = ensure(v_storage_, N, d, "embsr::srgnn::v");
    s_h_ = ensure(s_h_storage_, B, d, "embsr::srgnn::s_h");

    const auto items = core_.mat(item_, false);
    embedding_forward(exec, items, batch.node_items, h_[0]);
    ggnn_normalised_edge_weights(exec, batch, w_in_, w_out_);
    detail::srgnn_gnn_forward(exec, batch, h_, ggnn(false), ggnn_cache_, edge_weights());
    embedding_forward(exec, h_[S], batch.macro_alias, v_);  // v_i = h_S[alias(i)], once per macro position
    soft_attention_readout_forward(exec, batch.macro_offsets, v_, readout(false), matrix(), s_h_, readout_cache_);
    return this->score(batch, s_h_, items, 1.0, with_loss);
  }

  // run_forward's layer calls in reverse; every backward adds into its gradients.
  void run_backward(const batch_type& batch) {
    const auto& exec = core_.exec();
    const auto C = static_cast<std::size_t>(batch.sizes.num_nodes), B = static_cast<std::size_t>(batch.sizes.num_sessions),
               N = static_cast<std::size_t>(batch.sizes.num_macro), d = static_cast<std::size_t>(config_.d);
    const auto dh = this->zeroed(dh_storage_, C, d, "embsr::srgnn::dh");
    const auto dh_prev = this->zeroed(dh_prev_storage_, C, d, "embsr::srgnn::dh_prev");
    const auto ds_h = this->zeroed(ds_h_storage_, B, d, "embsr::srgnn::ds_h");
    const auto dv = this->zeroed(dv_storage_, N, d, "embsr::srgnn::dv");
    const auto items = core_.mat(item_, false);
    this->score_backward(batch, s_h_, items, 1.0, ds_h, core_.mat(item_, true));
    soft_attention_readout_backward(exec, batch.macro_offsets, v_, readout(false), matrix(), readout_cache_, ds_h, dv,
                                    matrix(), readout(true));
    embedding_backward(exec, batch.macro_alias, dv, dh);  // dh[alias(i)] += dv_i
    detail::srgnn_gnn_backward(exec, batch, h_, ggnn(false), ggnn_cache_, edge_weights(), dh, dh_prev, ggnn(true));
    embedding_backward(exec, batch.node_items, dh, core_.mat(item_, true));
  }

  std::size_t item_ = 0;
  // Activations of the last forward.
  std::vector<matrix> h_;
  std::vector<Mat<Scalar, M>> h_storage_;
  VecRef<Scalar, M> w_in_, w_out_;
  Vec<Scalar, M> w_in_storage_, w_out_storage_;
  matrix v_, s_h_;
  Mat<Scalar, M> v_storage_, s_h_storage_;
  // Gradient buffers.
  Mat<Scalar, M> dh_storage_, dh_prev_storage_, ds_h_storage_, dv_storage_;
  // Layer caches.
  std::vector<GgnnCache<Scalar, M>> ggnn_cache_;
  SoftAttentionReadoutCache<Scalar, M> readout_cache_;
};

// ---- the registry's view of SR-GNN ------------------------------------------

inline ModelOptions srgnn_options(const SrgnnConfig& c) {
  ModelOptions o;
  detail::set_data_options(o, c);
  o.set("d", c.d).set("gnn_steps", c.gnn_steps).set("seed", c.seed);
  return o;
}

struct SrgnnSpec {
  template <class ExecSpace>
  using model = SRGNN<ExecSpace, float>;
  using config_type = SrgnnConfig;

  static ModelOptions options_of(const SrgnnConfig& c) { return srgnn_options(c); }
  static SrgnnConfig config_of(const ModelOptions& o) {
    SrgnnConfig c;
    detail::get_data_options(o, c);
    c.d = o.get_int32("d", c.d);
    c.gnn_steps = o.get_int32("gnn_steps", c.gnn_steps);
    c.seed = o.get_uint("seed", c.seed);
    c.validate();
    return c;
  }
  static std::vector<ParameterEntry> layout(const SrgnnConfig& c) { return srgnn_parameter_layout(c); }
  // d-vectors per micro-behavior: node states and the GGNN's caches (about 20 per step).
  static std::uint64_t activation_vectors(const SrgnnConfig& c) { return 4 + 20 * static_cast<std::uint64_t>(c.gnn_steps); }
  static std::uint64_t extra_bytes(const SrgnnConfig&, std::uint64_t) { return 0; }
  static ModelInfo info() {
    return ModelInfo{"sr-gnn", "graph neural network",
                     "SR-GNN: gated GNN over the normalised session graph, soft-attention readout with the last "
                     "item, dot-product scores (macro items only)",
                     "Wu et al., Session-based Recommendation with Graph Neural Networks, AAAI 2019 (a baseline of "
                     "the EMBSR paper, Table III)",
                     true, ""};
  }
  static std::vector<OptionSpec> own_options() {
    const ModelOptions d = srgnn_options(SrgnnConfig{});
    return {{"d", OptionKind::Integer, *d.find("d"), "embedding size", {}, false, true, search_range(16, 64, true)},
            {"gnn_steps", OptionKind::Integer, *d.find("gnn_steps"), "GGNN propagation steps (shared weights)", {}, false,
             true, search_range(1, 2)},
            {"seed", OptionKind::Integer, *d.find("seed"), "seed of the initialisation", {}, false, false, {}}};
  }
  static ModelSpec spec() { return neural_model_spec<SrgnnSpec>(); }
};

template <class ExecSpace, class Scalar>
struct model_spec_of<SRGNN<ExecSpace, Scalar>> {
  using type = SrgnnSpec;
};

}  // namespace embsr
