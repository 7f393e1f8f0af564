#pragma once
// GC-SAN (Xu et al., "Graph Contextualized Self-Attention Network for Session-based
// Recommendation", IJCAI 2019) as a composition of the library's layers; the contract is
// docs/GRAPH_MODELS.md, "GC-SAN".
//
// It reads the macro-item sequence of a session only. Data flow for a ragged batch (B sessions, N
// macro positions, C nodes):
//   h0[C]  = item_embedding[node_items];  w[E] = SR-GNN's normalised adjacency    embedding (Sec. 3.2)
//   h_{s+1} = GGNN(h_s), s < gnn_steps, ONE set of weights (SR-GNN's layer)         ggnn
//   X0[N]  = h_S[macro_alias]  (repeated items once per position)                  embedding (gather)
//   X_{k+1} = SAB_k(X_k), k < num_blocks, each block its own weights: single-head self-attention over
//             the session's positions, point-wise feed-forward with a residual     self_attention_block (Sec. 3.3)
//   S_f[B] = omega X_K[last] + (1 - omega) X0[last]                               (Sec. 3.4)
//   scores = S_f . item_embedding[v]; loss = mean CE                              scoring, ScoreKind::Dot
// We found no code by the authors; where the paper is silent we follow the paper's equations
// literally (no mask, no position embeddings, no LayerNorm, no output projection: see
// docs/GRAPH_MODELS.md for the ports that differ). No dropout (not part of the contract).
// Parameters start U(-1/sqrt(d), 1/sqrt(d)) as SR-GNN's.

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
#include <embsr/layers/self_attention_block.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/neural_model.hpp>
#include <embsr/model/parameter_layout.hpp>
#include <embsr/model/srgnn.hpp>

namespace embsr {

struct GcsanConfig {
  int num_items = 0, num_ops = 0, max_length = 50;  // from the data
  int d = 100;
  int gnn_steps = 1;   // GGNN steps, shared weights (as SR-GNN)
  int num_blocks = 1;  // self-attention blocks, each with its own weights (the paper's k)
  double omega = 0.6;  // weight of the last block's output in S_f (the paper's omega)
  std::uint64_t seed = 1;

