#pragma once
// HUP (Gu, Ding, Wang, Yin, "Hierarchical User Profiling for E-commerce Recommender Systems",
// WSDM 2020) at the levels our batches support, as a composition of the library's layers; the
// contract is docs/SEQUENCE_MODELS.md, "HUP". Only the paper's abstract was available to us (no
// section or equation numbers are cited); the structure follows its description (a Pyramid RNN with
// a Behavior-LSTM, an attention per level) and every detail the authors' code,
// github.com/guyulongcs/WSDM2020_HUP,
// HUP_code/PRNN_BLSTM.py (the Pyramid RNN, create_model_hierarchy with rnn_type "BLSTM",
// mode_attention 2) and HUP_code/BLSTM.py (the Behavior-LSTM cell).
//
// HUP's Pyramid RNN has three levels (micro-behavior, item, category), each a recurrent encoder
// with an attention that gives that level's profile. Our batches carry per micro-behavior only the
// item and the operation (the paper's behavior type); categories, time intervals and dwell times
// are not in them, so this model has the micro-behavior level and the item level, without the time
// gate and without the dwell-time terms; the category level is left out.
// Data flow for a ragged batch (B sessions, T micro-behaviors, N macro items):
//   ei[T] = item_embedding[micro_items];  eo[T] = op_embedding[micro_ops]       embedding
//   hm[T] = Behavior-LSTM over x_j = [ei_j ; eo_j] with behavior b_j = eo_j    sequence_lstm (behavior gate)
//   levels = 1 (the micro-behavior level predicts):
//     e_j = tanh(w_m . [hm_j ; hm_t ; eo_j] + c_m),  alpha = softmax_j e,  s = sum_j alpha_j hm_j
//   levels = 2 (default; the item level predicts, as the authors' run script weighs the losses):
//     xi[N] = [item_embedding[macro_items[k]] ; hm[run_end[k] - 1]]           (the last micro-behavior of each item)
//     hi[N] = LSTM over each session's macro items (Behavior-LSTM without behavior and time terms)
//     e_k = tanh(w_i . [hi_k ; hi_n] + c_i),  alpha = softmax_k e,  s = sum_k alpha_k hi_k
//   p[B]  = tanh(W_p s + b_p)                                                 linear + tanh (the code's Dense(tanh))
//   scores = p . item_embedding[v]; loss = mean CE                            scoring, ScoreKind::Dot
// No dropout (not part of the contract). Parameters start U(-1/sqrt(d), 1/sqrt(d)).

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_validator.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/embedding.hpp>
#include <embsr/layers/linear.hpp>
#include <embsr/layers/scoring.hpp>
#include <embsr/layers/sequence_lstm.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/neural_model.hpp>
#include <embsr/model/parameter_layout.hpp>

namespace embsr {

struct HupConfig {
  int num_items = 0, num_ops = 0, max_length = 50;  // from the data
  int d = 100;
  int levels = 2;  // 1: micro-behavior level only; 2: micro-behavior and item levels
  std::uint64_t seed = 1;

