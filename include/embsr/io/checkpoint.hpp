#pragma once
// Checkpoints of a live EMBSR: make_checkpoint (model and optionally its Adam -> Checkpoint) and
// restore (Checkpoint -> model and optionally Adam). The file format, its reader and writer are in
// io/checkpoint_format.hpp (free of Kokkos), included here.

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/data/vocabulary.hpp>
#include <embsr/io/checkpoint_format.hpp>
#include <embsr/model/config.hpp>
#include <embsr/model/embsr.hpp>
#include <embsr/model/parameters.hpp>
#include <embsr/optim/adam.hpp>

namespace embsr {

namespace checkpoint_detail {

// Keeps a parameter out of template argument deduction (restore(ckpt, model, nullptr) compiles).
template <class T>
struct non_deduced {
  using type = T;
};

}  // namespace checkpoint_detail

// A Checkpoint of a live model (and optionally its optimizer), with the caller's vocabularies
// (each either empty or of the model's size) and training state.
template <class ExecSpace>
Checkpoint make_checkpoint(const EMBSR<ExecSpace, float>& model, const Vocabulary& items, const Vocabulary& ops,
                           const typename checkpoint_detail::non_deduced<Adam<ExecSpace, float>>::type* adam,
                           const TrainingState& training) {
  Checkpoint ck;
  ck.config = model.config();
  ck.items = items;
  ck.ops = ops;
  ck.entries = model.parameters().entries();
  auto to_vector = [](const auto& view) {
    const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
    return std::vector<float>(host.data(), host.data() + host.extent(0));
  };
  model.execution_space_instance().fence();
  ck.values = to_vector(model.parameters().values());
  if (adam != nullptr) {
    ck.has_optimizer = true;
    ck.optimizer.options = adam->options();
    ck.optimizer.steps = adam->steps();
    ck.optimizer.m = to_vector(adam->first_moment());
    ck.optimizer.v = to_vector(adam->second_moment());
    ck.optimizer.v_max = to_vector(adam->max_second_moment());
  }
  ck.training = training;
  if (const std::string problem = checkpoint_detail::check_contents(ck); !problem.empty())
    throw InvalidArgument("make_checkpoint: " + problem);
  return ck;
}

// Loads a checkpoint's parameters (and optimizer state, when `adam` is not null) into a model built
// with a matching configuration. Everything is checked before anything is written; the first
// difference is named (InvalidArgument). Checked: every parameter entry (name, shape, offset), then
// the configuration fields that change what the model computes (sizes, next-operation mode,
// ablation switches, w_k, fixed_beta); dropout, init_std and seed may differ. When `adam` is given
// (resuming training), the model also takes the checkpoint's seed, which drives its dropout masks,
// so that the resumed run continues the interrupted one exactly. The Adam keeps its own options:
// build it with ckpt.optimizer.options to resume a run exactly.
template <class ExecSpace>
void restore(const Checkpoint& ckpt, EMBSR<ExecSpace, float>& model,
             typename checkpoint_detail::non_deduced<Adam<ExecSpace, float>>::type* adam) {
  if (const std::string problem = checkpoint_detail::check_contents(ckpt); !problem.empty())
    throw InvalidArgument("restore: inconsistent checkpoint: " + problem);
  const auto& mine = model.parameters().entries();
  const auto& theirs = ckpt.entries;
  for (std::size_t i = 0; i < std::min(mine.size(), theirs.size()); ++i) {
    const auto& a = theirs[i];
    const auto& b = mine[i];
    if (a.name != b.name)
      throw InvalidArgument("restore: parameter " + std::to_string(i) + " is '" + a.name + "' in the checkpoint, '" +
                            b.name + "' in the model");
    if (a.rows != b.rows || a.cols != b.cols)
      throw InvalidArgument("restore: parameter '" + a.name + "' is " + std::to_string(a.rows) + " x " +
                            std::to_string(a.cols) + " in the checkpoint, " + std::to_string(b.rows) + " x " +
                            std::to_string(b.cols) + " in the model");
    if (a.offset != b.offset)
      throw InvalidArgument("restore: parameter '" + a.name + "' is at offset " + std::to_string(a.offset) +
                            " in the checkpoint, " + std::to_string(b.offset) + " in the model");
  }
  if (mine.size() != theirs.size()) {
    const bool more = theirs.size() > mine.size();
    const auto& extra = more ? theirs[mine.size()] : mine[theirs.size()];
    throw InvalidArgument("restore: the checkpoint has " + std::to_string(theirs.size()) + " parameters, the model " +
                          std::to_string(mine.size()) + " (first unmatched: '" + extra.name + "' in the " +
                          (more ? "checkpoint" : "model") + ")");
  }
  const Config& a = ckpt.config;
  const Config& b = model.config();
  auto differ = [](const char* field, const std::string& x, const std::string& y) {
    throw InvalidArgument(std::string("restore: config.") + field + " is " + x + " in the checkpoint, " + y +
                          " in the model");
  };
  auto check_int = [&](const char* field, long long x, long long y) {
    if (x != y) differ(field, std::to_string(x), std::to_string(y));
  };
  check_int("num_items", a.num_items, b.num_items);
  check_int("num_ops", a.num_ops, b.num_ops);
  check_int("d", a.d, b.d);
  check_int("max_length", a.max_length, b.max_length);
  check_int("gnn_steps", a.gnn_steps, b.gnn_steps);
  check_int("next_op", static_cast<int>(a.next_op), static_cast<int>(b.next_op));
  check_int("use_attention", a.use_attention, b.use_attention);
  check_int("use_gnn", a.use_gnn, b.use_gnn);
  check_int("use_run_gru", a.use_run_gru, b.use_run_gru);
  check_int("use_relations", a.use_relations, b.use_relations);
  check_int("fusion", static_cast<int>(a.fusion), static_cast<int>(b.fusion));
  if (a.w_k != b.w_k) differ("w_k", std::to_string(a.w_k), std::to_string(b.w_k));
  if (a.fusion == FusionMode::Fixed && a.fixed_beta != b.fixed_beta)
    differ("fixed_beta", std::to_string(a.fixed_beta), std::to_string(b.fixed_beta));
  if (ckpt.values.size() != model.num_parameters())
    throw InvalidArgument("restore: the checkpoint has " + std::to_string(ckpt.values.size()) + " values, the model " +
                          std::to_string(model.num_parameters()));
  if (adam != nullptr) {
    if (!ckpt.has_optimizer) throw InvalidArgument("restore: the checkpoint has no optimizer state");
    if (adam->first_moment().extent(0) != ckpt.values.size())
      throw InvalidArgument("restore: the optimizer has " + std::to_string(adam->first_moment().extent(0)) +
                            " values, the checkpoint " + std::to_string(ckpt.values.size()));
  }

  using Unmanaged = Kokkos::View<const float*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  auto upload = [](const std::vector<float>& src, const auto& dst) {
    Kokkos::deep_copy(dst, Unmanaged(src.data(), src.size()));
  };
  model.execution_space_instance().fence();
  upload(ckpt.values, model.parameters().values());
  if (adam != nullptr) {
    upload(ckpt.optimizer.m, adam->first_moment());
    upload(ckpt.optimizer.v, adam->second_moment());
    upload(ckpt.optimizer.v_max, adam->max_second_moment());
    adam->set_steps(ckpt.optimizer.steps);
    model.set_seed(ckpt.config.seed);
  }
  Kokkos::fence();
}

}  // namespace embsr
