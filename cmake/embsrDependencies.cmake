# Dependencies of the embsr INTERFACE target. Used by the build tree and, installed next to
# embsrConfig.cmake, by every consumer of the installed package, so both resolve them the same way.
include_guard(GLOBAL)

# Any Kokkos >= 3.4 with any backend; point CMake at it with -DKokkos_ROOT=<prefix>.
find_package(Kokkos 3.4 REQUIRED)
# A Kokkos packaged inside Trilinos (e.g. Debian's libtrilinos-kokkos-dev) exports Kokkos::kokkos with
# an include directory computed from the wrong prefix (/usr/lib/include), while its headers live
# in Kokkos_INCLUDE_DIRS (/usr/include/trilinos). Repair the target: keep the directories that
# exist, add the configured ones. Standalone Kokkos installs leave Kokkos_INCLUDE_DIRS unset.
if(Kokkos_INCLUDE_DIRS AND TARGET Kokkos::kokkos)
  get_target_property(_embsr_old Kokkos::kokkos INTERFACE_INCLUDE_DIRECTORIES)
  set(_embsr_new "")
  foreach(_embsr_dir IN LISTS _embsr_old Kokkos_INCLUDE_DIRS)
    get_filename_component(_embsr_dir "${_embsr_dir}" ABSOLUTE)
    if(IS_DIRECTORY "${_embsr_dir}" AND NOT _embsr_dir IN_LIST _embsr_new)
      list(APPEND _embsr_new "${_embsr_dir}")
    endif()
  endforeach()
  set_property(TARGET Kokkos::kokkos PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_embsr_new}")
endif()

find_package(Eigen3 3.3 REQUIRED NO_MODULE)
# Boost.Graph is header-only for what we use (adjacency_list); Boost::headers carries it.
find_package(Boost 1.67 REQUIRED)
if(NOT TARGET Boost::headers)
  add_library(Boost::headers INTERFACE IMPORTED)
  set_target_properties(Boost::headers PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${Boost_INCLUDE_DIRS}")
endif()

# A Kokkos built for CUDA: the GEMM of include/embsr/core/gemm.hpp calls cuBLAS on CUDA memory.
if(Kokkos_ENABLE_CUDA)
  find_package(CUDAToolkit REQUIRED)
endif()

# The host GEMM (include/embsr/core/gemm.hpp): Eigen's own, or a BLAS library's sgemm_/dgemm_.
#   EMBSR_BLAS=AUTO (default): OpenBLAS where it is installed (Debian: libopenblas-openmp-dev), else Eigen.
#   EMBSR_BLAS=ON: a BLAS is required; BLA_VENDOR picks which (OpenBLAS unless set: FLAME for BLIS,
#                  Intel10_64lp for MKL, ...).
#   EMBSR_BLAS=OFF: Eigen.
# The netlib reference BLAS is never picked automatically: it is several times slower than Eigen.
# Sets EMBSR_BLAS_USED (ON/OFF) and EMBSR_BLAS_VENDOR; the installed package config repeats the choice.
if(NOT DEFINED EMBSR_BLAS)
  set(EMBSR_BLAS AUTO)
endif()
set(EMBSR_BLAS_USED OFF)
if(NOT EMBSR_BLAS STREQUAL "OFF")
  set(_embsr_had_vendor "${BLA_VENDOR}")
  if(EMBSR_BLAS_VENDOR)
    set(BLA_VENDOR "${EMBSR_BLAS_VENDOR}")
  elseif(NOT BLA_VENDOR)
    set(BLA_VENDOR OpenBLAS)
  endif()
  if(EMBSR_BLAS STREQUAL "AUTO")
    find_package(BLAS QUIET)
  else()
    find_package(BLAS REQUIRED)
  endif()
  if(BLAS_FOUND AND TARGET BLAS::BLAS)
    set(EMBSR_BLAS_USED ON)
    set(EMBSR_BLAS_VENDOR "${BLA_VENDOR}")
  endif()
  set(BLA_VENDOR "${_embsr_had_vendor}")
  unset(_embsr_had_vendor)
endif()
