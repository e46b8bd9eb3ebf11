# Compile options for the project's own tests, benches and examples (never forced on users).
find_program(EDGESCALE_CCACHE ccache)
if(EDGESCALE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${EDGESCALE_CCACHE}")
  message(STATUS "edgescale: compiling through ccache")
endif()

# ---- target instruction set ----
# Two -march values, because the two kinds of program want different ones:
#   EDGESCALE_ARCH       examples and benches: programs built to run on the machine that builds
#                        them (the demo, a benchmark). Default `native`: built for this CPU
#                        (AVX2 and FMA on most machines; the speed-up is in docs/results/nn.md).
#                        Empty: the compiler's default target, a binary that runs on any x86-64
#                        (the portable build, `scripts/demo.sh --portable`).
#   EDGESCALE_TEST_ARCH  tests and the header checks. Default empty (the compiler's default target):
#                        a test's floating-point results do not depend on the CPU that ran it
#                        (no FMA contraction here and not there), and ccache entries can be shared
#                        between machines — ccache hashes the words `-march=native`, not the CPU they
#                        name, so a cache shared by two CPUs would hand one the other's objects
#                        (ccache issue #824). scripts/test.sh compiles the other instruction sets
#                        by name (x86-64-v3, -v4, ...), which is safe to cache.
# Any -march value works in either (x86-64-v2, x86-64-v4, znver3, armv8.2-a, ...).
# EDGESCALE_NATIVE=ON, the older switch, means `native` for both; it cannot be combined with
# another explicit value.
set(EDGESCALE_ARCH "native" CACHE STRING
  "-march for the examples and benches (native; empty = the compiler's default target, portable)")
set(EDGESCALE_TEST_ARCH "" CACHE STRING
  "-march for the tests and header checks (empty = the compiler's default target; or native, x86-64-v4, ...)")

set(_es_program_arch "${EDGESCALE_ARCH}")
set(_es_test_arch "${EDGESCALE_TEST_ARCH}")
if(EDGESCALE_NATIVE)
  if(NOT _es_program_arch STREQUAL "native")
    message(FATAL_ERROR "edgescale: EDGESCALE_NATIVE=ON asks for -march=native, but "
      "EDGESCALE_ARCH is '${EDGESCALE_ARCH}'; set one of the two")
  endif()
  if(_es_test_arch STREQUAL "")
    set(_es_test_arch native)
  elseif(NOT _es_test_arch STREQUAL "native")
    message(FATAL_ERROR "edgescale: EDGESCALE_NATIVE=ON asks for -march=native, but "
      "EDGESCALE_TEST_ARCH is '${EDGESCALE_TEST_ARCH}'; set one of the two")
  endif()
endif()

# edgescale_arch_flag(<out-var> <arch> <knob>): -march=<arch>, or nothing for an empty <arch>. A
# value the compiler rejects is an error, except the default `native` (some compilers or targets
# lack it), which falls back to the compiler's default target with a warning.
include(CheckCXXCompilerFlag)
function(edgescale_arch_flag out arch knob)
  set(${out} "" PARENT_SCOPE)
  if(arch STREQUAL "")
    return()
  endif()
  string(MAKE_C_IDENTIFIER "EDGESCALE_HAS_MARCH_${arch}" check)
  check_cxx_compiler_flag("-march=${arch}" ${check})
  if(${check})
    set(${out} "-march=${arch}" PARENT_SCOPE)
  elseif(arch STREQUAL "native")
    message(WARNING "edgescale: ${CMAKE_CXX_COMPILER_ID} does not take -march=native here; "
      "${knob} falls back to the compiler's default target")
  else()
    message(FATAL_ERROR "edgescale: ${CMAKE_CXX_COMPILER_ID} does not take -march=${arch} (${knob})")
  endif()
endfunction()
edgescale_arch_flag(_es_program_arch_flag "${_es_program_arch}" EDGESCALE_ARCH)
edgescale_arch_flag(_es_test_arch_flag "${_es_test_arch}" EDGESCALE_TEST_ARCH)

function(edgescale_describe_arch out flag)
  if(flag)
    set(${out} "${flag}" PARENT_SCOPE)
  else()
    set(${out} "the compiler's default target" PARENT_SCOPE)
  endif()
endfunction()
edgescale_describe_arch(_es_program_arch_text "${_es_program_arch_flag}")
edgescale_describe_arch(_es_test_arch_text "${_es_test_arch_flag}")
message(STATUS "edgescale: examples and benches for ${_es_program_arch_text} (EDGESCALE_ARCH), "
  "tests for ${_es_test_arch_text} (EDGESCALE_TEST_ARCH)")

# ---- interface libraries the project's targets link ----
# edgescale_warnings: warnings (as errors), sanitizers. Then one per kind of program:
#   edgescale_dev_options   examples and benches: the warnings and EDGESCALE_ARCH
#   edgescale_test_options  tests and header checks: the warnings and EDGESCALE_TEST_ARCH
add_library(edgescale_warnings INTERFACE)
target_compile_options(edgescale_warnings INTERFACE -Wall -Wextra -Wpedantic)
if(EDGESCALE_WERROR)
  target_compile_options(edgescale_warnings INTERFACE -Werror)
endif()
if(EDGESCALE_SANITIZE)
  target_compile_options(edgescale_warnings INTERFACE -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(edgescale_warnings INTERFACE -fsanitize=address,undefined)
endif()

add_library(edgescale_dev_options INTERFACE)
target_link_libraries(edgescale_dev_options INTERFACE edgescale_warnings)
if(_es_program_arch_flag)
  target_compile_options(edgescale_dev_options INTERFACE ${_es_program_arch_flag})
endif()

add_library(edgescale_test_options INTERFACE)
target_link_libraries(edgescale_test_options INTERFACE edgescale_warnings)
if(_es_test_arch_flag)
  target_compile_options(edgescale_test_options INTERFACE ${_es_test_arch_flag})
endif()

# Optional pieces: looked for, skipped with a message when absent.
find_package(ZLIB QUIET)
if(ZLIB_FOUND)
  message(STATUS "edgescale: zlib found, gzipped IDX reading enabled")
else()
  message(STATUS "edgescale: zlib not found (zlib1g-dev), skipping gz reader, examples and its tests")
endif()
find_package(xtensor QUIET)
if(xtensor_FOUND)
  message(STATUS "edgescale: xtensor found")
else()
  message(STATUS "edgescale: xtensor not found (libxtensor-dev), skipping xtensor interop")
endif()
option(EDGESCALE_WITH_MPI "Look for MPI and build the distributed tests and examples" ON)
if(EDGESCALE_WITH_MPI)
  find_package(MPI QUIET COMPONENTS CXX)
endif()
if(MPI_CXX_FOUND)
  message(STATUS "edgescale: MPI found (${MPIEXEC_EXECUTABLE}), distributed tests and examples enabled")
elseif(EDGESCALE_WITH_MPI)
  message(STATUS "edgescale: MPI not found (libopenmpi-dev openmpi-bin), skipping distributed parts")
else()
  message(STATUS "edgescale: MPI not looked for (EDGESCALE_WITH_MPI=OFF)")
endif()
