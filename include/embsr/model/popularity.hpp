#pragma once
// The counting baselines as session models (model/session_model.hpp): they learn by counting the
// training split once (fit) and score every item of the catalogue on the device like any model.
//   POP    global popularity: an item's occurrences in the training split (the inputs'
//          micro-behaviors and the targets), scaled into [0, 1):  s_v = pop_v / (max_pop + 1).
//   S-POP  the item's micro-behaviors in the session's own input, ties (every item absent from the
//          session included) broken by global popularity:      s_v = count_v + pop_v / (max_pop + 1).
// Scores are doubles: for count_v <= max_length < 2^20 and max_pop < 2^30 the order of the doubles
// is exactly the order of the pairs (count_v, pop_v), ties included, so ranks (pessimistic rule,
// MODEL.md 7) equal those of train/baselines.hpp's rank-only reference (tests/model/test_popularity.cpp).
// Both come from the paper's baselines (Section V-A, Table III), as in Ludewig and Jannach,
// "Evaluation of session-based recommendation algorithms", UMUAI 2018.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_validator.hpp>
#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/layers/top_k.hpp>
#include <embsr/model/model_options.hpp>

namespace embsr {

struct PopularityConfig {
  int num_items = 0;
  int num_ops = 0;
  int max_length = 50;

  void validate() const {
    if (num_items < 1) throw InvalidArgument("PopularityConfig: num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1) throw InvalidArgument("PopularityConfig: num_ops must be >= 1, got " + std::to_string(num_ops));
    if (max_length < 1 || max_length >= (1 << 20))
      throw InvalidArgument("PopularityConfig: max_length must be in [1, 2^20), got " + std::to_string(max_length));
  }
};

namespace detail {

inline void check_popularity_item(index_t item, index_t num_items, const char* who, const char* field,
                                  std::size_t example) {
  if (item < 0 || item >= num_items)
    throw InvalidArgument(std::string(who) + ": example " + std::to_string(example) + ": " + field + " item " +
                          std::to_string(item) + " outside [0, " + std::to_string(num_items) + ")");
}

// Occurrences of every item in the training split (inputs' micro-behaviors and targets) [num_items].
inline std::vector<std::int64_t> count_popularity(const ExampleSet& train, index_t num_items, const char* who) {
  if (num_items <= 0) throw InvalidArgument(std::string(who) + ": num_items must be >= 1, got " + std::to_string(num_items));
  std::vector<std::int64_t> count(static_cast<std::size_t>(num_items), 0);
  for (std::size_t e = 0; e < train.size(); ++e) {
    for (const index_t item : train.input_items(e)) {
      check_popularity_item(item, num_items, who, "input", e);
      ++count[static_cast<std::size_t>(item)];
    }
    check_popularity_item(train.targets[e], num_items, who, "target", e);
    ++count[static_cast<std::size_t>(train.targets[e])];
  }
  return count;
}

}  // namespace detail

// POP (SessionAware = false) and S-POP (true).
template <class ExecSpace, bool SessionAware>
class PopularityModel {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "PopularityModel: ExecSpace must be a Kokkos execution space");

 public:
  using execution_space = ExecSpace;
  using memory_space = typename ExecSpace::memory_space;
  using scalar_type = double;
  using config_type = PopularityConfig;
  using batch_type = Batch<memory_space>;
  static constexpr bool learns_by_gradients = false;

  explicit PopularityModel(const PopularityConfig& config, ExecSpace exec = ExecSpace()) : config_(config), exec_(exec) {
    config_.validate();
    load_tables({std::vector<std::int64_t>(static_cast<std::size_t>(config_.num_items), 0)});
  }

  const PopularityConfig& config() const { return config_; }
  const ExecSpace& execution_space_instance() const { return exec_; }
  void freeze() {}

  // Counts the training split (replacing earlier counts).
  void fit(const ExampleSet& train) {
    load_tables({detail::count_popularity(train, config_.num_items, SessionAware ? "S-POP" : "POP")});
  }
  // [popularity [num_items x 1]]
  std::vector<std::vector<std::int64_t>> tables() const { return {popularity_}; }
  void load_tables(const std::vector<std::vector<std::int64_t>>& tables) {
    if (tables.size() != 1 || tables[0].size() != static_cast<std::size_t>(config_.num_items))
      throw InvalidArgument(std::string(SessionAware ? "S-POP" : "POP") + ": expected one popularity table of " +
                            std::to_string(config_.num_items) + " counts");
    std::int64_t max_pop = 0;
    for (const std::int64_t c : tables[0]) {
      if (c < 0 || c >= (std::int64_t(1) << 30))
        throw InvalidArgument(std::string(SessionAware ? "S-POP" : "POP") + ": popularity count " + std::to_string(c) +
                              " outside [0, 2^30)");
      max_pop = std::max(max_pop, c);
    }
    popularity_ = tables[0];
    // pop_v / (max_pop + 1) in [0, 1), on the device.
    auto host = Kokkos::create_mirror_view(Kokkos::HostSpace(), prior_ = Vec<double, memory_space>(
                                                                          "embsr::popularity::prior", popularity_.size()));
    for (std::size_t v = 0; v < popularity_.size(); ++v)
      host(v) = static_cast<double>(popularity_[v]) / static_cast<double>(max_pop + 1);
    Kokkos::deep_copy(prior_, host);
  }

