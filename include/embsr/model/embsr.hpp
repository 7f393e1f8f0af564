#pragma once
// embsr::EMBSR: the whole model of MODEL.md sections 3-5 composed from the layers, with a forward
// pass (scores, top-K, loss) and a hand-derived backward pass that fills the flat gradient buffer.
// The model is the composition: run_forward is the list of layer calls below, run_backward the same
// list reversed. Parameters: model/parameter_layout.hpp; activations and their gradients:
// model/embsr_activations.hpp.
//
// Data flow for a ragged batch (B sessions, T micro-behaviors, N macro items, C nodes):
//   eo[T]   = op_embedding[micro_ops]                          embedding
//   h0[C]   = item_embedding[node_items];  star0[B] = mean h0   embedding, star_init (3.4)
//   hrun[N] = run GRU over each macro item's operation run      run_gru (3.1; zeros without the run GRU)
//   for s: hhat = GGNN_s(h_s, hrun); (h_{s+1}, star_{s+1}) = star_s(hhat, star_s)   ggnn, star_update (3.2-3.4)
//   hf[C]   = highway(h0, h_S)                                  highway (3.5)
//   op0, xm[T] = hf[micro_alias] + eo, xs[B] = star_S + op_embedding[op0], xt[B]   inputs (4.1)
//   z[B]    = operation-aware attention, query position 0       attention (4.2; z = star_S without attention)
//   m[B]    = fusion(z, xt)                                     fusion (5: gate, fixed beta or MLP)
//   r[C]    = repeat scores of the session's items (EMBSR-R)     repeat (docs/REPEAT.md; use_repeat only)
//   scores  = w_k m^ . E^ (+ r on the session's items); loss = CE   scoring (5)
//   with repeat_mixture instead: gamma[B] = gate(m, op0), scores = log P of the gated mixture of a
//   softmax over r and one over the other items' w_k m^ . E^; loss = -log P   repeat_gate, repeat_mixture
// Ablations switch parts off without copies of the code: see Config.
// The paper's Section V-D variants change two things (model/config.hpp; docs/GRAPH_MODELS.md section 6):
//   encoder = rnn (RNN-Self): in place of the GNN, hf[T] = GRU over each session's rows
//     [item_embedding[micro_items] ; eo] (sequence_gru); the inputs read hf row for row, the star is star0
//   attention_ops = false (SGNN-Self, SGNN-Seq-Self, RNN-Self): no operation embedding in xm or xs; with
//     the GNN the inputs and the attention run over the batch seen over its macro items (each item once)

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
#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_validator.hpp>
#include <embsr/layers/attention.hpp>
#include <embsr/layers/embedding.hpp>
#include <embsr/layers/fusion.hpp>
#include <embsr/layers/ggnn.hpp>
#include <embsr/layers/gru.hpp>
#include <embsr/layers/highway.hpp>
#include <embsr/layers/inputs.hpp>
#include <embsr/layers/repeat.hpp>
#include <embsr/layers/repeat_mixture.hpp>
#include <embsr/layers/scoring.hpp>
#include <embsr/layers/sequence_gru.hpp>
#include <embsr/layers/star.hpp>
#include <embsr/layers/top_k.hpp>
#include <embsr/model/config.hpp>
#include <embsr/model/embsr_activations.hpp>
#include <embsr/model/parameter_layout.hpp>
#include <embsr/model/parameters.hpp>

namespace embsr {

template <class ExecSpace, class Scalar = float>
class EMBSR {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "EMBSR: ExecSpace must be a Kokkos execution space");
  static_assert(std::is_floating_point<Scalar>::value, "EMBSR: Scalar must be float or double");

 public:
  using execution_space = ExecSpace;
  using memory_space = typename ExecSpace::memory_space;
  using scalar_type = Scalar;
  using config_type = Config;
  // A session model (model/session_model.hpp) that learns by gradients.
  static constexpr bool learns_by_gradients = true;
  using M = memory_space;
  using batch_type = Batch<memory_space>;
  using matrix = MatRef<Scalar, M>;