  void validate() const {
    auto fail = [](const std::string& what) { throw InvalidArgument("HUP: " + what); };
    if (num_items < 1) fail("num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1) fail("num_ops must be >= 1, got " + std::to_string(num_ops));
    if (max_length < 1) fail("max_length must be >= 1, got " + std::to_string(max_length));
    if (d < 1 || d > (1 << 16)) fail("d must be in [1, 65536], got " + std::to_string(d));
    if (levels < 1 || levels > 2) fail("levels must be 1 or 2, got " + std::to_string(levels));
  }
};

// item_embedding, op_embedding, micro.* (the Behavior-LSTM), then for levels = 1 att.w [1 x 3d],
// or for levels = 2 item.* (the item-level LSTM) and att.w [1 x 2d]; then att.c, out.W, out.b.
inline std::vector<ParameterEntry> hup_parameter_layout(const HupConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.d);
  const std::uint64_t one = 1;
  return detail::layout_from([&](auto&& visit) {
    visit("item_embedding", static_cast<std::uint64_t>(c.num_items), d);
    visit("op_embedding", static_cast<std::uint64_t>(c.num_ops), d);
    visit("micro.W_x", 5 * d, 2 * d);  // rows [B, i, f, o, g]
    visit("micro.W_b", 4 * d, d);      // rows [B, i, f, o]
    visit("micro.W_h", 4 * d, d);      // rows [i, f, o, g]
    visit("micro.b", one, 5 * d);
    if (c.levels == 2) {
      visit("item.W_x", 4 * d, 2 * d);  // rows [i, f, o, g]
      visit("item.W_h", 4 * d, d);
      visit("item.b", one, 4 * d);
      visit("att.w", one, 2 * d);
    } else {
      visit("att.w", one, 3 * d);
    }
    visit("att.c", one, one);
    visit("out.W", d, d);
    visit("out.b", one, d);
  });
}

namespace detail {

// X[j] = [A[ida[j]] ; Bm[idb[j]]] ([R x 2d]) from two [* x d] tables and two id arrays.
// Free functions: nvcc takes no device lambda inside a private member.
template <class ExecSpace, class IA, class IB, class S, class M>
void hup_concat(const ExecSpace& exec, const MatRef<S, M>& A, const IA& ida, const MatRef<S, M>& Bm, const IB& idb,
                const MatRef<S, M>& X) {
  const int D = static_cast<int>(A.extent(1));
  parallel_for_2d(exec, "embsr::hup::concat", static_cast<int>(X.extent(0)), 2 * D,
                  KOKKOS_LAMBDA(const int j, const int c) { X(j, c) = c < D ? A(ida(j), c) : Bm(idb(j), c - D); });
}

// The item level's input rows: the last micro-behavior of macro item k is run_end[k] - 1.
template <class ExecSpace, class S, class M>
void hup_item_inputs(const ExecSpace& exec, const Batch<M>& batch, const MatRef<S, M>& items, const MatRef<S, M>& hm,
                     const MatRef<S, M>& X) {
  const auto macro_items = batch.macro_items, run_end = batch.run_end;
  const int D = static_cast<int>(items.extent(1));
  parallel_for_2d(exec, "embsr::hup::item_inputs", static_cast<int>(X.extent(0)), 2 * D,
                  KOKKOS_LAMBDA(const int k, const int c) {
                    X(k, c) = c < D ? items(macro_items(k), c) : hm(run_end(k) - 1, c - D);
                  });
}
// Its backward: the item half to dE_rows [N x d] (for embedding_backward), the state half added to
// dhm at each item's last micro-behavior (one item per micro row: no two writes collide).
template <class ExecSpace, class S, class M>
void hup_item_inputs_backward(const ExecSpace& exec, const Batch<M>& batch, const MatRef<S, M>& dX,
                              const MatRef<S, M>& dE_rows, const MatRef<S, M>& dhm) {
  const auto run_end = batch.run_end;
  const int D = static_cast<int>(dE_rows.extent(1));
  parallel_for_2d(exec, "embsr::hup::item_inputs_backward", static_cast<int>(dX.extent(0)), D,
                  KOKKOS_LAMBDA(const int k, const int c) {
                    dE_rows(k, c) = dX(k, c);
                    dhm(run_end(k) - 1, c) += dX(k, D + c);
                  });
}

// The attention of one level (authors' code, mode_attention 2): per session b with rows
// [offsets[b], offsets[b+1]) and last row t,
//   e_j = tanh(w[0:d] . H_j + w[d:2d] . H_t + w[2d:] . A_j + c),  alpha = softmax_j e,  s_b = sum_j alpha_j H_j
// H [R x d], A [R x da] (da = 0: no extra feature), w [1 x 2d + da], c [1 x 1]; e, alpha [R]; s [B x d].
// Each session's softmax subtracts its max (the same function).
template <class ExecSpace, class OV, class S, class M>
void hup_attention_forward(const ExecSpace& exec, const OV& offsets, const MatRef<S, M>& H, const MatRef<S, M>& A,
                           const VecRef<S, M>& w, const VecRef<S, M>& c, const VecRef<S, M>& e, const VecRef<S, M>& alpha,
                           const MatRef<S, M>& s) {
  const int D = static_cast<int>(H.extent(1)), Da = static_cast<int>(A.extent(1));
  const int nB = static_cast<int>(s.extent(0));
  Kokkos::parallel_for(
      "embsr::hup::attention", Kokkos::RangePolicy<ExecSpace>(exec, 0, nB), KOKKOS_LAMBDA(const int b) {
        const int begin = offsets(b), end = offsets(b + 1), last = end - 1;
        S last_part = c(0);
        for (int q = 0; q < D; ++q) last_part += w(D + q) * H(last, q);
        S mx = S(-2);
        for (int j = begin; j < end; ++j) {
          S z = last_part;
          for (int q = 0; q < D; ++q) z += w(q) * H(j, q);
          for (int q = 0; q < Da; ++q) z += w(2 * D + q) * A(j, q);
          e(j) = math::tanh(z);
          mx = math::max(mx, e(j));
        }
        S total = 0;
        for (int j = begin; j < end; ++j) {
          alpha(j) = math::exp(e(j) - mx);
          total += alpha(j);
        }
        for (int j = begin; j < end; ++j) alpha(j) /= total;
        for (int q = 0; q < D; ++q) {
          S acc = 0;
          for (int j = begin; j < end; ++j) acc += alpha(j) * H(j, q);
          s(b, q) = acc;
        }
      });
}

// Its backward. Per session (no two sessions write the same row):
//   da_j = ds . H_j,  de_j = alpha_j (da_j - sum_k alpha_k da_k),  dz_j = de_j (1 - e_j^2)
//   dH_j += alpha_j ds + dz_j w[0:d];  dH_t += (sum_j dz_j) w[d:2d];  dA_j += dz_j w[2d:]
// then the parameter gradients, each column summed over the rows in order by one thread:
//   dw[0:d] += sum_j dz_j H_j,  dw[d:2d] += sum_b (sum_{j in b} dz_j) H_t(b),  dw[2d:] += sum_j dz_j A_j,
//   dc += sum_j dz_j.   dz [R] is workspace; dA may be empty (not needed).
template <class ExecSpace, class OV, class S, class M>
void hup_attention_backward(const ExecSpace& exec, const OV& offsets, const MatRef<S, M>& H, const MatRef<S, M>& A,
                            const VecRef<S, M>& w, const VecRef<S, M>& e, const VecRef<S, M>& alpha,
                            const MatRef<S, M>& ds, const VecRef<S, M>& dz, const MatRef<S, M>& dH,
                            const MatRef<S, M>& dA, const VecRef<S, M>& dw, const VecRef<S, M>& dc) {
  const int D = static_cast<int>(H.extent(1)), Da = static_cast<int>(A.extent(1));
  const int nB = static_cast<int>(ds.extent(0));
  const bool want_da = dA.extent(0) != 0;
  Kokkos::parallel_for(
      "embsr::hup::attention_backward", Kokkos::RangePolicy<ExecSpace>(exec, 0, nB), KOKKOS_LAMBDA(const int b) {
        const int begin = offsets(b), end = offsets(b + 1), last = end - 1;
        S mean = 0;
        for (int j = begin; j < end; ++j) {
          S da = 0;
          for (int q = 0; q < D; ++q) da += ds(b, q) * H(j, q);
          dz(j) = da;  // da_j for now
          mean += alpha(j) * da;
        }
        S dz_sum = 0;
        for (int j = begin; j < end; ++j) {
          const S g = alpha(j) * (dz(j) - mean) * (S(1) - e(j) * e(j));
          dz(j) = g;
          dz_sum += g;
          for (int q = 0; q < D; ++q) dH(j, q) += alpha(j) * ds(b, q) + g * w(q);
          if (want_da)
            for (int q = 0; q < Da; ++q) dA(j, q) += g * w(2 * D + q);
        }
        for (int q = 0; q < D; ++q) dH(last, q) += dz_sum * w(D + q);
      });
  const int cols = 2 * D + Da + 1;
  Kokkos::parallel_for(
      "embsr::hup::attention_param_grads", Kokkos::RangePolicy<ExecSpace>(exec, 0, cols), KOKKOS_LAMBDA(const int q) {
        S acc = 0;
        for (int b = 0; b < nB; ++b) {
          const int begin = offsets(b), end = offsets(b + 1), last = end - 1;
          for (int j = begin; j < end; ++j) {
            const S v = q < D ? H(j, q) : q < 2 * D ? H(last, q - D) : q < 2 * D + Da ? A(j, q - 2 * D) : S(1);
            acc += dz(j) * v;
          }
        }
        if (q < 2 * D + Da) dw(q) += acc;
        else dc(0) += acc;
      });
}

// y = tanh(y) in place, and dy = dy (1 - y^2) in place.
template <class ExecSpace, class S, class M>
void hup_tanh(const ExecSpace& exec, const MatRef<S, M>& y) {
  parallel_for_2d(exec, "embsr::hup::tanh", y.extent(0), y.extent(1),
                  KOKKOS_LAMBDA(const int i, const int j) { y(i, j) = math::tanh(y(i, j)); });
}
template <class ExecSpace, class S, class M>
void hup_tanh_backward(const ExecSpace& exec, const MatRef<S, M>& y, const MatRef<S, M>& dy) {
  parallel_for_2d(exec, "embsr::hup::tanh_backward", y.extent(0), y.extent(1),
                  KOKKOS_LAMBDA(const int i, const int j) { dy(i, j) *= S(1) - y(i, j) * y(i, j); });
}
// dX [R x 2d] split: the first half to d1, the second added to d2 (both [R x d]).
template <class ExecSpace, class S, class M>
void hup_split(const ExecSpace& exec, const MatRef<S, M>& dX, const MatRef<S, M>& d1, const MatRef<S, M>& d2) {
  const int D = static_cast<int>(d1.extent(1));
  parallel_for_2d(exec, "embsr::hup::split", dX.extent(0), D, KOKKOS_LAMBDA(const int j, const int c) {
    d1(j, c) = dX(j, c);
    d2(j, c) += dX(j, D + c);
  });
}

}  // namespace detail

template <class ExecSpace, class Scalar = float>
class HUP : public NeuralModel<HUP<ExecSpace, Scalar>, ExecSpace, Scalar, HupConfig> {
  using Base = NeuralModel<HUP<ExecSpace, Scalar>, ExecSpace, Scalar, HupConfig>;
  friend Base;
  using Base::config_;
  using Base::core_;

