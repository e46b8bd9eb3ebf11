# Packaging tests (included by tests/CMakeLists.txt), label `package`. A user's project sees
# edgescale the two ways it can: installed (find_package) and vendored (add_subdirectory).
#
#   package.install            configure this source tree alone (tests off), install it into
#                              <build>/tests/package/prefix                (fixture for the next three)
#   package.find_package       tests/package/consumer: find_package(edgescale 0.1 CONFIG REQUIRED),
#                              build, run
#   package.eigen5_accepted    the installed config accepts an Eigen 5.0.0 (a stand-in package)
#   package.eigen33_rejected   ... and rejects Eigen 3.3.9 with a message that says what is needed
#   package.no_eigen           ... and says what to install when there is no Eigen at all
#   package.add_subdirectory   the consumer with add_subdirectory(<this source tree>), build, run
#
# The stand-in Eigen packages are an Eigen3Config.cmake with an INTERFACE Eigen3::Eigen over the
# real headers, and a version file written by CMake's own helper with SameMajorVersion, as Eigen
# 3.4 and 5 write theirs; that is what makes `find_package(Eigen3 3.4...5)` reject both ends.
set(_es_pkg_dir "${CMAKE_CURRENT_BINARY_DIR}/package")
set(_es_pkg_script "${CMAKE_CURRENT_SOURCE_DIR}/package/run_package_test.cmake")

get_target_property(_es_eigen_includes Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
include(CMakePackageConfigHelpers)
foreach(version IN ITEMS 5.0.0 3.3.9)
  set(fake "${_es_pkg_dir}/fake-eigen-${version}/share/eigen3/cmake")
  file(CONFIGURE OUTPUT "${fake}/Eigen3Config.cmake" CONTENT [=[
# A stand-in for an installed Eigen @version@ (tests/package/package.cmake): the target and the
# version, over the headers of the Eigen this build found.
if(NOT TARGET Eigen3::Eigen)
  add_library(Eigen3::Eigen INTERFACE IMPORTED)
  set_target_properties(Eigen3::Eigen PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "@_es_eigen_includes@")
endif()
]=] @ONLY)
  write_basic_package_version_file("${fake}/Eigen3ConfigVersion.cmake" VERSION ${version}
    COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
endforeach()

set(_es_pkg_common
  "-DSOURCE_DIR=${PROJECT_SOURCE_DIR}"
  "-DCONSUMER_DIR=${CMAKE_CURRENT_SOURCE_DIR}/package/consumer"
  "-DWORK_DIR=${_es_pkg_dir}"
  "-DGENERATOR=${CMAKE_GENERATOR}"
  "-DMAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}"
  "-DCXX_COMPILER=${CMAKE_CXX_COMPILER}"
  "-DCXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}")

function(_es_add_package_test name)
  add_test(NAME package.${name}
    COMMAND ${CMAKE_COMMAND} ${_es_pkg_common} -DMODE=${name} -P "${_es_pkg_script}")
  set_tests_properties(package.${name} PROPERTIES LABELS package ${ARGN})
endfunction()

_es_add_package_test(install FIXTURES_SETUP edgescale_installed)
foreach(name IN ITEMS find_package eigen5_accepted eigen33_rejected no_eigen)
  _es_add_package_test(${name} FIXTURES_REQUIRED edgescale_installed)
endforeach()
_es_add_package_test(add_subdirectory)
