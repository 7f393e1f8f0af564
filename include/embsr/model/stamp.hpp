#pragma once
// STAMP (Liu, Zeng, Mokhosi, Zhang, "STAMP: Short-Term Attention/Memory Priority Model for
// Session-based Recommendation", KDD 2018, Sec. 3) as a composition of the library's layers; the
// contract is docs/SEQUENCE_MODELS.md, "STAMP".
//
// It reads the session's MACRO items x_1..x_t (consecutive repeats merged), as the graph baselines
// do. Data flow for a ragged batch (B sessions, N macro positions, d the embedding size); equation
// numbers of the KDD 2018 paper (Sec. 3.2 STMP: eq. 1-7, Sec. 3.3 STAMP: eq. 8-9):
//   X[N]   = item_embedding[macro_items]                                  embedding (Sec. 3.1)
//   m_s[b] = (1/t) sum_i x_i,  m_t[b] = x_t = X[last_b]                   (eq. 1)
//   alpha_i = W_0 sigmoid(W_1 x_i + W_2 x_t + W_3 m_s + b_a)              (eq. 8; not normalised)
//   m_a[b] = sum_i alpha_i x_i   [+ m_s[b] with mean_residual]            (eq. 9; see below)
//   h_s = tanh(W_s m_a + b_s),  h_t = tanh(W_t x_t + b_t)                 (eq. 2-3, STAMP's m_a in m_s's place)
//   z_v = <h_s, h_t, E_v> = (h_s * h_t) . E_v                             (eq. 4-5, trilinear product)
//   loss = mean_b CE(softmax(z_b), target_b)                              (eq. 6-7)
//                                                                         scoring, ScoreKind::Dot on h_s * h_t
// Where the paper and the authors' TensorFlow code (uestcnlp/STAMP, model/STAMP_rsc.py,
// basic_layer/FwNn3AttLayer.py, config/nn_param.conf) differ:
//   - eq. 4 writes z_i = sigmoid(<h_s, h_t, x_i>) before the softmax of eq. 6; the code (and
//     RecBole's port, which says so) feeds the trilinear products themselves to the softmax
//     cross-entropy. We follow the code: a sigmoid bounds every logit in (0, 1), so over V ~ 10^5
//     items no item could get more than e / (V - 1 + e) of the probability. Scores = logits z.
//   - eq. 7's loss adds (1 - y) log(1 - y_hat) terms; the code trains with the softmax
//     cross-entropy alone (sparse_softmax_cross_entropy_with_logits), as we do.
//   - eq. 9 is m_a = sum_i alpha_i x_i; the code adds the mean, m_a = sum_i alpha_i x_i + m_s.
//     Default: the paper; mean_residual = true: the code.
//   - the paper's b_a, b_s, b_t are kept (the code has no biases; RecBole has all three).
//   - sigma in eq. 8 is the sigmoid (config "active": "sigmoid" in the code).
//   - the code looks the session's items up with max_norm = 1 (rows rescaled to norm <= 1; the
//     scoring table is not): not in the paper, left out (Ours).
//   - initialisation: U(-1/sqrt(d), 1/sqrt(d)) for every parameter as the library's other neural
//     models (Ours; the code: N(0, 0.002) embeddings, N(0, 0.05) weights).
// No dropout (the paper has none; docs/SEQUENCE_MODELS.md).

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/embedding.hpp>
#include <embsr/layers/linear.hpp>
#include <embsr/layers/scoring.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/neural_model.hpp>
#include <embsr/model/parameter_layout.hpp>

namespace embsr {

struct StampConfig {
  int num_items = 0, num_ops = 0, max_length = 50;  // from the data
  int d = 100;
  bool mean_residual = false;  // m_a + m_s as the authors' code (false: eq. 9 of the paper)
  std::uint64_t seed = 1;

