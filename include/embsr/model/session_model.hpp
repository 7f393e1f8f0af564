#pragma once
// The session-model interface: what every model of the library provides, so that one trainer,
// one evaluation, one checkpoint format and one recommender serve them all.
//
// Two faces of the same requirements:
//
//  1. Compile time (zero cost, for code that knows its model's type): a model class M is a session
//     model when is_session_model<M>::value holds; require_session_model<M>() states each failed
//     requirement in its own static_assert. M provides
//       types      execution_space, memory_space, scalar_type (of its scores), config_type
//       constant   static constexpr bool learns_by_gradients
//       config()                         -> const config_type&
//       execution_space_instance()       -> const execution_space&
//       validate(batch)                  throws InvalidArgument naming the first bad session
//       scores(batch)                    -> [B x num_items] View of scalar_type, evaluation mode
//       top_k(batch, k, ids, values)     ids [B x k'] int, values [B x k'] scalar_type, best first
//       freeze()                         promise of fixed state (serving)
//     and, when it learns by gradients (EMBSR and the neural models):
//       parameters()                     -> Parameters<float, memory_space>& (flat values + grads)
//       loss_and_backward(batch, step, training) -> double; gradients left in parameters().grads()
//       check_parameters_finite()        throws NonFiniteValue
//       set_seed(seed)                   the seed of its dropout masks (resuming a run)
//       optional: last_loss_terms()      how many terms the last loss averaged (default: the batch's
//                                        sessions; BERT4Rec: its masked positions), which weighs
//                                        each rank's gradients in data-parallel training
//     or, when it learns by counting or indexing (POP, S-POP, neighbourhood models):
//       fit(train)                       from an ExampleSet (the training split)
//       tables() / load_tables(tables)   what it learned, as int64 arrays in its StateLayout order
//     A spec (model_spec_of<M>::type) names it for the registry: see model/registry.hpp.
//
//  2. Run time (the tools pick a model by name): SessionModel<ExecSpace> is the abstract class of
//     the same requirements, and ModelAdapter<Spec, M> wraps any concrete M into it (owning it, or
//     referring to a model the caller owns). The trainer, evaluation, checkpoints and the
//     recommender take a SessionModel<ExecSpace>&, so concrete models work with them unchanged.
//
// Scores of one session never depend on the rest of the batch, the thread count or the backend
// beyond floating-point tolerance (tested for every model).

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/layers/top_k.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/parameters.hpp>

namespace embsr {

namespace detail {

template <class...>
using void_t = void;

template <class M, class = void>
struct has_model_types : std::false_type {};
template <class M>
struct has_model_types<M, void_t<typename M::execution_space, typename M::memory_space, typename M::scalar_type,
                                 typename M::config_type, decltype(M::learns_by_gradients)>> : std::true_type {};

template <class M>
using batch_of = Batch<typename M::memory_space>;
template <class M>
using ids_view_of = Kokkos::View<int**, Kokkos::LayoutRight, typename M::memory_space>;
template <class M>
using values_view_of = Kokkos::View<typename M::scalar_type**, Kokkos::LayoutRight, typename M::memory_space>;

template <class M, class = void>
struct has_common_members : std::false_type {};
template <class M>
struct has_common_members<
    M, void_t<decltype(std::declval<const M&>().config()), decltype(std::declval<const M&>().execution_space_instance()),
              decltype(std::declval<const M&>().validate(std::declval<const batch_of<M>&>())),
              decltype(std::declval<M&>().scores(std::declval<const batch_of<M>&>())),
              decltype(std::declval<M&>().top_k(std::declval<const batch_of<M>&>(), 1, std::declval<ids_view_of<M>&>(),
                                                 std::declval<values_view_of<M>&>())),
              decltype(std::declval<M&>().freeze())>> : std::true_type {};

template <class M, class = void>
struct has_gradient_members : std::false_type {};
template <class M>
struct has_gradient_members<
    M, void_t<decltype(std::declval<M&>().parameters().values()),
              decltype(std::declval<M&>().loss_and_backward(std::declval<const batch_of<M>&>(), std::uint64_t(0), true)),
              decltype(std::declval<const M&>().check_parameters_finite()),
              decltype(std::declval<M&>().set_seed(std::uint64_t(0)))>> : std::true_type {};

template <class M, class = void>
struct has_counting_members : std::false_type {};
template <class M>
struct has_counting_members<M, void_t<decltype(std::declval<M&>().fit(std::declval<const ExampleSet&>())),
                                      decltype(std::declval<const M&>().tables()),
                                      decltype(std::declval<M&>().load_tables(
                                          std::declval<const std::vector<std::vector<std::int64_t>>&>()))>>
    : std::true_type {};

template <class M, class = void>
struct has_loss_terms : std::false_type {};
template <class M>
struct has_loss_terms<M, void_t<decltype(std::declval<const M&>().last_loss_terms())>> : std::true_type {};

template <class M, bool = has_model_types<M>::value>
struct learns_by_gradients_of : std::false_type {};
template <class M>
struct learns_by_gradients_of<M, true> : std::bool_constant<M::learns_by_gradients> {};

}  // namespace detail

template <class M>
struct is_session_model
    : std::bool_constant<detail::has_model_types<M>::value && detail::has_common_members<M>::value &&
                         (detail::learns_by_gradients_of<M>::value ? detail::has_gradient_members<M>::value
                                                                   : detail::has_counting_members<M>::value)> {};

// One static_assert per requirement, so that a model missing one is told which.
template <class M>
constexpr bool require_session_model() {
  static_assert(detail::has_model_types<M>::value,
                "session model: M must declare execution_space, memory_space, scalar_type, config_type and "
                "static constexpr bool learns_by_gradients (see model/session_model.hpp)");
  static_assert(!detail::has_model_types<M>::value || detail::has_common_members<M>::value,
                "session model: M must provide config(), execution_space_instance(), validate(batch), scores(batch), "
                "top_k(batch, k, ids, values) and freeze() (see model/session_model.hpp)");
  static_assert(!detail::learns_by_gradients_of<M>::value || detail::has_gradient_members<M>::value,
                "session model: a model that learns by gradients must provide parameters(), "
                "loss_and_backward(batch, step, training), check_parameters_finite() and set_seed(seed)");
  static_assert(!detail::has_model_types<M>::value || detail::learns_by_gradients_of<M>::value ||
                    detail::has_counting_members<M>::value,
                "session model: a model that learns by counting must provide fit(train), tables() and "
                "load_tables(tables)");
  return is_session_model<M>::value;
}

// The abstract session model (the run-time face of the requirements above).
template <class ExecSpace>
class SessionModel {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "SessionModel: ExecSpace must be a Kokkos execution space");

