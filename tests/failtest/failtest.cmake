# Must-not-compile tests (included by tests/CMakeLists.txt), in the manner of Eigen's failtests.
#
# Each tests/failtest/<name>.cpp starts with
#     // EXPECT-ERROR: <CMake regex the compiler's diagnostics must match>
# and holds code that must not compile. Under `#ifdef EDGESCALE_FAILTEST_CONTROL` it has the valid
# variant of the same code. Two tests per file, both run by run_failtest.cmake with -fsyntax-only:
#   failtest.<name>          passes when compiling FAILS with a diagnostic that matches the regex
#   failtest.<name>.control  passes when the file compiles with -DEDGESCALE_FAILTEST_CONTROL, so a
#                            failtest cannot pass because of a typo or a missing include
# The regex is read from the file when the test runs (no reconfigure needed after editing it) and
# is matched against diagnostics in the C locale (plain quotes). It is a CMake regex: no \d or \s;
# use [0-9] and [ \t].
file(GLOB _es_failtests CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/failtest/*.cpp")

if(_es_failtests)
  # The include directories of edgescale::edgescale with those of its dependencies (Eigen), as
  # the build evaluates them; written at generate time because they may hold generator
  # expressions. Eigen's come in as -isystem, like an imported target's, so its warnings stay out.
  set(_es_failtest_flags "${CMAKE_CURRENT_BINARY_DIR}/failtest/flags.cmake")
  file(GENERATE OUTPUT "${_es_failtest_flags}" CONTENT
"set(FAILTEST_INCLUDES \"$<TARGET_PROPERTY:edgescale,INTERFACE_INCLUDE_DIRECTORIES>\")
set(FAILTEST_SYSTEM_INCLUDES \"$<TARGET_PROPERTY:Eigen3::Eigen,INTERFACE_INCLUDE_DIRECTORIES>\")
set(FAILTEST_DEFINES \"$<TARGET_PROPERTY:edgescale,INTERFACE_COMPILE_DEFINITIONS>\")
")
  foreach(source IN LISTS _es_failtests)
    get_filename_component(name "${source}" NAME_WE)
    foreach(mode IN ITEMS fail control)
      if(mode STREQUAL "fail")
        set(test_name "failtest.${name}")
      else()
        set(test_name "failtest.${name}.control")
      endif()
      add_test(NAME ${test_name}
        COMMAND ${CMAKE_COMMAND}
          "-DCOMPILER=${CMAKE_CXX_COMPILER}"
          "-DSOURCE=${source}"
          "-DFLAGS_FILE=${_es_failtest_flags}"
          "-DMODE=${mode}"
          -P "${CMAKE_CURRENT_SOURCE_DIR}/failtest/run_failtest.cmake")
      set_tests_properties(${test_name} PROPERTIES LABELS failtest)
    endforeach()
  endforeach()
endif()