  void validate() const {
    auto fail = [](const std::string& what) { throw InvalidArgument("STAMP: " + what); };
    if (num_items < 1) fail("num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1) fail("num_ops must be >= 1, got " + std::to_string(num_ops));
    if (max_length < 1) fail("max_length must be >= 1, got " + std::to_string(max_length));
    if (d < 1 || d > (1 << 16)) fail("d must be in [1, 65536], got " + std::to_string(d));
  }
};

// item_embedding [V x d]; the attention net (eq. 8): W_0 [1 x d], W_1, W_2, W_3 [d x d], b_a [1 x d];
// the two MLP cells: W_s [d x d], b_s [1 x d] (on m_a), W_t [d x d], b_t [1 x d] (on x_t). Every
// matrix acts as y = W x (stored [out x in], layers/linear.hpp).
inline std::vector<ParameterEntry> stamp_parameter_layout(const StampConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.d);
  return detail::layout_from([&](auto&& visit) {
    visit("item_embedding", static_cast<std::uint64_t>(c.num_items), d);
    visit("W_0", std::uint64_t(1), d);
    visit("W_1", d, d);
    visit("W_2", d, d);
    visit("W_3", d, d);
    visit("b_a", std::uint64_t(1), d);
    visit("W_s", d, d);
    visit("b_s", std::uint64_t(1), d);
    visit("W_t", d, d);
    visit("b_t", std::uint64_t(1), d);
  });
}

namespace detail {

// Free functions: nvcc takes no device lambda inside a private member.
//
// Shapes: B sessions, N macro rows (session b owns rows offsets[b] .. offsets[b+1]), d columns:
//   offsets [B+1], session [N] (int), X [N x d], m_s, x_t [B x d].

// session[i] = b for every row i of session b.
template <class ExecSpace, class OffV, class M>
void stamp_row_sessions(const ExecSpace& exec, const OffV& offsets, const Kokkos::View<int*, M>& session) {
  const int B = static_cast<int>(offsets.extent(0)) - 1;
  Kokkos::parallel_for("embsr::stamp::row_sessions", Kokkos::RangePolicy<ExecSpace>(exec, 0, B), KOKKOS_LAMBDA(const int b) {
    for (int i = static_cast<int>(offsets(b)); i < static_cast<int>(offsets(b + 1)); ++i) session(i) = b;
  });
}

// m_s[b] = (1/t_b) sum_{i of b} X[i] (rows in order), x_t[b] = X[last of b]  (eq. 1; m_t = x_t).
template <class ExecSpace, class OffV, class S, class M>
void stamp_pool_forward(const ExecSpace& exec, const OffV& offsets, const MatRef<S, M>& X, const MatRef<S, M>& m_s,
                        const MatRef<S, M>& x_t) {
  assert_accessible<ExecSpace, OffV, MatRef<S, M>>();
  parallel_for_2d(exec, "embsr::stamp::pool", m_s.extent(0), m_s.extent(1), KOKKOS_LAMBDA(const int b, const int j) {
    const int begin = static_cast<int>(offsets(b)), end = static_cast<int>(offsets(b + 1));
    S acc = 0;
    for (int i = begin; i < end; ++i) acc += X(i, j);
    m_s(b, j) = end > begin ? acc / S(end - begin) : S(0);
    x_t(b, j) = end > begin ? X(end - 1, j) : S(0);
  });
}
// dX[i] += dm_s[b] / t_b (+ dx_t[b] on the last row of b). Each row belongs to one session: no atomics.
template <class ExecSpace, class OffV, class S, class M>
void stamp_pool_backward(const ExecSpace& exec, const OffV& offsets, const Kokkos::View<int*, M>& session,
                         const MatRef<S, M>& dm_s, const MatRef<S, M>& dx_t, const MatRef<S, M>& dX) {
  assert_accessible<ExecSpace, OffV, MatRef<S, M>>();
  parallel_for_2d(exec, "embsr::stamp::pool_backward", dX.extent(0), dX.extent(1), KOKKOS_LAMBDA(const int i, const int j) {
    const int b = session(i);
    const int begin = static_cast<int>(offsets(b)), end = static_cast<int>(offsets(b + 1));
    S acc = dm_s(b, j) / S(end - begin);
    if (i == end - 1) acc += dx_t(b, j);
    dX(i, j) += acc;
  });
}

// The attention net (eq. 8-9). In: P [N x d] = X W_1^T (written over by the gates),
// Q [B x d] = W_2 x_t + W_3 m_s + b_a per session, w_0 [d]. Out:
//   gate[i] = sigmoid(P[i] + Q[b])  (in P),  alpha[i] = w_0 . gate[i],
//   m_a[b] = sum_{i of b} alpha_i X[i]  (+ m_s[b] with mean_residual; rows in order).
template <class ExecSpace, class OffV, class S, class M>
void stamp_attention_forward(const ExecSpace& exec, const OffV& offsets, const Kokkos::View<int*, M>& session,
                             const MatRef<S, M>& X, const MatRef<S, M>& P, const MatRef<S, M>& Q, const VecRef<S, M>& w_0,
                             const VecRef<S, M>& alpha, const bool mean_residual, const MatRef<S, M>& m_s,
                             const MatRef<S, M>& m_a) {
  assert_accessible<ExecSpace, OffV, MatRef<S, M>>();
  const int N = static_cast<int>(X.extent(0)), d = static_cast<int>(X.extent(1));
  Kokkos::parallel_for("embsr::stamp::attention", Kokkos::RangePolicy<ExecSpace>(exec, 0, N), KOKKOS_LAMBDA(const int i) {
    const int b = session(i);
    S acc = 0;
    for (int j = 0; j < d; ++j) {
      const S g = math::sigmoid(P(i, j) + Q(b, j));
      P(i, j) = g;
      acc += w_0(j) * g;
    }
    alpha(i) = acc;
  });
  parallel_for_2d(exec, "embsr::stamp::attention_sum", m_a.extent(0), m_a.extent(1), KOKKOS_LAMBDA(const int b, const int j) {
    S acc = mean_residual ? m_s(b, j) : S(0);
    for (int i = static_cast<int>(offsets(b)); i < static_cast<int>(offsets(b + 1)); ++i) acc += alpha(i) * X(i, j);
    m_a(b, j) = acc;
  });
}

// Its backward, from dm_a [B x d], with gate g (the forward's P) and pre_i = P_i + Q_b:
//   m_a = sum_i alpha_i x_i (+ m_s):   dalpha_i = dm_a[b] . x_i,  dX[i] += alpha_i dm_a[b]  (dm_s += dm_a: the caller)
//   alpha_i = w_0 . g_i:               dw_0 += sum_i dalpha_i g_i (rows in order)
//   g_i = sigmoid(pre_i):              dpre_i = dalpha_i w_0 * g_i * (1 - g_i)      -> dP (overwritten) [N x d]
//   pre_i = P_i + Q_b:                 dQ[b] = sum_{i of b} dpre_i (rows in order)  -> dQ (overwritten) [B x d]
// dalpha [N] is scratch. Every row belongs to one session: no atomics, fixed order.
template <class ExecSpace, class OffV, class S, class M>
void stamp_attention_backward(const ExecSpace& exec, const OffV& offsets, const Kokkos::View<int*, M>& session,
                              const MatRef<S, M>& X, const MatRef<S, M>& gate, const VecRef<S, M>& w_0,
                              const VecRef<S, M>& alpha, const MatRef<S, M>& dm_a, const VecRef<S, M>& dalpha,
                              const MatRef<S, M>& dP, const MatRef<S, M>& dQ, const MatRef<S, M>& dX,
                              const VecRef<S, M>& dw_0) {
  assert_accessible<ExecSpace, OffV, MatRef<S, M>>();
  const int N = static_cast<int>(X.extent(0)), d = static_cast<int>(X.extent(1));
  Kokkos::parallel_for("embsr::stamp::attention_d_alpha", Kokkos::RangePolicy<ExecSpace>(exec, 0, N),
                       KOKKOS_LAMBDA(const int i) {
                         const int b = session(i);
                         S da = 0;
                         for (int j = 0; j < d; ++j) da += dm_a(b, j) * X(i, j);
                         dalpha(i) = da;
                         for (int j = 0; j < d; ++j) {
                           const S g = gate(i, j);
                           dP(i, j) = da * w_0(j) * g * (S(1) - g);
                           dX(i, j) += alpha(i) * dm_a(b, j);
                         }
                       });
  Kokkos::parallel_for("embsr::stamp::attention_d_w0", Kokkos::RangePolicy<ExecSpace>(exec, 0, d), KOKKOS_LAMBDA(const int j) {
    S acc = 0;
    for (int i = 0; i < N; ++i) acc += dalpha(i) * gate(i, j);
    dw_0(j) += acc;
  });
  parallel_for_2d(exec, "embsr::stamp::attention_d_query", dQ.extent(0), dQ.extent(1), KOKKOS_LAMBDA(const int b, const int j) {
    S acc = 0;
    for (int i = static_cast<int>(offsets(b)); i < static_cast<int>(offsets(b + 1)); ++i) acc += dP(i, j);
    dQ(b, j) = acc;
  });
}

// y += x (both [B x d]).
template <class ExecSpace, class S, class M>
void stamp_add(const ExecSpace& exec, const MatRef<S, M>& x, const MatRef<S, M>& y) {
  parallel_for_2d(exec, "embsr::stamp::add", y.extent(0), y.extent(1), KOKKOS_LAMBDA(const int i, const int j) { y(i, j) += x(i, j); });
}

// h_s = tanh(pre_s), h_t = tanh(pre_t) (in place), session = h_s * h_t  (eq. 2-3; the trilinear product of eq. 4-5 is then a dot product).
template <class ExecSpace, class S, class M>
void stamp_cells_forward(const ExecSpace& exec, const MatRef<S, M>& h_s, const MatRef<S, M>& h_t,
                         const MatRef<S, M>& session) {
  assert_accessible<ExecSpace, MatRef<S, M>>();
  parallel_for_2d(exec, "embsr::stamp::cells", h_s.extent(0), h_s.extent(1), KOKKOS_LAMBDA(const int b, const int j) {
    const S a = math::tanh(h_s(b, j)), c = math::tanh(h_t(b, j));
    h_s(b, j) = a;
    h_t(b, j) = c;
    session(b, j) = a * c;
  });
}
// From dsession: dpre_s = dsession * h_t * (1 - h_s^2), dpre_t = dsession * h_s * (1 - h_t^2) (overwritten).
template <class ExecSpace, class S, class M>
void stamp_cells_backward(const ExecSpace& exec, const MatRef<S, M>& h_s, const MatRef<S, M>& h_t,
                          const MatRef<S, M>& dsession, const MatRef<S, M>& dpre_s, const MatRef<S, M>& dpre_t) {
  assert_accessible<ExecSpace, MatRef<S, M>>();
  parallel_for_2d(exec, "embsr::stamp::cells_backward", h_s.extent(0), h_s.extent(1), KOKKOS_LAMBDA(const int b, const int j) {
    const S a = h_s(b, j), c = h_t(b, j), g = dsession(b, j);
    dpre_s(b, j) = g * c * (S(1) - a * a);
    dpre_t(b, j) = g * a * (S(1) - c * c);
  });
}

}  // namespace detail

template <class ExecSpace, class Scalar = float>
class STAMP : public NeuralModel<STAMP<ExecSpace, Scalar>, ExecSpace, Scalar, StampConfig> {
  using Base = NeuralModel<STAMP<ExecSpace, Scalar>, ExecSpace, Scalar, StampConfig>;
  friend Base;
  using Base::config_;
  using Base::core_;

