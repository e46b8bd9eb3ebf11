# Finds Eigen 3.4 up to Eigen 5 and provides Eigen3::Eigen.
#
# Eigen 3.4's and 5's package version files accept a range only when both ends share their major
# version (CMake's SameMajorVersion), so `find_package(Eigen3 3.4...5)` rejects Eigen 3.4 and Eigen
# 5 alike. We ask for the range first (it works for a future Eigen whose version file accepts it),
# then fall back to an unversioned search and check the version ourselves.
#
#   edgescale_find_eigen()                in the build: no suitable Eigen is a fatal error
#   edgescale_find_eigen(PACKAGE_CONFIG)  in edgescaleConfig.cmake: find_dependency semantics, i.e.
#                                         edgescale_FOUND is set FALSE with edgescale_NOT_FOUND_MESSAGE
#                                         saying why, and find_package(edgescale) reports it (fatal
#                                         only when the user said REQUIRED)
# A macro, not a function: Eigen3_FOUND, Eigen3_VERSION and Eigen3_DIR reach the caller as
# find_dependency would leave them.
macro(edgescale_find_eigen)
  if(NOT TARGET Eigen3::Eigen)
    find_package(Eigen3 3.4...5 QUIET NO_MODULE)
    if(NOT Eigen3_FOUND)
      find_package(Eigen3 QUIET NO_MODULE)
    endif()
  endif()
  unset(_edgescale_eigen_msg)
  if(NOT TARGET Eigen3::Eigen)
    set(_edgescale_eigen_msg "edgescale needs Eigen 3.4 to 5 (Debian: libeigen3-dev)")
  elseif(Eigen3_VERSION AND (Eigen3_VERSION VERSION_LESS 3.4 OR Eigen3_VERSION VERSION_GREATER_EQUAL 6))
    set(_edgescale_eigen_msg "edgescale needs Eigen 3.4 to 5, found ${Eigen3_VERSION} in ${Eigen3_DIR}")
  endif()
  if(DEFINED _edgescale_eigen_msg)
    if("${ARGN}" STREQUAL "PACKAGE_CONFIG")
      set(edgescale_NOT_FOUND_MESSAGE "${_edgescale_eigen_msg}")
      set(edgescale_FOUND FALSE)
    else()
      message(FATAL_ERROR "${_edgescale_eigen_msg}")
    endif()
    unset(_edgescale_eigen_msg)
  endif()
endmacro()
