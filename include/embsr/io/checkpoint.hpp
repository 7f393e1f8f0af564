#pragma once
// Checkpoints of live models, of any registered model (model/registry.hpp):
//   load_checkpoint   reads a file (io/checkpoint_format.hpp) and checks it against the model it
//                     names, before anything is built from it;
//   make_checkpoint   a model (and optionally its Adam) -> Checkpoint;
//   restore           Checkpoint -> a model built from the same options (and optionally its Adam);
//   make_model_from   Checkpoint -> a new model of the registered name, restored.
// Each takes a SessionModel<ExecSpace> or any concrete session model (wrapped on the fly).

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <type_traits>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/memory.hpp>
#include <embsr/io/atomic_file.hpp>
#include <embsr/data/vocabulary.hpp>
#include <embsr/io/checkpoint_format.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/parameters.hpp>
#include <embsr/model/registry.hpp>
#include <embsr/model/session_model.hpp>
#include <embsr/optim/adam.hpp>

namespace embsr {

namespace detail {

// Keeps a parameter out of template argument deduction (restore(ckpt, model, nullptr) compiles).
template <class T>
struct non_deduced {
  using type = T;
};

// The first way `ck` does not fit the registered model it names ("" if none): a known name, options
// that model takes and accepts, the state layout those options imply, and the memory such a model
// needs with the file (`file_bytes`) within `limit` (0: not checked). Files of versions 1 and 2
// were checked while decoding, unless `recheck_legacy`.
inline std::string model_problem(const Checkpoint& ck, const CheckpointLimits& limits, std::uint64_t limit,
                                 std::uint64_t file_bytes, bool recheck_legacy = false) {
  if (!recheck_legacy && ck.file_version <= 2) return "";
  const ModelSpec* spec = nullptr;
  for (const auto& s : model_catalog())
    if (s.info.name == ck.model) spec = &s;
  if (spec == nullptr)
    return "a checkpoint of model '" + ck.model + "', which this build does not know (known: " + model_names() + ")";
  const std::string& name = spec->info.name;
  ModelOptions full;
  try {
    check_known_options(*spec, ck.options);
    full = spec->with_defaults(ck.options);
    spec->validate(full);
  } catch (const InvalidArgument& e) {
    return "invalid config of model '" + name + "': " + e.what();
  }
  const StateCount count = spec->count(full);
  if (count.parameter_entries != ck.entries.size() || count.parameter_values != ck.values.size())
    return "the config of model '" + name + "' implies " + std::to_string(count.parameter_entries) +
           " parameter entries with " + std::to_string(count.parameter_values) + " values, the checkpoint has " +
           std::to_string(ck.entries.size()) + " with " + std::to_string(ck.values.size());
  std::uint64_t table_values = 0;
  for (const auto& t : ck.tables) table_values += t.values.size();
  std::uint64_t fixed_table_values = table_values;  // the values of the tables whose rows the options fix
  if (count.table_values_from_state && count.tables == ck.tables.size()) {
    const StateLayout expected = spec->layout(full);
    fixed_table_values = 0;
    for (std::size_t i = 0; i < ck.tables.size(); ++i)
      if (!expected.tables[i].rows_from_state) fixed_table_values += ck.tables[i].values.size();
  }
  if (count.tables != ck.tables.size() || count.table_values != fixed_table_values)
    return "the config of model '" + name + "' implies " + std::to_string(count.tables) + " tables with " +
           std::to_string(count.table_values) + (count.table_values_from_state ? " values in its fixed-size ones" : " values") +
           ", the checkpoint has " + std::to_string(ck.tables.size()) + " with " + std::to_string(fixed_table_values);
  if (ck.has_optimizer && !spec->info.learns_by_gradients)
    return "model '" + name + "' does not learn by gradients, yet the checkpoint holds optimizer state";
  const std::uint64_t need = saturating_mul_add(1, spec->memory_bytes(full, limits.batch_sessions, limits.training), file_bytes);
  if (limit != 0 && need > limit)
    return "a model '" + name + "' of this config needs about " + format_bytes(need) + " for batches of " +
           std::to_string(limits.batch_sessions) + " sessions" + (limits.training ? " in training" : "") +
           ", more than the memory limit of " + format_bytes(limit) +
           (limits.memory_bytes == 0 ? " (the memory available now)" : "");
  const StateLayout layout = spec->layout(full);
  // "" when the array (name, shape) is the one the layout expects at position i.
  auto mismatch = [](const char* kind, std::size_t i, const std::string& got, std::uint64_t rows,
                     std::uint64_t cols, const ArraySpec& x) -> std::string {
    if (got == x.name && (rows == x.rows || x.rows_from_state) && cols == x.cols) return "";
    return std::string(kind) + " " + std::to_string(i) + " is '" + got + "' [" + std::to_string(rows) + " x " +
           std::to_string(cols) + "], the config implies '" + x.name + "' [" + std::to_string(x.rows) + " x " +
           std::to_string(x.cols) + "]";
  };
  for (std::size_t i = 0; i < ck.entries.size(); ++i) {
    const auto& e = ck.entries[i];
    if (std::string p = mismatch("parameter", i, e.name, e.rows, e.cols, layout.parameters[i]); !p.empty()) return p;
  }
  for (std::size_t i = 0; i < ck.tables.size(); ++i) {
    const auto& t = ck.tables[i];
    if (std::string p = mismatch("table", i, t.name, t.rows, t.cols, layout.tables[i]); !p.empty()) return p;
  }
  return "";
}

// Everything about `ck` that a writer must not get wrong: fits its model (layout from its options)
// and is consistent as a container. "" if so.
inline std::string checkpoint_problem(const Checkpoint& ck) {
  if (std::string p = model_problem(ck, CheckpointLimits{}, 0, 0, /*recheck_legacy=*/true); !p.empty()) return p;
  return detail::checkpoint_contents_problem(ck);
}

template <class ExecSpace>
std::vector<float> host_copy(const Kokkos::View<float*, typename ExecSpace::memory_space>& view) {
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
  return std::vector<float>(host.data(), host.data() + host.extent(0));
}

}  // namespace detail

// Reads and verifies a checkpoint (io/checkpoint_format.hpp) and checks it against the model it
// names; throws DataError(path, 0, reason) naming the first problem, and only DataError.
inline Checkpoint load_checkpoint(const std::string& path, const CheckpointLimits& limits = {}) {
  Checkpoint ck = read_checkpoint(path, limits);
  struct stat st {};
  const std::uint64_t file_bytes = ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  const std::uint64_t limit = limits.memory_bytes != 0 ? limits.memory_bytes : available_memory_bytes();
  if (const std::string problem = detail::model_problem(ck, limits, limit, file_bytes); !problem.empty())
    throw DataError(path, 0, problem);
  return ck;
}

// Serialises `ckpt` to `path` atomically; returns the file's checksum. Throws InvalidArgument if the
// checkpoint does not fit its model, is inconsistent or not finite (nothing is written) and
// embsr::Error naming the path and the reason if the file cannot be written (an existing file under
// `path` is left as it was).
inline std::uint64_t save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  if (const std::string problem = detail::checkpoint_problem(ckpt); !problem.empty())
    throw InvalidArgument("save_checkpoint('" + path + "'): checkpoint: " + problem);
  const std::string bytes = detail::encode_checkpoint_bytes(ckpt);
  write_file_atomically(path, bytes);
  return checkpoint_checksum(bytes);
}

