#pragma once
// embsr::EMBSR: the whole model of MODEL.md sections 3-5 composed from the layers, with a forward
// pass (scores, top-K, loss) and a hand-derived backward pass that fills the flat gradient buffer.
//
// Data flow for a ragged batch (B sessions, T micro-behaviors, N macro items, C nodes):
//   eo[T]   = op_embedding[micro_ops]                         operation embeddings
//   hrun[N] = run GRU over each macro item's operation run     (3.1; zeros without the run GRU)
//   h0[C]   = item_embedding[node_items];  star0[B] = mean h0  (3.4)
//   for s: hhat = GGNN_s(h_s, hrun); (h_{s+1}, star_{s+1}) = star_s(hhat, star_s)   (3.2-3.4)
//   hf[C]   = highway(h0, h_S)                                 (3.5)
//   xm[T]   = hf[micro_alias] + eo;  xs[B] = star_S + op_embedding[op0]            (4.1)
//   z[B]    = operation-aware attention, query position 0      (4.2; z = star_S without attention)
//   m[B]    = fusion(z, xm[last]);  scores = w_k m^ . E^;  loss = CE                 (5)
// Ablations switch parts off without copies of the code: see Config.

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/dropout.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/random.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/data/ragged_batch.hpp>
#include <embsr/layers/attention.hpp>
#include <embsr/layers/embedding.hpp>
#include <embsr/layers/ggnn.hpp>
#include <embsr/layers/gru.hpp>
#include <embsr/layers/linear.hpp>
#include <embsr/layers/scoring.hpp>
#include <embsr/layers/star.hpp>
#include <embsr/model/config.hpp>
#include <embsr/model/parameter_layout.hpp>
#include <embsr/model/parameters.hpp>

