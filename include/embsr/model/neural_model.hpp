#pragma once
// What every neural model of the graph and sequence families shares, so that a composition file
// holds only its layer calls:
//   NeuralModelCore  the flat parameters (model/parameters.hpp) declared from a layout list, their
//                    seeded initialisation, the finiteness check of every training step, freezing
//                    for serving, and top-K from the scores of a forward pass;
//   NeuralModel      (CRTP) the session-model interface (model/session_model.hpp) on top of it: a
//                    model derives from NeuralModel<Model, ExecSpace, Scalar, Config> and writes
//                    only run_forward(batch, with_loss) (its layer calls, ending in scoring_forward on
//                    scoring_cache_) and run_backward(batch) (the same calls reversed);
//   neural_model_spec  the registry entry of such a model from its spec's pieces.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_validator.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/random.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/scoring.hpp>
#include <embsr/layers/top_k.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/parameter_layout.hpp>
#include <embsr/model/parameters.hpp>

namespace embsr {

// How parameters start. Normal: N(0, scale) (EMBSR, MODEL.md 6). Uniform: U(-scale, scale), with
// scale = 1 / sqrt(d) in SR-GNN's and its successors' code (reset_parameters).
enum class InitKind { Normal, Uniform };

template <class ExecSpace, class Scalar>
class NeuralModelCore {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "NeuralModelCore: ExecSpace must be a Kokkos execution space");
  static_assert(std::is_floating_point<Scalar>::value, "NeuralModelCore: Scalar must be float or double");

 public:
  using M = typename ExecSpace::memory_space;

  NeuralModelCore(const std::string& model_name, const std::vector<ParameterEntry>& layout, ExecSpace exec)
      : name_(model_name), exec_(exec) {
    for (const auto& e : layout) params_.add(e.name, e.rows, e.cols);
    params_.allocate();
  }

  const std::string& name() const { return name_; }
  const ExecSpace& exec() const { return exec_; }
  Parameters<Scalar, M>& parameters() { return params_; }
  const Parameters<Scalar, M>& parameters() const { return params_; }
  std::size_t id(const std::string& parameter) const { return params_.id(parameter); }
  MatRef<Scalar, M> mat(std::size_t id, bool grad) const { return grad ? params_.grad(id) : params_.value(id); }
  VecRef<Scalar, M> vec(std::size_t id, bool grad) const { return grad ? params_.grad_vec(id) : params_.value_vec(id); }

  // Parameter p from Rng(seed, 1000 + p): the values depend on the seed and the parameter's
  // position in the layout only (as EMBSR's, MODEL.md 6).
  void initialize(std::uint64_t seed, InitKind kind, double scale) {
    auto host = Kokkos::create_mirror_view(params_.values());
    for (std::size_t p = 0; p < params_.entries().size(); ++p) {
      const auto& e = params_.entry(p);
      Rng rng(seed, 1000 + p);
      for (std::size_t i = 0; i < e.size(); ++i) {
        double x;
        if (kind == InitKind::Uniform) {
          x = scale * (2.0 * rng.uniform() - 1.0);
        } else {
          const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
          x = scale * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
        }
        host(e.offset + i) = static_cast<Scalar>(x);
      }
    }
    Kokkos::deep_copy(params_.values(), host);
  }

  // Serving promises fixed parameters until unfreeze(); a frozen model refuses to train.
  void freeze() { frozen_ = true; }
  void unfreeze() { frozen_ = false; }
  bool frozen() const { return frozen_; }
  void require_not_frozen() const {
    if (frozen_) throw InvalidArgument(name_ + "::loss_and_backward: the model is frozen for inference (call unfreeze())");
  }