 public:
  using execution_space = ExecSpace;
  using memory_space = typename ExecSpace::memory_space;
  using batch_type = Batch<memory_space>;
  using ids_view = Kokkos::View<int**, Kokkos::LayoutRight, memory_space>;
  using values_view = Kokkos::View<float**, Kokkos::LayoutRight, memory_space>;
  using ranks_view = Kokkos::View<std::int64_t*, memory_space>;
  using tables_type = std::vector<std::vector<std::int64_t>>;

  virtual ~SessionModel() = default;

  virtual const ModelSpec& spec() const = 0;
  const ModelInfo& info() const { return spec().info; }
  const std::string& name() const { return spec().info.name; }
  bool learns_by_gradients() const { return spec().info.learns_by_gradients; }
  // Every option of the model (data sizes included), as a checkpoint records them.
  virtual ModelOptions options() const = 0;
  virtual const ExecSpace& execution_space_instance() const = 0;

  virtual void validate(const batch_type& batch) const = 0;
  // The pessimistic rank (1-based; MODEL.md 7) of every session's target among all items, in
  // evaluation mode: ranks[b] for b < B (ranks may be longer).
  virtual void target_ranks(const batch_type& batch, const ranks_view& ranks) = 0;
  // The k best items of every session, best first; the values as float (the ranking itself is
  // made in the model's own precision).
  virtual void top_k(const batch_type& batch, int k, ids_view& ids, values_view& values) = 0;
  virtual void freeze() = 0;

  // Models that learn by counting or indexing.
  virtual void fit(const ExampleSet& train) = 0;
  virtual tables_type tables() const = 0;
  virtual void load_tables(const tables_type& tables) = 0;

  // Models that learn by gradients (the others throw InvalidArgument / return nullptr).
  virtual Parameters<float, memory_space>* parameters() = 0;
  const Parameters<float, memory_space>* parameters() const {
    return const_cast<SessionModel*>(this)->parameters();
  }
  virtual double loss_and_backward(const batch_type& batch, std::uint64_t step, bool training) = 0;
  // The number of terms the mean loss of the last loss_and_backward(batch, ...) averaged (the
  // batch's sessions, or the model's own count): N ranks that each take part of a global batch
  // weigh their gradients by it, so that together they compute the gradient of the same mean as
  // one process (train/trainer.hpp).
  virtual double last_loss_terms(const batch_type& batch) const = 0;
  virtual void check_parameters_finite() const = 0;
  virtual void set_seed(std::uint64_t seed) = 0;
};

namespace detail {

// Owns the model, or refers to one the caller owns.
template <class Model>
class ModelHolder {
 public:
  explicit ModelHolder(Model& model) : model_(&model) {}
  explicit ModelHolder(std::unique_ptr<Model> model) : owned_(std::move(model)), model_(owned_.get()) {}
  Model& get() const { return *model_; }

