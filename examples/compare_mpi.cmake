# cmake -DSERIAL=<federated> -DPARALLEL=<federated_mpi> -DMPIEXEC=<mpiexec> -DWORK=<dir>
#       -P compare_mpi.cmake
#
# Runs the federated example in one process and over 2 MPI ranks with the same flags, and passes
# when the two JSON reports agree on the accuracy curve and the bytes (deterministic reduction:
# bit-identical results print identically) and the MPI one says "ranks": 2.
foreach(v SERIAL PARALLEL MPIEXEC WORK)
  if(NOT ${v})
    message(FATAL_ERROR "compare_mpi.cmake: -D${v}=... is required")
  endif()
endforeach()
file(MAKE_DIRECTORY "${WORK}")
# FED3R (the statistics path); the gradient strategies' path is tests/mpi's, bit for bit.
set(cases
  "fed3r --strategy fed3r --features random --width 16 --clients 40 --per-round 10")
foreach(case IN LISTS cases)
  separate_arguments(parts UNIX_COMMAND "${case}")
  list(POP_FRONT parts name)
  set(flags ${parts} --seed 3 --quiet)
  execute_process(COMMAND "${SERIAL}" ${flags} --out "${WORK}/${name}_serial.json"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${SERIAL} ${flags}: exit ${rc}\n${out}")
  endif()
  execute_process(COMMAND "${MPIEXEC}" -np 2 --oversubscribe --bind-to none "${PARALLEL}" ${flags}
      --out "${WORK}/${name}_mpi.json"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "mpiexec -np 2 ${PARALLEL} ${flags}: exit ${rc}\n${out}")
  endif()
  file(READ "${WORK}/${name}_serial.json" serial)
  file(READ "${WORK}/${name}_mpi.json" parallel)
  foreach(key accuracy bytes_up bytes_down final_accuracy)
    string(JSON a GET "${serial}" ${key})
    string(JSON b GET "${parallel}" ${key})
    if(NOT a STREQUAL b)
      message(FATAL_ERROR "${name}: \"${key}\" differs: one process ${a}, 2 ranks ${b}")
    endif()
  endforeach()
  string(JSON ranks GET "${parallel}" ranks)
  if(NOT ranks EQUAL 2)
    message(FATAL_ERROR "${name}: the MPI report says \"ranks\": ${ranks}")
  endif()
  string(JSON accuracy GET "${parallel}" final_accuracy)
  message(STATUS "${name}: one process and 2 ranks agree (final accuracy ${accuracy})")
endforeach()
