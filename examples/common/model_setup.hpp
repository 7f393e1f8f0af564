#pragma once
// What the tools that train a model (embsr-train, embsr-tune) do alike between the prepared data
// and the trainer: a registered model's options completed with the data's sizes, the memory check
// before a model is built, and metrics as JSON.

#include <embsr/core/memory.hpp>
#include <embsr/embsr.hpp>
#include <embsr/model/registry.hpp>
#include <embsr/train/metrics.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <string>

namespace embsr::cli {

// `given` (the user's options) with the sizes of `data` (num_items, num_ops, max_length), completed
// with the model's defaults and validated: InvalidArgument for an unknown model or option, or a
// value out of range.
inline ModelOptions options_for_data(const std::string& model_name, ModelOptions given, const PreparedData& data,
                                     const PreprocessOptions& pre) {
  given.set("num_items", data.item_vocab.size());
  given.set("num_ops", data.op_vocab.size());
  given.set("max_length", pre.max_length);
  return complete_model_options(model_name, given);
}

// Whether a model of `options` fits before it is built (a mistyped --d 100000 would otherwise end in
// an allocation failure, or the kernel's OOM killer, minutes later): "" when it does, otherwise why
// not, when it needs more than `memory_limit` bytes (0: the memory available now) to train with
// batches of `batch_size` (and evaluate with `eval_batch_size`).
inline std::string model_memory_problem(const std::string& model_name, const ModelOptions& options,
                                        std::size_t batch_size, std::size_t eval_batch_size,
                                        std::uint64_t memory_limit) {
  const ModelSpec& spec = find_model_spec(model_name);
  const std::uint64_t need = spec.memory_bytes(options, std::max(batch_size, eval_batch_size), true);
  const std::uint64_t limit = memory_limit != 0 ? memory_limit : available_memory_bytes();
  if (need <= limit) return "";
  return "the model (" + model_name + ", " + *options.find("num_items") + " items" +
         (options.has("d") ? ", d " + *options.find("d") : std::string()) +
         (options.has("gnn_steps") ? ", gnn_steps " + *options.find("gnn_steps") : std::string()) + ", batch " +
         std::to_string(batch_size) + ") needs about " + format_bytes(need) +
         " to train, more than the memory limit of " + format_bytes(limit) + " (--memory-limit)";
}

// model_memory_problem as an InvalidArgument.
inline void check_model_fits(const std::string& model_name, const ModelOptions& options, std::size_t batch_size,
                             std::size_t eval_batch_size, std::uint64_t memory_limit) {
  const std::string problem = model_memory_problem(model_name, options, batch_size, eval_batch_size, memory_limit);
  if (!problem.empty()) throw InvalidArgument(problem);
}

// {"sessions": n, "H@1": ..., "M@1": ..., "NDCG@1": ..., ..., "NDCG@20": ...} (fractions in [0, 1]).
inline nlohmann::json metrics_json(const RankingMetrics& m) {
  nlohmann::json j = {{"sessions", m.sessions}};
  for (int k : kMetricKs) {
    j["H@" + std::to_string(k)] = m.hit(k);
    j["M@" + std::to_string(k)] = m.mrr(k);
    j["NDCG@" + std::to_string(k)] = m.ndcg_at(k);
  }
  return j;
}

}  // namespace embsr::cli
