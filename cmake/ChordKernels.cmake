# Runtime-dispatched kernels for a program:
#
#   chord_add_kernels(<target> [BACKENDS xsimd highway])        (default: every backend available)
#
# links <target> with the per-ISA kernel tables of the requested backends for the architecture being
# built (CMAKE_SYSTEM_PROCESSOR), and with backends/dispatch/compiled_tables.cpp, which defines
# compiled_kernel_tables() for chord/ops/dispatch.hpp (best_kernels(), select_kernels(), ...):
#   xsimd, x86-64:   backends/xsimd/dispatch/avx512_vnni.cpp  -mavx512f -mavx512bw -mavx512vl -mavx512dq
#                                                             -mavx512vnni -mavx2 -mfma
#                    backends/xsimd/dispatch/avx2.cpp         -mavx2 -mfma
#   xsimd, aarch64:  backends/xsimd/dispatch/neon.cpp         (armv8-a baseline: NEON is always there)
#                    backends/xsimd/dispatch/neon_dotprod.cpp -march=armv8.2-a+dotprod
#   highway:         backends/highway/dispatch/*.cpp as they are (Highway compiles its own targets);
#                    used once backends/highway/include/chord/backends/highway/tables.hpp exists.
# Each ISA unit is compiled only with its own flags, so the program still starts on any CPU of the
# architecture; dispatch.hpp runs only the tables the CPU supports. All kernel units get
# -ffp-contract=off (the int8 epilogue must round exactly as ref::dequantize_acc) and, in a build with
# no CMAKE_BUILD_TYPE, -O2 (SIMD kernels at -O0 keep every register in memory).
# The units are compiled once into a static library per backend set (chord_kernels_<backends>) that
# every target calling this function shares, instead of once per target.
#
# The same file serves an installed chord: find_package(chord) includes it from share/cmake/chord/ after
# setting CHORD_KERNELS_INSTALLED_ROOT to share/chord/ (where the install puts backends/dispatch/ and
# each backend's dispatch/ sources); the backends are then the imported chord::xsimd / chord::highway.
include_guard(GLOBAL)
include(CheckCXXCompilerFlag)

if(CHORD_KERNELS_INSTALLED_ROOT)
  set(CHORD_KERNELS_ROOT "${CHORD_KERNELS_INSTALLED_ROOT}")
