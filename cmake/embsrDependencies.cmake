# Dependencies of the embsr INTERFACE target. Shared by the build tree and (through
# embsrConfig.cmake) by consumers of the installed package.
include_guard(GLOBAL)

# Any Kokkos >= 3.4 with any backend; point CMake at it with -DKokkos_ROOT=<prefix>.
find_package(Kokkos 3.4 REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
# Boost.Graph is header-only for what we use (adjacency_list); Boost::headers carries it.
find_package(Boost 1.67 REQUIRED)
if(NOT TARGET Boost::headers)
  add_library(Boost::headers INTERFACE IMPORTED)
  set_target_properties(Boost::headers PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${Boost_INCLUDE_DIRS}")
endif()
