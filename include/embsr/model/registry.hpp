#pragma once
// The registry: every model of the library by name, for the tools (embsr-train --model NAME,
// --list-models), the checkpoint reader (a checkpoint names its model) and the recommender.
//
// Adding a model (docs/ARCHITECTURE.md): its composition file in model/ (the class, which meets
// model/session_model.hpp, and its spec: info, options, state layout, memory estimate), its test
// file, and one line in RegisteredModels below.

#include <memory>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/model/bert4rec.hpp>
#include <embsr/model/embsr.hpp>
#include <embsr/model/embsr_spec.hpp>
#include <embsr/model/gcsan.hpp>
#include <embsr/model/hup.hpp>
#include <embsr/model/mkmsr.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/narm.hpp>
#include <embsr/model/popularity.hpp>
#include <embsr/model/rib.hpp>
#include <embsr/model/session_knn.hpp>
#include <embsr/model/session_model.hpp>
#include <embsr/model/sgnnhn.hpp>
#include <embsr/model/srgnn.hpp>
#include <embsr/model/stamp.hpp>

namespace embsr {

template <class... Specs>
struct ModelList {};

// One line per model, in the order --list-models prints them.
using RegisteredModels = ModelList<PopularitySpec<false>,                      // pop
                                   PopularitySpec<true>,                       // s-pop
                                   EmbsrSpec<embsr_presets::Full>,             // embsr
                                   EmbsrSpec<embsr_presets::NoSelfAttention>,  // embsr-ns
                                   EmbsrSpec<embsr_presets::NoGnn>,            // embsr-ng
                                   EmbsrSpec<embsr_presets::NoFusionGate>,     // embsr-nf
                                   EmbsrSpec<embsr_presets::Repeat>,           // embsr-r
                                   EmbsrSpec<embsr_presets::SgnnDyadic>,       // sgnn-dyadic
                                   EmbsrSpec<embsr_presets::SgnnAbsSelf>,      // sgnn-abs-self
                                   EmbsrSpec<embsr_presets::SgnnSelf>,         // sgnn-self
                                   EmbsrSpec<embsr_presets::SgnnSeqSelf>,      // sgnn-seq-self
                                   EmbsrSpec<embsr_presets::RnnSelf>,          // rnn-self
                                   KnnSpec<KnnKind::Sknn>,                     // sknn
                                   KnnSpec<KnnKind::VSknn>,                    // v-sknn
                                   KnnSpec<KnnKind::Stan>,                     // stan
                                   KnnSpec<KnnKind::Vstan>,                    // vstan
                                   KnnSpec<KnnKind::VstanOps>,                 // vstan-ops
                                   SrgnnSpec,                                  // sr-gnn
                                   SgnnhnSpec,                                 // sgnn-hn
                                   GcsanSpec,                                  // gc-san
                                   MkmsrSpec,                                  // mkm-sr
                                   NarmSpec,                                   // narm
                                   StampSpec,                                  // stamp
                                   RibSpec,                                    // rib
                                   HupSpec,                                    // hup
                                   Bert4recSpec>;                              // bert4rec

namespace detail {

template <class... Specs>
std::vector<ModelSpec> catalog_of(ModelList<Specs...>) {
  return {Specs::spec()...};
}

template <class ExecSpace, class Spec>
std::unique_ptr<SessionModel<ExecSpace>> build_model(const ModelOptions& options, const ExecSpace& exec) {
  using Model = typename Spec::template model<ExecSpace>;
  auto model = std::make_unique<Model>(Spec::config_of(options), exec);
  return std::make_unique<ModelAdapter<Model, Spec>>(std::move(model));
}

template <class ExecSpace, class... Specs>
std::unique_ptr<SessionModel<ExecSpace>> build_by_name(ModelList<Specs...>, const std::string& name,
                                                       const ModelOptions& options, const ExecSpace& exec) {
  std::unique_ptr<SessionModel<ExecSpace>> out;
  ((out == nullptr && Specs::spec().info.name == name ? (void)(out = build_model<ExecSpace, Specs>(options, exec))
                                                      : (void)0),
   ...);
  return out;
}

}  // namespace detail

// Every registered model's spec, in registry order.
inline const std::vector<ModelSpec>& model_catalog() {
  static const std::vector<ModelSpec> catalog = detail::catalog_of(RegisteredModels{});
  return catalog;
}

inline std::string model_names() {
  std::string out;
  for (const auto& s : model_catalog()) out += (out.empty() ? "" : ", ") + s.info.name;
  return out;
}

// The spec of a registered model; InvalidArgument naming the known ones for an unknown name.
inline const ModelSpec& find_model_spec(const std::string& name) {
  for (const auto& s : model_catalog())
    if (s.info.name == name) return s;
  throw InvalidArgument("unknown model '" + name + "' (known: " + model_names() + ")");
}

// The options of `name` with its defaults for every option `given` leaves out, validated:
// InvalidArgument for an unknown model, an option it does not take, or a value out of range.
inline ModelOptions complete_model_options(const std::string& name, const ModelOptions& given) {
  const ModelSpec& spec = find_model_spec(name);
  detail::check_known_options(spec, given);
  ModelOptions full = spec.with_defaults(given);
  spec.validate(full);
  return full;
}

// A new model of the registered name with `options` (data sizes included; defaults for the rest),
// initialised (gradient models) or empty (counting models: fit it).
template <class ExecSpace = Kokkos::DefaultExecutionSpace>
std::unique_ptr<SessionModel<ExecSpace>> make_model(const std::string& name, const ModelOptions& options,
                                                    const ExecSpace& exec = ExecSpace()) {
  const ModelOptions full = complete_model_options(name, options);
  return detail::build_by_name<ExecSpace>(RegisteredModels{}, name, full, exec);
}

}  // namespace embsr
