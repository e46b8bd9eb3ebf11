# cmake -DCOMPILER=<c++> -DSOURCE=<file.cpp> -DFLAGS_FILE=<flags.cmake> -DMODE=fail|control
#        -P run_failtest.cmake
#
# MODE=fail:    passes when SOURCE does not compile and the diagnostics match the regex of its
#               first line, `// EXPECT-ERROR: <regex>`.
# MODE=control: passes when SOURCE compiles with -DEDGESCALE_FAILTEST_CONTROL.
# See failtest.cmake.
foreach(var IN ITEMS COMPILER SOURCE FLAGS_FILE MODE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_failtest.cmake: -D${var}=... is required")
  endif()
endforeach()
include("${FLAGS_FILE}")
cmake_minimum_required(VERSION 3.20)

file(STRINGS "${SOURCE}" first_line LIMIT_COUNT 1)
if(NOT first_line MATCHES "^//[ \t]*EXPECT-ERROR:[ \t]*(.+)$")
  message(FATAL_ERROR "${SOURCE}: the first line must be `// EXPECT-ERROR: <regex>`, found '${first_line}'")
endif()
string(STRIP "${CMAKE_MATCH_1}" expected)

set(args -std=c++20 -fsyntax-only -fno-diagnostics-color)
if(FAILTEST_SYSTEM_INCLUDES)
  list(REMOVE_ITEM FAILTEST_INCLUDES ${FAILTEST_SYSTEM_INCLUDES})
endif()
foreach(dir IN LISTS FAILTEST_INCLUDES)
  list(APPEND args "-I${dir}")
endforeach()
foreach(dir IN LISTS FAILTEST_SYSTEM_INCLUDES)
  list(APPEND args -isystem "${dir}")
endforeach()
foreach(def IN LISTS FAILTEST_DEFINES)
  list(APPEND args "-D${def}")
endforeach()
if(MODE STREQUAL "control")
  list(APPEND args -DEDGESCALE_FAILTEST_CONTROL)
endif()

# Plain ASCII quotes in the diagnostics, whatever the caller's locale.
set(ENV{LC_ALL} C)
execute_process(COMMAND "${COMPILER}" ${args} "${SOURCE}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE output ERROR_VARIABLE output)
list(JOIN args " " shown_args)
set(command "${COMPILER} ${shown_args} ${SOURCE}")

if(MODE STREQUAL "control")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the control variant (EDGESCALE_FAILTEST_CONTROL) must compile, but:\n${command}\n${output}")
  endif()
  message(STATUS "control variant compiles: ${SOURCE}")
elseif(MODE STREQUAL "fail")
  if(rc EQUAL 0)
    message(FATAL_ERROR "${SOURCE} compiled, but it must not (expected an error matching '${expected}')\n${command}")
  endif()
  if(NOT output MATCHES "${expected}")
    message(FATAL_ERROR "${SOURCE} failed to compile as it should, but no diagnostic matches '${expected}':\n${command}\n${output}")
  endif()
  message(STATUS "fails to compile as expected ('${expected}'): ${SOURCE}")
else()
  message(FATAL_ERROR "MODE must be fail or control, not '${MODE}'")
endif()
