# cmake -DGENERATOR=<export_generate> -DCOMPILER=<c++> [-DLAUNCHER=<ccache>] [-DCXX_FLAGS=...]
#       -DFLAGS_FILE=<flags.cmake> -DSOURCE_DIR=<tests/quant/export> -DWORK=<dir>
#       -P run_export.cmake
#
# The export acceptance test (export.cmake): generate the headers and the library's answers,
# check that each header includes nothing but <cstddef> and <cstdint>, compile each alone as its
# own translation unit (C++20) and the driver with all of them (C++17), -O1 with warnings as
# errors (and stricter ones an embedded build may use), link the two kinds of object together (a
# definition that is not inline would clash), run the driver: it passes when every prediction and
# code equals the library's without a heap allocation. Then run it on a corrupted expectation,
# which must fail: the comparison is live.
foreach(var IN ITEMS GENERATOR COMPILER FLAGS_FILE SOURCE_DIR WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_export.cmake: -D${var}=... is required")
  endif()
endforeach()
include("${FLAGS_FILE}")
set(models lenet5 variants mlp)

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(ENV{LC_ALL} C)

function(run what)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY "${WORK}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "${what} failed (${rc}):\n${command}\n${out}")
  endif()
  message(STATUS "${what}: ${out}")
endfunction()

run("generate" "${GENERATOR}" "${WORK}")

foreach(model IN LISTS models)
  file(STRINGS "${WORK}/${model}.hpp" includes REGEX "^[ \t]*#[ \t]*include")
  if(NOT includes STREQUAL "#include <cstddef>;#include <cstdint>")
    message(FATAL_ERROR "${model}.hpp includes '${includes}', expected <cstddef> and <cstdint> only")
  endif()
endforeach()

separate_arguments(cxx_flags UNIX_COMMAND "${CXX_FLAGS}")
set(compile ${LAUNCHER} "${COMPILER}" ${cxx_flags} ${EXPORT_COMPILE_OPTIONS} -O1 -Wall -Wextra
  -Wpedantic -Werror -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast -Wcast-qual
  -Wdouble-promotion -Wundef -fno-diagnostics-color "-I${WORK}")
set(objects "")
foreach(model IN LISTS models)
  # The header alone (twice: #pragma once), and a function that calls it so this TU generates its
  # code too (warnings that need the optimiser's analysis).
  file(WRITE "${WORK}/alone_${model}.cpp" "#include \"${model}.hpp\"\n#include \"${model}.hpp\"\n
int alone_${model}(const float* input, ${model}::Buffers& buffers, std::int8_t* logits);
int alone_${model}(const float* input, ${model}::Buffers& buffers, std::int8_t* logits) {
  return ${model}::predict(input, buffers, logits);
}
")
  run("${model}.hpp alone, C++20" ${compile} -std=c++20 -c "alone_${model}.cpp" -o "alone_${model}.o")
  list(APPEND objects "alone_${model}.o")
endforeach()
run("the driver, C++17" ${compile} -std=c++17 -c "${SOURCE_DIR}/driver.cpp" -o driver.o)
run("link" "${COMPILER}" ${cxx_flags} ${EXPORT_LINK_OPTIONS} driver.o ${objects} -o export_driver)

run("the exported models against the library" "${WORK}/export_driver" "${WORK}")

execute_process(COMMAND "${WORK}/export_driver" "${WORK}" --corrupt
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 1 OR NOT out MATCHES "lenet5: sample 1000 differs")
  message(FATAL_ERROR "a corrupted expected code went unnoticed (exit ${rc}):\n${out}")
endif()
message(STATUS "a corrupted expected code is caught")
