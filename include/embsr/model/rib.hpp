#pragma once
// RIB (Meizi Zhou, Zhuoye Ding, Jiliang Tang, Dawei Yin, "Micro Behaviors: A New Perspective in
// E-commerce Recommender Systems", WSDM 2018, pp. 727-735, doi 10.1145/3159652.3159671; reference
// [10] of the EMBSR paper, a baseline of its Table III) as a composition of the library's layers;
// the contract is docs/SEQUENCE_MODELS.md, "RIB".
//
// RIB reads the MICRO-BEHAVIORS (item, operation) of a session, in order (the batch's micro
// arrays). Its framework (Sec. 4) has an input layer, an embedding layer, an RNN layer, an
// attention layer and an output layer. Data flow for a ragged batch (B sessions, T micro-behaviors):
//   x[T]   = [item_embedding[micro_items] ; op_embedding[micro_ops]]   [T x 2d]   embedding layer
//            (two embedding_forward calls into the column halves of one matrix; the paper also
//            embeds each micro-behavior's dwell time: our batches carry none, so it is left out)
//   h[T]   = GRU over each session's x, every state kept, h_0 = 0      [T x d]    RNN layer (GRU)
//   u_j    = tanh(W_a h_j + b_a);  alpha_j = softmax_j(u_j . c_a)                 attention layer
//   s[B]   = sum_j alpha_j h_j                                        [B x d]    (layers/context_attention.hpp)
//   scores = softmax layer over all items: W_o s + b_o                 [B x V]    output layer
//            (dense, its own [V x d] table and a bias per item; with tied_output = true (Ours) the
//            item embeddings instead: s . item_embedding[v], no bias)
//   loss   = mean cross-entropy of the scores with the next item.
// The dense output layer maps onto ScoreKind::Dot with no change to the scoring: its parameter
// "output" is ONE [V x (d+1)] table whose row v is [W_o[v] ; b_o[v]], scored against [s ; 1].
// Where the paper's text is not at hand we follow the public Keras port of RIB by the same lab
// (github.com/guyulongcs/WSDM2020_HUP, HUP_code/MicroRNN.py, "code for WSDM 2018 Micro Behaviors"):
// the micro-behavior embedding is the concatenation [item ; operation (; dwell)], the RNN a GRU
// over it returning every state, the attention a tanh layer then a linear score per state. That
// port then passes the [seq_len] scores through a further Dense(seq_len) layer before the softmax,
// which ties the attention to absolute padded positions: we do not (Ours; the softmax over the
// session's scores, batch- and length-independent). No dropout. Parameters start
// U(-1/sqrt(d), 1/sqrt(d)) as every model of the graph and sequence families.

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/context_attention.hpp>
#include <embsr/layers/embedding.hpp>
#include <embsr/layers/gru.hpp>
#include <embsr/layers/scoring.hpp>
#include <embsr/layers/sequence_gru.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/neural_model.hpp>
#include <embsr/model/parameter_layout.hpp>

namespace embsr {

struct RibConfig {
  int num_items = 0, num_ops = 0, max_length = 50;  // from the data
  int d = 100;                // embedding size of items and operations, GRU state, attention width
  bool tied_output = false;   // Ours: score with the item embeddings instead of the dense softmax layer
  std::uint64_t seed = 1;