  explicit EMBSR(const Config& config, ExecSpace exec = ExecSpace()) : config_(config), exec_(exec) {
    config_.validate();
    declare_parameters();
    params_.allocate();
    initialize(config_.seed);
    ggnn_cache_.resize(static_cast<std::size_t>(config_.gnn_steps));
    star_cache_.resize(static_cast<std::size_t>(config_.gnn_steps));
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

  // Checks the batch (its structure and the model's limits, batch/batch_validator.hpp); throws
  // InvalidArgument naming the first offending session (its position and example id) and the field.
  void validate(const batch_type& batch) const {
    auto limits = BatchLimits::for_model(config_.num_items, config_.num_ops, config_.max_length,
                                         config_.next_op == NextOpMode::Given);
    limits.allow_empty = false;
    validate_batch(exec_, batch, limits, "EMBSR");
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
    if (rnn_encoder()) {
      id_.rnn = gru_ids("rnn");
    } else if (config_.use_gnn) {
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
    if (config_.use_repeat) {
      id_.repeat_op_count = id("repeat.op_count");
      id_.repeat_next_op = id("repeat.next_op");
      id_.repeat_recency = id("repeat.recency");
      id_.repeat_state = id("repeat.state");
      id_.repeat_bias = id("repeat.bias");
    }
    if (config_.repeat_mixture) {
      id_.repeat_gate = id("repeat.gate");
      id_.repeat_gate_op = id("repeat.gate_op");
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
    GruIds run_gru, rnn;
    std::vector<GgnnIds> ggnn;
    std::vector<StarIds> star;
    std::size_t W_g = kNone, b_g = kNone;
    std::size_t W_Q = kNone, b_Q = kNone, W_1 = kNone, b_1 = kNone, W_2 = kNone, b_2 = kNone, ln_gamma = kNone,
                ln_beta = kNone, positions = kNone, relations = kNone;
    std::size_t W_f = kNone, b_f = kNone, W_nf = kNone, b_nf = kNone;
    std::size_t repeat_op_count = kNone, repeat_next_op = kNone, repeat_recency = kNone, repeat_state = kNone,
                repeat_bias = kNone, repeat_gate = kNone, repeat_gate_op = kNone;
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
    if (config_.fusion == FusionMode::Mlp) return FusionParams<Scalar, M>{mat(id_.W_nf, grad), vec(id_.b_nf, grad)};
    return FusionParams<Scalar, M>{};
  }
  RepeatParams<Scalar, M> repeat(bool grad) const {
    return RepeatParams<Scalar, M>{mat(id_.repeat_op_count, grad), mat(id_.repeat_next_op, grad),
                                   mat(id_.repeat_recency, grad), mat(id_.repeat_state, grad), mat(id_.repeat_bias, grad)};
  }
  RepeatGateParams<Scalar, M> repeat_gate(bool grad) const {
    return RepeatGateParams<Scalar, M>{mat(id_.repeat_gate, grad), mat(id_.repeat_gate_op, grad)};
  }
  // The repeat bonus as the scoring layer takes it (empty without use_repeat or with the mixture).
  ScoringBonus<Scalar, M> scoring_bonus(const batch_type& batch, bool with_gradients) const {
    if (!config_.use_repeat || config_.repeat_mixture) return ScoringBonus<Scalar, M>{};
    return ScoringBonus<Scalar, M>{act_.repeat, batch.node_items, batch.node_session,
                                   with_gradients ? Kokkos::View<Scalar*, M>(grads_.drepeat) : Kokkos::View<Scalar*, M>()};
  }
  FusionOptions fusion_options() const {
    const FusionKind kind = config_.fusion == FusionMode::Gate  ? FusionKind::Gate
                            : config_.fusion == FusionMode::Mlp ? FusionKind::Mlp
                                                                : FusionKind::Fixed;
    return FusionOptions{kind, config_.fixed_beta};
  }
  bool rnn_encoder() const { return config_.rnn_encoder(); }
  InputsOptions inputs_options() const {
    InputsOptions o;
    o.next_op_given = config_.next_op == NextOpMode::Given;
    o.next_op_id = config_.num_ops;  // [NEXT] = num_ops
    o.operations = config_.use_attention_ops;
    o.states_per_row = rnn_encoder();
    return o;
  }
  // The batch the inputs and the attention run over: the batch itself, or (attention without
  // operations over node states) the batch seen over its macro items, so that each item counts once.
  const batch_type& positions_batch(const batch_type& batch) {
    if (!config_.attention_over_macro_items()) return batch;
    macro_view_ = batch_over_macro_items(batch);
    return macro_view_;
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
  // MODEL.md 3-5 as a list of layer calls; every activation lands in act_ (valid until the next call).
  double run_forward(const batch_type& batch, bool training, bool with_loss) {
    validate(batch);
    training_ = training;
    auto& a = act_;
    a.resize(batch.sizes, config_);
    const batch_type& positions = positions_batch(batch);
    const auto S = static_cast<std::size_t>(config_.gnn_steps);

    // Sequential-pattern encoder (3).
    embedding_forward(exec_, params_.value(id_.op), batch.micro_ops, a.eo);
    embedding_forward(exec_, params_.value(id_.item), batch.node_items, a.h[0]);
    star_init_forward(exec_, batch, a.h[0], a.star[0]);
    if (rnn_encoder()) {
      // RNN-Self: hf[T] = GRU over [item ; operation] embeddings of each session's micro-behaviors.
      const auto d = static_cast<int>(config_.d);
      embedding_forward(exec_, params_.value(id_.item), batch.micro_items, detail::embsr_columns(a.xrnn, 0, d));
      embedding_forward(exec_, params_.value(id_.op), batch.micro_ops, detail::embsr_columns(a.xrnn, d, 2 * d));
      sequence_gru_forward(exec_, batch.micro_offsets, a.xrnn, gru(id_.rnn, false), a.hf, rnn_cache_);
    } else if (config_.use_gnn) {
      if (config_.use_run_gru) run_gru_forward(exec_, batch, a.eo, gru(id_.run_gru, false), a.hrun, run_gru_cache_);
      else Kokkos::deep_copy(exec_, a.hrun, Scalar(0));
      for (std::size_t s = 0; s < S; ++s) {
        const int step = static_cast<int>(s);
        ggnn_forward(exec_, batch, a.h[s], a.hrun, ggnn(step, false), a.hhat[s], ggnn_cache_[s]);
        star_update_forward(exec_, batch, a.hhat[s], a.star[s], star(step, false), a.h[s + 1], a.star[s + 1],
                            star_cache_[s]);
      }
      highway_forward(exec_, a.h[0], a.h[S], highway(false), a.hf, highway_cache_);
    }
    // Dyadic relational encoder (4).
    inputs_forward(exec_, positions, inputs_options(), params_.value(id_.op), a.eo, a.hf, a.star_last, a.op0, a.xm,
                   a.xs, a.xt);
    if (config_.use_attention)
      attention_forward(exec_, positions, a.op0, a.xs, a.xm, attention(false), attention_options(training), a.z,
                        attention_cache_);
    // Fusion, scoring, loss (5).
    fusion_forward(exec_, a.z, a.xt, fusion(false), fusion_options(), a.m, fusion_cache_);
    if (config_.use_repeat) repeat_forward(exec_, batch, a.op0, a.hf, repeat(false), a.repeat, repeat_cache_);
    Kokkos::View<const int*, M> targets = with_loss ? Kokkos::View<const int*, M>(batch.targets) : Kokkos::View<const int*, M>();
    double loss_value = 0;
    if (config_.repeat_mixture) {
      repeat_gate_forward(exec_, a.m, a.op0, repeat_gate(false), a.gate);
      scoring_forward(exec_, a.m, params_.value(id_.item), Kokkos::View<const int*, M>(), config_.w_k, scoring_cache_, frozen_);
      loss_value = repeat_mixture_forward(exec_, batch, a.repeat, a.gate, targets, scoring_cache_.scores, mixture_cache_);
    } else {
      loss_value = scoring_forward(exec_, a.m, params_.value(id_.item), targets, config_.w_k, scoring_cache_, frozen_,
                                   scoring_bonus(batch, false));
    }
    if (with_loss && !std::isfinite(loss_value)) {
      check_parameters_finite();
      throw NonFiniteValue("EMBSR: the loss is not finite (" + std::to_string(loss_value) +
                            ") although every parameter is finite");
    }
    return loss_value;
  }

  // ---- backward ------------------------------------------------------------------------------
  // run_forward's layer calls in reverse. Every layer's backward adds into the gradient buffers:
  // grads_ is zeroed first (the GNN loop zeroes its per-step buffers itself).
  void run_backward(const batch_type& batch) {
    const auto& a = act_;
    auto& g = grads_;
    g.resize(batch.sizes, config_);
    g.zero(exec_, config_);
    const auto S = static_cast<std::size_t>(config_.gnn_steps);
    const batch_type& positions = positions_batch(batch);

    // Fusion, scoring, loss (5).
    if (config_.repeat_mixture) {
      repeat_mixture_backward(exec_, batch, Kokkos::View<const int*, M>(batch.targets), mixture_cache_, scoring_cache_.scores,
                              g.drepeat, g.dgate);
      scoring_backward_from_dscores(exec_, a.m, params_.value(id_.item), config_.w_k, scoring_cache_, g.dm,
                                    params_.grad(id_.item));
      repeat_gate_backward(exec_, a.m, a.op0, repeat_gate(false), g.dgate, g.dm, repeat_gate(true));
    } else {
      scoring_backward(exec_, a.m, params_.value(id_.item), Kokkos::View<const int*, M>(batch.targets), config_.w_k,
                       scoring_cache_, g.dm, params_.grad(id_.item), scoring_bonus(batch, true));
    }
    if (config_.use_repeat) repeat_backward(exec_, a.hf, repeat(false), repeat_cache_, g.drepeat, g.dhf, repeat(true));
    fusion_backward(exec_, a.z, a.xt, fusion(false), fusion_options(), fusion_cache_, g.dm, g.dz, g.dxt, fusion(true));
    // Dyadic relational encoder (4). Without attention z is the star, and g.dz is g.dstar.
    if (config_.use_attention)
      attention_backward(exec_, positions, a.op0, a.xs, a.xm, attention(false), attention_options(training_),
                         attention_cache_, g.dz, g.dxs, g.dxm, attention(true));
    inputs_backward(exec_, positions, inputs_options(), a.op0, g.dxt, g.dxm, g.dxs, g.dstar, params_.grad(id_.op), g.deo,
                    g.dhf);
    // Sequential-pattern encoder (3).
    if (rnn_encoder()) {
      const auto d = static_cast<int>(config_.d);
      sequence_gru_backward(exec_, batch.micro_offsets, a.xrnn, gru(id_.rnn, false), rnn_cache_, g.dhf, g.dxrnn,
                            gru(id_.rnn, true));
      embedding_backward(exec_, batch.micro_items, detail::embsr_columns(g.dxrnn, 0, d), params_.grad(id_.item));
      embedding_backward(exec_, batch.micro_ops, detail::embsr_columns(g.dxrnn, d, 2 * d), params_.grad(id_.op));
    } else if (config_.use_gnn) {
      highway_backward(exec_, a.h[0], a.h[S], highway(false), highway_cache_, g.dhf, g.dh0, g.dh, highway(true));
      for (std::size_t s = S; s-- > 0;) {  // g.dh, g.dstar: dL/dh[s+1], dL/dstar[s+1] -> dL/dh[s], dL/dstar[s]
        const int step = static_cast<int>(s);
        Kokkos::deep_copy(exec_, g.dhhat, Scalar(0));
        Kokkos::deep_copy(exec_, g.dstar_prev, Scalar(0));
        star_update_backward(exec_, batch, a.hhat[s], a.star[s], star(step, false), star_cache_[s], g.dh, g.dstar, g.dhhat,
                             g.dstar_prev, star(step, true));
        Kokkos::deep_copy(exec_, g.dh_prev, Scalar(0));
        ggnn_backward(exec_, batch, a.h[s], a.hrun, ggnn(step, false), ggnn_cache_[s], g.dhhat, g.dh_prev, g.dhrun,
                      ggnn(step, true));
        Kokkos::deep_copy(exec_, g.dh, g.dh_prev);
        Kokkos::deep_copy(exec_, g.dstar, g.dstar_prev);
      }
      detail::embsr_accumulate(exec_, g.dh, g.dh0);  // h[0] is the input of the first GGNN step too
      if (config_.use_run_gru)
        run_gru_backward(exec_, batch, a.eo, gru(id_.run_gru, false), run_gru_cache_, g.dhrun, g.deo, gru(id_.run_gru, true));
    } else {
      detail::embsr_accumulate(exec_, g.dhf, g.dh0);  // EMBSR-NG: hf = h[0]
    }
    star_init_backward(exec_, batch, g.dstar, g.dh0);
    embedding_backward(exec_, batch.node_items, g.dh0, params_.grad(id_.item));
    embedding_backward(exec_, batch.micro_ops, g.deo, params_.grad(id_.op));
  }

  Config config_;
  ExecSpace exec_;
  Parameters<Scalar, M> params_;
  Ids id_;
  std::uint64_t step_ = 0;
  bool training_ = false;  // mode of the last forward (the backward replays its dropout masks)

  EmbsrActivations<Scalar, M> act_;  // of the last forward
  EmbsrGradients<Scalar, M> grads_;
  // Layer caches.
  RunGruCache<Scalar, M> run_gru_cache_;
  SequenceGruCache<Scalar, M> rnn_cache_;
  batch_type macro_view_;  // the batch over its macro items (positions_batch), of the last forward
  std::vector<GgnnCache<Scalar, M>> ggnn_cache_;
  std::vector<StarCache<Scalar, M>> star_cache_;
  HighwayCache<Scalar, M> highway_cache_;
  AttentionCache<Scalar, M> attention_cache_;
  FusionCache<Scalar, M> fusion_cache_;
  ScoringCache<Scalar, M> scoring_cache_;
  RepeatCache<Scalar, M> repeat_cache_;
  RepeatMixtureCache<Scalar, M> mixture_cache_;
  bool frozen_ = false;
};

}  // namespace embsr
