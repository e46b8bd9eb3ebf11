// The doctest runner of the MPI tests: every rank runs every test case (the collectives inside
// them meet), and the job fails when any rank fails. ctest runs it under mpirun -np 1, 2 and 4.
#define DOCTEST_CONFIG_IMPLEMENT
#include <edgescale/mpi/communicator.hpp>

#include <doctest/doctest.h>
#include <mpi.h>

#include <cstdio>

int main(int argc, char** argv) {
  edgescale::mpi::Environment env(argc, argv);
  int rank = 0;
  int ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  doctest::Context context(argc, argv);
  int failed = context.run();
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0) {
    std::printf("MPI tests on %d rank%s: %s\n", ranks, ranks == 1 ? "" : "s",
                failed == 0 ? "passed on every rank" : "FAILED on some rank");
  }
  return failed;
}
