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
find_library(CHORD_HWY_LIBRARY hwy)

message(STATUS "chord: xsimd headers: ${CHORD_XSIMD_INCLUDE_DIR}")
message(STATUS "chord: highway headers: ${CHORD_HWY_INCLUDE_DIR}, library: ${CHORD_HWY_LIBRARY}")
message(STATUS "chord: catch2 headers: ${CHORD_CATCH2_INCLUDE_DIR}")
