#pragma once
// BERT4Rec (Sun, Liu, Wu, Pei, Lin, Ou, Jiang, "BERT4Rec: Sequential Recommendation with
// Bidirectional Encoder Representations from Transformer", CIKM 2019) as a composition of the
// library's layers; the contract is docs/SEQUENCE_MODELS.md, "BERT4Rec". Where the paper is silent
// we follow the authors' code, FeiSun/BERT4Rec (modeling.py, run.py), and say so.
//
// It reads the MACRO items of a session (consecutive repeats merged, as the graph baselines).
// A session with n macro items s_1..s_n becomes a sequence of n + 1 tokens: the items, then one
// [mask] (positions 0..n, n <= max_length). Data flow for a ragged batch (B sessions, N macro
// items, R = N + B token rows, M masked rows):
//   x_i    = (token i is [mask] ? mask_embedding : item_embedding[s_i]) + position_embedding[i]
//                                                          Sec. 3.4, h_i^0 = v_i + p_i
//   H^0    = LayerNorm_in(x)                               the code's embedding_postprocessor
//   for l < L (each layer its own weights), Sec. 3.3 eqs. (1)-(5), post-LN as Fig. 1b:
//     A    = LayerNorm_1(H + MH(H))                        MH: h heads, bidirectional within the session
//     H'   = LayerNorm_2(A + W_2 GELU(W_1 A + b_1) + b_2)  PFFN, inner size 4d, exact GELU x Phi(x)
//   for every masked row m (eq. (7), the authors' code adds the LayerNorm):
//     z_m  = LayerNorm_out(GELU(h_m^L W^P + b^P))
//     logits_m[v] = z_m . item_embedding[v] + output_bias[v]   (E tied to the input table; b^O)
//   scores (evaluation)  = logits of the appended [mask] after the prefix (the paper's Sec. 3.6)
//   loss (training)      = mean over the batch's masked rows of -log softmax(logits_m)[label_m]
//                          (the cloze objective, Sec. 3.6, eq. (8))
//
// Training (loss_and_backward(batch, step, training)): the example's sequence is [s_1..s_n, t]
// (t the target); the last position is ALWAYS masked (the paper's Sec. 3.6: "we also produce samples
// that only mask the last item in the input sequences during training", which matches the
// evaluation), and each other position i is masked independently with probability mask_prob (the
// paper's rho) by the draw
//   u = to_unit_double(counter_random(seed, stream = (step + 1) * 2^32 + example_id, counter = i)),
//   masked iff u < mask_prob
// (core/random.hpp: the same masks for the same (seed, step, example), whatever the batch, thread
// count or backend; the oracle reproduces them). A masked token's label is the item it hides. With
// training = false, and for loss(batch), only the last position is masked: the next-item
// cross-entropy of the evaluation scores. The model never reads the target outside training.
//
// The per-item bias b^O enters the Dot scoring (layers/scoring.hpp, unchanged) by concatenation:
// [z_m, 1] . [E_v, b^O_v]. No dropout (not part of the contract). Parameters start U(-1/sqrt(d),
// 1/sqrt(d)) as the other neural models, except the LayerNorm gains (1), their biases (0) and
// output_bias (0), as the authors' code starts them (Ours: the library's uniform for the rest; the
// code draws truncated N(0, 0.02)).

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_validator.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/random.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/embedding.hpp>
#include <embsr/layers/gelu.hpp>
#include <embsr/layers/layer_norm.hpp>
#include <embsr/layers/linear.hpp>
#include <embsr/layers/multi_head_attention.hpp>
#include <embsr/layers/scoring.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/neural_model.hpp>
#include <embsr/model/parameter_layout.hpp>

namespace embsr {

struct Bert4recConfig {
  int num_items = 0, num_ops = 0, max_length = 50;  // from the data
  int d = 64;               // the paper's d (Sec. 4.4: 64 for all datasets)
  int num_layers = 2;       // the paper's L
  int num_heads = 2;        // the paper's h
  double mask_prob = 0.2;   // the paper's rho (cloze proportion)
  std::uint64_t seed = 1;   // initialisation and cloze masks

