# The layering of include/chord/personalize/ (docs/design.md#layers), checked on every #include line:
#   device/      what a device ships: includes no other personalize/ folder
#   cloud/       what answers a profile: includes no other personalize/ folder
#   training/    what learns the hypernetworks: device/ and cloud/ allowed, not experiment/
#   experiment/  the paper's harness, above all of them
# No header outside personalize/ includes it, and no header sits directly in personalize/.
#   cmake -DINCLUDE_DIR=<repo>/include -P check_personalize_layers.cmake
if(NOT INCLUDE_DIR)
  message(FATAL_ERROR "usage: cmake -DINCLUDE_DIR=<repo>/include -P check_personalize_layers.cmake")
endif()
get_filename_component(INCLUDE_DIR "${INCLUDE_DIR}" ABSOLUTE)
set(root ${INCLUDE_DIR}/chord/personalize)
set(allowed_device device)
set(allowed_cloud cloud)
set(allowed_training training cloud device)
set(allowed_experiment experiment training cloud device)
set(failures "")

file(GLOB flat ${root}/*.hpp)
foreach(f ${flat})
  string(APPEND failures "\n  ${f}: a header directly in personalize/ (put it in device/, cloud/, training/ or experiment/)")
endforeach()

file(GLOB_RECURSE headers ${INCLUDE_DIR}/chord/*.hpp)
foreach(f ${headers})
  file(RELATIVE_PATH rel ${INCLUDE_DIR}/chord ${f})
  file(STRINGS ${f} includes REGEX "^#include \"chord/personalize/")
  if(rel MATCHES "^personalize/([a-z]+)/")
    set(role ${CMAKE_MATCH_1})
    if(NOT DEFINED allowed_${role})
      string(APPEND failures "\n  ${rel}: unknown personalize/ folder '${role}'")
      continue()
    endif()
    foreach(line ${includes})
      string(REGEX MATCH "chord/personalize/([a-z]+)/" _ "${line}")
      list(FIND allowed_${role} "${CMAKE_MATCH_1}" at)
      if(at EQUAL -1)
        string(APPEND failures "\n  ${rel}: ${role}/ must not ${line}")
      endif()
    endforeach()
  elseif(includes)
    string(APPEND failures "\n  ${rel}: only personalize/ headers may include personalize/ (${includes})")
  endif()
endforeach()

if(failures)
  message(FATAL_ERROR "personalize/ layering broken:${failures}")
endif()
list(LENGTH headers n)
message(STATUS "personalize/ layering holds over ${n} headers")
