# The export tests (included by tests/CMakeLists.txt), label `export`:
#
#   export.header_matches_qnetwork   export_generate (generate.cpp) builds, calibrates and converts
#                                    three networks and writes each as a header with the integer
#                                    network's answers on 2000 test inputs; run_export.cmake then
#                                    compiles each header alone (C++20) and driver.cpp with all of
#                                    them (C++17), -O1 and warnings as errors, links and runs it:
#                                    every code must equal the library's, with no heap allocation
#   export.unsupported_stage         a network with a stage the exporter does not know must not
#   export.unsupported_stage.control compile, naming the stage (tests/failtest's runner)
#
# The compiler is this build's, with the tests' options (edgescale_test_options and what it links:
# -march, the sanitizers, so ASan and UBSan watch the generated runtime in the sanitizer build).
add_executable(export_generate quant/export/generate.cpp)
edgescale_test_settings(export_generate)

set(_es_export_dir "${CMAKE_CURRENT_BINARY_DIR}/export")
file(GENERATE OUTPUT "${_es_export_dir}/flags.cmake" CONTENT
"set(EXPORT_COMPILE_OPTIONS \"$<TARGET_PROPERTY:edgescale_test_options,INTERFACE_COMPILE_OPTIONS>\")
set(EXPORT_LINK_OPTIONS \"$<TARGET_PROPERTY:edgescale_test_options,INTERFACE_LINK_OPTIONS>\")
set(FAILTEST_INCLUDES \"$<TARGET_PROPERTY:edgescale,INTERFACE_INCLUDE_DIRECTORIES>\")
set(FAILTEST_SYSTEM_INCLUDES \"$<TARGET_PROPERTY:Eigen3::Eigen,INTERFACE_INCLUDE_DIRECTORIES>\")
set(FAILTEST_DEFINES \"$<TARGET_PROPERTY:edgescale,INTERFACE_COMPILE_DEFINITIONS>\")
")

add_test(NAME export.header_matches_qnetwork
  COMMAND ${CMAKE_COMMAND}
    "-DGENERATOR=$<TARGET_FILE:export_generate>"
    "-DCOMPILER=${CMAKE_CXX_COMPILER}"
    "-DLAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}"
    "-DCXX_FLAGS=${CMAKE_CXX_FLAGS}"
    "-DFLAGS_FILE=${_es_export_dir}/flags.cmake"
    "-DSOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}/quant/export"
    "-DWORK=${_es_export_dir}/work"
    -P "${CMAKE_CURRENT_SOURCE_DIR}/quant/export/run_export.cmake")
set_tests_properties(export.header_matches_qnetwork PROPERTIES LABELS export TIMEOUT 300)

foreach(mode IN ITEMS fail control)
  set(name export.unsupported_stage)
  if(mode STREQUAL "control")
    set(name export.unsupported_stage.control)
  endif()
  add_test(NAME ${name}
    COMMAND ${CMAKE_COMMAND}
      "-DCOMPILER=${CMAKE_CXX_COMPILER}"
      "-DSOURCE=${CMAKE_CURRENT_SOURCE_DIR}/quant/export/unsupported_stage.cpp"
      "-DFLAGS_FILE=${_es_export_dir}/flags.cmake"
      "-DMODE=${mode}"
      -P "${CMAKE_CURRENT_SOURCE_DIR}/failtest/run_failtest.cmake")
  set_tests_properties(${name} PROPERTIES LABELS export)
endforeach()