  void validate() const {
    auto fail = [](const std::string& what) { throw InvalidArgument("BERT4Rec: " + what); };
    if (num_items < 1) fail("num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1) fail("num_ops must be >= 1, got " + std::to_string(num_ops));
    if (max_length < 1) fail("max_length must be >= 1, got " + std::to_string(max_length));
    if (d < 1 || d > (1 << 14)) fail("d must be in [1, 16384], got " + std::to_string(d));
    if (num_layers < 1 || num_layers > 16) fail("num_layers must be in [1, 16], got " + std::to_string(num_layers));
    if (num_heads < 1 || num_heads > d || d % num_heads != 0)
      fail("num_heads must divide d = " + std::to_string(d) + ", got " + std::to_string(num_heads));
    if (!(mask_prob >= 0 && mask_prob < 1)) fail("mask_prob must be in [0, 1), got " + std::to_string(mask_prob));
  }
};

// item_embedding, mask_embedding, position_embedding, input_ln.*, per layer l "trm{l}.": the
// attention's W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O, ln1.*, the PFFN's W_1, b_1, W_2, b_2, ln2.*;
// then the output layer's W_P, b_P, out_ln.*, output_bias. Weights [out x in], biases and LayerNorm
// gains/biases [1 x width].
inline std::vector<ParameterEntry> bert4rec_parameter_layout(const Bert4recConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.d), V = static_cast<std::uint64_t>(c.num_items), one = std::uint64_t(1);
  return detail::layout_from([&](auto&& visit) {
    visit("item_embedding", V, d);
    visit("mask_embedding", one, d);
    visit("position_embedding", static_cast<std::uint64_t>(c.max_length) + 1, d);
    visit("input_ln.gamma", one, d);
    visit("input_ln.beta", one, d);
    for (int l = 0; l < c.num_layers; ++l) {
      const std::string p = "trm" + std::to_string(l) + ".";
      for (const char* w : {"Q", "K", "V", "O"}) {
        visit(p + "W_" + w, d, d);
        visit(p + "b_" + w, one, d);
      }
      visit(p + "ln1.gamma", one, d);
      visit(p + "ln1.beta", one, d);
      visit(p + "W_1", 4 * d, d);
      visit(p + "b_1", one, 4 * d);
      visit(p + "W_2", d, 4 * d);
      visit(p + "b_2", one, d);
      visit(p + "ln2.gamma", one, d);
      visit(p + "ln2.beta", one, d);
    }
    visit("W_P", d, d);
    visit("b_P", one, d);
    visit("out_ln.gamma", one, d);
    visit("out_ln.beta", one, d);
    visit("output_bias", one, V);
  });
}

namespace detail {

// The cloze masks' stream of an example at a training step (see the top of this file).
KOKKOS_INLINE_FUNCTION std::uint64_t bert4rec_mask_stream(std::uint64_t step, std::uint64_t example_id) {
  return ((step + 1) << 32) + example_id;
}

// Per session b: its token rows [seq_off(b), seq_off(b+1)) = macro items then one final token;
// tokens(r) = item id or -1 for [mask]; position(r); flag(r) = 1 when masked; label(r) = the hidden
// item of a masked row (the target for the last row in training, the target or 0 in evaluation).
template <class ExecSpace, class BatchT, class IV>
void bert4rec_tokens(const ExecSpace& exec, const BatchT& batch, const bool random_masks, const bool with_targets,
                     const std::uint64_t seed, const std::uint64_t step, const double mask_prob, const IV& seq_off,
                     const IV& tokens, const IV& position, const IV& flag, const IV& label) {
  const auto macro_offsets = batch.macro_offsets;
  const auto macro_items = batch.macro_items;
  const auto targets = batch.targets;
  const auto example_ids = batch.example_ids;
  const int B = static_cast<int>(batch.sizes.num_sessions);
  Kokkos::parallel_for(
      "embsr::bert4rec::tokens", Kokkos::RangePolicy<ExecSpace>(exec, 0, B), KOKKOS_LAMBDA(const int b) {
        const int m0 = macro_offsets(b), n = macro_offsets(b + 1) - m0, r0 = m0 + b;
        seq_off(b) = r0;
        if (b == B - 1) seq_off(B) = macro_offsets(B) + B;
        const CounterRng rng(seed, bert4rec_mask_stream(step, static_cast<std::uint64_t>(example_ids(b))));
        for (int i = 0; i <= n; ++i) {
          const int r = r0 + i;
          const int item = i < n ? static_cast<int>(macro_items(m0 + i)) : (with_targets ? static_cast<int>(targets(b)) : 0);
          const bool masked = i == n || (random_masks && rng.uniform(static_cast<std::uint64_t>(i)) < mask_prob);
          tokens(r) = masked ? -1 : item;
          position(r) = i;
          flag(r) = masked ? 1 : 0;
          label(r) = item;
        }
      });
}

// masked_rows(k) = the k-th masked row, masked_labels(k) its label, from an exclusive scan of flag.
template <class ExecSpace, class IV, class OV>
int bert4rec_compact(const ExecSpace& exec, const int R, const IV& flag, const IV& label, const OV& masked_rows,
                     const OV& masked_labels) {
  int total = 0;
  Kokkos::parallel_scan(
      "embsr::bert4rec::compact", Kokkos::RangePolicy<ExecSpace>(exec, 0, R),
      KOKKOS_LAMBDA(const int r, int& partial, const bool final) {
        if (final && flag(r) != 0) {
          masked_rows(partial) = r;
          masked_labels(partial) = label(r);
        }
        partial += flag(r);
      },
      total);
  return total;
}

// x(r) = (tokens(r) < 0 ? mask : items[tokens(r)]) + pos[position(r)].
template <class ExecSpace, class IV, class S, class M>
void bert4rec_embed(const ExecSpace& exec, const IV& tokens, const IV& position, const MatRef<S, M>& items,
                    const MatRef<S, M>& mask, const MatRef<S, M>& pos, const MatRef<S, M>& x) {
  parallel_for_2d(exec, "embsr::bert4rec::embed", x.extent(0), x.extent(1), KOKKOS_LAMBDA(const int r, const int j) {
    const int t = tokens(r);
    x(r, j) = (t < 0 ? mask(0, j) : items(t, j)) + pos(position(r), j);
  });
}

// Its backward: dpos[p] += sum over sessions b with a row at position p (in session order);
// dmask += sum over masked rows (in row order); then masked rows of dx are zeroed and grad_ids(r)
// = max(tokens(r), 0), so that embedding_backward(grad_ids, dx, ditems) adds only the items' rows.
template <class ExecSpace, class IV, class S, class M>
void bert4rec_embed_backward(const ExecSpace& exec, const IV& seq_off, const IV& tokens, const IV& masked_rows,
                             const int num_masked, const MatRef<S, M>& dx, const MatRef<S, M>& dmask,
                             const MatRef<S, M>& dpos, const IV& grad_ids) {
  const int B = static_cast<int>(seq_off.extent(0)) - 1, d = static_cast<int>(dx.extent(1));
  parallel_for_2d(exec, "embsr::bert4rec::d_position", dpos.extent(0), dpos.extent(1),
                  KOKKOS_LAMBDA(const int p, const int j) {
                    S acc = 0;
                    for (int b = 0; b < B; ++b)
                      if (seq_off(b) + p < seq_off(b + 1)) acc += dx(seq_off(b) + p, j);
                    dpos(p, j) += acc;
                  });
  Kokkos::parallel_for(
      "embsr::bert4rec::d_mask", Kokkos::RangePolicy<ExecSpace>(exec, 0, d), KOKKOS_LAMBDA(const int j) {
        S acc = 0;
        for (int k = 0; k < num_masked; ++k) acc += dx(masked_rows(k), j);
        dmask(0, j) += acc;
      });
  parallel_for_2d(exec, "embsr::bert4rec::d_items_prepare", dx.extent(0), dx.extent(1),
                  KOKKOS_LAMBDA(const int r, const int j) {
                    const int t = tokens(r);
                    if (t < 0) dx(r, j) = S(0);
                    if (j == 0) grad_ids(r) = t < 0 ? 0 : t;
                  });
}

// hm(k) = h(masked_rows(k)) and its backward dh(masked_rows(k)) = dhm(k) (rows distinct; dh zeroed).
template <class ExecSpace, class IV, class S, class M>
void bert4rec_gather(const ExecSpace& exec, const IV& rows, const MatRef<S, M>& h, const MatRef<S, M>& hm) {
  parallel_for_2d(exec, "embsr::bert4rec::gather", hm.extent(0), hm.extent(1),
                  KOKKOS_LAMBDA(const int k, const int j) { hm(k, j) = h(rows(k), j); });
}
template <class ExecSpace, class IV, class S, class M>
void bert4rec_scatter(const ExecSpace& exec, const IV& rows, const MatRef<S, M>& dhm, const MatRef<S, M>& dh) {
  parallel_for_2d(exec, "embsr::bert4rec::scatter", dhm.extent(0), dhm.extent(1),
                  KOKKOS_LAMBDA(const int k, const int j) { dh(rows(k), j) = dhm(k, j); });
}

// [z, 1] and [E, b] for the Dot scoring, and the backward's split of d[E, b] and d[z, 1].
template <class ExecSpace, class S, class M>
void bert4rec_augment(const ExecSpace& exec, const MatRef<S, M>& z, const MatRef<S, M>& E, const VecRef<S, M>& bias,
                      const MatRef<S, M>& z_aug, const MatRef<S, M>& E_aug) {
  const int d = static_cast<int>(z.extent(1));
  parallel_for_2d(exec, "embsr::bert4rec::augment_z", z_aug.extent(0), z_aug.extent(1),
                  KOKKOS_LAMBDA(const int k, const int j) { z_aug(k, j) = j < d ? z(k, j) : S(1); });
  parallel_for_2d(exec, "embsr::bert4rec::augment_E", E_aug.extent(0), E_aug.extent(1),
                  KOKKOS_LAMBDA(const int v, const int j) { E_aug(v, j) = j < d ? E(v, j) : bias(v); });
}
template <class ExecSpace, class S, class M>
void bert4rec_split(const ExecSpace& exec, const MatRef<S, M>& dz_aug, const MatRef<S, M>& dE_aug, const MatRef<S, M>& dz,
                    const MatRef<S, M>& dE, const VecRef<S, M>& dbias) {
  const int d = static_cast<int>(dz.extent(1));
  parallel_for_2d(exec, "embsr::bert4rec::split_z", dz.extent(0), dz.extent(1),
                  KOKKOS_LAMBDA(const int k, const int j) { dz(k, j) = dz_aug(k, j); });
  parallel_for_2d(exec, "embsr::bert4rec::split_E", dE_aug.extent(0), dE_aug.extent(1),
                  KOKKOS_LAMBDA(const int v, const int j) {
                    if (j < d) dE(v, j) += dE_aug(v, j);
                    else dbias(v) += dE_aug(v, j);
                  });
}

template <class ExecSpace, class S, class M>
void bert4rec_add(const ExecSpace& exec, const MatRef<S, M>& a, const MatRef<S, M>& b, const MatRef<S, M>& out) {
  parallel_for_2d(exec, "embsr::bert4rec::add", out.extent(0), out.extent(1),
                  KOKKOS_LAMBDA(const int i, const int j) { out(i, j) = a(i, j) + b(i, j); });
}

}  // namespace detail

template <class ExecSpace, class Scalar = float>
class BERT4Rec : public NeuralModel<BERT4Rec<ExecSpace, Scalar>, ExecSpace, Scalar, Bert4recConfig> {
  using Base = NeuralModel<BERT4Rec<ExecSpace, Scalar>, ExecSpace, Scalar, Bert4recConfig>;
  friend Base;
  using Base::config_;
  using Base::core_;

