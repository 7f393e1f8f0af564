#pragma once
// Evaluation of a model on an example set: every example is scored against the whole catalogue
// (evaluation mode, no dropout), the target's rank is computed on the device with the pessimistic
// tie rule (train/metrics.hpp), and the ranks are accumulated on the host in set order, so the
// result does not depend on the batch size.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/communicator.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_builder.hpp>
#include <embsr/layers/top_k.hpp>
#include <embsr/model/session_model.hpp>
#include <embsr/train/metrics.hpp>

namespace embsr {

namespace detail {

// ranks[b] = the rank of session b's target, for the batch's sessions.
template <class ExecSpace, class RanksV>
void ranks_of_batch(SessionModel<ExecSpace>& model, const Batch<typename ExecSpace::memory_space>& batch,
                    const RanksV& ranks) {
  model.target_ranks(batch, ranks);
}
template <class Model, class RanksV, class = std::enable_if_t<is_session_model<Model>::value>>
void ranks_of_batch(Model& model, const Batch<typename Model::memory_space>& batch, const RanksV& ranks) {
  const auto scores = model.scores(batch);
  const auto B = static_cast<std::size_t>(batch.sizes.num_sessions);
  target_ranks(model.execution_space_instance(), scores, batch.targets,
               Kokkos::subview(ranks, std::make_pair(std::size_t(0), B)));
}

}  // namespace detail

namespace detail {

// The ranks of examples [begin, end) of `set`, appended to `out` in set order, batches of batch_size.
template <class Model>
void evaluate_range(Model& model, const ExampleSet& set, std::size_t begin, std::size_t end, std::size_t batch_size,
                    std::vector<std::size_t>& out) {
  using M = typename Model::memory_space;
  if (batch_size == 0) throw InvalidArgument("evaluate_ranks: batch_size must be >= 1");
  if (begin >= end) return;
  const std::size_t capacity = std::min(batch_size, end - begin);
  Kokkos::View<std::int64_t*, M> ranks("embsr::evaluate::ranks", capacity);
  auto host_ranks = Kokkos::create_mirror_view(ranks);
  BatchBuilder builder;
  HostBatch host;
  Batch<M> batch;
  std::vector<index_t> ids;
  for (std::size_t first = begin; first < end; first += batch_size) {
    const std::size_t B = std::min(batch_size, end - first);
    ids.resize(B);
    for (std::size_t b = 0; b < B; ++b) ids[b] = static_cast<index_t>(first + b);
    builder.build(set, Span<const index_t>(ids.data(), B), host);
    batch.copy_from(host);
    const auto range = std::make_pair(std::size_t(0), B);
    ranks_of_batch(model, batch, ranks);
    model.execution_space_instance().fence();
    const auto batch_host_ranks = Kokkos::subview(host_ranks, range);
    Kokkos::deep_copy(batch_host_ranks, Kokkos::subview(ranks, range));
    for (std::size_t b = 0; b < B; ++b) out.push_back(static_cast<std::size_t>(batch_host_ranks(b)));
  }
}

}  // namespace detail

// The target's pessimistic rank (1-based, 0 = outside the catalogue) of every example of `set`, in
// set order: the model in evaluation mode, batches of batch_size in set order. Any session model
// (model/session_model.hpp): a SessionModel<ExecSpace> or a concrete one. Throws InvalidArgument
// for batch_size 0 or an example the model rejects (its validate()).
template <class Model>
std::vector<std::size_t> evaluate_ranks(Model& model, const ExampleSet& set, std::size_t batch_size = 512) {
  std::vector<std::size_t> out;
  out.reserve(set.size());
  detail::evaluate_range(model, set, 0, set.size(), batch_size, out);
  return out;
}

// The same ranks, computed by the processes of `comm` together (data-parallel evaluation): each
// ranks its contiguous share of the set (core/communicator.hpp share_of), and one sum over the
// processes gives every process every rank. A rank depends only on its example (the model's scores
// do not depend on the rest of the batch), so the result equals the one-process evaluation.
template <class Model>
std::vector<std::size_t> evaluate_ranks(Model& model, const ExampleSet& set, std::size_t batch_size,
                                        Communicator& comm) {
  if (comm.size() == 1) return evaluate_ranks(model, set, batch_size);
  const Share mine = share_of(set.size(), comm.rank(), comm.size());
  std::vector<std::size_t> local;
  local.reserve(mine.size());
  detail::evaluate_range(model, set, mine.begin, mine.end, batch_size, local);
  std::vector<std::uint64_t> all(set.size(), 0);
  for (std::size_t i = 0; i < local.size(); ++i) all[mine.begin + i] = local[i];
  comm.allreduce_sum(all.data(), all.size());
  return std::vector<std::size_t>(all.begin(), all.end());
}

// Ranks every example of `set` with the model (as evaluate_ranks) and returns the metrics.
template <class Model>
RankingMetrics evaluate(Model& model, const ExampleSet& set, std::size_t batch_size = 512) {
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