 private:
  std::unique_ptr<Model> owned_;
  Model* model_;
};

}  // namespace detail

// A concrete session model seen through SessionModel<execution_space>.
template <class Model, class Spec = typename model_spec_of<Model>::type>
class ModelAdapter final : public SessionModel<typename Model::execution_space> {
  static_assert(require_session_model<Model>(), "ModelAdapter: not a session model");
  using Base = SessionModel<typename Model::execution_space>;
  using Scalar = typename Model::scalar_type;
  using M = typename Model::memory_space;

 public:
  using typename Base::batch_type;
  using typename Base::ids_view;
  using typename Base::ranks_view;
  using typename Base::tables_type;
  using typename Base::values_view;
  using Base::parameters;  // the const overload too

  explicit ModelAdapter(Model& model) : holder_(model) {}
  explicit ModelAdapter(std::unique_ptr<Model> model) : holder_(std::move(model)) {}

  Model& model() const { return holder_.get(); }

  const ModelSpec& spec() const override {
    static const ModelSpec s = Spec::spec();
    return s;
  }
  ModelOptions options() const override { return Spec::options_of(model().config()); }
  const typename Model::execution_space& execution_space_instance() const override {
    return model().execution_space_instance();
  }
  void validate(const batch_type& batch) const override { model().validate(batch); }

  void target_ranks(const batch_type& batch, const ranks_view& ranks) override {
    const auto scores = model().scores(batch);
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions);
    embsr::target_ranks(execution_space_instance(), scores, batch.targets,
                        Kokkos::subview(ranks, std::make_pair(std::size_t(0), B)));
  }

  void top_k(const batch_type& batch, int k, ids_view& ids, values_view& values) override {
    if constexpr (std::is_same<Scalar, float>::value) {
      model().top_k(batch, k, ids, values);
    } else {
      model().top_k(batch, k, ids, native_values_);
      if (values.extent(0) != native_values_.extent(0) || values.extent(1) != native_values_.extent(1))
        values = values_view(Kokkos::view_alloc("embsr::ModelAdapter::values", Kokkos::WithoutInitializing),
                             native_values_.extent(0), native_values_.extent(1));
      const auto native = native_values_;
      const auto out = values;
      parallel_for_2d(execution_space_instance(), "embsr::ModelAdapter::values", out.extent(0), out.extent(1),
                      KOKKOS_LAMBDA(const int i, const int j) { out(i, j) = static_cast<float>(native(i, j)); });
    }
  }
  void freeze() override { model().freeze(); }

  void fit(const ExampleSet& train) override {
    if constexpr (Model::learns_by_gradients) {
      (void)train;
      throw InvalidArgument("model '" + this->name() + "' learns by gradients: train it with embsr::Trainer");
    } else {
      model().fit(train);
    }
  }
  tables_type tables() const override {
    if constexpr (Model::learns_by_gradients) return {};
    else return model().tables();
  }
  void load_tables(const tables_type& tables) override {
    if constexpr (Model::learns_by_gradients) {
      if (!tables.empty()) throw InvalidArgument("model '" + this->name() + "' has no tables");
    } else {
      model().load_tables(tables);
    }
  }

  Parameters<float, M>* parameters() override {
    if constexpr (Model::learns_by_gradients && std::is_same<Scalar, float>::value) return &model().parameters();
    else return nullptr;
  }
  double loss_and_backward(const batch_type& batch, std::uint64_t step, bool training) override {
    if constexpr (Model::learns_by_gradients) return model().loss_and_backward(batch, step, training);
    else {
      (void)batch, (void)step, (void)training;
      throw InvalidArgument("model '" + this->name() + "' does not learn by gradients (fit it)");
    }
  }
  double last_loss_terms(const batch_type& batch) const override {
    if constexpr (detail::has_loss_terms<Model>::value) return static_cast<double>(model().last_loss_terms());
    else return static_cast<double>(batch.sizes.num_sessions);
  }
  void check_parameters_finite() const override {
    if constexpr (Model::learns_by_gradients) model().check_parameters_finite();
  }
  void set_seed(std::uint64_t seed) override {
    if constexpr (Model::learns_by_gradients) model().set_seed(seed);
    else (void)seed;
  }

 private:
  detail::ModelHolder<Model> holder_;
  Kokkos::View<Scalar**, Kokkos::LayoutRight, M> native_values_;
};

// A SessionModel view of a concrete model the caller owns (which must outlive it).
template <class Model>
std::unique_ptr<SessionModel<typename Model::execution_space>> adapt_model(Model& model) {
  return std::make_unique<ModelAdapter<Model>>(model);
}

}  // namespace embsr