  void validate() const {
    auto fail = [](const std::string& what) { throw InvalidArgument("GC-SAN: " + what); };
    if (num_items < 1) fail("num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1) fail("num_ops must be >= 1, got " + std::to_string(num_ops));
    if (max_length < 1) fail("max_length must be >= 1, got " + std::to_string(max_length));
    if (d < 1 || d > (1 << 16)) fail("d must be in [1, 65536], got " + std::to_string(d));
    if (gnn_steps < 1 || gnn_steps > 16) fail("gnn_steps must be in [1, 16], got " + std::to_string(gnn_steps));
    if (num_blocks < 1 || num_blocks > 16) fail("num_blocks must be in [1, 16], got " + std::to_string(num_blocks));
    if (!(omega >= 0 && omega <= 1)) fail("omega must be in [0, 1], got " + std::to_string(omega));
  }
};

// item_embedding, ggnn.*, then per block k: sa{k}.W_Q, W_K, W_V, W_1, b_1, W_2, b_2.
inline std::vector<ParameterEntry> gcsan_parameter_layout(const GcsanConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.d);
  return detail::layout_from([&](auto&& visit) {
    visit("item_embedding", static_cast<std::uint64_t>(c.num_items), d);
    detail::visit_srgnn_gnn(d, visit);
    for (int k = 0; k < c.num_blocks; ++k) {
      const std::string p = "sa" + std::to_string(k) + ".";
      for (const char* w : {"W_Q", "W_K", "W_V"}) visit(p + w, d, d);
      visit(p + "W_1", d, d);
      visit(p + "b_1", std::uint64_t(1), d);
      visit(p + "W_2", d, d);
      visit(p + "b_2", std::uint64_t(1), d);
    }
  });
}

namespace detail {

// S_f[b] = omega X_K[last_b] + (1 - omega) X_0[last_b], last_b = offsets[b+1] - 1 (the paper's
// prediction layer), and its backward (adds). Free functions: nvcc takes no device lambda inside
// a private member.
template <class ExecSpace, class OffV, class S, class M>
void gcsan_last_mix_forward(const ExecSpace& exec, const OffV& offsets, const MatRef<S, M>& xk, const MatRef<S, M>& x0,
                            const S omega, const MatRef<S, M>& s_f) {
  parallel_for_2d(exec, "embsr::gcsan::last_mix", static_cast<int>(s_f.extent(0)), static_cast<int>(s_f.extent(1)),
                  KOKKOS_LAMBDA(const int b, const int j) {
                    const int last = offsets(b + 1) - 1;
                    s_f(b, j) = omega * xk(last, j) + (S(1) - omega) * x0(last, j);
                  });
}
template <class ExecSpace, class OffV, class S, class M>
void gcsan_last_mix_backward(const ExecSpace& exec, const OffV& offsets, const S omega, const MatRef<S, M>& ds_f,
                             const MatRef<S, M>& dxk, const MatRef<S, M>& dx0) {
  parallel_for_2d(exec, "embsr::gcsan::last_mix_backward", static_cast<int>(ds_f.extent(0)),
                  static_cast<int>(ds_f.extent(1)), KOKKOS_LAMBDA(const int b, const int j) {
                    const int last = offsets(b + 1) - 1;
                    dxk(last, j) += omega * ds_f(b, j);
                    dx0(last, j) += (S(1) - omega) * ds_f(b, j);
                  });
}

}  // namespace detail

template <class ExecSpace, class Scalar = float>
class GCSAN : public NeuralModel<GCSAN<ExecSpace, Scalar>, ExecSpace, Scalar, GcsanConfig> {
  using Base = NeuralModel<GCSAN<ExecSpace, Scalar>, ExecSpace, Scalar, GcsanConfig>;
  friend Base;
  using Base::config_;
  using Base::core_;

 public:
  using typename Base::batch_type;
  using typename Base::M;
  using typename Base::matrix;

  explicit GCSAN(const GcsanConfig& config, ExecSpace exec = ExecSpace())
      : Base((config.validate(), config), "GC-SAN", gcsan_parameter_layout(config), ScoreKind::Dot, exec) {
    ggnn_cache_.resize(static_cast<std::size_t>(config_.gnn_steps));
    block_cache_.resize(static_cast<std::size_t>(config_.num_blocks));
    item_ = core_.id("item_embedding");
  }

 private:
  GgnnParams<Scalar, M> ggnn(bool grad) const { return detail::srgnn_ggnn_params<Scalar, M>(core_, grad); }
  SelfAttentionBlockParams<Scalar, M> block(std::size_t k, bool grad) const {
    const std::string p = "sa" + std::to_string(k) + ".";
    auto mat = [&](const char* n) { return core_.mat(core_.id(p + n), grad); };
    auto vec = [&](const char* n) { return core_.vec(core_.id(p + n), grad); };
    SelfAttentionBlockParams<Scalar, M> b;
    b.W_Q = mat("W_Q");
    b.W_K = mat("W_K");
    b.W_V = mat("W_V");
    b.W_1 = mat("W_1");
    b.b_1 = vec("b_1");
    b.W_2 = mat("W_2");
    b.b_2 = vec("b_2");
    return b;
  }
  GgnnEdgeWeights<Scalar, M> edge_weights() const { return GgnnEdgeWeights<Scalar, M>{w_in_, w_out_, {}, {}}; }

