# tests/check_readme_example.cmake: the `readme` test that keeps README.md honest (cmake -P).
# The README's usage example is the ```cpp block right after the line
#   <!-- example: tests/readme_example.cpp -->
# and must equal tests/readme_example.cpp, which is compiled and run as the test `readme_example`.
#   -DREADME=<path of README.md>  -DEXAMPLE=<path of tests/readme_example.cpp>
foreach(var README EXAMPLE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_readme_example.cmake: -D${var}=... is required")
  endif()
endforeach()
file(READ ${README} readme)
file(READ ${EXAMPLE} example)

set(marker "<!-- example: tests/readme_example.cpp -->")
string(FIND "${readme}" "${marker}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${README}: no line '${marker}' before the usage example")
endif()
string(SUBSTRING "${readme}" ${at} -1 rest)
string(FIND "${rest}" "```cpp\n" open)
if(open EQUAL -1)
  message(FATAL_ERROR "${README}: no ```cpp block after '${marker}'")
endif()
math(EXPR open "${open} + 7")
string(SUBSTRING "${rest}" ${open} -1 rest)
string(FIND "${rest}" "\n```" close)
if(close EQUAL -1)
  message(FATAL_ERROR "${README}: the ```cpp block after '${marker}' is not closed")
endif()
math(EXPR close "${close} + 1")  # keep the block's last newline
string(SUBSTRING "${rest}" 0 ${close} block)

if(NOT block STREQUAL example)
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/readme_example_block.cpp "${block}")
  message(FATAL_ERROR "README.md's usage example differs from ${EXAMPLE}: copy one onto the other "
                      "(the README block is in ${CMAKE_CURRENT_BINARY_DIR}/readme_example_block.cpp; "
                      "compare with diff)")
endif()
message(STATUS "README.md usage example == ${EXAMPLE}")
