# Locates the header and library dependencies without trusting their CMake packages:
#  - xsimd 8.1's package links a non-existent xtl target on Debian, so only its include dir is used;
#  - in an aarch64 cross build, /usr/include cannot be added wholesale (it holds x86 system headers),
#    so the architecture-independent header-only packages (catch2, xsimd, hwy headers) are reached
#    through a build-tree folder of symlinks ("host headers").
set(CHORD_HOST_HEADERS ${CMAKE_BINARY_DIR}/host-headers)

# chord_find_header_dir(<out-var> <relative header> <package dir>)
function(chord_find_header_dir out header package_dir)
  if(CMAKE_CROSSCOMPILING)
    if(EXISTS /usr/include/${header})
      file(MAKE_DIRECTORY ${CHORD_HOST_HEADERS})
      if(NOT EXISTS ${CHORD_HOST_HEADERS}/${package_dir})
        file(CREATE_LINK /usr/include/${package_dir} ${CHORD_HOST_HEADERS}/${package_dir} SYMBOLIC)
      endif()
      set(${out} ${CHORD_HOST_HEADERS} PARENT_SCOPE)
    else()
      set(${out} "" PARENT_SCOPE)
    endif()
  else()
    find_path(_chord_dir_${package_dir} ${header})
    if(_chord_dir_${package_dir})
      set(${out} ${_chord_dir_${package_dir}} PARENT_SCOPE)
    else()
      set(${out} "" PARENT_SCOPE)
    endif()
  endif()
endfunction()

chord_find_header_dir(CHORD_XSIMD_INCLUDE_DIR xsimd/xsimd.hpp xsimd)
chord_find_header_dir(CHORD_HWY_INCLUDE_DIR hwy/highway.h hwy)
chord_find_header_dir(CHORD_CATCH2_INCLUDE_DIR catch2/catch.hpp catch2)
# Header-only tools of the chord program. Set here (normal variables), a later
# find_path(CHORD_CLI11_INCLUDE_DIR ...) keeps this value, so cross builds reach them too.
chord_find_header_dir(CHORD_CLI11_INCLUDE_DIR CLI/CLI.hpp CLI)
chord_find_header_dir(CHORD_JSON_INCLUDE_DIR nlohmann/json.hpp nlohmann)

# libhwy (Highway's dynamic dispatch). In a cross build it must be the target's library: Debian's
# libhwy-dev:arm64 puts it in /usr/lib/<target triple>, outside the toolchain's find root, so when the
# toolchain file does not already reach it, look there explicitly (never in the host's lib folders).
find_library(CHORD_HWY_LIBRARY hwy)
if(CMAKE_CROSSCOMPILING AND NOT CHORD_HWY_LIBRARY AND CMAKE_LIBRARY_ARCHITECTURE)
  find_library(CHORD_HWY_LIBRARY hwy PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}
               NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)
endif()

# cpuinfo (runtime CPU feature detection) is optional, and native only: Debian cannot co-install
# libcpuinfo-dev for two architectures, so a cross build goes without it (and must not pick up the
# host's copy). Users of these variables fall back to the compiler's CPU-feature builtins.
set(CHORD_CPUINFO_FOUND FALSE)
if(NOT CMAKE_CROSSCOMPILING)
  find_path(CHORD_CPUINFO_INCLUDE_DIR cpuinfo.h)
  find_library(CHORD_CPUINFO_LIBRARY cpuinfo)
  if(CHORD_CPUINFO_INCLUDE_DIR AND CHORD_CPUINFO_LIBRARY)
    set(CHORD_CPUINFO_FOUND TRUE)
  endif()
endif()

message(STATUS "chord: xsimd headers: ${CHORD_XSIMD_INCLUDE_DIR}")
message(STATUS "chord: highway headers: ${CHORD_HWY_INCLUDE_DIR}, library: ${CHORD_HWY_LIBRARY}")
message(STATUS "chord: catch2 headers: ${CHORD_CATCH2_INCLUDE_DIR}")
message(STATUS "chord: CLI11 headers: ${CHORD_CLI11_INCLUDE_DIR}, nlohmann-json headers: ${CHORD_JSON_INCLUDE_DIR}")
if(CMAKE_CROSSCOMPILING)
  message(STATUS "chord: cpuinfo: not used in a cross build")
else()
  message(STATUS "chord: cpuinfo: ${CHORD_CPUINFO_FOUND} (${CHORD_CPUINFO_LIBRARY})")
endif()