  void validate() const {
    auto fail = [](const std::string& what) { throw InvalidArgument("RIB: " + what); };
    if (num_items < 1) fail("num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1) fail("num_ops must be >= 1, got " + std::to_string(num_ops));
    if (max_length < 1) fail("max_length must be >= 1, got " + std::to_string(max_length));
    if (d < 1 || d > (1 << 16)) fail("d must be in [1, 65536], got " + std::to_string(d));
  }
};

// item_embedding [V x d], op_embedding [O x d], gru.W_ih [3d x 2d], gru.W_hh [3d x d],
// gru.b_ih [1 x 3d], gru.b_hh [1 x 3d], attention.W [d x d], attention.b [1 x d], attention.c
// [1 x d], and (unless tied_output) output [V x (d+1)] = [W_o | b_o].
inline std::vector<ParameterEntry> rib_parameter_layout(const RibConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.d), V = static_cast<std::uint64_t>(c.num_items);
  return detail::layout_from([&](auto&& visit) {
    visit("item_embedding", V, d);
    visit("op_embedding", static_cast<std::uint64_t>(c.num_ops), d);
    visit("gru.W_ih", 3 * d, 2 * d);
    visit("gru.W_hh", 3 * d, d);
    visit("gru.b_ih", std::uint64_t(1), 3 * d);
    visit("gru.b_hh", std::uint64_t(1), 3 * d);
    visit("attention.W", d, d);
    visit("attention.b", std::uint64_t(1), d);
    visit("attention.c", std::uint64_t(1), d);
    if (!c.tied_output) visit("output", V, d + 1);
  });
}

namespace detail {

// Columns [c0, c1) of a matrix, as a strided view. Free functions: nvcc takes no device lambda
// inside a private member.
template <class Mat>
auto rib_columns(const Mat& m, int c0, int c1) {
  return Kokkos::subview(m, Kokkos::ALL, std::make_pair(c0, c1));
}
// Column `col` of s set to 1 (the dense output layer's bias input).
template <class ExecSpace, class S, class M>
void rib_set_ones(const ExecSpace& exec, const MatRef<S, M>& s, const int col) {
  Kokkos::parallel_for(
      "embsr::rib::ones", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(s.extent(0))),
      KOKKOS_LAMBDA(const int b) { s(b, col) = S(1); });
}

}  // namespace detail

template <class ExecSpace, class Scalar = float>
class RIB : public NeuralModel<RIB<ExecSpace, Scalar>, ExecSpace, Scalar, RibConfig> {
  using Base = NeuralModel<RIB<ExecSpace, Scalar>, ExecSpace, Scalar, RibConfig>;
  friend Base;
  using Base::config_;
  using Base::core_;

 public:
  using typename Base::batch_type;
  using typename Base::M;
  using typename Base::matrix;

  explicit RIB(const RibConfig& config, ExecSpace exec = ExecSpace())
      : Base((config.validate(), config), "RIB", rib_parameter_layout(config), ScoreKind::Dot, exec) {
    item_ = core_.id("item_embedding");
    op_ = core_.id("op_embedding");
    out_ = config_.tied_output ? item_ : core_.id("output");
  }

 private:
  GruParams<Scalar, M> gru(bool grad) const {
    auto mat = [&](const char* n) { return core_.mat(core_.id(n), grad); };
    auto vec = [&](const char* n) { return core_.vec(core_.id(n), grad); };
    return GruParams<Scalar, M>{mat("gru.W_ih"), mat("gru.W_hh"), vec("gru.b_ih"), vec("gru.b_hh")};
  }
  ContextAttentionParams<Scalar, M> attention(bool grad) const {
    return ContextAttentionParams<Scalar, M>{core_.mat(core_.id("attention.W"), grad),
                                             core_.vec(core_.id("attention.b"), grad),
                                             core_.vec(core_.id("attention.c"), grad)};
  }
  // The width of the scored session rows: d with tied output, d + 1 ([s ; 1]) with the dense layer.
  std::size_t session_width() const {
    return static_cast<std::size_t>(config_.d) + (config_.tied_output ? 0 : 1);
  }

  double run_forward(const batch_type& batch, bool with_loss) {
    this->validate(batch);
    const auto& exec = core_.exec();
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions), T = static_cast<std::size_t>(batch.sizes.num_micro);
    const int d = config_.d;
    const auto du = static_cast<std::size_t>(d);
    x_ = ensure(x_storage_, T, 2 * du, "embsr::rib::x");
    h_ = ensure(h_storage_, T, du, "embsr::rib::h");
    s_ = ensure(s_storage_, B, session_width(), "embsr::rib::s");