  void validate(const batch_type& batch) const {
    // The next operation is not used.
    validate_batch(exec_, batch, BatchLimits::for_model(config_.num_items, config_.num_ops, config_.max_length, false),
                   SessionAware ? "S-POP" : "POP");
  }

  // [B x num_items]: the prior, plus (S-POP) the session's counts. One thread per session adds its
  // own micro-behaviors in order, so nothing races and the result does not depend on the schedule.
  MatRef<double, memory_space> scores(const batch_type& batch) {
    validate(batch);
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions), V = static_cast<std::size_t>(config_.num_items);
    auto s = ensure(scores_, B, V, "embsr::popularity::scores");
    const auto prior = prior_;
    parallel_for_2d(exec_, "embsr::popularity::prior", B, V,
                    KOKKOS_LAMBDA(const int b, const int v) { s(b, v) = prior(v); });
    if constexpr (SessionAware) {
      const auto offsets = batch.micro_offsets;
      const auto items = batch.micro_items;
      Kokkos::parallel_for("embsr::popularity::session_counts",
                           Kokkos::RangePolicy<ExecSpace>(exec_, 0, static_cast<int>(B)), KOKKOS_LAMBDA(const int b) {
                             for (int i = offsets(b); i < offsets(b + 1); ++i) s(b, items(i)) += 1.0;
                           });
    }
    return s;
  }

  void top_k(const batch_type& batch, int k, Kokkos::View<int**, Kokkos::LayoutRight, memory_space>& ids,
             Kokkos::View<double**, Kokkos::LayoutRight, memory_space>& values) {
    if (k < 1) throw InvalidArgument(std::string(SessionAware ? "S-POP" : "POP") + "::top_k: k must be >= 1, got " + std::to_string(k));
    const auto s = scores(batch);
    const int kk = std::min(k, config_.num_items);
    const auto B = s.extent(0);
    if (ids.extent(0) != B || ids.extent(1) != static_cast<std::size_t>(kk))
      ids = Kokkos::View<int**, Kokkos::LayoutRight, memory_space>("embsr::popularity::ids", B, kk);
    if (values.extent(0) != B || values.extent(1) != static_cast<std::size_t>(kk))
      values = Kokkos::View<double**, Kokkos::LayoutRight, memory_space>("embsr::popularity::values", B, kk);
    embsr::top_k(exec_, s, kk, ids, values);
  }

 private:
  PopularityConfig config_;
  ExecSpace exec_;
  std::vector<std::int64_t> popularity_;
  Vec<double, memory_space> prior_;
  Mat<double, memory_space> scores_;
};

template <class ExecSpace>
using PopModel = PopularityModel<ExecSpace, false>;
template <class ExecSpace>
using SessionPopModel = PopularityModel<ExecSpace, true>;

// Registry entries (model/registry.hpp).
template <bool SessionAware>
struct PopularitySpec {
  template <class ExecSpace>
  using model = PopularityModel<ExecSpace, SessionAware>;
  using config_type = PopularityConfig;

  static ModelOptions options_of(const PopularityConfig& c) {
    return ModelOptions{}.set("num_items", c.num_items).set("num_ops", c.num_ops).set("max_length", c.max_length);
  }
  static PopularityConfig config_of(const ModelOptions& o) {
    PopularityConfig c;
    c.num_items = o.get_int32("num_items", c.num_items);
    c.num_ops = o.get_int32("num_ops", c.num_ops);
    c.max_length = o.get_int32("max_length", c.max_length);
    c.validate();
    return c;
  }

  static ModelSpec spec() {
    ModelSpec s;
    s.info = SessionAware
                 ? ModelInfo{"s-pop", "popularity",
                             "S-POP: the session's own items by their count, ties broken by global popularity",
                             "Ludewig and Jannach, Evaluation of session-based recommendation algorithms, UMUAI 2018 "
                             "(a baseline of the EMBSR paper, Table III)",
                             false, ""}
                 : ModelInfo{"pop", "popularity", "POP: the most popular items of the training split for every session",
                             "Ludewig and Jannach, Evaluation of session-based recommendation algorithms, UMUAI 2018",
                             false, ""};
    s.options = data_option_specs();
    s.validate = [](const ModelOptions& o) { (void)config_of(o); };
    s.count = [](const ModelOptions& o) {
      return StateCount{0, 0, 1, static_cast<std::uint64_t>(config_of(o).num_items)};
    };
    s.layout = [](const ModelOptions& o) {
      StateLayout l;
      l.tables.push_back(ArraySpec{"popularity", static_cast<std::uint64_t>(config_of(o).num_items), 1});
      return l;
    };
    s.memory_bytes = [](const ModelOptions& o, std::uint64_t batch, bool) {
      const auto V = static_cast<std::uint64_t>(config_of(o).num_items);
      const std::uint64_t scores = batch != 0 && V > UINT64_MAX / 16 / batch ? UINT64_MAX / 2 : 8 * batch * V;
      return scores + 24 * V;  // scores + counts, prior and the host copy
    };
    return s;
  }
};

template <class ExecSpace, bool SessionAware>
struct model_spec_of<PopularityModel<ExecSpace, SessionAware>> {
  using type = PopularitySpec<SessionAware>;
};

}  // namespace embsr