 public:
  using typename Base::batch_type;
  using typename Base::M;
  using typename Base::matrix;
  using vector = VecRef<Scalar, M>;

  explicit HUP(const HupConfig& config, ExecSpace exec = ExecSpace())
      : Base((config.validate(), config), "HUP", hup_parameter_layout(config), ScoreKind::Dot, exec) {
    item_ = core_.id("item_embedding");
    op_ = core_.id("op_embedding");
  }

 private:
  SequenceLstmParams<Scalar, M> micro(bool grad) const {
    auto mat = [&](const char* n) { return core_.mat(core_.id(n), grad); };
    return {mat("micro.W_x"), mat("micro.W_b"), mat("micro.W_h"), core_.vec(core_.id("micro.b"), grad)};
  }
  SequenceLstmParams<Scalar, M> item(bool grad) const {
    auto mat = [&](const char* n) { return core_.mat(core_.id(n), grad); };
    return {mat("item.W_x"), matrix(), mat("item.W_h"), core_.vec(core_.id("item.b"), grad)};
  }
  vector vec(const char* n, bool grad) const { return core_.vec(core_.id(n), grad); }
  bool two_levels() const { return config_.levels == 2; }

  double run_forward(const batch_type& batch, bool with_loss) {
    this->validate(batch);
    const auto& exec = core_.exec();
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions), T = static_cast<std::size_t>(batch.sizes.num_micro),
               N = static_cast<std::size_t>(batch.sizes.num_macro), d = static_cast<std::size_t>(config_.d);
    eo_ = ensure(eo_storage_, T, d, "embsr::hup::eo");
    xm_ = ensure(xm_storage_, T, 2 * d, "embsr::hup::xm");
    hm_ = ensure(hm_storage_, T, d, "embsr::hup::hm");
    s_ = ensure(s_storage_, B, d, "embsr::hup::s");
    p_ = ensure(p_storage_, B, d, "embsr::hup::p");
    const auto items = core_.mat(item_, false), ops = core_.mat(op_, false);