// A Checkpoint of a live model (and optionally its optimizer), with the caller's vocabularies
// (each either empty or of the model's size) and training state.
template <class ExecSpace>
Checkpoint make_checkpoint(const SessionModel<ExecSpace>& model, const Vocabulary& items, const Vocabulary& ops,
                           const typename detail::non_deduced<Adam<ExecSpace, float>>::type* adam,
                           const TrainingState& training) {
  Checkpoint ck;
  ck.model = model.name();
  ck.options = model.options();
  ck.items = items;
  ck.ops = ops;
  model.execution_space_instance().fence();
  if (const auto* params = model.parameters()) {
    ck.entries = params->entries();
    ck.values = detail::host_copy<ExecSpace>(params->values());
  }
  const auto tables = model.tables();
  const StateLayout layout = model.spec().layout(model.options());
  if (tables.size() != layout.tables.size())
    throw InvalidArgument("make_checkpoint: model '" + model.name() + "' returned " + std::to_string(tables.size()) +
                          " tables, its layout has " + std::to_string(layout.tables.size()));
  for (std::size_t i = 0; i < tables.size(); ++i) {
    const ArraySpec& spec = layout.tables[i];
    std::uint64_t rows = spec.rows;
    if (spec.rows_from_state) {
      if (spec.cols == 0 || tables[i].size() % spec.cols != 0)
        throw InvalidArgument("make_checkpoint: table '" + spec.name + "' of model '" + model.name() + "' has " +
                              std::to_string(tables[i].size()) + " values, not whole rows of " + std::to_string(spec.cols));
      rows = tables[i].size() / spec.cols;
    }
    ck.tables.push_back(StateTable{spec.name, rows, spec.cols, tables[i]});
  }
  if (adam != nullptr) {
    ck.has_optimizer = true;
    ck.optimizer.options = adam->options();
    ck.optimizer.steps = adam->steps();
    ck.optimizer.m = detail::host_copy<ExecSpace>(adam->first_moment());
    ck.optimizer.v = detail::host_copy<ExecSpace>(adam->second_moment());
    ck.optimizer.v_max = detail::host_copy<ExecSpace>(adam->max_second_moment());
  }
  ck.training = training;
  if (const std::string problem = detail::checkpoint_problem(ck); !problem.empty())
    throw InvalidArgument("make_checkpoint: " + problem);
  return ck;
}