 public:
  using typename Base::batch_type;
  using typename Base::M;
  using typename Base::matrix;
  using vector = VecRef<Scalar, typename Base::M>;

  explicit STAMP(const StampConfig& config, ExecSpace exec = ExecSpace())
      : Base((config.validate(), config), "STAMP", stamp_parameter_layout(config), ScoreKind::Dot, exec) {
    item_ = core_.id("item_embedding");
  }

 private:
  matrix mat(const char* name, bool grad) const { return core_.mat(core_.id(name), grad); }
  vector vec(const char* name, bool grad) const { return core_.vec(core_.id(name), grad); }

  double run_forward(const batch_type& batch, bool with_loss) {
    this->validate(batch);
    const auto& exec = core_.exec();
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions), N = static_cast<std::size_t>(batch.sizes.num_macro),
               d = static_cast<std::size_t>(config_.d);
    if (session_storage_.extent(0) < N)
      session_storage_ = Kokkos::View<int*, M>(Kokkos::view_alloc("embsr::stamp::session", Kokkos::WithoutInitializing), N + N / 4 + 1);
    session_ = Kokkos::subview(session_storage_, std::make_pair(std::size_t(0), N));
    x_ = ensure(x_storage_, N, d, "embsr::stamp::x");
    gate_ = ensure(gate_storage_, N, d, "embsr::stamp::gate");
    alpha_ = ensure(alpha_storage_, N, "embsr::stamp::alpha");
    m_s_ = ensure(m_s_storage_, B, d, "embsr::stamp::m_s");
    x_t_ = ensure(x_t_storage_, B, d, "embsr::stamp::x_t");
    q_ = ensure(q_storage_, B, d, "embsr::stamp::query");
    m_a_ = ensure(m_a_storage_, B, d, "embsr::stamp::m_a");
    h_s_ = ensure(h_s_storage_, B, d, "embsr::stamp::h_s");
    h_t_ = ensure(h_t_storage_, B, d, "embsr::stamp::h_t");
    s_ = ensure(s_storage_, B, d, "embsr::stamp::session_vector");