    embedding_forward(exec, ops, batch.micro_ops, eo_);
    detail::hup_concat(exec, items, batch.micro_items, ops, batch.micro_ops, xm_);  // x_j = [e(v_j) ; e(o_j)]
    sequence_lstm_forward(exec, batch.micro_offsets, xm_, eo_, micro(false), hm_, micro_cache_);
    if (two_levels()) {
      xi_ = ensure(xi_storage_, N, 2 * d, "embsr::hup::xi");
      hi_ = ensure(hi_storage_, N, d, "embsr::hup::hi");
      e_ = ensure(e_storage_, N, "embsr::hup::e");
      alpha_ = ensure(alpha_storage_, N, "embsr::hup::alpha");
      detail::hup_item_inputs(exec, batch, items, hm_, xi_);
      sequence_lstm_forward(exec, batch.macro_offsets, xi_, matrix(), item(false), hi_, item_cache_);
      detail::hup_attention_forward<ExecSpace>(exec, batch.macro_offsets, hi_, matrix(), vec("att.w", false),
                                               vec("att.c", false), e_, alpha_, s_);
    } else {
      e_ = ensure(e_storage_, T, "embsr::hup::e");
      alpha_ = ensure(alpha_storage_, T, "embsr::hup::alpha");
      detail::hup_attention_forward<ExecSpace>(exec, batch.micro_offsets, hm_, eo_, vec("att.w", false),
                                               vec("att.c", false), e_, alpha_, s_);
    }
    linear_forward(exec, s_, core_.mat(core_.id("out.W"), false), vec("out.b", false), p_);
    detail::hup_tanh(exec, p_);
    return this->score(batch, p_, items, 1.0, with_loss);
  }