 public:
  using typename Base::batch_type;
  using typename Base::M;
  using typename Base::matrix;
  using vector = VecRef<Scalar, M>;
  using ids = Kokkos::View<index_t*, M>;

  explicit BERT4Rec(const Bert4recConfig& config, ExecSpace exec = ExecSpace())
      : Base((config.validate(), config), "BERT4Rec", bert4rec_parameter_layout(config), ScoreKind::Dot, exec) {
    const auto L = static_cast<std::size_t>(config_.num_layers);
    mha_cache_.resize(L), ln1_cache_.resize(L), ln2_cache_.resize(L);
    // LayerNorm gains 1, their biases 0, output_bias 0 (the authors' code's initialisers).
    for (const auto& e : core_.parameters().entries()) {
      const bool gain = e.name.size() >= 5 && e.name.compare(e.name.size() - 5, 5, "gamma") == 0;
      const bool beta = e.name.size() >= 4 && e.name.compare(e.name.size() - 4, 4, "beta") == 0;
      if (gain || beta || e.name == "output_bias")
        Kokkos::deep_copy(core_.exec(), core_.vec(core_.id(e.name), false), Scalar(gain ? 1 : 0));
    }
    core_.exec().fence();
  }

  // The cloze training step: masks drawn from (seed, step, example id, position) when `training`,
  // otherwise only the last position; loss and d(loss)/d(parameters) in parameters().grads().
  double loss_and_backward(const batch_type& batch, std::uint64_t step = 0, bool training = true) {
    core_.require_not_frozen();
    core_.check_parameters_finite();
    const double loss_value = forward(batch, true, training, step);
    core_.parameters().zero_grads();
    backward(batch);
    core_.exec().fence();
    return loss_value;
  }
  // The loss is a mean over the masked rows, not over the sessions: data-parallel training weighs
  // each rank's gradients by this count (model/session_model.hpp).
  std::size_t last_loss_terms() const { return num_masked_; }