  double run_forward(const batch_type& batch, bool with_loss) {
    this->validate(batch);
    const auto& exec = core_.exec();
    const auto C = static_cast<std::size_t>(batch.sizes.num_nodes), E = static_cast<std::size_t>(batch.sizes.num_edges),
               B = static_cast<std::size_t>(batch.sizes.num_sessions), N = static_cast<std::size_t>(batch.sizes.num_macro),
               d = static_cast<std::size_t>(config_.d);
    const auto S = static_cast<std::size_t>(config_.gnn_steps), K = static_cast<std::size_t>(config_.num_blocks);
    h_.resize(S + 1), h_storage_.resize(S + 1), x_.resize(K + 1), x_storage_.resize(K + 1);
    for (std::size_t s = 0; s <= S; ++s) h_[s] = ensure(h_storage_[s], C, d, "embsr::gcsan::h");
    for (std::size_t k = 0; k <= K; ++k) x_[k] = ensure(x_storage_[k], N, d, "embsr::gcsan::x");
    w_in_ = ensure(w_in_storage_, E, "embsr::gcsan::w_in");
    w_out_ = ensure(w_out_storage_, E, "embsr::gcsan::w_out");
    s_f_ = ensure(s_f_storage_, B, d, "embsr::gcsan::s_f");

    const auto items = core_.mat(item_, false);
    embedding_forward(exec, items, batch.node_items, h_[0]);
    ggnn_normalised_edge_weights(exec, batch, w_in_, w_out_);
    detail::srgnn_gnn_forward(exec, batch, h_, ggnn(false), ggnn_cache_, edge_weights());
    embedding_forward(exec, h_[S], batch.macro_alias, x_[0]);
    for (std::size_t k = 0; k < K; ++k)
      self_attention_block_forward(exec, batch.macro_offsets, x_[k], block(k, false), x_[k + 1], block_cache_[k]);
    detail::gcsan_last_mix_forward(exec, batch.macro_offsets, x_[K], x_[0], static_cast<Scalar>(config_.omega), s_f_);
    return this->score(batch, s_f_, items, 1.0, with_loss);
  }

  // run_forward's layer calls in reverse; every backward adds into its gradients.
  void run_backward(const batch_type& batch) {
    const auto& exec = core_.exec();
    const auto C = static_cast<std::size_t>(batch.sizes.num_nodes), B = static_cast<std::size_t>(batch.sizes.num_sessions),
               N = static_cast<std::size_t>(batch.sizes.num_macro), d = static_cast<std::size_t>(config_.d);
    const auto K = static_cast<std::size_t>(config_.num_blocks);
    const auto ds_f = this->zeroed(ds_f_storage_, B, d, "embsr::gcsan::ds_f");
    dx_storage_.resize(K + 1);
    std::vector<matrix> dx(K + 1);
    for (std::size_t k = 0; k <= K; ++k) dx[k] = this->zeroed(dx_storage_[k], N, d, "embsr::gcsan::dx");
    const auto dh = this->zeroed(dh_storage_, C, d, "embsr::gcsan::dh");
    const auto dh_prev = this->zeroed(dh_prev_storage_, C, d, "embsr::gcsan::dh_prev");
    const auto items = core_.mat(item_, false);

    this->score_backward(batch, s_f_, items, 1.0, ds_f, core_.mat(item_, true));
    detail::gcsan_last_mix_backward(exec, batch.macro_offsets, static_cast<Scalar>(config_.omega), ds_f, dx[K], dx[0]);
    for (std::size_t k = K; k-- > 0;)
      self_attention_block_backward(exec, batch.macro_offsets, x_[k], block(k, false), block_cache_[k], dx[k + 1], dx[k],
                                    block(k, true));
    embedding_backward(exec, batch.macro_alias, dx[0], dh);
    detail::srgnn_gnn_backward(exec, batch, h_, ggnn(false), ggnn_cache_, edge_weights(), dh, dh_prev, ggnn(true));
    embedding_backward(exec, batch.node_items, dh, core_.mat(item_, true));
  }

