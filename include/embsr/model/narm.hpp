#pragma once
// NARM (Li, Ren, Chen, Ren, Lian, Ma, "Neural Attentive Session-based Recommendation", CIKM 2017)
// as a composition of the library's layers; the contract is docs/SEQUENCE_MODELS.md, "NARM".
//
// It reads the macro-item sequence of a session only (consecutive repeats merged, as the graph
// baselines do). Data flow for a ragged batch (B sessions, N macro positions; d the item embedding
// size, H the GRU's hidden size):
//   x[N]   = item_embedding[macro_items]                         [N x d]   embedding (Sec. 3.2)
//   h[N]   = GRU(x) per session, h_0 = 0, every state kept        [N x H]   sequence_gru (eq. 1-3)
//   c_g[B] = h_t, the session's last state                        [B x H]   (eq. 4, global encoder)
//   alpha_tj = v^T sigmoid(A_1 h_t + A_2 h_j)  over the session's positions j   (eq. 6-7)
//   c_l[B] = sum_j alpha_tj h_j (NOT normalised, as eq. 5)        [B x H]   (local encoder)
//   c_t    = [c_g ; c_l]                                          [B x 2H]  (eq. 8)
//   s[B]   = B c_t                                                [B x d]   (eq. 9, the bi-linear
//            decoder S_i = emb_i^T B c_t, with B [d x 2H])
//   scores = s . item_embedding[i] (the SAME table as the input); loss = mean CE   (eq. 10-11)
// The global and local encoders read the hidden states of ONE GRU (Sec. 3.4 and Fig. 2: h_t^g and
// h_t^l are the same states in two roles; the authors' Theano code runs one GRU, `proj`).
// The local encoder and the decoder are exactly SR-GNN's soft-attention readout
// (layers/soft_attention_readout.hpp, itself NARM's attention) with its three biases held at zero:
// W1 = A_1 (on h_t), W2 = A_2 (on h_j), q = v, W3 = B acting on [s_l ; s_g] = [h_t ; c_l]. The
// zero biases are fixed buffers, not parameters; their gradients go to scratch.
// Where the paper, its code and the ports differ (docs/SEQUENCE_MODELS.md lists each):
//   - sigma is the sigmoid of eq. 7 (the authors' Theano code uses hard_sigmoid and renormalises
//     alpha with a masked softmax; the PyTorch port and RecBole use sigmoid without normalising);
//   - the GRU is PyTorch's nn.GRU with both biases (r applied to W_hn h + b_hn; the PyTorch port's
//     nn.GRU defaults; RecBole's has bias=False), not the paper's Cho GRU of eq. 1-3 (r applied
//     before U_h; no bias in the paper, one in the Theano code);
//   - c_t = [c_g ; c_l] in the paper's order (the Theano code, the PyTorch port and RecBole
//     concatenate [c_l ; c_g]: a permutation of B's columns, the same function family);
//   - no dropout (the paper's 0.25 on the embeddings and 0.5 on c_t): not part of the contract;
//   - parameters start U(-1/sqrt(d), 1/sqrt(d)) like every NeuralModel (Ours; the Theano code
//     draws N(0, 2/fan_in) and orthogonal recurrent matrices).
// The paper's setting is d = 50, H = 100; the defaults here are d = 100 (as every model of the
// library) and hidden = 100.

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/embedding.hpp>
#include <embsr/layers/gru.hpp>
#include <embsr/layers/scoring.hpp>
#include <embsr/layers/sequence_gru.hpp>
#include <embsr/layers/soft_attention_readout.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/neural_model.hpp>
#include <embsr/model/parameter_layout.hpp>

namespace embsr {

struct NarmConfig {
  int num_items = 0, num_ops = 0, max_length = 50;  // from the data
  int d = 100;       // item embedding size |D| (the paper: 50)
  int hidden = 100;  // GRU hidden size |H| (the paper: 100); c_t has 2 * hidden entries
  std::uint64_t seed = 1;

