#pragma once
// MKM-SR (Meng et al., "Incorporating User Micro-behaviors and Item Knowledge into Multi-task
// Learning for Session-based Recommendation", SIGIR 2020) WITHOUT its knowledge-graph task, as a
// composition of the library's layers; the contract is docs/GRAPH_MODELS.md, "MKM-SR".
//
// The knowledge task (TransH over item relations) is left out: our logs carry no item relations
// (the EMBSR paper evaluates the same variant, Sec. V-A2; the authors' released code computes no
// knowledge loss either). MKM-SR reads the micro-behaviors (item, operation) of a session.
// Data flow for a ragged batch (B sessions, T micro-behaviors, C nodes):
//   h0[C]   = item_embedding[node_items]                                       embedding
//   w       = the graph of the MICRO sequence with counts and self-loops, normalised by degree
//             (the authors' get_slice)                                        ggnn_counted_edge_weights
//   h_{s+1} = GGNN(h_s), s < gnn_steps, ONE set of weights (SR-GNN's layer)    ggnn (with self-loops)
//   eo[T]   = op_embedding[micro_ops];  o'[T] = GRU over each session's operations, every state kept
//                                                                              embedding, sequence_gru
//   m[T]    = [h_S[micro_alias] ; o']                                          (2d per micro-behavior)
//   s[B]    = W3 [m_t ; sum_j alpha_j m_j] + b3, alpha_j = q . sigmoid(W1 m_t + b1 + W2 m_j + b2)
//                                                                              soft_attention_readout (D = 2d)
//   scores  = s . item_embedding[v]; loss = mean CE                            scoring, ScoreKind::Dot
// No dropout (not part of the contract). Parameters start U(-1/sqrt(d), 1/sqrt(d)).

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_validator.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/embedding.hpp>
#include <embsr/layers/ggnn.hpp>
#include <embsr/layers/gru.hpp>
#include <embsr/layers/scoring.hpp>
#include <embsr/layers/sequence_gru.hpp>
#include <embsr/layers/soft_attention_readout.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/neural_model.hpp>
#include <embsr/model/parameter_layout.hpp>
#include <embsr/model/srgnn.hpp>

namespace embsr {

struct MkmsrConfig {
  int num_items = 0, num_ops = 0, max_length = 50;  // from the data
  int d = 100;
  int gnn_steps = 1;  // GGNN steps, shared weights (as SR-GNN)
  std::uint64_t seed = 1;

  void validate() const {
    auto fail = [](const std::string& what) { throw InvalidArgument("MKM-SR: " + what); };
    if (num_items < 1) fail("num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1) fail("num_ops must be >= 1, got " + std::to_string(num_ops));
    if (max_length < 1) fail("max_length must be >= 1, got " + std::to_string(max_length));
    if (d < 1 || d > (1 << 16)) fail("d must be in [1, 65536], got " + std::to_string(d));
    if (gnn_steps < 1 || gnn_steps > 16) fail("gnn_steps must be in [1, 16], got " + std::to_string(gnn_steps));
  }
};

// item_embedding, op_embedding [O x d], ggnn.*, op_gru.*, readout.* at width 2d: docs/GRAPH_MODELS.md.
inline std::vector<ParameterEntry> mkmsr_parameter_layout(const MkmsrConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.d);
  return detail::layout_from([&](auto&& visit) {
    visit("item_embedding", static_cast<std::uint64_t>(c.num_items), d);
    visit("op_embedding", static_cast<std::uint64_t>(c.num_ops), d);
    detail::visit_srgnn_gnn(d, visit);
    visit("op_gru.W_ih", 3 * d, d);
    visit("op_gru.W_hh", 3 * d, d);
    visit("op_gru.b_ih", std::uint64_t(1), 3 * d);
    visit("op_gru.b_hh", std::uint64_t(1), 3 * d);
    detail::visit_soft_attention_readout(2 * d, d, /*with_context=*/false, visit);
  });
}

namespace detail {

// m[j] = [hS[alias[j]] ; ops[j]] ([T x 2d]) and the split of its gradient dm into the two halves.
// Free functions: nvcc takes no device lambda inside a private member.
template <class ExecSpace, class IdsV, class S, class M>
void mkmsr_concat(const ExecSpace& exec, const IdsV& alias, const MatRef<S, M>& hS, const MatRef<S, M>& ops,
                  const MatRef<S, M>& m) {
  const int D = static_cast<int>(ops.extent(1));
  parallel_for_2d(exec, "embsr::mkmsr::concat", static_cast<int>(m.extent(0)), 2 * D,
                  KOKKOS_LAMBDA(const int j, const int c) { m(j, c) = c < D ? hS(alias(j), c) : ops(j, c - D); });
}
template <class ExecSpace, class S, class M>
void mkmsr_split(const ExecSpace& exec, const MatRef<S, M>& dm, const MatRef<S, M>& ditems, const MatRef<S, M>& dops) {
  const int D = static_cast<int>(ditems.extent(1));
  parallel_for_2d(exec, "embsr::mkmsr::split", static_cast<int>(dm.extent(0)), D, KOKKOS_LAMBDA(const int j, const int c) {
    ditems(j, c) = dm(j, c);
    dops(j, c) = dm(j, D + c);
  });
}

}  // namespace detail

template <class ExecSpace, class Scalar = float>
class MKMSR : public NeuralModel<MKMSR<ExecSpace, Scalar>, ExecSpace, Scalar, MkmsrConfig> {
  using Base = NeuralModel<MKMSR<ExecSpace, Scalar>, ExecSpace, Scalar, MkmsrConfig>;
  friend Base;
  using Base::config_;
  using Base::core_;