 private:
  struct LayerIds {
    std::size_t W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O, g1, be1, W_1, b_1, W_2, b_2, g2, be2;
  };
  matrix mat(std::size_t id, bool grad) const { return core_.mat(id, grad); }
  vector vec(std::size_t id, bool grad) const { return core_.vec(id, grad); }
  LayerIds layer_ids(int l) const {
    const std::string p = "trm" + std::to_string(l) + ".";
    auto id = [&](const char* n) { return core_.id(p + n); };
    return LayerIds{id("W_Q"), id("b_Q"), id("W_K"), id("b_K"), id("W_V"), id("b_V"), id("W_O"), id("b_O"),
                    id("ln1.gamma"), id("ln1.beta"), id("W_1"), id("b_1"), id("W_2"), id("b_2"), id("ln2.gamma"),
                    id("ln2.beta")};
  }
  MultiHeadAttentionParams<Scalar, M> mha(const LayerIds& t, bool grad) const {
    return {mat(t.W_Q, grad), mat(t.W_K, grad), mat(t.W_V, grad), mat(t.W_O, grad),
            vec(t.b_Q, grad), vec(t.b_K, grad), vec(t.b_V, grad), vec(t.b_O, grad)};
  }

  // Evaluation forward (NeuralModel's scores / top_k / loss): only the appended [mask] is masked.
  double run_forward(const batch_type& batch, bool with_loss) { return forward(batch, with_loss, false, 0); }