  void validate() const {
    auto fail = [](const std::string& what) { throw InvalidArgument("NARM: " + what); };
    if (num_items < 1) fail("num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1) fail("num_ops must be >= 1, got " + std::to_string(num_ops));
    if (max_length < 1) fail("max_length must be >= 1, got " + std::to_string(max_length));
    if (d < 1 || d > (1 << 16)) fail("d must be in [1, 65536], got " + std::to_string(d));
    if (hidden < 1 || hidden > (1 << 16)) fail("hidden must be in [1, 65536], got " + std::to_string(hidden));
  }
};

// item_embedding [V x d]; gru.W_ih [3H x d], gru.W_hh [3H x H], gru.b_ih [1 x 3H], gru.b_hh [1 x 3H]
// (gate blocks r, z, n); attention.A_1 [H x H] (on h_t), attention.A_2 [H x H] (on h_j),
// attention.v [1 x H]; B [d x 2H] (acting on [c_g ; c_l]). Linear maps stored [out x in].
inline std::vector<ParameterEntry> narm_parameter_layout(const NarmConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.d), H = static_cast<std::uint64_t>(c.hidden);
  return detail::layout_from([&](auto&& visit) {
    visit("item_embedding", static_cast<std::uint64_t>(c.num_items), d);
    visit("gru.W_ih", 3 * H, d);
    visit("gru.W_hh", 3 * H, H);
    visit("gru.b_ih", std::uint64_t(1), 3 * H);
    visit("gru.b_hh", std::uint64_t(1), 3 * H);
    visit("attention.A_1", H, H);
    visit("attention.A_2", H, H);
    visit("attention.v", std::uint64_t(1), H);
    visit("B", d, 2 * H);
  });
}

template <class ExecSpace, class Scalar = float>
class NARM : public NeuralModel<NARM<ExecSpace, Scalar>, ExecSpace, Scalar, NarmConfig> {
  using Base = NeuralModel<NARM<ExecSpace, Scalar>, ExecSpace, Scalar, NarmConfig>;
  friend Base;
  using Base::config_;
  using Base::core_;

 public:
  using typename Base::batch_type;
  using typename Base::M;
  using typename Base::matrix;

  explicit NARM(const NarmConfig& config, ExecSpace exec = ExecSpace())
      : Base((config.validate(), config), "NARM", narm_parameter_layout(config), ScoreKind::Dot, exec) {
    item_ = core_.id("item_embedding");
    const auto H = static_cast<std::size_t>(config_.hidden), d = static_cast<std::size_t>(config_.d);
    // Kokkos zero-fills new Views: the readout's biases, held at zero (the paper has none).
    zero_h_ = Vec<Scalar, M>("embsr::narm::zero_bias_h", H);
    zero_d_ = Vec<Scalar, M>("embsr::narm::zero_bias_d", d);
    scratch_b1_ = Vec<Scalar, M>("embsr::narm::scratch_db1", H);
    scratch_b2_ = Vec<Scalar, M>("embsr::narm::scratch_db2", H);
    scratch_b3_ = Vec<Scalar, M>("embsr::narm::scratch_db3", d);
  }

 private:
  GruParams<Scalar, M> gru(bool grad) const {
    auto mat = [&](const char* n) { return core_.mat(core_.id(n), grad); };
    auto vec = [&](const char* n) { return core_.vec(core_.id(n), grad); };
    return GruParams<Scalar, M>{mat("gru.W_ih"), mat("gru.W_hh"), vec("gru.b_ih"), vec("gru.b_hh")};
  }
  // The local encoder and the decoder as the soft-attention readout with zero biases; with grad,
  // the bias gradients land in scratch that nothing reads.
  SoftAttentionReadoutParams<Scalar, M> attention(bool grad) const {
    auto mat = [&](const char* n) { return core_.mat(core_.id(n), grad); };
    SoftAttentionReadoutParams<Scalar, M> p;
    p.W1 = mat("attention.A_1");
    p.W2 = mat("attention.A_2");
    p.q = core_.vec(core_.id("attention.v"), grad);
    p.W3 = mat("B");
    p.b1 = grad ? VecRef<Scalar, M>(scratch_b1_) : VecRef<Scalar, M>(zero_h_);
    p.b2 = grad ? VecRef<Scalar, M>(scratch_b2_) : VecRef<Scalar, M>(zero_h_);
    p.b3 = grad ? VecRef<Scalar, M>(scratch_b3_) : VecRef<Scalar, M>(zero_d_);
    return p;
  }

  double run_forward(const batch_type& batch, bool with_loss) {
    this->validate(batch);
    const auto& exec = core_.exec();
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions), N = static_cast<std::size_t>(batch.sizes.num_macro),
               d = static_cast<std::size_t>(config_.d), H = static_cast<std::size_t>(config_.hidden);
    x_ = ensure(x_storage_, N, d, "embsr::narm::x");
    h_ = ensure(h_storage_, N, H, "embsr::narm::h");
    s_ = ensure(s_storage_, B, d, "embsr::narm::s");

    const auto items = core_.mat(item_, false);
    embedding_forward(exec, items, batch.macro_items, x_);                       // Sec. 3.2
    sequence_gru_forward(exec, batch.macro_offsets, x_, gru(false), h_, gru_cache_);  // eq. 1-3
    // c_g = h_t, alpha (eq. 6-7), c_l (eq. 5), s = B [c_g ; c_l] (eq. 8-9).
    soft_attention_readout_forward(exec, batch.macro_offsets, h_, attention(false), matrix(), s_, attention_cache_);
    return this->score(batch, s_, items, 1.0, with_loss);                         // eq. 9-11
  }

