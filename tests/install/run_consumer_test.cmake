# Installs the embsr build tree into a scratch prefix and builds + runs tests/install/consumer
# against the installed package only (no access to the source tree's include directory).
foreach(var EMBSR_SOURCE_DIR EMBSR_BINARY_DIR WORK_DIR Kokkos_DIR CMAKE_CXX_COMPILER GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer_test.cmake: ${var} not set")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

run(${CMAKE_COMMAND} --install "${EMBSR_BINARY_DIR}" --prefix "${prefix}")
if(EXISTS "${prefix}/include/embsr/embsr.hpp" AND EXISTS "${prefix}/lib/cmake/embsr/embsrConfig.cmake")
  message(STATUS "installed headers and package config found")
else()
  message(FATAL_ERROR "install tree is incomplete under ${prefix}")
endif()
run(${CMAKE_COMMAND} -S "${EMBSR_SOURCE_DIR}/tests/install/consumer" -B "${WORK_DIR}/build"
    -G "${GENERATOR}" -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DCMAKE_PREFIX_PATH=${prefix} -DKokkos_DIR=${Kokkos_DIR})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/embsr_consumer")