  double forward(const batch_type& batch, bool with_loss, bool random_masks, std::uint64_t step) {
    this->validate(batch);
    const auto& exec = core_.exec();
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions), N = static_cast<std::size_t>(batch.sizes.num_macro),
               d = static_cast<std::size_t>(config_.d), V = static_cast<std::size_t>(config_.num_items);
    const std::size_t R = N + B, L = static_cast<std::size_t>(config_.num_layers);
    num_rows_ = R;
    seq_off_ = ensure_prefix(seq_off_storage_, B + 1, "embsr::bert4rec::seq_off");
    tokens_ = ensure_prefix(tokens_storage_, R, "embsr::bert4rec::tokens");
    position_ = ensure_prefix(position_storage_, R, "embsr::bert4rec::position");
    flag_ = ensure_prefix(flag_storage_, R, "embsr::bert4rec::flag");
    label_ = ensure_prefix(label_storage_, R, "embsr::bert4rec::label");
    masked_rows_ = ensure_prefix(masked_rows_storage_, R, "embsr::bert4rec::masked_rows");
    masked_labels_ = ensure_prefix(masked_labels_storage_, R, "embsr::bert4rec::masked_labels");
    detail::bert4rec_tokens(exec, batch, random_masks, with_loss, config_.seed, step, config_.mask_prob, seq_off_, tokens_,
                            position_, flag_, label_);
    const int Mk = detail::bert4rec_compact(exec, static_cast<int>(R), flag_, label_, masked_rows_, masked_labels_);
    num_masked_ = static_cast<std::size_t>(Mk);
    const std::size_t Mm = num_masked_;
    const auto rows = Kokkos::subview(masked_rows_, std::make_pair(std::size_t(0), Mm));
    const auto labels = Kokkos::subview(masked_labels_, std::make_pair(std::size_t(0), Mm));

    h_.resize(L + 1), h_storage_.resize(L + 1);
    a_pre_.resize(L), a_pre_storage_.resize(L), a_.resize(L), a_storage_.resize(L), f1_.resize(L), f1_storage_.resize(L),
        g_.resize(L), g_storage_.resize(L);
    for (std::size_t l = 0; l <= L; ++l) h_[l] = ensure(h_storage_[l], R, d, "embsr::bert4rec::h");
    for (std::size_t l = 0; l < L; ++l) {
      a_pre_[l] = ensure(a_pre_storage_[l], R, d, "embsr::bert4rec::a_pre");
      a_[l] = ensure(a_storage_[l], R, d, "embsr::bert4rec::a");
      f1_[l] = ensure(f1_storage_[l], R, 4 * d, "embsr::bert4rec::f1");
      g_[l] = ensure(g_storage_[l], R, 4 * d, "embsr::bert4rec::g");
    }
    x_ = ensure(x_storage_, R, d, "embsr::bert4rec::x");
    sum_ = ensure(sum_storage_, R, d, "embsr::bert4rec::sum");
    hm_ = ensure(hm_storage_, Mm, d, "embsr::bert4rec::hm");
    t_ = ensure(t_storage_, Mm, d, "embsr::bert4rec::t");
    u_ = ensure(u_storage_, Mm, d, "embsr::bert4rec::u");
    z_ = ensure(z_storage_, Mm, d, "embsr::bert4rec::z");
    z_aug_ = ensure(z_aug_storage_, Mm, d + 1, "embsr::bert4rec::z_aug");
    E_aug_ = ensure(E_aug_storage_, V, d + 1, "embsr::bert4rec::E_aug");