  // run_forward's layer calls in reverse; every backward adds into its gradients.
  void run_backward(const batch_type& batch) {
    const auto& exec = core_.exec();
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions), T = static_cast<std::size_t>(batch.sizes.num_micro),
               N = static_cast<std::size_t>(batch.sizes.num_macro), d = static_cast<std::size_t>(config_.d);
    const auto dp = this->zeroed(dp_storage_, B, d, "embsr::hup::dp");
    const auto ds = this->zeroed(ds_storage_, B, d, "embsr::hup::ds");
    const auto dhm = this->zeroed(dhm_storage_, T, d, "embsr::hup::dhm");
    const auto deo = this->zeroed(deo_storage_, T, d, "embsr::hup::deo");
    const auto dxm = this->zeroed(dxm_storage_, T, 2 * d, "embsr::hup::dxm");
    const auto dei = this->zeroed(dei_storage_, T, d, "embsr::hup::dei");
    const auto items = core_.mat(item_, false);
    const auto ditems = core_.mat(item_, true);

    this->score_backward(batch, p_, items, 1.0, dp, ditems);
    detail::hup_tanh_backward(exec, p_, dp);
    linear_backward(exec, s_, core_.mat(core_.id("out.W"), false), dp, ds, core_.mat(core_.id("out.W"), true),
                    vec("out.b", true));
    if (two_levels()) {
      const auto dz = ensure(dz_storage_, N, "embsr::hup::dz");
      const auto dhi = this->zeroed(dhi_storage_, N, d, "embsr::hup::dhi");
      const auto dxi = this->zeroed(dxi_storage_, N, 2 * d, "embsr::hup::dxi");
      const auto derows = this->zeroed(derows_storage_, N, d, "embsr::hup::derows");
      detail::hup_attention_backward<ExecSpace>(exec, batch.macro_offsets, hi_, matrix(), vec("att.w", false), e_, alpha_,
                                                ds, dz, dhi, matrix(), vec("att.w", true), vec("att.c", true));
      sequence_lstm_backward(exec, batch.macro_offsets, xi_, matrix(), item(false), item_cache_, dhi, dxi, matrix(),
                             item(true));
      detail::hup_item_inputs_backward(exec, batch, dxi, derows, dhm);
      embedding_backward(exec, batch.macro_items, derows, ditems);
    } else {
      const auto dz = ensure(dz_storage_, T, "embsr::hup::dz");
      detail::hup_attention_backward<ExecSpace>(exec, batch.micro_offsets, hm_, eo_, vec("att.w", false), e_, alpha_, ds,
                                                dz, dhm, deo, vec("att.w", true), vec("att.c", true));
    }
    sequence_lstm_backward(exec, batch.micro_offsets, xm_, eo_, micro(false), micro_cache_, dhm, dxm, deo, micro(true));
    detail::hup_split(exec, dxm, dei, deo);
    embedding_backward(exec, batch.micro_items, dei, ditems);
    embedding_backward(exec, batch.micro_ops, deo, core_.mat(op_, true));
  }

  std::size_t item_ = 0, op_ = 0;
  // Activations of the last forward.
  matrix eo_, xm_, hm_, xi_, hi_, s_, p_;
  vector e_, alpha_;
  Mat<Scalar, M> eo_storage_, xm_storage_, hm_storage_, xi_storage_, hi_storage_, s_storage_, p_storage_;
  Vec<Scalar, M> e_storage_, alpha_storage_, dz_storage_;
  // Gradient buffers.
  Mat<Scalar, M> dp_storage_, ds_storage_, dhm_storage_, deo_storage_, dxm_storage_, dei_storage_, dhi_storage_,
      dxi_storage_, derows_storage_;
  // Layer caches.
  SequenceLstmCache<Scalar, M> micro_cache_, item_cache_;
};