namespace embsr {

namespace model_detail {

// op0[b] = next_ops[b] (given) or the [NEXT] id (learned).           [B]
template <class ExecSpace, class In, class Out>
void compute_op0(const ExecSpace& exec, const In& next_ops, bool given, int next_id, const Out& op0) {
  Kokkos::parallel_for("embsr::model::op0", Kokkos::RangePolicy<ExecSpace>(exec, 0, op0.extent(0)),
                       KOKKOS_LAMBDA(const int b) { op0(b) = given ? next_ops(b) : next_id; });
}

// xm[i] = hf[micro_alias[i]] + eo[i]                                  [T x d]
template <class ExecSpace, class Alias, class HF, class EO, class XM>
void assemble_micro_inputs(const ExecSpace& exec, const Alias& alias, const HF& hf, const EO& eo, const XM& xm) {
  const int T = static_cast<int>(xm.extent(0)), d = static_cast<int>(xm.extent(1));
  parallel_for_2d(exec, "embsr::model::micro_inputs", T, d,
                       KOKKOS_LAMBDA(const int i, const int j) { xm(i, j) = hf(alias(i), j) + eo(i, j); });
}

// xs[b] = star[b] + op_table[op0[b]]                                  [B x d]
template <class ExecSpace, class Star, class Table, class Op0, class XS>
void assemble_star_input(const ExecSpace& exec, const Star& star, const Table& table, const Op0& op0, const XS& xs) {
  const int B = static_cast<int>(xs.extent(0)), d = static_cast<int>(xs.extent(1));
  parallel_for_2d(exec, "embsr::model::star_input", B, d,
                       KOKKOS_LAMBDA(const int b, const int j) { xs(b, j) = star(b, j) + table(op0(b), j); });
}

// xt[b] = xm[last micro-behavior of b]                                [B x d]
template <class ExecSpace, class Offsets, class XM, class XT>
void gather_last(const ExecSpace& exec, const Offsets& micro_offsets, const XM& xm, const XT& xt) {
  const int B = static_cast<int>(xt.extent(0)), d = static_cast<int>(xt.extent(1));
  parallel_for_2d(exec, "embsr::model::gather_last", B, d,
                       KOKKOS_LAMBDA(const int b, const int j) { xt(b, j) = xm(micro_offsets(b + 1) - 1, j); });
}
// dxm[last of b] += dxt[b]  (one row per session: no conflicts)
template <class ExecSpace, class Offsets, class DXT, class DXM>
void scatter_last(const ExecSpace& exec, const Offsets& micro_offsets, const DXT& dxt, const DXM& dxm) {
  const int B = static_cast<int>(dxt.extent(0)), d = static_cast<int>(dxt.extent(1));
  parallel_for_2d(exec, "embsr::model::scatter_last", B, d,
                       KOKKOS_LAMBDA(const int b, const int j) { dxm(micro_offsets(b + 1) - 1, j) += dxt(b, j); });
}

// y += x (same shape)
template <class ExecSpace, class X, class Y>
void add_into(const ExecSpace& exec, const X& x, const Y& y) {
  const int n = static_cast<int>(y.extent(0)), d = static_cast<int>(y.extent(1));
  parallel_for_2d(exec, "embsr::model::add", n, d,
                       KOKKOS_LAMBDA(const int i, const int j) { y(i, j) += x(i, j); });
}

// out = [a ; b] along columns                                         [n x 2d]
template <class ExecSpace, class A, class B, class Out>
void concat_columns(const ExecSpace& exec, const A& a, const B& b, const Out& out) {
  const int n = static_cast<int>(a.extent(0)), d = static_cast<int>(a.extent(1));
  parallel_for_2d(exec, "embsr::model::concat", n, d,
                       KOKKOS_LAMBDA(const int i, const int j) {
                         out(i, j) = a(i, j);
                         out(i, d + j) = b(i, j);
                       });
}
// da += dout[:, :d], db += dout[:, d:]
template <class ExecSpace, class D, class DA, class DB>
void split_columns_add(const ExecSpace& exec, const D& dout, const DA& da, const DB& db) {
  const int n = static_cast<int>(da.extent(0)), d = static_cast<int>(da.extent(1));
  parallel_for_2d(exec, "embsr::model::split", n, d,
                       KOKKOS_LAMBDA(const int i, const int j) {
                         da(i, j) += dout(i, j);
                         db(i, j) += dout(i, d + j);
                       });
}

// First session (lowest index) that breaks a model precondition, and which field; -1 if none.
struct BatchProblem {
  int session = -1;
  int field = -1;
};
enum BatchField : int { kFieldEmpty = 0, kFieldLength, kFieldItem, kFieldOp, kFieldTarget, kFieldNextOp, kNumFields };
inline const char* batch_field_name(int f) {
  static const char* names[] = {"micro_offsets (empty session)", "micro_offsets (length above max_length)",
                                "micro_items", "micro_ops", "targets", "next_ops"};
  return f >= 0 && f < kNumFields ? names[f] : "?";
}

}  // namespace model_detail

template <class ExecSpace, class Scalar = float>
class EMBSR {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "EMBSR: ExecSpace must be a Kokkos execution space");
  static_assert(std::is_floating_point<Scalar>::value, "EMBSR: Scalar must be float or double");

 public:
  using execution_space = ExecSpace;
  using memory_space = typename ExecSpace::memory_space;
  using scalar_type = Scalar;
  using M = memory_space;
  using batch_type = Batch<memory_space>;
  using matrix = MatRef<Scalar, M>;

  explicit EMBSR(const Config& config, ExecSpace exec = ExecSpace()) : config_(config), exec_(exec) {
    config_.validate();
    declare_parameters();
    params_.allocate();
    initialize(config_.seed);
  }

  const Config& config() const { return config_; }
  // The seed after construction only drives the dropout masks (resuming a run restores it).
  void set_seed(std::uint64_t seed) { config_.seed = seed; }
  Parameters<Scalar, M>& parameters() { return params_; }
  const Parameters<Scalar, M>& parameters() const { return params_; }
  std::size_t num_parameters() const { return params_.size(); }
  const ExecSpace& execution_space_instance() const { return exec_; }

  // Inference on fixed parameters: freeze() promises that the parameters do not change until
  // unfreeze(), so work that depends on them alone (the normalised item table of the scoring) is
  // done once instead of per call. A frozen model refuses loss_and_backward. (Recommender freezes
  // its model.)
  void freeze() { frozen_ = true; }
  void unfreeze() {
    frozen_ = false;
    scoring_cache_.items_hat_current = false;
  }
  bool frozen() const { return frozen_; }

