#pragma once
// The whole-model checks every neural model of the library passes, written once:
//   - gradients of the loss against central finite differences in double (every coordinate, or
//     evenly spaced ones of each parameter);
//   - a session's scores do not depend on the rest of its batch;
//   - every enabled backend computes the same function (float, against the host);
//   - a frozen model scores as before and refuses to train;
//   - a checkpoint written through the registry loads into a model with the same name, options
//     and scores, bit for bit (after a training step, so that the parameters are not the seed's);
//   - the model memorises 64 real JD sessions (the training loss falls below a fraction of its
//     start within a few hundred Adam steps).
// A model's test file calls them with its class template and a tiny config.

#include <catch2/catch.hpp>

#include <cmath>
#include <tuple>
#include <vector>

#include <embsr/batch/batch_builder.hpp>
#include <embsr/data/jd_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/io/checkpoint.hpp>
#include <embsr/model/registry.hpp>
#include <embsr/optim/adam.hpp>

#include "data_paths.hpp"
#include "exec_spaces.hpp"
#include "gradcheck.hpp"
#include "model_fixture.hpp"

namespace embsr::test {

// The execution spaces of the double-precision whole-model checks (finite differences, batch
// invariance, freezing): the default space only (OpenMP on a CPU, the device in a CUDA build). That
// every other space computes the same function is check_backends_agree's job, and every layer's
// finite differences run on every space in its own test; instantiating each model once more in
// double per space would only add compile time.
using ModelExecutionSpaces = std::tuple<Kokkos::DefaultExecutionSpace>;

// d(loss)/d(theta) for `coords_per_param` evenly spaced coordinates of every parameter (0: all)
// against central differences of the training loss (same step: same dropout masks, if any).
template <class Model>
void check_model_gradients(Model& model, const ExampleSet& set, std::size_t coords_per_param = 0) {
  using M = typename Model::memory_space;
  const auto batch = make_batch<M>(set, all_ids(set));
  const std::uint64_t step = 3;
  model.loss_and_backward(batch, step, /*training=*/true);
  const auto grads = to_vector(model.parameters().grads());
  auto loss = [&] { return model.loss_and_backward(batch, step, true); };
  std::vector<GradTarget<M>> targets;
  const auto& params = model.parameters();
  for (const auto& e : params.entries()) {
    GradTarget<M> t;
    t.name = e.name;
    t.value = Kokkos::View<double*, M, Kokkos::MemoryTraits<Kokkos::Unmanaged>>(params.values().data() + e.offset, e.size());
    t.analytic.assign(grads.begin() + static_cast<std::ptrdiff_t>(e.offset),
                      grads.begin() + static_cast<std::ptrdiff_t>(e.offset + e.size()));
    targets.push_back(t);
  }
  // Floor 1e-3: a gradient below it must match to 1e-9 absolute, where finite differences of an
  // O(1) loss stop resolving relative error.
  check_gradients<M>(loss, targets, 1e-6, 1e-5, coords_per_param, 1e-3);
}

template <class Model>
std::vector<double> session_scores(Model& model, const ExampleSet& set, const std::vector<index_t>& ids, std::size_t row) {
  using M = typename Model::memory_space;
  const auto batch = make_batch<M>(set, ids);
  auto scores = model.scores(batch);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), scores);
  std::vector<double> out(host.extent(1));
  for (std::size_t v = 0; v < out.size(); ++v) out[v] = host(row, v);
  return out;
}

// Each session of `set` scored alone, first of a batch and last of one: the same scores.
template <class Model>
void check_batch_invariance(Model& model, const ExampleSet& set) {
  REQUIRE(set.size() >= 5);
  for (index_t s = 0; s < static_cast<index_t>(set.size()); ++s) {
    const auto alone = session_scores(model, set, {s}, 0);
    const auto first = session_scores(model, set, {s, 4, 2, 0}, 0);
    const auto last = session_scores(model, set, {1, 3, 4, s}, 3);
    for (std::size_t v = 0; v < alone.size(); ++v) {
      CHECK(first[v] == Approx(alone[v]).epsilon(1e-12).margin(1e-12));
      CHECK(last[v] == Approx(alone[v]).epsilon(1e-12).margin(1e-12));
    }
  }
}