else()
  get_filename_component(CHORD_KERNELS_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
endif()
set(CHORD_KERNELS_ROOT "${CHORD_KERNELS_ROOT}" CACHE INTERNAL "chord source root, for chord_add_kernels()")

# _chord_kernels_target(<var> <name>): the target of chord part <name> (chord, scalar, xsimd, highway):
# chord_<name> in chord's own build, the imported chord::<name> from an install; empty when neither.
function(_chord_kernels_target var name)
  set(build_name chord_${name})
  if(name STREQUAL "chord")
    set(build_name chord)
  endif()
  if(TARGET ${build_name} AND NOT CHORD_KERNELS_INSTALLED_ROOT)
    set(${var} ${build_name} PARENT_SCOPE)
  elseif(TARGET chord::${name})
    set(${var} chord::${name} PARENT_SCOPE)
  else()
    set(${var} "" PARENT_SCOPE)
  endif()
endfunction()

# The xsimd backend's headers build on the scalar backend's (its isa::scalar tag is the scalar table).
if(TARGET chord_xsimd AND TARGET chord_scalar AND NOT CHORD_KERNELS_INSTALLED_ROOT)
  target_link_libraries(chord_xsimd INTERFACE chord_scalar)
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|x64)$")
  set(CHORD_KERNELS_ARCH x86_64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(CHORD_KERNELS_ARCH aarch64)
else()
  set(CHORD_KERNELS_ARCH other)
endif()

# _chord_kernels_add_isa(<lib> <backend-dir> <isa> <check-var> <flags...>): one ISA unit, if the
# compiler takes its flags.
function(_chord_kernels_add_isa lib dir isa check_var)
  set(flags ${ARGN})
  if(flags)
    string(REPLACE ";" " " flag_string "${flags}")
    check_cxx_compiler_flag("${flag_string}" ${check_var})
    if(NOT ${check_var})
      message(STATUS "chord: ${CMAKE_CXX_COMPILER_ID} does not take '${flag_string}': no ${isa} kernels")
      return()
    endif()
  endif()
  set(source ${dir}/${isa}.cpp)
  target_sources(${lib} PRIVATE ${source})
  set_source_files_properties(${source} TARGET_DIRECTORY ${lib} PROPERTIES COMPILE_OPTIONS "${flags}")
  string(TOUPPER ${isa} upper)
  set_property(SOURCE ${dir}/tables.cpp TARGET_DIRECTORY ${lib} APPEND PROPERTY COMPILE_DEFINITIONS
               CHORD_XSIMD_TABLE_${upper})
endfunction()

function(chord_add_kernels target)
  cmake_parse_arguments(ARG "" "" "BACKENDS" ${ARGN})
  if(NOT ARG_BACKENDS)
    set(ARG_BACKENDS xsimd highway)
  endif()
  set(root ${CHORD_KERNELS_ROOT})
  _chord_kernels_target(chord_target chord)
  _chord_kernels_target(scalar_target scalar)
  _chord_kernels_target(xsimd_target xsimd)
  _chord_kernels_target(highway_target highway)

  # The backends that can be built here (an install ships dispatch/ sources only with their headers).
  set(backends "")
  if("xsimd" IN_LIST ARG_BACKENDS AND xsimd_target)
    list(APPEND backends xsimd)
  endif()
  file(GLOB highway_sources ${root}/backends/highway/dispatch/*.cpp)
  if("highway" IN_LIST ARG_BACKENDS AND highway_target AND highway_sources
     AND (CHORD_KERNELS_INSTALLED_ROOT OR EXISTS ${root}/backends/highway/include/chord/backends/highway/tables.hpp))
    list(APPEND backends highway)
  endif()
  if(backends)
    string(JOIN _ lib chord_kernels ${backends})
  else()
    set(lib chord_kernels_scalar)
  endif()

  if(NOT TARGET ${lib})
    add_library(${lib} STATIC ${root}/backends/dispatch/compiled_tables.cpp)
    set_target_properties(${lib} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    target_link_libraries(${lib} PUBLIC ${chord_target} ${scalar_target})
    if(TARGET chord_warnings)
      target_link_libraries(${lib} PRIVATE chord_warnings)
    endif()
    if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
      target_compile_options(${lib} PRIVATE -ffp-contract=off)
      if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
        target_compile_options(${lib} PRIVATE -O2)
      endif()
    endif()

    if("xsimd" IN_LIST backends)
      set(dir ${root}/backends/xsimd/dispatch)
      target_sources(${lib} PRIVATE ${dir}/tables.cpp)
      target_link_libraries(${lib} PUBLIC ${xsimd_target})
      set_property(SOURCE ${root}/backends/dispatch/compiled_tables.cpp TARGET_DIRECTORY ${lib} APPEND
                   PROPERTY COMPILE_DEFINITIONS CHORD_HAVE_XSIMD)
      if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
        message(WARNING "chord: xsimd ISA kernels need GCC or Clang flags; only the scalar table is built")
      elseif(CHORD_KERNELS_ARCH STREQUAL "x86_64")
        _chord_kernels_add_isa(${lib} ${dir} avx512_vnni CHORD_CXX_HAS_AVX512_VNNI_FLAGS
                               -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma)
        _chord_kernels_add_isa(${lib} ${dir} avx2 CHORD_CXX_HAS_AVX2_FLAGS -mavx2 -mfma)
      elseif(CHORD_KERNELS_ARCH STREQUAL "aarch64")
        _chord_kernels_add_isa(${lib} ${dir} neon_dotprod CHORD_CXX_HAS_DOTPROD_FLAGS -march=armv8.2-a+dotprod)
        _chord_kernels_add_isa(${lib} ${dir} neon CHORD_CXX_HAS_NEON_FLAGS)
      endif()
    endif()

    if("highway" IN_LIST backends)
      target_sources(${lib} PRIVATE ${highway_sources})
      target_link_libraries(${lib} PUBLIC ${highway_target})
      set_property(SOURCE ${root}/backends/dispatch/compiled_tables.cpp TARGET_DIRECTORY ${lib} APPEND
                   PROPERTY COMPILE_DEFINITIONS CHORD_HAVE_HIGHWAY)
    endif()
    message(STATUS "chord: ${lib}: scalar ${backends} kernels for ${CHORD_KERNELS_ARCH}")
  endif()
  target_link_libraries(${target} PRIVATE ${lib})
endfunction()