  // Every parameter ~ N(0, init_std), from Rng(seed, stream = 1000 + parameter index): the
  // values depend on the seed and the parameter's position only (MODEL.md 6).
  void initialize(std::uint64_t seed) {
    scoring_cache_.items_hat_current = false;
    auto host = Kokkos::create_mirror_view(params_.values());
    for (std::size_t p = 0; p < params_.entries().size(); ++p) {
      const auto& e = params_.entry(p);
      Rng rng(seed, 1000 + p);
      for (std::size_t i = 0; i < e.size(); ++i) {
        const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
        host(e.offset + i) = static_cast<Scalar>(config_.init_std * std::sqrt(-2.0 * std::log(u1)) *
                                                 std::cos(6.283185307179586 * u2));
      }
    }
    Kokkos::deep_copy(params_.values(), host);
  }

  // Scores of every item for every session, evaluation mode (no dropout). [B x num_items], valid
  // until the next call on this model.
  matrix scores(const batch_type& batch) {
    run_forward(batch, /*training=*/false, /*with_loss=*/false);
    return scoring_cache_.scores;
  }

  // Top-k items per session (evaluation mode): ids and scores [B x k'] with k' = min(k, num_items).
  void top_k(const batch_type& batch, int k, Kokkos::View<int**, Kokkos::LayoutRight, M>& ids,
             Kokkos::View<Scalar**, Kokkos::LayoutRight, M>& values) {
    if (k < 1) throw InvalidArgument("EMBSR::top_k: k must be >= 1, got " + std::to_string(k));
    run_forward(batch, false, false);
    const int kk = std::min(k, config_.num_items);
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions);
    if (ids.extent(0) != B || ids.extent(1) != static_cast<std::size_t>(kk))
      ids = Kokkos::View<int**, Kokkos::LayoutRight, M>("embsr::top_k::ids", B, kk);
    if (values.extent(0) != B || values.extent(1) != static_cast<std::size_t>(kk))
      values = Kokkos::View<Scalar**, Kokkos::LayoutRight, M>("embsr::top_k::values", B, kk);
    embsr::top_k(exec_, scoring_cache_.scores, kk, ids, values);
  }

  // Mean cross-entropy of the batch in evaluation mode (no gradients).
  double loss(const batch_type& batch) { return run_forward(batch, false, true); }

  // Training step's forward + backward: returns the loss and leaves d(loss)/d(parameters) in
  // parameters().grads() (overwritten, not accumulated). `step` selects the dropout masks.
  double loss_and_backward(const batch_type& batch, std::uint64_t step = 0, bool training = true) {
    if (frozen_) throw InvalidArgument("EMBSR::loss_and_backward: the model is frozen for inference (call unfreeze())");
    step_ = step;
    check_parameters_finite();
    const double loss_value = run_forward(batch, training, true);
    params_.zero_grads();
    run_backward(batch);
    exec_.fence();
    return loss_value;
  }

  // Throws NonFiniteValue (an InvalidArgument) naming the first non-finite parameter, if any. One reduction over the
  // parameters on the device; the host copy happens only when something is wrong. Called by every
  // training step (a NaN can hide behind a relu and leave the loss finite).
  void check_parameters_finite() const {
    const auto values = params_.values();
    int bad = 0;
    Kokkos::parallel_reduce(
        "embsr::model::check_finite", Kokkos::RangePolicy<ExecSpace>(exec_, 0, values.extent(0)),
        KOKKOS_LAMBDA(const std::size_t i, int& count) { count += math::isfinite(values(i)) ? 0 : 1; }, bad);
    if (bad == 0) return;
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params_.values());
    for (const auto& e : params_.entries())
      for (std::size_t i = 0; i < e.size(); ++i)
        if (!std::isfinite(static_cast<double>(host(e.offset + i))))
          throw NonFiniteValue("EMBSR: parameter '" + e.name + "' has a non-finite value at row " +
                                std::to_string(i / e.cols) + ", column " + std::to_string(i % e.cols));
  }

  // Checks the batch against the model's expectations; throws InvalidArgument naming the first
  // offending session (its position and example id) and the field.
  void validate(const batch_type& batch) const {
    using namespace model_detail;
    const int B = batch.sizes.num_sessions;
    if (B == 0) throw InvalidArgument("EMBSR: empty batch");
    const int V = config_.num_items, O = config_.num_ops, L = config_.max_length;
    auto offsets = batch.micro_offsets;
    auto items = batch.micro_items;
    auto ops = batch.micro_ops;
    auto targets = batch.targets;
    auto next_ops = batch.next_ops;
    const bool check_next = config_.next_op == NextOpMode::Given;
    int first = B;
    Kokkos::parallel_reduce(
        "embsr::model::validate", Kokkos::RangePolicy<ExecSpace>(exec_, 0, B),
        KOKKOS_LAMBDA(const int b, int& lowest) {
          const int t = offsets(b + 1) - offsets(b);
          bool bad = t <= 0 || t > L || targets(b) < 0 || targets(b) >= V ||
                     (check_next && (next_ops(b) < 0 || next_ops(b) >= O));
          for (int i = offsets(b); i < offsets(b + 1) && !bad; ++i)
            bad = items(i) < 0 || items(i) >= V || ops(i) < 0 || ops(i) >= O;
          if (bad && b < lowest) lowest = b;
        },
        Kokkos::Min<int>(first));
    if (first >= B) return;
    // Name the problem on the host (rare path).
    const HostBatch h = to_host(batch);
    const auto b = static_cast<std::size_t>(first);
    const int t = h.micro_offsets[b + 1] - h.micro_offsets[b];
    std::string what;
    if (t <= 0) what = std::string(batch_field_name(kFieldEmpty));
    else if (t > L)
      what = std::string(batch_field_name(kFieldLength)) + ": " + std::to_string(t) + " > " + std::to_string(L);
    else if (h.targets[b] < 0 || h.targets[b] >= V)
      what = std::string("targets: item id ") + std::to_string(h.targets[b]) + " outside [0, " + std::to_string(V) + ")";
    else if (check_next && (h.next_ops[b] < 0 || h.next_ops[b] >= O))
      what = std::string("next_ops: operation id ") + std::to_string(h.next_ops[b]) + " outside [0, " + std::to_string(O) + ")";
    else
      for (int i = h.micro_offsets[b]; i < h.micro_offsets[b + 1]; ++i) {
        const auto u = static_cast<std::size_t>(i);
        if (h.micro_items[u] < 0 || h.micro_items[u] >= V) {
          what = "micro_items: item id " + std::to_string(h.micro_items[u]) + " at position " +
                 std::to_string(i - h.micro_offsets[b]) + " outside [0, " + std::to_string(V) + ")";
          break;
        }
        if (h.micro_ops[u] < 0 || h.micro_ops[u] >= O) {
          what = "micro_ops: operation id " + std::to_string(h.micro_ops[u]) + " at position " +
                 std::to_string(i - h.micro_offsets[b]) + " outside [0, " + std::to_string(O) + ")";
          break;
        }
      }
    throw InvalidArgument("EMBSR: batch session " + std::to_string(first) + " (example " +
                          std::to_string(h.example_ids[b]) + "): " + what);
  }

 private:
  // ---- parameters --------------------------------------------------------------------------
  // The entries come from the one list of model/parameter_layout.hpp (which checkpoints are checked
  // against); the layers find theirs by name.
  void declare_parameters() {
    detail::for_each_parameter(config_, [&](const std::string& name, std::uint64_t rows, std::uint64_t cols) {
      params_.add(name, static_cast<std::size_t>(rows), static_cast<std::size_t>(cols));
    });
    auto id = [&](const std::string& name) { return params_.id(name); };
    auto gru_ids = [&](const std::string& prefix) {
      return GruIds{id(prefix + ".W_ih"), id(prefix + ".W_hh"), id(prefix + ".b_ih"), id(prefix + ".b_hh")};
    };
    id_.item = id("item_embedding");
    id_.op = id("op_embedding");
    if (config_.use_gnn) {
      if (config_.use_run_gru) id_.run_gru = gru_ids("run_gru");
      for (int s = 0; s < config_.gnn_steps; ++s) {
        const std::string g = "ggnn" + std::to_string(s), st = "star" + std::to_string(s) + ".";
        id_.ggnn.push_back(GgnnIds{id(g + ".W_in"), id(g + ".b_in"), id(g + ".W_out"), id(g + ".b_out"), gru_ids(g)});
        id_.star.push_back(StarIds{id(st + "W_q1"), id(st + "b_q1"), id(st + "W_k1"), id(st + "b_k1"), id(st + "W_k2"),
                                   id(st + "b_k2"), id(st + "W_q2"), id(st + "b_q2")});
      }
      id_.W_g = id("highway.W_g");
      id_.b_g = id("highway.b_g");
    }
    if (config_.use_attention) {
      id_.W_Q = id("attention.W_Q");
      id_.b_Q = id("attention.b_Q");
      id_.W_1 = id("attention.W_1");
      id_.b_1 = id("attention.b_1");
      id_.W_2 = id("attention.W_2");
      id_.b_2 = id("attention.b_2");
      id_.ln_gamma = id("attention.ln_gamma");
      id_.ln_beta = id("attention.ln_beta");
      id_.positions = id("attention.positions");
      if (config_.use_relations) id_.relations = id("attention.relations");
    }
    if (config_.fusion == FusionMode::Gate) {
      id_.W_f = id("fusion.W_f");
      id_.b_f = id("fusion.b_f");
    } else if (config_.fusion == FusionMode::Mlp) {
      id_.W_nf = id("nf.W");
      id_.b_nf = id("nf.b");
    }
  }

  struct GruIds {
    std::size_t W_ih = 0, W_hh = 0, b_ih = 0, b_hh = 0;
  };
  struct GgnnIds {
    std::size_t W_in = 0, b_in = 0, W_out = 0, b_out = 0;
    GruIds cell;
  };
  struct StarIds {
    std::size_t W_q1 = 0, b_q1 = 0, W_k1 = 0, b_k1 = 0, W_k2 = 0, b_k2 = 0, W_q2 = 0, b_q2 = 0;
  };
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  struct Ids {
    std::size_t item = kNone, op = kNone;
    GruIds run_gru;
    std::vector<GgnnIds> ggnn;
    std::vector<StarIds> star;
    std::size_t W_g = kNone, b_g = kNone;
    std::size_t W_Q = kNone, b_Q = kNone, W_1 = kNone, b_1 = kNone, W_2 = kNone, b_2 = kNone, ln_gamma = kNone,
                ln_beta = kNone, positions = kNone, relations = kNone;
    std::size_t W_f = kNone, b_f = kNone, W_nf = kNone, b_nf = kNone;
  };

  // Parameter structs of the layers, over values (grad = false) or gradients (grad = true).
  matrix mat(std::size_t id, bool grad) const { return grad ? params_.grad(id) : params_.value(id); }
  VecRef<Scalar, M> vec(std::size_t id, bool grad) const { return grad ? params_.grad_vec(id) : params_.value_vec(id); }

  GruParams<Scalar, M> gru(const GruIds& g, bool grad) const {
    return GruParams<Scalar, M>{mat(g.W_ih, grad), mat(g.W_hh, grad), vec(g.b_ih, grad), vec(g.b_hh, grad)};
  }
  GgnnParams<Scalar, M> ggnn(int s, bool grad) const {
    const auto& g = id_.ggnn[static_cast<std::size_t>(s)];
    return GgnnParams<Scalar, M>{mat(g.W_in, grad), mat(g.W_out, grad), vec(g.b_in, grad), vec(g.b_out, grad),
                                 gru(g.cell, grad)};
  }
  StarParams<Scalar, M> star(int s, bool grad) const {
    const auto& g = id_.star[static_cast<std::size_t>(s)];
    return StarParams<Scalar, M>{mat(g.W_q1, grad), mat(g.W_k1, grad), mat(g.W_k2, grad), mat(g.W_q2, grad),
                                 vec(g.b_q1, grad), vec(g.b_k1, grad), vec(g.b_k2, grad), vec(g.b_q2, grad)};
  }
  HighwayParams<Scalar, M> highway(bool grad) const {
    return HighwayParams<Scalar, M>{mat(id_.W_g, grad), vec(id_.b_g, grad)};
  }
  AttentionParams<Scalar, M> attention(bool grad) const {
    AttentionParams<Scalar, M> p;
    p.W_Q = mat(id_.W_Q, grad);
    p.W_1 = mat(id_.W_1, grad);
    p.W_2 = mat(id_.W_2, grad);
    p.b_Q = vec(id_.b_Q, grad);
    p.b_1 = vec(id_.b_1, grad);
    p.b_2 = vec(id_.b_2, grad);
    p.ln_gamma = vec(id_.ln_gamma, grad);
    p.ln_beta = vec(id_.ln_beta, grad);
    p.positions = mat(id_.positions, grad);
    if (config_.use_relations) p.relations = mat(id_.relations, grad);
    return p;
  }
  FusionParams<Scalar, M> fusion(bool grad) const {
    if (config_.fusion == FusionMode::Gate) return FusionParams<Scalar, M>{mat(id_.W_f, grad), vec(id_.b_f, grad)};
    return FusionParams<Scalar, M>{};
  }
  AttentionOptions attention_options(bool training) const {
    AttentionOptions o;
    o.num_op_ids = config_.num_op_ids();
    o.use_relations = config_.use_relations;
    o.dropout.rate = config_.dropout;
    o.dropout.seed = config_.seed;
    o.dropout.step = step_;
    o.dropout.training = training;
    return o;
  }

  // ---- forward -------------------------------------------------------------------------------
  double run_forward(const batch_type& batch, bool training, bool with_loss) {
    using namespace model_detail;
    validate(batch);
    training_ = training;
    const auto& sz = batch.sizes;
    const std::size_t B = static_cast<std::size_t>(sz.num_sessions), T = static_cast<std::size_t>(sz.num_micro),
                      N = static_cast<std::size_t>(sz.num_macro), C = static_cast<std::size_t>(sz.num_nodes),
                      d = static_cast<std::size_t>(config_.d);
    const int S = config_.gnn_steps;

    if (op0_store_.extent(0) < B) op0_store_ = Kokkos::View<int*, M>("embsr::model::op0", B + B / 4 + 1);
    op0_ = Kokkos::subview(op0_store_, std::make_pair(std::size_t(0), B));
    compute_op0(exec_, batch.next_ops, config_.next_op == NextOpMode::Given, config_.num_ops, op0_);

    eo_ = ensure(eo_store_, T, d, "embsr::model::eo");
    embedding_forward(exec_, params_.value(id_.op), batch.micro_ops, eo_);

    h_.resize(static_cast<std::size_t>(S) + 1);
    h_store_.resize(h_.size());
    hhat_.resize(static_cast<std::size_t>(S));
    hhat_store_.resize(hhat_.size());
    star_.resize(static_cast<std::size_t>(S) + 1);
    star_store_.resize(star_.size());
    ggnn_cache_.resize(static_cast<std::size_t>(S));
    star_cache_.resize(static_cast<std::size_t>(S));

    h_[0] = ensure(h_store_[0], C, d, "embsr::model::h0");
    embedding_forward(exec_, params_.value(id_.item), batch.node_items, h_[0]);
    star_[0] = ensure(star_store_[0], B, d, "embsr::model::star0");
    star_init_forward(exec_, batch, h_[0], star_[0]);
    star_last_ = star_[0];
    hf_ = h_[0];
    if (config_.use_gnn) {
      hrun_ = ensure(hrun_store_, N, d, "embsr::model::hrun");
      if (config_.use_run_gru) run_gru_forward(exec_, batch, eo_, gru(id_.run_gru, false), hrun_, run_gru_cache_);
      else Kokkos::deep_copy(exec_, hrun_, Scalar(0));
      for (int s = 0; s < S; ++s) {
        const auto u = static_cast<std::size_t>(s);
        hhat_[u] = ensure(hhat_store_[u], C, d, "embsr::model::hhat");
        h_[u + 1] = ensure(h_store_[u + 1], C, d, "embsr::model::h");
        star_[u + 1] = ensure(star_store_[u + 1], B, d, "embsr::model::star");
        ggnn_forward(exec_, batch, h_[u], hrun_, ggnn(s, false), hhat_[u], ggnn_cache_[u]);
        star_update_forward(exec_, batch, hhat_[u], star_[u], star(s, false), h_[u + 1], star_[u + 1], star_cache_[u]);
      }
      star_last_ = star_[static_cast<std::size_t>(S)];
      hf_ = ensure(hf_store_, C, d, "embsr::model::hf");
      highway_forward(exec_, h_[0], h_[static_cast<std::size_t>(S)], highway(false), hf_, highway_cache_);
    }

    xm_ = ensure(xm_store_, T, d, "embsr::model::xm");
    assemble_micro_inputs(exec_, batch.micro_alias, hf_, eo_, xm_);
    xs_ = ensure(xs_store_, B, d, "embsr::model::xs");
    assemble_star_input(exec_, star_last_, params_.value(id_.op), op0_, xs_);

    if (config_.use_attention) {
      z_ = ensure(z_store_, B, d, "embsr::model::z");
      attention_forward(exec_, batch, op0_, xs_, xm_, attention(false), attention_options(training), z_, attention_cache_);
    } else {
      z_ = star_last_;  // EMBSR-NS: the session vector of the GNN side
    }

    xt_ = ensure(xt_store_, B, d, "embsr::model::xt");
    gather_last(exec_, batch.micro_offsets, xm_, xt_);
    m_ = ensure(m_store_, B, d, "embsr::model::m");
    if (config_.fusion == FusionMode::Mlp) {
      zx_ = ensure(zx_store_, B, 2 * d, "embsr::model::zx");
      concat_columns(exec_, z_, xt_, zx_);
      linear_forward(exec_, zx_, params_.value(id_.W_nf), params_.value_vec(id_.b_nf), m_);
    } else {
      fusion_forward(exec_, z_, xt_, fusion(false), fixed_beta(), m_, fusion_cache_);
    }
    Kokkos::View<const int*, M> targets = with_loss ? Kokkos::View<const int*, M>(batch.targets) : Kokkos::View<const int*, M>();
    const double loss_value =
        scoring_forward(exec_, m_, params_.value(id_.item), targets, config_.w_k, scoring_cache_, frozen_);
    if (with_loss && !std::isfinite(loss_value)) {
      check_parameters_finite();
      throw NonFiniteValue("EMBSR: the loss is not finite (" + std::to_string(loss_value) +
                            ") although every parameter is finite");
    }
    return loss_value;
  }

  double fixed_beta() const { return config_.fusion == FusionMode::Fixed ? config_.fixed_beta : -1.0; }

  // ---- backward ------------------------------------------------------------------------------
  // Reverse of run_forward; every layer's backward adds into the gradient buffers, so each
  // activation gradient is zeroed before its producers run.
  void run_backward(const batch_type& batch) {
    using namespace model_detail;
    const auto& sz = batch.sizes;
    const std::size_t B = static_cast<std::size_t>(sz.num_sessions), T = static_cast<std::size_t>(sz.num_micro),
                      N = static_cast<std::size_t>(sz.num_macro), C = static_cast<std::size_t>(sz.num_nodes),
                      d = static_cast<std::size_t>(config_.d);
    const int S = config_.gnn_steps;
    auto zeroed = [&](Mat<Scalar, M>& store, std::size_t n, std::size_t m, const char* label) {
      auto v = ensure(store, n, m, label);
      Kokkos::deep_copy(exec_, v, Scalar(0));
      return v;
    };
    auto dm = zeroed(dm_store_, B, d, "embsr::model::dm");
    scoring_backward(exec_, m_, params_.value(id_.item), Kokkos::View<const int*, M>(batch.targets), config_.w_k,
                     scoring_cache_, dm, params_.grad(id_.item));

    auto dz = zeroed(dz_store_, B, d, "embsr::model::dz");
    auto dxt = zeroed(dxt_store_, B, d, "embsr::model::dxt");
    if (config_.fusion == FusionMode::Mlp) {
      auto dzx = zeroed(dzx_store_, B, 2 * d, "embsr::model::dzx");
      linear_backward(exec_, zx_, params_.value(id_.W_nf), dm, dzx, params_.grad(id_.W_nf), params_.grad_vec(id_.b_nf));
      split_columns_add(exec_, dzx, dz, dxt);
    } else {
      fusion_backward(exec_, z_, xt_, fusion(false), fixed_beta(), fusion_cache_, dm, dz, dxt, fusion(true));
    }

    auto dxm = zeroed(dxm_store_, T, d, "embsr::model::dxm");
    scatter_last(exec_, batch.micro_offsets, dxt, dxm);
    auto dxs = zeroed(dxs_store_, B, d, "embsr::model::dxs");
    auto dstar = zeroed(dstar_store_, B, d, "embsr::model::dstar");
    if (config_.use_attention) {
      attention_backward(exec_, batch, op0_, xs_, xm_, attention(false), attention_options(training_), attention_cache_, dz,
                         dxs, dxm, attention(true));
    } else {
      add_into(exec_, dz, dstar);
    }
    // xs = star_last + op_embedding[op0];  xm = hf[alias] + eo
    add_into(exec_, dxs, dstar);
    embedding_backward(exec_, op0_, dxs, params_.grad(id_.op));
    auto deo = zeroed(deo_store_, T, d, "embsr::model::deo");
    add_into(exec_, dxm, deo);
    auto dhf = zeroed(dhf_store_, C, d, "embsr::model::dhf");
    embedding_backward(exec_, batch.micro_alias, dxm, dhf);

    auto dh0 = zeroed(dh0_store_, C, d, "embsr::model::dh0");
    if (config_.use_gnn) {
      auto dh = zeroed(dh_store_, C, d, "embsr::model::dh");        // d(loss)/d h_{s+1}
      highway_backward(exec_, h_[0], h_[static_cast<std::size_t>(S)], highway(false), highway_cache_, dhf, dh0, dh,
                       highway(true));
      auto dhrun = zeroed(dhrun_store_, N, d, "embsr::model::dhrun");
      auto dhhat = ensure(dhhat_store_, C, d, "embsr::model::dhhat");
      auto dh_prev = ensure(dh_prev_store_, C, d, "embsr::model::dh_prev");
      auto dstar_prev = ensure(dstar_prev_store_, B, d, "embsr::model::dstar_prev");
      for (int s = S - 1; s >= 0; --s) {
        const auto u = static_cast<std::size_t>(s);
        Kokkos::deep_copy(exec_, dhhat, Scalar(0));
        Kokkos::deep_copy(exec_, dstar_prev, Scalar(0));
        star_update_backward(exec_, batch, hhat_[u], star_[u], star(s, false), star_cache_[u], dh, dstar, dhhat, dstar_prev,
                             star(s, true));
        Kokkos::deep_copy(exec_, dh_prev, Scalar(0));
        ggnn_backward(exec_, batch, h_[u], hrun_, ggnn(s, false), ggnn_cache_[u], dhhat, dh_prev, dhrun, ggnn(s, true));
        Kokkos::deep_copy(exec_, dh, dh_prev);
        Kokkos::deep_copy(exec_, dstar, dstar_prev);
      }
      add_into(exec_, dh, dh0);  // h_0 is the layer-0 input of the first GGNN step
      if (config_.use_run_gru)
        run_gru_backward(exec_, batch, eo_, gru(id_.run_gru, false), run_gru_cache_, dhrun, deo, gru(id_.run_gru, true));
    } else {
      add_into(exec_, dhf, dh0);  // EMBSR-NG: hf = h0
    }
    star_init_backward(exec_, batch, dstar, dh0);
    embedding_backward(exec_, batch.node_items, dh0, params_.grad(id_.item));
    embedding_backward(exec_, batch.micro_ops, deo, params_.grad(id_.op));
  }

  Config config_;
  ExecSpace exec_;
  Parameters<Scalar, M> params_;
  Ids id_;
  std::uint64_t step_ = 0;
  bool training_ = false;  // mode of the last forward (the backward replays its dropout masks)

  // Activations (refs into the stores, valid for the last forward) and their storage.
  Kokkos::View<int*, M> op0_store_, op0_;
  matrix eo_, hrun_, hf_, xm_, xs_, z_, xt_, m_, zx_, star_last_;
  std::vector<matrix> h_, hhat_, star_;
  Mat<Scalar, M> eo_store_, hrun_store_, hf_store_, xm_store_, xs_store_, z_store_, xt_store_, m_store_, zx_store_;
  std::vector<Mat<Scalar, M>> h_store_, hhat_store_, star_store_;
  // Gradient storage.
  Mat<Scalar, M> dm_store_, dz_store_, dxt_store_, dzx_store_, dxm_store_, dxs_store_, dstar_store_, deo_store_, dhf_store_,
      dh0_store_, dh_store_, dhrun_store_, dhhat_store_, dh_prev_store_, dstar_prev_store_;
  // Layer caches.
  RunGruCache<Scalar, M> run_gru_cache_;
  std::vector<GgnnCache<Scalar, M>> ggnn_cache_;
  std::vector<StarCache<Scalar, M>> star_cache_;
  HighwayCache<Scalar, M> highway_cache_;
  AttentionCache<Scalar, M> attention_cache_;
  FusionCache<Scalar, M> fusion_cache_;
  ScoringCache<Scalar, M> scoring_cache_;
  bool frozen_ = false;
};

}  // namespace embsr