    // Embedding layer (Sec. 3.4) and the code's LayerNorm on it.
    detail::bert4rec_embed(exec, tokens_, position_, mat(item_, false), mat(mask_, false), mat(pos_, false), x_);
    layer_norm_forward(exec, x_, vec(in_g_, false), vec(in_b_, false), h_[0], in_cache_);
    // Transformer layers (Sec. 3.3), post-LN.
    for (std::size_t l = 0; l < L; ++l) {
      const LayerIds t = layer_ids(static_cast<int>(l));
      multi_head_attention_forward(exec, seq_off_, h_[l], mha(t, false), config_.num_heads, a_pre_[l], mha_cache_[l]);
      detail::bert4rec_add(exec, a_pre_[l], h_[l], sum_);
      layer_norm_forward(exec, sum_, vec(t.g1, false), vec(t.be1, false), a_[l], ln1_cache_[l]);
      linear_forward(exec, a_[l], mat(t.W_1, false), vec(t.b_1, false), f1_[l]);
      gelu_forward(exec, f1_[l], g_[l]);
      linear_forward(exec, g_[l], mat(t.W_2, false), vec(t.b_2, false), sum_);
      detail::bert4rec_add(exec, sum_, a_[l], sum_);
      layer_norm_forward(exec, sum_, vec(t.g2, false), vec(t.be2, false), h_[l + 1], ln2_cache_[l]);
    }
    // Output layer (eq. (7), with the code's LayerNorm) on the masked rows.
    detail::bert4rec_gather(exec, rows, h_[L], hm_);
    linear_forward(exec, hm_, mat(wp_, false), vec(bp_, false), t_);
    gelu_forward(exec, t_, u_);
    layer_norm_forward(exec, u_, vec(out_g_, false), vec(out_b_, false), z_, out_cache_);
    detail::bert4rec_augment(exec, z_, mat(item_, false), vec(obias_, false), z_aug_, E_aug_);
    const Kokkos::View<const index_t*, M> targets = with_loss ? Kokkos::View<const index_t*, M>(labels) : Kokkos::View<const index_t*, M>();
    const double loss_value = scoring_forward(exec, z_aug_, E_aug_, targets, 1.0, this->scoring_cache_);
    if (with_loss) core_.require_finite_loss(loss_value);
    return loss_value;
  }

  void run_backward(const batch_type& batch) { backward(batch); }