 public:
  using typename Base::batch_type;
  using typename Base::M;
  using typename Base::matrix;

  explicit MKMSR(const MkmsrConfig& config, ExecSpace exec = ExecSpace())
      : Base((config.validate(), config), "MKM-SR", mkmsr_parameter_layout(config), ScoreKind::Dot, exec) {
    ggnn_cache_.resize(static_cast<std::size_t>(config_.gnn_steps));
    item_ = core_.id("item_embedding");
    op_ = core_.id("op_embedding");
  }

 private:
  GgnnParams<Scalar, M> ggnn(bool grad) const { return detail::srgnn_ggnn_params<Scalar, M>(core_, grad); }
  GruParams<Scalar, M> op_gru(bool grad) const {
    auto mat = [&](const char* n) { return core_.mat(core_.id(n), grad); };
    auto vec = [&](const char* n) { return core_.vec(core_.id(n), grad); };
    return GruParams<Scalar, M>{mat("op_gru.W_ih"), mat("op_gru.W_hh"), vec("op_gru.b_ih"), vec("op_gru.b_hh")};
  }
  SoftAttentionReadoutParams<Scalar, M> readout(bool grad) const {
    return detail::soft_attention_readout_params<Scalar, M>(core_, grad);
  }
  GgnnEdgeWeights<Scalar, M> edge_weights() const {
    return GgnnEdgeWeights<Scalar, M>{w_in_, w_out_, self_in_, self_out_};
  }

  double run_forward(const batch_type& batch, bool with_loss) {
    this->validate(batch);
    const auto& exec = core_.exec();
    const auto C = static_cast<std::size_t>(batch.sizes.num_nodes), E = static_cast<std::size_t>(batch.sizes.num_edges),
               B = static_cast<std::size_t>(batch.sizes.num_sessions), T = static_cast<std::size_t>(batch.sizes.num_micro),
               d = static_cast<std::size_t>(config_.d);
    const auto S = static_cast<std::size_t>(config_.gnn_steps);
    h_.resize(S + 1), h_storage_.resize(S + 1);
    for (std::size_t s = 0; s <= S; ++s) h_[s] = ensure(h_storage_[s], C, d, "embsr::mkmsr::h");
    w_in_ = ensure(w_in_storage_, E, "embsr::mkmsr::w_in");
    w_out_ = ensure(w_out_storage_, E, "embsr::mkmsr::w_out");
    self_in_ = ensure(self_in_storage_, C, "embsr::mkmsr::self_in");
    self_out_ = ensure(self_out_storage_, C, "embsr::mkmsr::self_out");
    eo_ = ensure(eo_storage_, T, d, "embsr::mkmsr::eo");
    ops_ = ensure(ops_storage_, T, d, "embsr::mkmsr::op_states");
    m_ = ensure(m_storage_, T, 2 * d, "embsr::mkmsr::m");
    s_ = ensure(s_storage_, B, d, "embsr::mkmsr::s");

    const auto items = core_.mat(item_, false);
    embedding_forward(exec, items, batch.node_items, h_[0]);
    ggnn_counted_edge_weights(exec, batch, w_in_, w_out_, self_in_, self_out_);
    detail::srgnn_gnn_forward(exec, batch, h_, ggnn(false), ggnn_cache_, edge_weights());
    embedding_forward(exec, core_.mat(op_, false), batch.micro_ops, eo_);
    sequence_gru_forward(exec, batch.micro_offsets, eo_, op_gru(false), ops_, gru_cache_);
    detail::mkmsr_concat(exec, batch.micro_alias, h_[S], ops_, m_);  // m_j = [h_S[micro_alias[j]] ; o'_j]
    soft_attention_readout_forward(exec, batch.micro_offsets, m_, readout(false), matrix(), s_, readout_cache_);
    return this->score(batch, s_, items, 1.0, with_loss);
  }