  // Throws NonFiniteValue naming the first non-finite parameter, if any: one reduction on the
  // device; the host copy happens only when something is wrong.
  void check_parameters_finite() const {
    const auto values = params_.values();
    int bad = 0;
    Kokkos::parallel_reduce(
        "embsr::neural_model::check_finite", Kokkos::RangePolicy<ExecSpace>(exec_, 0, values.extent(0)),
        KOKKOS_LAMBDA(const std::size_t i, int& count) { count += math::isfinite(values(i)) ? 0 : 1; }, bad);
    if (bad == 0) return;
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params_.values());
    for (const auto& e : params_.entries())
      for (std::size_t i = 0; i < e.size(); ++i)
        if (!std::isfinite(static_cast<double>(host(e.offset + i))))
          throw NonFiniteValue(name_ + ": parameter '" + e.name + "' has a non-finite value at row " +
                               std::to_string(i / e.cols) + ", column " + std::to_string(i % e.cols));
  }

  // A finite loss, or NonFiniteValue naming the parameter (or saying that all are finite).
  void require_finite_loss(double loss_value) const {
    if (std::isfinite(loss_value)) return;
    check_parameters_finite();
    throw NonFiniteValue(name_ + ": the loss is not finite (" + std::to_string(loss_value) +
                         ") although every parameter is finite");
  }

  // The k best of `scores` [B x V] per row, best first: ids and values [B x k'], k' = min(k, V).
  template <class SV>
  void top_k(const SV& scores, int k, Kokkos::View<int**, Kokkos::LayoutRight, M>& ids,
             Kokkos::View<Scalar**, Kokkos::LayoutRight, M>& values) const {
    if (k < 1) throw InvalidArgument(name_ + "::top_k: k must be >= 1, got " + std::to_string(k));
    const auto B = scores.extent(0);
    const int kk = std::min<int>(k, static_cast<int>(scores.extent(1)));
    if (ids.extent(0) != B || ids.extent(1) != static_cast<std::size_t>(kk))
      ids = Kokkos::View<int**, Kokkos::LayoutRight, M>("embsr::top_k::ids", B, kk);
    if (values.extent(0) != B || values.extent(1) != static_cast<std::size_t>(kk))
      values = Kokkos::View<Scalar**, Kokkos::LayoutRight, M>("embsr::top_k::values", B, kk);
    embsr::top_k(exec_, scores, kk, ids, values);
  }

 private:
  std::string name_;
  ExecSpace exec_;
  Parameters<Scalar, M> params_;
  bool frozen_ = false;
};

// The session-model interface of a neural model Derived with config Config (fields num_items,
// num_ops, max_length, d, seed; validate()). Derived provides, privately with this class as a
// friend:
//   double run_forward(const batch_type& batch, bool with_loss)  validates the batch, computes the
//          scores into scoring_cache_ (and the mean loss with the batch's targets when with_loss)
//   void run_backward(const batch_type& batch)                   the backward of the last forward,
//          adding into parameters().grads() (zeroed before)
// The models of the graph family have no dropout: a training step's `step` and `training` change
// nothing, and the seed only names the initialisation.
template <class Derived, class ExecSpace, class Scalar, class Config>
class NeuralModel {
 public:
  using execution_space = ExecSpace;
  using memory_space = typename ExecSpace::memory_space;
  using scalar_type = Scalar;
  using config_type = Config;
  static constexpr bool learns_by_gradients = true;
  using M = memory_space;
  using batch_type = Batch<M>;
  using matrix = MatRef<Scalar, M>;

  const Config& config() const { return config_; }
  const ExecSpace& execution_space_instance() const { return core_.exec(); }
  Parameters<Scalar, M>& parameters() { return core_.parameters(); }
  const Parameters<Scalar, M>& parameters() const { return core_.parameters(); }
  void set_seed(std::uint64_t seed) { config_.seed = seed; }
  void freeze() { core_.freeze(); }
  void unfreeze() {
    core_.unfreeze();
    scoring_cache_.items_hat_current = false;
  }
  void check_parameters_finite() const { core_.check_parameters_finite(); }

  // InvalidArgument naming the first offending session and field (batch/batch_validator.hpp).
  void validate(const batch_type& batch) const {
    auto limits = BatchLimits::for_model(config_.num_items, config_.num_ops, config_.max_length, false);
    limits.allow_empty = false;
    validate_batch(core_.exec(), batch, limits, core_.name().c_str());
  }

  // Scores of every item for every session [B x V] (evaluation), valid until the next call.
  matrix scores(const batch_type& batch) {
    derived().run_forward(batch, false);
    return scoring_cache_.scores;
  }
  void top_k(const batch_type& batch, int k, Kokkos::View<int**, Kokkos::LayoutRight, M>& ids,
             Kokkos::View<Scalar**, Kokkos::LayoutRight, M>& values) {
    derived().run_forward(batch, false);
    core_.top_k(scoring_cache_.scores, k, ids, values);
  }
  double loss(const batch_type& batch) { return derived().run_forward(batch, true); }

  // Loss and d(loss)/d(parameters) in parameters().grads() (overwritten).
  double loss_and_backward(const batch_type& batch, std::uint64_t step = 0, bool training = true) {
    (void)step, (void)training;
    core_.require_not_frozen();
    core_.check_parameters_finite();
    const double loss_value = derived().run_forward(batch, true);
    core_.parameters().zero_grads();
    derived().run_backward(batch);
    core_.exec().fence();
    return loss_value;
  }

