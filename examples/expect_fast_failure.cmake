# cmake -DPROGRAM=<exe> -DARGS=<arguments, space-separated> -DEXPECT=<regex> -P expect_fast_failure.cmake
#
# Runs PROGRAM with ARGS and passes when it fails (non-zero exit) within a few seconds with
# diagnostics matching EXPECT and without having started its work (no "loading" line): an output
# path that cannot be written must be reported before an example loads data or trains.
if(NOT PROGRAM OR NOT EXPECT)
  message(FATAL_ERROR "usage: cmake -DPROGRAM=<exe> -DARGS=<arguments> -DEXPECT=<regex> -P expect_fast_failure.cmake")
endif()
separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(COMMAND "${PROGRAM}" ${args}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 5)
set(shown "${ARGS}")
if(rc MATCHES "timeout")
  message(FATAL_ERROR "${PROGRAM} ${shown}: still running after 5 s; expected a fast failure:\n${out}")
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} ${shown}: succeeded; expected a failure:\n${out}")
endif()
if(out MATCHES "loading")
  message(FATAL_ERROR "${PROGRAM} ${shown}: started its work before failing:\n${out}")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "${PROGRAM} ${shown}: exit ${rc}, but the message does not match '${EXPECT}':\n${out}")
endif()
message(STATUS "${PROGRAM} ${shown}: failed as expected (exit ${rc}): ${out}")