    const auto items = core_.mat(item_, false);
    embedding_forward(exec, items, batch.macro_items, x_);                           // x_i
    detail::stamp_row_sessions(exec, batch.macro_offsets, session_);
    detail::stamp_pool_forward(exec, batch.macro_offsets, x_, m_s_, x_t_);           // m_s, m_t = x_t (eq. 1)
    linear_forward(exec, x_t_, mat("W_2", false), vec("b_a", false), q_);            // W_2 x_t + b_a
    gemm(exec, Trans::No, Trans::Yes, Scalar(1), m_s_, mat("W_3", false), Scalar(1), q_);  //  + W_3 m_s
    linear_forward(exec, x_, mat("W_1", false), vector(), gate_);                    // W_1 x_i (all rows)
    detail::stamp_attention_forward(exec, batch.macro_offsets, session_, x_, gate_, q_, w_0(false), alpha_,
                                    config_.mean_residual, m_s_, m_a_);               // eq. 8-9
    linear_forward(exec, m_a_, mat("W_s", false), vec("b_s", false), h_s_);          // eq. 2 (pre-activation)
    linear_forward(exec, x_t_, mat("W_t", false), vec("b_t", false), h_t_);          // eq. 3 (pre-activation)
    detail::stamp_cells_forward(exec, h_s_, h_t_, s_);                               // tanh, h_s * h_t
    return this->score(batch, s_, items, 1.0, with_loss);                            // eq. 4-6 (no sigmoid: the code)
  }