// Loads a checkpoint's state (and optimizer state, when `adam` is not null) into a model built with
// matching options. Everything is checked before anything is written; the first difference is
// named (InvalidArgument). Checked: the model's name, then every parameter entry (name, shape,
// offset) and table, then the options that change what the model computes (sizes, modes, ablation
// switches, ...); those that only change training (dropout, init_std, seed) may differ. When `adam`
// is given (resuming training), the model also takes the checkpoint's seed, which drives its dropout
// masks, so that the resumed run continues the interrupted one exactly. The Adam keeps its own
// options: build it with ckpt.optimizer.options to resume a run exactly.
template <class ExecSpace>
void restore(const Checkpoint& ckpt, SessionModel<ExecSpace>& model,
             typename detail::non_deduced<Adam<ExecSpace, float>>::type* adam) {
  if (const std::string problem = detail::checkpoint_problem(ckpt); !problem.empty())
    throw InvalidArgument("restore: inconsistent checkpoint: " + problem);
  // Presets of one model (embsr, embsr-ns, ...) are one model with other defaults.
  const ModelSpec& theirs_spec = find_model_spec(ckpt.model);
  if (theirs_spec.info.base_name() != model.info().base_name())
    throw InvalidArgument("restore: the checkpoint holds model '" + ckpt.model + "', the model is '" + model.name() + "'");
  const std::vector<ParameterEntry> none;
  const auto* params = model.parameters();
  const auto& mine = params != nullptr ? params->entries() : none;
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
  const ModelOptions ours = model.options();
  const ModelOptions their_full = theirs_spec.with_defaults(ckpt.options);
  for (const auto& spec : model.spec().options) {
    if (!spec.changes_function) continue;
    const std::string* x = their_full.find(spec.key);
    const std::string* y = ours.find(spec.key);
    if (x == nullptr || y == nullptr || *x != *y)
      throw InvalidArgument("restore: config." + spec.key + " is " + (x ? *x : std::string("absent")) +
                            " in the checkpoint, " + (y ? *y : std::string("absent")) + " in the model");
  }
  if (adam != nullptr) {
    if (params == nullptr) throw InvalidArgument("restore: model '" + model.name() + "' has no optimizer");
    if (!ckpt.has_optimizer) throw InvalidArgument("restore: the checkpoint has no optimizer state");
    if (adam->first_moment().extent(0) != ckpt.values.size())
      throw InvalidArgument("restore: the optimizer has " + std::to_string(adam->first_moment().extent(0)) +
                            " values, the checkpoint " + std::to_string(ckpt.values.size()));
  }
  typename SessionModel<ExecSpace>::tables_type tables;
  for (const auto& t : ckpt.tables) tables.push_back(t.values);
  model.load_tables(tables);

  using Unmanaged = Kokkos::View<const float*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  auto upload = [](const std::vector<float>& src, const auto& dst) {
    Kokkos::deep_copy(dst, Unmanaged(src.data(), src.size()));
  };
  model.execution_space_instance().fence();
  if (auto* p = model.parameters()) upload(ckpt.values, p->values());
  if (adam != nullptr) {
    upload(ckpt.optimizer.m, adam->first_moment());
    upload(ckpt.optimizer.v, adam->second_moment());
    upload(ckpt.optimizer.v_max, adam->max_second_moment());
    adam->set_steps(ckpt.optimizer.steps);
    model.set_seed(ckpt.options.get_uint("seed", 0));
  }
  Kokkos::fence();
}

// A new model of the checkpoint's registered name and options, holding its state.
template <class ExecSpace = Kokkos::DefaultExecutionSpace>
std::unique_ptr<SessionModel<ExecSpace>> make_model_from(const Checkpoint& ckpt, const ExecSpace& exec = ExecSpace()) {
  auto model = make_model<ExecSpace>(ckpt.model, ckpt.options, exec);
  restore(ckpt, *model, nullptr);
  return model;
}

// The same for a concrete session model (wrapped on the fly; the caller keeps it).
template <class ExecSpace, class Model, class = std::enable_if_t<is_session_model<Model>::value>>
Checkpoint make_checkpoint(const Model& model, const Vocabulary& items, const Vocabulary& ops,
                           const typename detail::non_deduced<Adam<ExecSpace, float>>::type* adam,
                           const TrainingState& training) {
  static_assert(std::is_same<ExecSpace, typename Model::execution_space>::value,
                "make_checkpoint<ExecSpace>: ExecSpace must be the model's execution space");
  ModelAdapter<Model> view(const_cast<Model&>(model));
  return make_checkpoint<ExecSpace>(static_cast<const SessionModel<ExecSpace>&>(view), items, ops, adam, training);
}
template <class Model, class = std::enable_if_t<is_session_model<Model>::value>>
Checkpoint make_checkpoint(const Model& model, const Vocabulary& items, const Vocabulary& ops,
                           const Adam<typename Model::execution_space, float>* adam, const TrainingState& training) {
  return make_checkpoint<typename Model::execution_space>(model, items, ops, adam, training);
}
template <class Model, class = std::enable_if_t<is_session_model<Model>::value>>
void restore(const Checkpoint& ckpt, Model& model, Adam<typename Model::execution_space, float>* adam) {
  ModelAdapter<Model> view(model);
  restore(ckpt, static_cast<SessionModel<typename Model::execution_space>&>(view), adam);
}

}  // namespace embsr
