// federated — a federation of simulated clients on Fashion-MNIST in one process: FED3R and its
// peers. The flags and the JSON report are described in examples/federated/driver.cpp;
// examples/federated_mpi.cpp runs the same over MPI ranks.
//
//   build/examples/federated --strategy fed3r --features public --alpha 0.05 --out r.json
#include <edgescale/core/error.hpp>

#include "federated/driver.hpp"

int main(int argc, char** argv) {
  return edgescale::examples::federated::run_federated(
      argc, argv, "federated", [](bool fast) -> edgescale::fed::AnyTransport {
        if (fast) {
          throw edgescale::argument_error(
              "--reduction fast sums across MPI ranks: run federated_mpi under mpirun");
        }
        return edgescale::fed::InProcess{};
      });
}