  // run_forward's layer calls in reverse; every backward adds into its gradients.
  void run_backward(const batch_type& batch) {
    const auto& exec = core_.exec();
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions), N = static_cast<std::size_t>(batch.sizes.num_macro),
               d = static_cast<std::size_t>(config_.d);
    const auto ds = this->zeroed(ds_storage_, B, d, "embsr::stamp::ds");
    const auto dpre_s = ensure(dpre_s_storage_, B, d, "embsr::stamp::dpre_s");
    const auto dpre_t = ensure(dpre_t_storage_, B, d, "embsr::stamp::dpre_t");
    const auto dm_a = this->zeroed(dm_a_storage_, B, d, "embsr::stamp::dm_a");
    const auto dm_s = this->zeroed(dm_s_storage_, B, d, "embsr::stamp::dm_s");
    const auto dx_t = this->zeroed(dx_t_storage_, B, d, "embsr::stamp::dx_t");
    const auto dq = ensure(dq_storage_, B, d, "embsr::stamp::dq");
    const auto dgate = ensure(dgate_storage_, N, d, "embsr::stamp::dgate");
    const auto dalpha = ensure(dalpha_storage_, N, "embsr::stamp::dalpha");
    const auto dx = this->zeroed(dx_storage_, N, d, "embsr::stamp::dx");
    const auto items = core_.mat(item_, false);

