# tests/consumer/install_and_build.cmake: the `install` test (cmake -P). Installs a chord build tree
# into a fresh prefix, configures and builds tests/consumer against that prefix only, and runs it.
#   -DCHORD_BUILD_DIR=       the configured and built chord tree to install
#   -DCHORD_WORK_DIR=        scratch folder (removed first): <work>/prefix, <work>/build
#   -DCHORD_CONSUMER_DIR=    tests/consumer
#   -DCHORD_CXX_COMPILER=    the compiler of the chord build (the consumer uses the same)
#   -DCHORD_GENERATOR=       the CMake generator of the chord build
#   -DCHORD_COMPONENTS=      backends the install must provide, separated by ':' (e.g. xsimd:highway)
foreach(var CHORD_BUILD_DIR CHORD_WORK_DIR CHORD_CONSUMER_DIR CHORD_CXX_COMPILER CHORD_GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_and_build.cmake: -D${var}=... is required")
  endif()
endforeach()
set(prefix ${CHORD_WORK_DIR}/prefix)
set(build ${CHORD_WORK_DIR}/build)
file(REMOVE_RECURSE ${CHORD_WORK_DIR})

# run(<what> <command...>): runs a step and stops the test with its output when it fails.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "install test: ${what} failed (${status}):\n${ARGN}\n${out}")
  endif()
  message(STATUS "install test: ${what}: ok")
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

run("cmake --install" ${CMAKE_COMMAND} --install ${CHORD_BUILD_DIR} --prefix ${prefix})
foreach(file include/chord/core/mixed_matrix.hpp include/chord/backends/scalar/gemm.hpp
             share/cmake/chord/chordConfig.cmake share/cmake/chord/chordConfigVersion.cmake
             share/cmake/chord/chordTargets.cmake share/cmake/chord/ChordKernels.cmake
             share/chord/backends/dispatch/compiled_tables.cpp)
  if(NOT EXISTS ${prefix}/${file})
    message(FATAL_ERROR "install test: ${prefix}/${file} was not installed")
  endif()
endforeach()

# Only the fresh prefix may provide chord: no package registry, and the prefix comes first.
run("configure the consumer" ${CMAKE_COMMAND} -S ${CHORD_CONSUMER_DIR} -B ${build} -G ${CHORD_GENERATOR}
    -DCMAKE_CXX_COMPILER=${CHORD_CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCHORD_EXPECTED_COMPONENTS=${CHORD_COMPONENTS})
file(STRINGS ${build}/CMakeCache.txt chord_dir REGEX "^chord_DIR:")
if(NOT chord_dir STREQUAL "chord_DIR:PATH=${prefix}/share/cmake/chord")
  message(FATAL_ERROR "install test: the consumer found chord elsewhere: ${chord_dir}")
endif()
run("build the consumer" ${CMAKE_COMMAND} --build ${build})
run("run the consumer" ${build}/chord_consumer)
message(STATUS "${run_output}")
run("run the consumer on chord_add_kernels()" ${build}/chord_consumer_dispatch)
message(STATUS "${run_output}")