  // forward's layer calls in reverse; every backward adds into its gradients.
  void backward(const batch_type& batch) {
    (void)batch;
    const auto& exec = core_.exec();
    const std::size_t R = num_rows_, Mm = num_masked_, d = static_cast<std::size_t>(config_.d),
                      V = static_cast<std::size_t>(config_.num_items), L = static_cast<std::size_t>(config_.num_layers);
    const auto rows = Kokkos::subview(masked_rows_, std::make_pair(std::size_t(0), Mm));
    const auto labels = Kokkos::subview(masked_labels_, std::make_pair(std::size_t(0), Mm));
    // Scoring and the output layer.
    const auto dz_aug = this->zeroed(dz_aug_storage_, Mm, d + 1, "embsr::bert4rec::dz_aug");
    const auto dE_aug = this->zeroed(dE_aug_storage_, V, d + 1, "embsr::bert4rec::dE_aug");
    scoring_backward(exec, z_aug_, E_aug_, labels, 1.0, this->scoring_cache_, dz_aug, dE_aug);
    const auto dz = this->zeroed(dz_storage_, Mm, d, "embsr::bert4rec::dz");
    detail::bert4rec_split(exec, dz_aug, dE_aug, dz, mat(item_, true), vec(obias_, true));
    const auto du = this->zeroed(du_storage_, Mm, d, "embsr::bert4rec::du");
    layer_norm_backward(exec, vec(out_g_, false), out_cache_, dz, du, vec(out_g_, true), vec(out_b_, true));
    const auto dt = this->zeroed(dt_storage_, Mm, d, "embsr::bert4rec::dt");
    gelu_backward(exec, t_, du, dt);
    const auto dhm = this->zeroed(dhm_storage_, Mm, d, "embsr::bert4rec::dhm");
    linear_backward(exec, hm_, mat(wp_, false), dt, dhm, mat(wp_, true), vec(bp_, true));
    matrix dh = this->zeroed(dh_storage_[0], R, d, "embsr::bert4rec::dh");
    detail::bert4rec_scatter(exec, rows, dhm, dh);

    // Transformer layers, last first.
    const auto dsum = ensure(dsum_storage_, R, d, "embsr::bert4rec::dsum");
    const auto da = ensure(da_storage_, R, d, "embsr::bert4rec::da");
    const auto dg = ensure(dg_storage_, R, 4 * d, "embsr::bert4rec::dg");
    const auto df1 = ensure(df1_storage_, R, 4 * d, "embsr::bert4rec::df1");
    for (std::size_t l = L; l-- > 0;) {
      const LayerIds t = layer_ids(static_cast<int>(l));
      // H' = LN_2(A + F2): dsum, then the residual (dA = dsum) and the PFFN.
      Kokkos::deep_copy(exec, dsum, Scalar(0));
      layer_norm_backward(exec, vec(t.g2, false), ln2_cache_[l], dh, dsum, vec(t.g2, true), vec(t.be2, true));
      Kokkos::deep_copy(exec, da, dsum);
      Kokkos::deep_copy(exec, dg, Scalar(0));
      linear_backward(exec, g_[l], mat(t.W_2, false), dsum, dg, mat(t.W_2, true), vec(t.b_2, true));
      Kokkos::deep_copy(exec, df1, Scalar(0));
      gelu_backward(exec, f1_[l], dg, df1);
      linear_backward(exec, a_[l], mat(t.W_1, false), df1, da, mat(t.W_1, true), vec(t.b_1, true));
      // A = LN_1(H + MH(H)): dsum, then the residual (dH = dsum) and the attention.
      Kokkos::deep_copy(exec, dsum, Scalar(0));
      layer_norm_backward(exec, vec(t.g1, false), ln1_cache_[l], da, dsum, vec(t.g1, true), vec(t.be1, true));
      const matrix dprev = ensure(dh_storage_[(L - l) % 2], R, d, "embsr::bert4rec::dh");
      Kokkos::deep_copy(exec, dprev, dsum);
      multi_head_attention_backward(exec, seq_off_, h_[l], mha(t, false), mha_cache_[l], dsum, dprev, mha(t, true));
      dh = dprev;
    }
    // Input LayerNorm and the embeddings.
    const auto dx = this->zeroed(dx_storage_, R, d, "embsr::bert4rec::dx");
    layer_norm_backward(exec, vec(in_g_, false), in_cache_, dh, dx, vec(in_g_, true), vec(in_b_, true));
    grad_ids_ = ensure_prefix(grad_ids_storage_, R, "embsr::bert4rec::grad_ids");
    detail::bert4rec_embed_backward(exec, seq_off_, tokens_, masked_rows_, static_cast<int>(Mm), dx, mat(mask_, true),
                                    mat(pos_, true), grad_ids_);
    embedding_backward(exec, grad_ids_, dx, mat(item_, true));
  }

  // Parameter ids.
  std::size_t item_ = core_.id("item_embedding"), mask_ = core_.id("mask_embedding"),
              pos_ = core_.id("position_embedding"), in_g_ = core_.id("input_ln.gamma"), in_b_ = core_.id("input_ln.beta"),
              wp_ = core_.id("W_P"), bp_ = core_.id("b_P"), out_g_ = core_.id("out_ln.gamma"),
              out_b_ = core_.id("out_ln.beta"), obias_ = core_.id("output_bias");
  // The last forward's tokens and masks.
  std::size_t num_rows_ = 0, num_masked_ = 0;
  ids seq_off_, tokens_, position_, flag_, label_, masked_rows_, masked_labels_, grad_ids_;
  ids seq_off_storage_, tokens_storage_, position_storage_, flag_storage_, label_storage_, masked_rows_storage_,
      masked_labels_storage_, grad_ids_storage_;
  // Activations of the last forward.
  std::vector<matrix> h_, a_pre_, a_, f1_, g_;
  std::vector<Mat<Scalar, M>> h_storage_, a_pre_storage_, a_storage_, f1_storage_, g_storage_;
  matrix x_, sum_, hm_, t_, u_, z_, z_aug_, E_aug_;
  Mat<Scalar, M> x_storage_, sum_storage_, hm_storage_, t_storage_, u_storage_, z_storage_, z_aug_storage_, E_aug_storage_;
  // Gradient buffers.
  Mat<Scalar, M> dz_aug_storage_, dE_aug_storage_, dz_storage_, du_storage_, dt_storage_, dhm_storage_, dsum_storage_,
      da_storage_, dg_storage_, df1_storage_, dx_storage_;
  Mat<Scalar, M> dh_storage_[2];
  // Layer caches.
  LayerNormCache<Scalar, M> in_cache_, out_cache_;
  std::vector<LayerNormCache<Scalar, M>> ln1_cache_, ln2_cache_;
  std::vector<MultiHeadAttentionCache<Scalar, M>> mha_cache_;
};