  // run_forward's layer calls in reverse; every backward adds into its gradients.
  void run_backward(const batch_type& batch) {
    const auto& exec = core_.exec();
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions), N = static_cast<std::size_t>(batch.sizes.num_macro),
               d = static_cast<std::size_t>(config_.d), H = static_cast<std::size_t>(config_.hidden);
    const auto ds = this->zeroed(ds_storage_, B, d, "embsr::narm::ds");
    const auto dh = this->zeroed(dh_storage_, N, H, "embsr::narm::dh");
    const auto dx = this->zeroed(dx_storage_, N, d, "embsr::narm::dx");
    const auto items = core_.mat(item_, false);
    const auto ditems = core_.mat(item_, true);
    Kokkos::deep_copy(exec, scratch_b1_, Scalar(0));
    Kokkos::deep_copy(exec, scratch_b2_, Scalar(0));
    Kokkos::deep_copy(exec, scratch_b3_, Scalar(0));

    this->score_backward(batch, s_, items, 1.0, ds, ditems);
    soft_attention_readout_backward(exec, batch.macro_offsets, h_, attention(false), matrix(), attention_cache_, ds, dh,
                                    matrix(), attention(true));
    sequence_gru_backward(exec, batch.macro_offsets, x_, gru(false), gru_cache_, dh, dx, gru(true));
    embedding_backward(exec, batch.macro_items, dx, ditems);
  }

  std::size_t item_ = 0;
  // The readout's fixed zero biases and the scratch its bias gradients add into.
  Vec<Scalar, M> zero_h_, zero_d_, scratch_b1_, scratch_b2_, scratch_b3_;
  // Activations of the last forward.
  matrix x_, h_, s_;  // [N x d] [N x H] [B x d]
  Mat<Scalar, M> x_storage_, h_storage_, s_storage_;
  // Gradient buffers.
  Mat<Scalar, M> ds_storage_, dh_storage_, dx_storage_;
  // Layer caches.
  SequenceGruCache<Scalar, M> gru_cache_;
  SoftAttentionReadoutCache<Scalar, M> attention_cache_;
};

// ---- the registry's view of NARM --------------------------------------------

inline ModelOptions narm_options(const NarmConfig& c) {
  ModelOptions o;
  detail::set_data_options(o, c);
  o.set("d", c.d).set("hidden", c.hidden).set("seed", c.seed);
  return o;
}

struct NarmSpec {
  template <class ExecSpace>
  using model = NARM<ExecSpace, float>;
  using config_type = NarmConfig;

  static ModelOptions options_of(const NarmConfig& c) { return narm_options(c); }
  static NarmConfig config_of(const ModelOptions& o) {
    NarmConfig c;
    detail::get_data_options(o, c);
    c.d = o.get_int32("d", c.d);
    c.hidden = o.get_int32("hidden", c.hidden);
    c.seed = o.get_uint("seed", c.seed);
    c.validate();
    return c;
  }
  static std::vector<ParameterEntry> layout(const NarmConfig& c) { return narm_parameter_layout(c); }
  // d-vectors per macro item: the embedded inputs and their gradient (2), and, in H-vectors, the
  // GRU's gi, gh, gates (9), states and entering states (2), their gradients (6 + 1) and the
  // attention's gates and their gradient (2): 20 H-vectors, counted in d-vectors (rounded up).
  static std::uint64_t activation_vectors(const NarmConfig& c) {
    const auto d = static_cast<std::uint64_t>(c.d), H = static_cast<std::uint64_t>(c.hidden);
    return 2 + (20 * H + d - 1) / d;
  }
  static std::uint64_t extra_bytes(const NarmConfig&, std::uint64_t) { return 0; }
  static ModelInfo info() {
    return ModelInfo{"narm", "recurrent neural network + attention",
                     "NARM: a GRU over the session's items, its last state (global encoder) and an attention over all "
                     "its states (local encoder), a bi-linear decoder against the item embeddings (macro items only)",
                     "Li et al., Neural Attentive Session-based Recommendation, CIKM 2017 (a baseline of the EMBSR "
                     "paper, Table III)",
                     true, ""};
  }
  static std::vector<OptionSpec> own_options() {
    const ModelOptions d = narm_options(NarmConfig{});
    return {{"d", OptionKind::Integer, *d.find("d"), "item embedding size", {}, false, true, search_range(16, 64, true)},
            {"hidden", OptionKind::Integer, *d.find("hidden"), "GRU hidden size (the session representation has twice it)",
             {}, false, true, search_range(16, 128, true)},
            {"seed", OptionKind::Integer, *d.find("seed"), "seed of the initialisation", {}, false, false, {}}};
  }
  static ModelSpec spec() { return neural_model_spec<NarmSpec>(); }
};

template <class ExecSpace, class Scalar>
struct model_spec_of<NARM<ExecSpace, Scalar>> {
  using type = NarmSpec;
};

}  // namespace embsr