 protected:
  // `config` validated, parameters from `layout` U(-1/sqrt(d), 1/sqrt(d)) (SR-GNN's and its
  // successors' reset_parameters), scores of `kind`.
  NeuralModel(const Config& config, const char* name, const std::vector<ParameterEntry>& layout, ScoreKind kind,
              ExecSpace exec)
      : config_(config), core_(name, layout, exec) {
    core_.initialize(config_.seed, InitKind::Uniform, 1.0 / std::sqrt(static_cast<double>(config_.d)));
    scoring_cache_.kind = kind;
  }

  // The scoring head over `session` [B x d] against the item table, with the batch's targets when
  // `with_loss`; a non-finite loss is an error naming the parameter.
  double score(const batch_type& batch, const matrix& session, const matrix& items, double w_k, bool with_loss) {
    const Kokkos::View<const int*, M> targets =
        with_loss ? Kokkos::View<const int*, M>(batch.targets) : Kokkos::View<const int*, M>();
    const double loss_value = scoring_forward(core_.exec(), session, items, targets, w_k, scoring_cache_, core_.frozen());
    if (with_loss) core_.require_finite_loss(loss_value);
    return loss_value;
  }
  // A gradient buffer of the backward: storage grown to [rows x cols] (embsr::ensure), zeroed.
  matrix zeroed(Mat<Scalar, M>& storage, std::size_t rows, std::size_t cols, const char* label) {
    const matrix v = ensure(storage, rows, cols, label);
    Kokkos::deep_copy(core_.exec(), v, Scalar(0));
    return v;
  }
  // Its backward: dL/dsession into dsession, dL/ditems added into ditems.
  void score_backward(const batch_type& batch, const matrix& session, const matrix& items, double w_k,
                      const matrix& dsession, const matrix& ditems) {
    scoring_backward(core_.exec(), session, items, Kokkos::View<const int*, M>(batch.targets), w_k, scoring_cache_,
                     dsession, ditems);
  }

  Config config_;
  NeuralModelCore<ExecSpace, Scalar> core_;
  ScoringCache<Scalar, M> scoring_cache_;

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }
};

namespace detail {

// The data sizes every model's options carry, both ways.
template <class Config>
void set_data_options(ModelOptions& o, const Config& c) {
  o.set("num_items", c.num_items).set("num_ops", c.num_ops).set("max_length", c.max_length);
}
template <class Config>
void get_data_options(const ModelOptions& o, Config& c) {
  c.num_items = o.get_int32("num_items", c.num_items);
  c.num_ops = o.get_int32("num_ops", c.num_ops);
  c.max_length = o.get_int32("max_length", c.max_length);
}

}  // namespace detail

// The registry entry (model/model_options.hpp's ModelSpec) of a neural model from its Spec:
//   Spec::info()                      name, family, description, paper
//   Spec::own_options()               its options after the data sizes, defaults from config_type{}
//   Spec::config_of(options)          validated
//   Spec::layout(config)              its parameters (model/parameter_layout.hpp entries)
//   Spec::activation_vectors(config)  d-vectors of activations per micro-behavior (memory estimate)
//   Spec::extra_bytes(config, batch)  what the estimate misses beyond those (0 for most)
template <class Spec>
ModelSpec neural_model_spec() {
  ModelSpec s;
  s.info = Spec::info();
  s.info.learns_by_gradients = true;
  s.options = data_option_specs();
  for (auto& o : Spec::own_options()) s.options.push_back(std::move(o));
  s.validate = [](const ModelOptions& o) { (void)Spec::config_of(o); };
  s.layout = [](const ModelOptions& o) { return neural_state_layout(Spec::layout(Spec::config_of(o))); };
  s.count = [](const ModelOptions& o) { return neural_state_count(Spec::layout(Spec::config_of(o))); };
  s.memory_bytes = [](const ModelOptions& o, std::uint64_t batch, bool training) {
    const auto c = Spec::config_of(o);
    return neural_memory_bytes(Spec::layout(c), static_cast<std::uint64_t>(c.num_items), static_cast<std::uint64_t>(c.d),
                               static_cast<std::uint64_t>(c.max_length), Spec::activation_vectors(c), batch, training) +
           Spec::extra_bytes(c, batch);
  };
  return s;
}

}  // namespace embsr