// ---- the registry's view of BERT4Rec ----------------------------------------

inline ModelOptions bert4rec_options(const Bert4recConfig& c) {
  ModelOptions o;
  detail::set_data_options(o, c);
  o.set("d", c.d)
      .set("num_layers", c.num_layers)
      .set("num_heads", c.num_heads)
      .set("mask_prob", c.mask_prob)
      .set("seed", c.seed);
  return o;
}

struct Bert4recSpec {
  template <class ExecSpace>
  using model = BERT4Rec<ExecSpace, float>;
  using config_type = Bert4recConfig;

  static ModelOptions options_of(const Bert4recConfig& c) { return bert4rec_options(c); }
  static Bert4recConfig config_of(const ModelOptions& o) {
    Bert4recConfig c;
    detail::get_data_options(o, c);
    c.d = o.get_int32("d", c.d);
    c.num_layers = o.get_int32("num_layers", c.num_layers);
    c.num_heads = o.get_int32("num_heads", c.num_heads);
    c.mask_prob = o.get_double("mask_prob", c.mask_prob);
    c.seed = o.get_uint("seed", c.seed);
    c.validate();
    return c;
  }
  static std::vector<ParameterEntry> layout(const Bert4recConfig& c) { return bert4rec_parameter_layout(c); }
  // d-vectors per micro-behavior (a token row per macro item, at most one per micro-behavior, plus
  // one per session): x, h and the LayerNorm caches (~6), per layer the attention's Q, K, V, C and
  // output, the sums, A, the 4d-wide F1 and G and the LayerNorm caches (~20); the output layer's few
  // rows per masked token (~8). Beyond them: the attention matrices (h n^2 per session and layer)
  // and the augmented [V x (d+1)] table with its gradient (the table itself is in the parameters).
  static std::uint64_t activation_vectors(const Bert4recConfig& c) {
    return 14 + 20 * static_cast<std::uint64_t>(c.num_layers);
  }
  static std::uint64_t extra_bytes(const Bert4recConfig& c, std::uint64_t batch) {
    const auto L = static_cast<std::uint64_t>(c.max_length) + 1;
    const auto per_session = 8 * L * L * static_cast<std::uint64_t>(c.num_heads) * static_cast<std::uint64_t>(c.num_layers);
    const auto table = 2 * 4 * static_cast<std::uint64_t>(c.num_items) * (static_cast<std::uint64_t>(c.d) + 1);
    return detail::saturating_mul_add(batch, per_session, table);
  }
  static ModelInfo info() {
    return ModelInfo{"bert4rec", "bidirectional self-attention (Transformer)",
                     "BERT4Rec: a bidirectional Transformer encoder over the session's items and an appended [mask], "
                     "trained by the cloze task, scores of the [mask] against the tied item table plus a per-item "
                     "bias (macro items only)",
                     "Sun et al., BERT4Rec: Sequential Recommendation with Bidirectional Encoder Representations from "
                     "Transformer, CIKM 2019 (a baseline of the EMBSR paper, Table III)",
                     true, ""};
  }
  static std::vector<OptionSpec> own_options() {
    const ModelOptions d = bert4rec_options(Bert4recConfig{});
    return {{"d", OptionKind::Integer, *d.find("d"), "embedding size (a multiple of num_heads)", {}, false, true, {}},
            {"num_layers", OptionKind::Integer, *d.find("num_layers"), "Transformer layers (the paper's L)", {}, false, true,
             search_range(1, 3)},
            {"num_heads", OptionKind::Integer, *d.find("num_heads"), "attention heads (the paper's h; divides d)", {}, false,
             true, {}},
            {"mask_prob", OptionKind::Number, *d.find("mask_prob"),
             "cloze proportion: probability of masking each item of a training sequence (the paper's rho)", {}, false,
             false, search_range(0.1, 0.6)},
            {"seed", OptionKind::Integer, *d.find("seed"), "seed of the initialisation and the cloze masks", {}, false,
             false, {}}};
  }
  static ModelSpec spec() { return neural_model_spec<Bert4recSpec>(); }
};

template <class ExecSpace, class Scalar>
struct model_spec_of<BERT4Rec<ExecSpace, Scalar>> {
  using type = Bert4recSpec;
};

}  // namespace embsr