// ModelOf<Exec> (a float model) on every enabled backend against the host's default space:
// scores, loss and gradients.
template <template <class> class ModelOf, class Config>
void check_backends_agree(const Config& config, const ExampleSet& set) {
  using Host = Kokkos::DefaultHostExecutionSpace;
  ModelOf<Host> reference(config);
  const auto ref_batch = make_batch<Host::memory_space>(set, all_ids(set));
  const auto ref_scores = to_vector(reference.scores(ref_batch));  // a copy: the buffer is reused
  const double ref_loss = reference.loss_and_backward(ref_batch, 1, true);
  const auto ref_grads = to_vector(reference.parameters().grads());
  auto compare = [&](auto exec_tag) {
    using Exec = decltype(exec_tag);
    ModelOf<Exec> model(config);
    const auto batch = make_batch<typename Exec::memory_space>(set, all_ids(set));
    const auto scores = to_vector(model.scores(batch));
    REQUIRE(scores.size() == ref_scores.size());
    for (std::size_t i = 0; i < scores.size(); ++i) CHECK(scores[i] == Approx(ref_scores[i]).margin(1e-4));
    CHECK(model.loss_and_backward(batch, 1, true) == Approx(ref_loss).epsilon(1e-5));
    const auto grads = to_vector(model.parameters().grads());
    for (std::size_t i = 0; i < grads.size(); ++i) CHECK(grads[i] == Approx(ref_grads[i]).margin(1e-4));
  };
  std::apply([&](auto... spaces) { (compare(spaces), ...); }, ExecutionSpaces{});
}

// A frozen model scores as before, refuses loss_and_backward, and trains again once unfrozen.
template <class Model>
void check_freeze(Model& model, const ExampleSet& set) {
  using M = typename Model::memory_space;
  const auto batch = make_batch<M>(set, all_ids(set));
  const auto before = to_vector(model.scores(batch));
  model.freeze();
  CHECK(to_vector(model.scores(batch)) == before);
  CHECK_THROWS_AS(model.loss_and_backward(batch, 0, true), InvalidArgument);
  model.unfreeze();
  CHECK(std::isfinite(model.loss_and_backward(batch, 0, true)));
}

// The registered model `name` with `options` (data sizes of `set`'s tiny examples), one Adam step
// on `set`, a checkpoint file, and the model it restores: same name, options and scores.
inline void check_checkpoint_round_trip(const std::string& name, ModelOptions options, const ExampleSet& set) {
  using Exec = Kokkos::DefaultExecutionSpace;
  options.set("num_items", 9).set("num_ops", 3).set("max_length", 8);
  auto model = make_model<Exec>(name, options);
  const auto batch = make_batch<Exec::memory_space>(set, all_ids(set));
  model->loss_and_backward(batch, 0, true);
  Adam<Exec, float> adam(model->parameters()->size(), AdamOptions{});
  adam.step(Exec(), model->parameters()->values(), model->parameters()->grads());
  typename SessionModel<Exec>::ids_view ids;
  typename SessionModel<Exec>::values_view values;
  model->top_k(batch, 9, ids, values);
  const auto before = to_vector(values);
  const std::string path = scratch_dir() + "/model.ckpt";
  save_checkpoint(path, make_checkpoint<Exec>(*model, {}, {}, nullptr, {}));
  const auto loaded = load_checkpoint(path);
  CHECK(loaded.model == name);
  const auto restored = make_model_from<Exec>(loaded);
  CHECK(restored->name() == name);
  CHECK(restored->options() == model->options());
  restored->top_k(batch, 9, ids, values);
  CHECK(to_vector(values) == before);
}

// The first 64 training sessions of the JD Appliances sample in the repository (support 5, L 40).
inline const PreparedData& jd_appliances_for_memorising() {
  static const PreparedData data = [] {
    const auto raw = load_jd({repo_data("jd_appliances/HUP_Data/JD_Applicances_sample"),
                              repo_data("jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample")});
    PreprocessOptions pre;
    pre.min_item_support = 5;
    pre.max_length = 40;
    return preprocess(raw, pre);
  }();
  return data;
}

// `model` (built for jd_appliances_for_memorising()'s sizes) memorises its first 64 training
// sessions: the loss falls below `fraction` of its start within `max_steps` Adam steps at `lr`.
template <class Model>
void check_memorises(Model& model, double lr, double fraction = 0.05, int max_steps = 400) {
  using Exec = typename Model::execution_space;
  const auto& data = jd_appliances_for_memorising();
  REQUIRE(data.train.size() >= 64);
  AdamOptions adam_options;
  adam_options.lr = lr;
  Adam<Exec, typename Model::scalar_type> adam(model.parameters().size(), adam_options);
  std::vector<index_t> ids(64);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<index_t>(i);
  BatchBuilder builder;
  const auto batch = to_memory_space<typename Exec::memory_space>(builder.build(data.train, Span<const index_t>(ids.data(), ids.size())));
  const double first = model.loss_and_backward(batch, 0, true);
  adam.step(Exec(), model.parameters().values(), model.parameters().grads());
  double last = first;
  int steps = 1;
  for (; steps < max_steps && last > fraction * first; ++steps) {
    last = model.loss_and_backward(batch, static_cast<std::uint64_t>(steps), true);
    adam.step(Exec(), model.parameters().values(), model.parameters().grads());
  }
  INFO("loss " << first << " -> " << last << " after " << steps << " steps");
  CHECK(last < fraction * first);
}

}  // namespace embsr::test
