#pragma once
// For programs of several translation units (the library's own tools): the registry's model
// factory make_model<ExecSpace> (model/registry.hpp) declared as instantiated elsewhere for every
// execution space of this Kokkos build, so that a unit including this header does not compile
// every registered model again. make_model is where every model class is instantiated; with ten
// and more registered models that was most of each tool's compile time.
//
// Exactly one unit of the program defines EMBSR_REGISTRY_INSTANCES before including this header:
// that unit holds the instantiations (the tools link examples/common/registry_instances.cpp). A
// program that does not include this header compiles make_model where it uses it, as before.

#include <memory>
#include <string>

#include <Kokkos_Core.hpp>

#include <embsr/model/model_options.hpp>
#include <embsr/model/registry.hpp>
#include <embsr/model/session_model.hpp>

#if defined(EMBSR_REGISTRY_INSTANCES)
#define EMBSR_REGISTRY_INSTANCE(Space) \
  template std::unique_ptr<SessionModel<Space>> make_model<Space>(const std::string&, const ModelOptions&, const Space&);
#else
#define EMBSR_REGISTRY_INSTANCE(Space)                                                                                 \
  extern template std::unique_ptr<SessionModel<Space>> make_model<Space>(const std::string&, const ModelOptions&, \
                                                                          const Space&);
#endif

namespace embsr {
#if defined(KOKKOS_ENABLE_SERIAL)
EMBSR_REGISTRY_INSTANCE(Kokkos::Serial)
#endif
#if defined(KOKKOS_ENABLE_OPENMP)
EMBSR_REGISTRY_INSTANCE(Kokkos::OpenMP)
#endif
#if defined(KOKKOS_ENABLE_THREADS)
EMBSR_REGISTRY_INSTANCE(Kokkos::Threads)
#endif
#if defined(KOKKOS_ENABLE_CUDA)
EMBSR_REGISTRY_INSTANCE(Kokkos::Cuda)
#endif
}  // namespace embsr

#undef EMBSR_REGISTRY_INSTANCE