  // run_forward's layer calls in reverse; every backward adds into its gradients.
  void run_backward(const batch_type& batch) {
    const auto& exec = core_.exec();
    const auto C = static_cast<std::size_t>(batch.sizes.num_nodes), B = static_cast<std::size_t>(batch.sizes.num_sessions),
               T = static_cast<std::size_t>(batch.sizes.num_micro), d = static_cast<std::size_t>(config_.d);
    const auto ds = this->zeroed(ds_storage_, B, d, "embsr::mkmsr::ds");
    const auto dm = this->zeroed(dm_storage_, T, 2 * d, "embsr::mkmsr::dm");
    const auto dh_items = this->zeroed(dh_items_storage_, T, d, "embsr::mkmsr::dh_items");
    const auto dops = this->zeroed(dops_storage_, T, d, "embsr::mkmsr::dops");
    const auto deo = this->zeroed(deo_storage_, T, d, "embsr::mkmsr::deo");
    const auto dh = this->zeroed(dh_storage_, C, d, "embsr::mkmsr::dh");
    const auto dh_prev = this->zeroed(dh_prev_storage_, C, d, "embsr::mkmsr::dh_prev");
    const auto items = core_.mat(item_, false);

    this->score_backward(batch, s_, items, 1.0, ds, core_.mat(item_, true));
    soft_attention_readout_backward(exec, batch.micro_offsets, m_, readout(false), matrix(), readout_cache_, ds, dm,
                                    matrix(), readout(true));
    detail::mkmsr_split(exec, dm, dh_items, dops);
    sequence_gru_backward(exec, batch.micro_offsets, eo_, op_gru(false), gru_cache_, dops, deo, op_gru(true));
    embedding_backward(exec, batch.micro_ops, deo, core_.mat(op_, true));
    embedding_backward(exec, batch.micro_alias, dh_items, dh);
    detail::srgnn_gnn_backward(exec, batch, h_, ggnn(false), ggnn_cache_, edge_weights(), dh, dh_prev, ggnn(true));
    embedding_backward(exec, batch.node_items, dh, core_.mat(item_, true));
  }

  std::size_t item_ = 0, op_ = 0;
  // Activations of the last forward.
  std::vector<matrix> h_;
  std::vector<Mat<Scalar, M>> h_storage_;
  VecRef<Scalar, M> w_in_, w_out_, self_in_, self_out_;
  Vec<Scalar, M> w_in_storage_, w_out_storage_, self_in_storage_, self_out_storage_;
  matrix eo_, ops_, m_, s_;
  Mat<Scalar, M> eo_storage_, ops_storage_, m_storage_, s_storage_;
  // Gradient buffers.
  Mat<Scalar, M> ds_storage_, dm_storage_, dh_items_storage_, dops_storage_, deo_storage_, dh_storage_, dh_prev_storage_;
  // Layer caches.
  std::vector<GgnnCache<Scalar, M>> ggnn_cache_;
  SequenceGruCache<Scalar, M> gru_cache_;
  SoftAttentionReadoutCache<Scalar, M> readout_cache_;
};

// ---- the registry's view of MKM-SR ------------------------------------------

inline ModelOptions mkmsr_options(const MkmsrConfig& c) {
  ModelOptions o;
  detail::set_data_options(o, c);
  o.set("d", c.d).set("gnn_steps", c.gnn_steps).set("seed", c.seed);
  return o;
}

struct MkmsrSpec {
  template <class ExecSpace>
  using model = MKMSR<ExecSpace, float>;
  using config_type = MkmsrConfig;

  static ModelOptions options_of(const MkmsrConfig& c) { return mkmsr_options(c); }
  static MkmsrConfig config_of(const ModelOptions& o) {
    MkmsrConfig c;
    detail::get_data_options(o, c);
    c.d = o.get_int32("d", c.d);
    c.gnn_steps = o.get_int32("gnn_steps", c.gnn_steps);
    c.seed = o.get_uint("seed", c.seed);
    c.validate();
    return c;
  }
  static std::vector<ParameterEntry> layout(const MkmsrConfig& c) { return mkmsr_parameter_layout(c); }
  // d-vectors per micro-behavior: node states and the GGNN's caches (~20 per step), the operation
  // GRU (~8), the [item ; operation] rows and the readout at width 2d (~12).
  static std::uint64_t activation_vectors(const MkmsrConfig& c) { return 24 + 20 * static_cast<std::uint64_t>(c.gnn_steps); }
  static std::uint64_t extra_bytes(const MkmsrConfig&, std::uint64_t) { return 0; }
  static ModelInfo info() {
    return ModelInfo{"mkm-sr", "graph neural network + operation GRU",
                     "MKM-SR without its knowledge task: SR-GNN's gated GNN over the micro-behaviors' item graph, a "
                     "GRU over their operations, soft attention over [item ; operation] states, dot-product scores",
                     "Meng et al., Incorporating User Micro-behaviors and Item Knowledge into Multi-task Learning for "
                     "Session-based Recommendation, SIGIR 2020 (a baseline of the EMBSR paper, Table III)",
                     true, ""};
  }
  static std::vector<OptionSpec> own_options() {
    const ModelOptions d = mkmsr_options(MkmsrConfig{});
    return {{"d", OptionKind::Integer, *d.find("d"), "embedding size", {}, false, true, search_range(16, 64, true)},
            {"gnn_steps", OptionKind::Integer, *d.find("gnn_steps"), "GGNN propagation steps (shared weights)", {}, false,
             true, search_range(1, 2)},
            {"seed", OptionKind::Integer, *d.find("seed"), "seed of the initialisation", {}, false, false, {}}};
  }
  static ModelSpec spec() { return neural_model_spec<MkmsrSpec>(); }
};

template <class ExecSpace, class Scalar>
struct model_spec_of<MKMSR<ExecSpace, Scalar>> {
  using type = MkmsrSpec;
};

}  // namespace embsr
