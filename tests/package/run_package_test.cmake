# cmake -DMODE=<test> -DSOURCE_DIR=... -DCONSUMER_DIR=... -DWORK_DIR=... -DGENERATOR=...
#       [-DMAKE_PROGRAM=...] [-DCXX_COMPILER=...] [-DCXX_COMPILER_LAUNCHER=...]
#       -P run_package_test.cmake
# One packaging test; see package.cmake for the list.
set(prefix "${WORK_DIR}/prefix")
set(toolchain -G "${GENERATOR}")
if(MAKE_PROGRAM)
  list(APPEND toolchain "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(CXX_COMPILER)
  list(APPEND toolchain "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
endif()
if(CXX_COMPILER_LAUNCHER)
  list(APPEND toolchain "-DCMAKE_CXX_COMPILER_LAUNCHER=${CXX_COMPILER_LAUNCHER}")
endif()
cmake_minimum_required(VERSION 3.20)

# Runs a command; fails the test, showing the output, unless it exits with `expect` (0 or FAIL).
# The output is left in `last_output`.
function(step expect)
  list(JOIN ARGN " " shown)
  message(STATUS "\$ ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  set(last_output "${out}" PARENT_SCOPE)
  if(expect STREQUAL "FAIL")
    if(rc EQUAL 0)
      message(FATAL_ERROR "expected this to fail, but it succeeded:\n${out}")
    endif()
  elseif(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}):\n${out}")
  endif()
endfunction()

# Configures, builds and runs the consumer in a fresh build directory.
function(consumer_builds_and_runs dir)
  file(REMOVE_RECURSE "${dir}")
  step(0 "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${dir}" ${toolchain} ${ARGN})
  message("${last_output}")
  step(0 "${CMAKE_COMMAND}" --build "${dir}")
  step(0 "${dir}/consumer")
  message("${last_output}")
endfunction()

# Configures the consumer against the installed edgescale with a given Eigen situation.
function(consumer_configure expect dir)
  file(REMOVE_RECURSE "${dir}")
  step(${expect} "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${dir}" ${toolchain} ${ARGN})
  set(last_output "${last_output}" PARENT_SCOPE)
endfunction()

function(expect_output regex)
  if(NOT last_output MATCHES "${regex}")
    message(FATAL_ERROR "expected the output to match '${regex}':\n${last_output}")
  endif()
  message(STATUS "output matches '${regex}'")
endfunction()

if(MODE STREQUAL "install")
  set(build "${WORK_DIR}/edgescale-build")
  file(REMOVE_RECURSE "${build}" "${prefix}")
  step(0 "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${build}" ${toolchain}
    -DEDGESCALE_BUILD_TESTS=OFF -DEDGESCALE_BUILD_EXAMPLES=OFF -DEDGESCALE_BUILD_BENCH=OFF
    "-DCMAKE_INSTALL_PREFIX=${prefix}")
  step(0 "${CMAKE_COMMAND}" --install "${build}")
  foreach(file IN ITEMS
      include/edgescale/core/tensor.hpp
      share/cmake/edgescale/edgescaleConfig.cmake
      share/cmake/edgescale/edgescaleConfigVersion.cmake
      share/cmake/edgescale/edgescaleTargets.cmake
      share/cmake/edgescale/edgescaleFindEigen.cmake)
    if(NOT EXISTS "${prefix}/${file}")
      message(FATAL_ERROR "the install lacks ${file}:\n${last_output}")
    endif()
  endforeach()
  message(STATUS "installed into ${prefix}")

elseif(MODE STREQUAL "find_package")
  consumer_builds_and_runs("${WORK_DIR}/consumer-find_package"
    -DCONSUMER_MODE=find_package "-DCMAKE_PREFIX_PATH=${prefix}")

elseif(MODE STREQUAL "add_subdirectory")
  consumer_builds_and_runs("${WORK_DIR}/consumer-add_subdirectory"
    -DCONSUMER_MODE=add_subdirectory "-DEDGESCALE_SOURCE_DIR=${SOURCE_DIR}")

elseif(MODE STREQUAL "eigen5_accepted")
  # Eigen3_ROOT is searched first, so the stand-in is found before the system's Eigen.
  consumer_configure(0 "${WORK_DIR}/consumer-eigen5" -DCONSUMER_MODE=find_package
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DEigen3_ROOT=${WORK_DIR}/fake-eigen-5.0.0")
  expect_output("consumer: edgescale 0\\.1\\.0 with Eigen 5\\.0\\.0")

elseif(MODE STREQUAL "eigen33_rejected")
  consumer_configure(FAIL "${WORK_DIR}/consumer-eigen33" -DCONSUMER_MODE=find_package
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DEigen3_ROOT=${WORK_DIR}/fake-eigen-3.3.9")
  expect_output("edgescale needs Eigen 3\\.4 to 5, found 3\\.3\\.9")

elseif(MODE STREQUAL "no_eigen")
  consumer_configure(FAIL "${WORK_DIR}/consumer-no-eigen" -DCONSUMER_MODE=find_package
    "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON)
  expect_output("edgescale needs Eigen 3\\.4 to 5 \\(Debian: libeigen3-dev\\)")

else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