  std::size_t item_ = 0;
  // Activations of the last forward.
  std::vector<matrix> h_, x_;
  std::vector<Mat<Scalar, M>> h_storage_, x_storage_;
  VecRef<Scalar, M> w_in_, w_out_;
  Vec<Scalar, M> w_in_storage_, w_out_storage_;
  matrix s_f_;
  Mat<Scalar, M> s_f_storage_;
  // Gradient buffers.
  std::vector<Mat<Scalar, M>> dx_storage_;
  Mat<Scalar, M> ds_f_storage_, dh_storage_, dh_prev_storage_;
  // Layer caches.
  std::vector<GgnnCache<Scalar, M>> ggnn_cache_;
  std::vector<SelfAttentionBlockCache<Scalar, M>> block_cache_;
};

// ---- the registry's view of GC-SAN ------------------------------------------

inline ModelOptions gcsan_options(const GcsanConfig& c) {
  ModelOptions o;
  detail::set_data_options(o, c);
  o.set("d", c.d).set("gnn_steps", c.gnn_steps).set("num_blocks", c.num_blocks).set("omega", c.omega).set("seed", c.seed);
  return o;
}

struct GcsanSpec {
  template <class ExecSpace>
  using model = GCSAN<ExecSpace, float>;
  using config_type = GcsanConfig;

  static ModelOptions options_of(const GcsanConfig& c) { return gcsan_options(c); }
  static GcsanConfig config_of(const ModelOptions& o) {
    GcsanConfig c;
    detail::get_data_options(o, c);
    c.d = o.get_int32("d", c.d);
    c.gnn_steps = o.get_int32("gnn_steps", c.gnn_steps);
    c.num_blocks = o.get_int32("num_blocks", c.num_blocks);
    c.omega = o.get_double("omega", c.omega);
    c.seed = o.get_uint("seed", c.seed);
    c.validate();
    return c;
  }
  static std::vector<ParameterEntry> layout(const GcsanConfig& c) { return gcsan_parameter_layout(c); }
  // d-vectors per micro-behavior: node states and the GGNN's caches (~20 per step), the blocks' Q, K,
  // V, F, FFN and outputs (~8 per block); beyond them the attention matrices, n^2 per session.
  static std::uint64_t activation_vectors(const GcsanConfig& c) {
    return 4 + 20 * static_cast<std::uint64_t>(c.gnn_steps) + 8 * static_cast<std::uint64_t>(c.num_blocks);
  }
  static std::uint64_t extra_bytes(const GcsanConfig& c, std::uint64_t batch) {
    const auto L = static_cast<std::uint64_t>(c.max_length);
    return detail::saturating_mul_add(detail::saturating_mul_add(batch, L), 8 * L * static_cast<std::uint64_t>(c.num_blocks));
  }
  static ModelInfo info() {
    return ModelInfo{"gc-san", "graph neural network + self-attention",
                     "GC-SAN: SR-GNN's gated GNN, then self-attention blocks over the session, a weighted mix of the "
                     "last block's output and the last item's state, dot-product scores (macro items only)",
                     "Xu et al., Graph Contextualized Self-Attention Network for Session-based Recommendation, IJCAI "
                     "2019 (a baseline of the EMBSR paper, Table III)",
                     true, ""};
  }
  static std::vector<OptionSpec> own_options() {
    const ModelOptions d = gcsan_options(GcsanConfig{});
    return {{"d", OptionKind::Integer, *d.find("d"), "embedding size", {}, false, true, search_range(16, 64, true)},
            {"gnn_steps", OptionKind::Integer, *d.find("gnn_steps"), "GGNN propagation steps (shared weights)", {}, false,
             true, search_range(1, 2)},
            {"num_blocks", OptionKind::Integer, *d.find("num_blocks"), "self-attention blocks (the paper's k)", {}, false,
             true, search_range(1, 3)},
            {"omega", OptionKind::Number, *d.find("omega"), "weight of the self-attention output against the last item's state",
             {}, false, true, search_range(0.2, 0.8)},
            {"seed", OptionKind::Integer, *d.find("seed"), "seed of the initialisation", {}, false, false, {}}};
  }
  static ModelSpec spec() { return neural_model_spec<GcsanSpec>(); }
};

template <class ExecSpace, class Scalar>
struct model_spec_of<GCSAN<ExecSpace, Scalar>> {
  using type = GcsanSpec;
};

}  // namespace embsr
