# tests/check_dropin.cmake: the `dropin` tests (cmake -P): README.md's "Without CMake" route, taken
# literally for one backend. It copies include/ and the backend folders the README names into a fresh
# folder (as chord/include, chord/backends/<lib>), writes the README's usage example there as app.cpp
# with the backend's include and kernel table from the README's table, runs the README's compile line
# for that backend (its leading `g++` replaced by the compiler under test, nothing added), and runs app.
#   -DREADME=<README.md> -DEXAMPLE=<tests/readme_example.cpp> -DSOURCE_DIR=<project root>
#   -DWORK_DIR=<scratch folder> -DCXX=<compiler> -DBACKEND=scalar|xsimd|highway
cmake_policy(SET CMP0007 NEW)  # list(): keep the empty cell before the first "|"
foreach(var README EXAMPLE SOURCE_DIR WORK_DIR CXX BACKEND)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_dropin.cmake: -D${var}=... is required")
  endif()
endforeach()
file(STRINGS ${README} lines)

# The table row "| <backend> | <folders> | <headers> | <table expression> |" and the compile line that
# follows the comment line "# <backend>: ..." in the README's drop-in block.
set(row "")
set(compile "")
set(take_next FALSE)
foreach(line IN LISTS lines)
  if(line MATCHES "^\\| ${BACKEND} \\|")
    set(row "${line}")
  elseif(take_next)
    set(compile "${line}")
    set(take_next FALSE)
  elseif(line MATCHES "^# ${BACKEND}: ")
    set(take_next TRUE)
  endif()
endforeach()
if(row STREQUAL "" OR compile STREQUAL "")
  message(FATAL_ERROR "${README}: no drop-in table row '| ${BACKEND} |' or no compile line after '# ${BACKEND}: '")
endif()
string(REPLACE "|" ";" cells "${row}")
list(GET cells 2 folders_cell)
list(GET cells 3 headers_cell)
list(GET cells 4 table_cell)
string(REGEX MATCHALL "`[^`]+`" folders "${folders_cell}")
string(REGEX MATCHALL "`[^`]+`" headers "${headers_cell}")
string(REGEX MATCH "`[^`]+`" table "${table_cell}")
string(REPLACE "`" "" folders "${folders}")
string(REPLACE "`" "" headers "${headers}")
string(REPLACE "`" "" table "${table}")

# A fresh copy of what the README says to copy.
set(dir ${WORK_DIR}/dropin_${BACKEND})
file(REMOVE_RECURSE ${dir})
file(MAKE_DIRECTORY ${dir}/chord/backends)
file(COPY ${SOURCE_DIR}/include DESTINATION ${dir}/chord)
foreach(folder IN LISTS folders)
  if(NOT folder MATCHES "^backends/([a-z]+)$" OR NOT IS_DIRECTORY ${SOURCE_DIR}/${folder})
    message(FATAL_ERROR "${README}: drop-in row '${BACKEND}' names '${folder}', not a folder backends/<lib>")
  endif()
  file(COPY ${SOURCE_DIR}/${folder} DESTINATION ${dir}/chord/backends)
endforeach()

# The example, with this backend's headers and table.
file(READ ${EXAMPLE} source)
set(include_lines "")
foreach(header IN LISTS headers)
  string(APPEND include_lines "#include \"${header}\"\n")
endforeach()
string(REGEX REPLACE "#include \"chord/backends/scalar/gemm.hpp\"[^\n]*\n" "${include_lines}" source "${source}")
string(REPLACE "chord::backends::scalar::kernel_table()" "${table}" source "${source}")
file(WRITE ${dir}/app.cpp "${source}")

# The README's compile line, run as a shell would (it is one line: no continuation).
if(NOT compile MATCHES "^g\\+\\+ ")
  message(FATAL_ERROR "${README}: the ${BACKEND} compile line does not start with 'g++ ': ${compile}")
endif()
string(REGEX REPLACE "^g\\+\\+ " "" compile_args "${compile}")
separate_arguments(compile_args UNIX_COMMAND "${compile_args}")
message(STATUS "${BACKEND}: ${CXX} ${compile_args}")
execute_process(COMMAND ${CXX} ${compile_args} WORKING_DIRECTORY ${dir} RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${BACKEND}: the README's compile line failed (${status}) in ${dir}")
endif()
execute_process(COMMAND ${dir}/app WORKING_DIRECTORY ${dir} RESULT_VARIABLE status OUTPUT_VARIABLE out)
message(STATUS "${BACKEND}: app printed\n${out}")
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${BACKEND}: app exited with ${status} (0 = the kernels match the reference)")
endif()