    // Embedding layer: x_j = [item ; operation].
    embedding_forward(exec, core_.mat(item_, false), batch.micro_items, detail::rib_columns(x_, 0, d));
    embedding_forward(exec, core_.mat(op_, false), batch.micro_ops, detail::rib_columns(x_, d, 2 * d));
    // RNN layer.
    sequence_gru_forward(exec, batch.micro_offsets, x_, gru(false), h_, gru_cache_);
    // Attention layer: s_b into the first d columns ([s ; 1] with the dense output layer).
    context_attention_forward(exec, batch.micro_offsets, h_, attention(false), detail::rib_columns(s_, 0, d),
                              attention_cache_);
    if (!config_.tied_output) detail::rib_set_ones(exec, s_, d);
    // Output layer: softmax over every item, mean cross-entropy.
    return this->score(batch, s_, core_.mat(out_, false), 1.0, with_loss);
  }

  // run_forward's layer calls in reverse; every backward adds into its gradients.
  void run_backward(const batch_type& batch) {
    const auto& exec = core_.exec();
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions), T = static_cast<std::size_t>(batch.sizes.num_micro);
    const int d = config_.d;
    const auto du = static_cast<std::size_t>(d);
    const auto ds = this->zeroed(ds_storage_, B, session_width(), "embsr::rib::ds");
    const auto dh = this->zeroed(dh_storage_, T, du, "embsr::rib::dh");
    const auto dx = this->zeroed(dx_storage_, T, 2 * du, "embsr::rib::dx");

    this->score_backward(batch, s_, core_.mat(out_, false), 1.0, ds, core_.mat(out_, true));
    context_attention_backward(exec, batch.micro_offsets, h_, attention(false), attention_cache_,
                               detail::rib_columns(ds, 0, d), dh, attention(true));
    sequence_gru_backward(exec, batch.micro_offsets, x_, gru(false), gru_cache_, dh, dx, gru(true));
    embedding_backward(exec, batch.micro_items, detail::rib_columns(dx, 0, d), core_.mat(item_, true));
    embedding_backward(exec, batch.micro_ops, detail::rib_columns(dx, d, 2 * d), core_.mat(op_, true));
  }

  std::size_t item_ = 0, op_ = 0, out_ = 0;
  // Activations of the last forward.
  matrix x_, h_, s_;
  Mat<Scalar, M> x_storage_, h_storage_, s_storage_;
  // Gradient buffers.
  Mat<Scalar, M> ds_storage_, dh_storage_, dx_storage_;
  // Layer caches.
  SequenceGruCache<Scalar, M> gru_cache_;
  ContextAttentionCache<Scalar, M> attention_cache_;
};

// ---- the registry's view of RIB ----------------------------------------------

inline ModelOptions rib_options(const RibConfig& c) {
  ModelOptions o;
  detail::set_data_options(o, c);
  o.set("d", c.d).set("tied_output", c.tied_output).set("seed", c.seed);
  return o;
}

struct RibSpec {
  template <class ExecSpace>
  using model = RIB<ExecSpace, float>;
  using config_type = RibConfig;

  static ModelOptions options_of(const RibConfig& c) { return rib_options(c); }
  static RibConfig config_of(const ModelOptions& o) {
    RibConfig c;
    detail::get_data_options(o, c);
    c.d = o.get_int32("d", c.d);
    c.tied_output = o.get_bool("tied_output", c.tied_output);
    c.seed = o.get_uint("seed", c.seed);
    c.validate();
    return c;
  }
  static std::vector<ParameterEntry> layout(const RibConfig& c) { return rib_parameter_layout(c); }
  // d-vectors per micro-behavior: the [item ; operation] rows (2), the GRU's cache (~11: gi, gh,
  // gates at 3d, h_prev) and its gradients (~6), the states and their gradient (2), the attention's
  // tanh rows and their gradient (2), the input gradient (2).
  static std::uint64_t activation_vectors(const RibConfig&) { return 25; }
  static std::uint64_t extra_bytes(const RibConfig&, std::uint64_t) { return 0; }
  static ModelInfo info() {
    return ModelInfo{"rib", "RNN + attention over micro-behaviors",
                     "RIB: a GRU over the session's micro-behaviors embedded as [item ; operation], attention with a "
                     "learned context vector over its states, a dense softmax layer over the items",
                     "Zhou, Ding, Tang, Yin, Micro Behaviors: A New Perspective in E-commerce Recommender Systems, "
                     "WSDM 2018 (a baseline of the EMBSR paper, Table III)",
                     true, ""};
  }
  static std::vector<OptionSpec> own_options() {
    const ModelOptions d = rib_options(RibConfig{});
    return {{"d", OptionKind::Integer, *d.find("d"), "embedding size, GRU state and attention width", {}, false, true,
             search_range(16, 64, true)},
            {"tied_output", OptionKind::Boolean, *d.find("tied_output"),
             "score with the item embeddings instead of RIB's dense softmax layer (ours)", {}, false, true, {}},
            {"seed", OptionKind::Integer, *d.find("seed"), "seed of the initialisation", {}, false, false, {}}};
  }
  static ModelSpec spec() { return neural_model_spec<RibSpec>(); }
};

template <class ExecSpace, class Scalar>
struct model_spec_of<RIB<ExecSpace, Scalar>> {
  using type = RibSpec;
};

}  // namespace embsr
