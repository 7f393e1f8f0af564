// The one unit of the tools (examples/, benchmarks/) that compiles every registered model, for every
// execution space of the build: the others include <embsr/model/registry_instances.hpp>, which
// declares these instantiations.
#define EMBSR_REGISTRY_INSTANCES
#include <embsr/model/registry_instances.hpp>