// ---- the registry's view of HUP ---------------------------------------------

inline ModelOptions hup_options(const HupConfig& c) {
  ModelOptions o;
  detail::set_data_options(o, c);
  o.set("d", c.d).set("levels", c.levels).set("seed", c.seed);
  return o;
}

struct HupSpec {
  template <class ExecSpace>
  using model = HUP<ExecSpace, float>;
  using config_type = HupConfig;

  static ModelOptions options_of(const HupConfig& c) { return hup_options(c); }
  static HupConfig config_of(const ModelOptions& o) {
    HupConfig c;
    detail::get_data_options(o, c);
    c.d = o.get_int32("d", c.d);
    c.levels = o.get_int32("levels", c.levels);
    c.seed = o.get_uint("seed", c.seed);
    c.validate();
    return c;
  }
  static std::vector<ParameterEntry> layout(const HupConfig& c) { return hup_parameter_layout(c); }
  // d-vectors per micro-behavior: embeddings and [item ; operation] rows (~5), the Behavior-LSTM's
  // cache and workspace (~22), the item level's inputs, LSTM and workspace (~20), gradient buffers (~8).
  static std::uint64_t activation_vectors(const HupConfig&) { return 56; }
  static std::uint64_t extra_bytes(const HupConfig&, std::uint64_t) { return 0; }
  static ModelInfo info() {
    return ModelInfo{"hup", "recurrent (micro-behaviors)",
                     "HUP at the levels our data support: a Behavior-LSTM over the micro-behaviors [item ; operation] "
                     "with the operation in its gates, an LSTM over the items fed the state at each item's last "
                     "micro-behavior, attention, dot-product scores (no categories, time intervals or dwell times)",
                     "Gu et al., Hierarchical User Profiling for E-commerce Recommender Systems, WSDM 2020 (a baseline "
                     "of the EMBSR paper, Table III)",
                     true, ""};
  }
  static std::vector<OptionSpec> own_options() {
    const ModelOptions d = hup_options(HupConfig{});
    return {{"d", OptionKind::Integer, *d.find("d"), "embedding and state size", {}, false, true, search_range(16, 64, true)},
            {"levels", OptionKind::Integer, *d.find("levels"),
             "pyramid levels: 1 the micro-behavior level predicts, 2 the item level above it predicts", {}, false, true, {}},
            {"seed", OptionKind::Integer, *d.find("seed"), "seed of the initialisation", {}, false, false, {}}};
  }
  static ModelSpec spec() { return neural_model_spec<HupSpec>(); }
};

template <class ExecSpace, class Scalar>
struct model_spec_of<HUP<ExecSpace, Scalar>> {
  using type = HupSpec;
};

}  // namespace embsr