    this->score_backward(batch, s_, items, 1.0, ds, core_.mat(item_, true));
    detail::stamp_cells_backward(exec, h_s_, h_t_, ds, dpre_s, dpre_t);
    linear_backward(exec, x_t_, mat("W_t", false), dpre_t, dx_t, mat("W_t", true), vec("b_t", true));
    linear_backward(exec, m_a_, mat("W_s", false), dpre_s, dm_a, mat("W_s", true), vec("b_s", true));
    if (config_.mean_residual) detail::stamp_add(exec, dm_a, dm_s);
    detail::stamp_attention_backward(exec, batch.macro_offsets, session_, x_, gate_, w_0(false), alpha_, dm_a, dalpha,
                                     dgate, dq, dx, w_0(true));
    linear_backward(exec, x_, mat("W_1", false), dgate, dx, mat("W_1", true), vector());
    linear_backward(exec, x_t_, mat("W_2", false), dq, dx_t, mat("W_2", true), vec("b_a", true));
    linear_backward(exec, m_s_, mat("W_3", false), dq, dm_s, mat("W_3", true), vector());
    detail::stamp_pool_backward(exec, batch.macro_offsets, session_, dm_s, dx_t, dx);
    embedding_backward(exec, batch.macro_items, dx, core_.mat(item_, true));
  }

  // W_0 [1 x d] as a d-vector.
  vector w_0(bool grad) const { return vec("W_0", grad); }

  std::size_t item_ = 0;
  // Activations of the last forward.
  Kokkos::View<int*, M> session_, session_storage_;
  matrix x_, gate_, m_s_, x_t_, q_, m_a_, h_s_, h_t_, s_;
  vector alpha_;
  Mat<Scalar, M> x_storage_, gate_storage_, m_s_storage_, x_t_storage_, q_storage_, m_a_storage_, h_s_storage_,
      h_t_storage_, s_storage_;
  Vec<Scalar, M> alpha_storage_;
  // Gradient buffers.
  Mat<Scalar, M> ds_storage_, dpre_s_storage_, dpre_t_storage_, dm_a_storage_, dm_s_storage_, dx_t_storage_, dq_storage_,
      dgate_storage_, dx_storage_;
  Vec<Scalar, M> dalpha_storage_;
};

// ---- the registry's view of STAMP -------------------------------------------

inline ModelOptions stamp_options(const StampConfig& c) {
  ModelOptions o;
  detail::set_data_options(o, c);
  o.set("d", c.d).set("mean_residual", c.mean_residual).set("seed", c.seed);
  return o;
}

struct StampSpec {
  template <class ExecSpace>
  using model = STAMP<ExecSpace, float>;
  using config_type = StampConfig;

  static ModelOptions options_of(const StampConfig& c) { return stamp_options(c); }
  static StampConfig config_of(const ModelOptions& o) {
    StampConfig c;
    detail::get_data_options(o, c);
    c.d = o.get_int32("d", c.d);
    c.mean_residual = o.get_bool("mean_residual", c.mean_residual);
    c.seed = o.get_uint("seed", c.seed);
    c.validate();
    return c;
  }
  static std::vector<ParameterEntry> layout(const StampConfig& c) { return stamp_parameter_layout(c); }
  // d-vectors per macro item: x, gates, dx, dgates (the per-session vectors are fewer).
  static std::uint64_t activation_vectors(const StampConfig&) { return 6; }
  static std::uint64_t extra_bytes(const StampConfig&, std::uint64_t) { return 0; }
  static ModelInfo info() {
    return ModelInfo{"stamp", "attention + MLP",
                     "STAMP: attention over the session's items from the last item and the session mean, two tanh MLP "
                     "cells, trilinear scores (macro items only)",
                     "Liu et al., STAMP: Short-Term Attention/Memory Priority Model for Session-based Recommendation, "
                     "KDD 2018 (a baseline of the EMBSR paper, Table III)",
                     true, ""};
  }
  static std::vector<OptionSpec> own_options() {
    const ModelOptions d = stamp_options(StampConfig{});
    return {{"d", OptionKind::Integer, *d.find("d"), "embedding size", {}, false, true, search_range(16, 64, true)},
            {"mean_residual", OptionKind::Boolean, *d.find("mean_residual"),
             "m_a + m_s as the authors' code (off: the paper's eq. 9)", {}, false, true, {}},
            {"seed", OptionKind::Integer, *d.find("seed"), "seed of the initialisation", {}, false, false, {}}};
  }
  static ModelSpec spec() { return neural_model_spec<StampSpec>(); }
};

template <class ExecSpace, class Scalar>
struct model_spec_of<STAMP<ExecSpace, Scalar>> {
  using type = StampSpec;
};

}  // namespace embsr
