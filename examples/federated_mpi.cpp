// federated_mpi — the federated example over MPI: every rank loads the data and builds the same
// federation, simulates the clients of its own block and takes part in each round's reduction
// (edgescale/mpi/transport.hpp). The same flags and JSON as build/examples/federated, plus
// "ranks", "reduction" and "transport_bytes_rank0"; with --reduction deterministic (the default)
// the results are bit-identical to build/examples/federated's for any rank count.
//
//   mpirun -np 4 build/examples/federated_mpi --strategy fed3r --features public --out r.json
//   mpirun -np 4 build/examples/federated_mpi --strategy fedavg --reduction fast --rounds 50
//
// An exception on one rank ends the whole job (MPI_Abort), since the others would wait for it in
// the next collective.
#include <edgescale/mpi/communicator.hpp>
#include <edgescale/mpi/transport.hpp>

#include "federated/driver.hpp"
#include <mpi.h>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  try {
    edgescale::mpi::Environment env(argc, argv);
    const int status = edgescale::examples::federated::run_federated(
        argc, argv, "federated_mpi", [](bool fast) -> edgescale::fed::AnyTransport {
          return edgescale::mpi::Transport(
              edgescale::mpi::Communicator(),
              fast ? edgescale::mpi::Mode::fast : edgescale::mpi::Mode::deterministic);
        });
    if (status != 0) {
      MPI_Abort(MPI_COMM_WORLD, status);
    }
    return status;
  } catch (const std::exception& e) {
    std::cerr << "federated_mpi: " << e.what() << "\n";
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
}
