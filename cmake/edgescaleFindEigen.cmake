# Finds Eigen 3.4 up to Eigen 5 and provides Eigen3::Eigen.
#
# Eigen 3.4's package version file accepts a range only when both ends share its major version, so
# `find_package(Eigen3 3.4...5)` rejects Eigen 3.4 (and Eigen 5's rejects a 3.x minimum). We ask
# for the range first, then fall back to an unversioned search and check the version ourselves.
# Used by the build and by the installed edgescaleConfig.cmake alike.
macro(edgescale_find_eigen)
  if(NOT TARGET Eigen3::Eigen)
    find_package(Eigen3 3.4...5 QUIET NO_MODULE)
    if(NOT Eigen3_FOUND)
      find_package(Eigen3 QUIET NO_MODULE)
    endif()
    if(NOT Eigen3_FOUND OR NOT TARGET Eigen3::Eigen)
      set(_edgescale_eigen_msg "edgescale needs Eigen 3.4 to 5 (Debian: libeigen3-dev)")
    elseif(DEFINED Eigen3_VERSION AND (Eigen3_VERSION VERSION_LESS 3.4 OR Eigen3_VERSION VERSION_GREATER_EQUAL 6))
      set(_edgescale_eigen_msg "edgescale needs Eigen 3.4 to 5, found ${Eigen3_VERSION}")
    endif()
    if(DEFINED _edgescale_eigen_msg)
      if(COMMAND find_dependency)
        set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE "${_edgescale_eigen_msg}")
        set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
      else()
        message(FATAL_ERROR "${_edgescale_eigen_msg}")
      endif()
      unset(_edgescale_eigen_msg)
    endif()
  endif()
endmacro()
