#pragma once
// Evaluation of a model on an example set: every example is scored against the whole catalogue
// (evaluation mode, no dropout), the target's rank is computed on the device with the pessimistic
// tie rule (train/metrics.hpp), and the ranks are accumulated on the host in set order, so the
// result does not depend on the batch size.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/data/ragged_batch.hpp>
#include <embsr/model/embsr.hpp>
#include <embsr/train/metrics.hpp>

namespace embsr {

// The target's pessimistic rank (1-based, 0 = outside the catalogue) of every example of `set`, in
// set order: the model in evaluation mode, batches of batch_size in set order. Throws
// InvalidArgument for batch_size 0 or an example the model rejects (EMBSR::validate).
template <class ExecSpace, class Scalar>
std::vector<std::size_t> evaluate_ranks(EMBSR<ExecSpace, Scalar>& model, const ExampleSet& set,
                                        std::size_t batch_size = 512) {
  using M = typename EMBSR<ExecSpace, Scalar>::memory_space;
  std::vector<std::size_t> out;
  if (set.empty()) return out;
  out.reserve(set.size());
  BatchSampler sampler(set.size(), batch_size, /*shuffle=*/false, /*seed=*/0);  // checks batch_size >= 1
  const std::size_t capacity = std::min(batch_size, set.size());
  Kokkos::View<std::int64_t*, M> ranks("embsr::evaluate::ranks", capacity);
  auto host_ranks = Kokkos::create_mirror_view(ranks);
  BatchBuilder builder;
  HostBatch host;
  Batch<M> batch;
  for (std::size_t i = 0; i < sampler.num_batches(); ++i) {
    builder.build(set, sampler.batch(i), host);
    batch.copy_from(host);
    const auto scores = model.scores(batch);
    const std::size_t B = host.targets.size();
    const auto range = std::make_pair(std::size_t(0), B);
    const auto batch_ranks = Kokkos::subview(ranks, range);
    target_ranks(model.execution_space_instance(), scores, batch.targets, batch_ranks);
    model.execution_space_instance().fence();
    const auto batch_host_ranks = Kokkos::subview(host_ranks, range);
    Kokkos::deep_copy(batch_host_ranks, batch_ranks);
    for (std::size_t b = 0; b < B; ++b) out.push_back(static_cast<std::size_t>(batch_host_ranks(b)));
  }
  return out;
}

// Ranks every example of `set` with the model (as evaluate_ranks) and returns the metrics.
template <class ExecSpace, class Scalar>
RankingMetrics evaluate(EMBSR<ExecSpace, Scalar>& model, const ExampleSet& set, std::size_t batch_size = 512) {
  RankingMetrics metrics;
  for (const std::size_t rank : evaluate_ranks(model, set, batch_size)) metrics.add_rank(rank);
  return metrics;
}

// Metrics split by whether the target already occurs in the example's input ("repeat", the
// consumption S-POP can get right) or not ("explore", where S-POP can only fall back on global
// popularity). Used to show where a model wins or loses against S-POP.
struct RepeatExploreMetrics {
  RankingMetrics repeat, explore;
};

// ranks[e] is the rank of example e's target (as from evaluate_ranks or a baseline's ranks()).
inline RepeatExploreMetrics split_repeat_explore(const ExampleSet& set, const std::vector<std::size_t>& ranks) {
  if (ranks.size() != set.size())
    throw InvalidArgument("split_repeat_explore: " + std::to_string(ranks.size()) + " ranks for " +
                          std::to_string(set.size()) + " examples");
  RepeatExploreMetrics out;
  for (std::size_t e = 0; e < set.size(); ++e) {
    const auto items = set.input_items(e);
    const bool repeat = std::find(items.begin(), items.end(), set.targets[e]) != items.end();
    (repeat ? out.repeat : out.explore).add_rank(ranks[e]);
  }
  return out;
}

}  // namespace embsr
