// edgescale/mpi/transport.hpp — the federated simulation over MPI: a fed::Transport.
//
//   mpi::Environment env(argc, argv);
//   mpi::Communicator world;
//   fed::Fed3r<float> strategy(d, 10);                    // the same on every rank
//   fed::Simulation sim(strategy, pool, clients, {.per_round = 10, .sampling =
//   fed::Sampling::cyclic},
//                       mpi::Transport(world));           // deterministic by default
//   auto history = sim.run(sim.rounds_per_pass(), test); // the same history on every rank
//
// `mpirun -np P program` runs P ranks; each simulates the clients fed::client_owner gives it (a
// block of the 1024 reduction slots, so a client's state stays on one rank whatever P), and the
// round's updates are reduced as fed/reduce.hpp says:
//   Mode::deterministic  the fixed tree, by point-to-point messages along a binomial tree, then a
//                        broadcast of the sum: bit-identical for 1, 2, 4, ... ranks and to the
//                        in-process simulation;
//   Mode::fast           each rank adds its clients in order, then one MPI_Allreduce (MPI_SUM in
//                        the library's order: the result differs from the deterministic one in the
//                        last bits, measured in docs/distributed.md, and is the same on every rank
//                        because Open MPI's allreduce algorithms give every rank the same bits).
// Every rank then applies the sum, so the model, SCAFFOLD's control variates and FedOpt's moments
// agree on every rank without a broadcast of the model. Rank 0 evaluates and broadcasts the
// accuracy. Only fed::Reducible strategies run on more than one rank (the simulation says so).
#pragma once

#include <edgescale/fed/transport.hpp>
#include <edgescale/mpi/communicator.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgescale::mpi {

/// How a round's updates are summed across ranks.
enum class Mode {
  deterministic,  ///< the fixed tree of fed/reduce.hpp: bit-identical for any rank count
  fast,           ///< one MPI_Allreduce: MPI's order, fewer messages
};

/// A fed::Transport over an MPI communicator.
class Transport {
 public:
  explicit Transport(Communicator comm = Communicator(), Mode mode = Mode::deterministic)
      : comm_(std::move(comm)), mode_(mode) {}

  [[nodiscard]] int rank() const { return comm_.rank(); }
  [[nodiscard]] int ranks() const { return comm_.size(); }
  [[nodiscard]] bool deterministic() const { return mode_ == Mode::deterministic; }
  [[nodiscard]] Mode mode() const { return mode_; }
  [[nodiscard]] std::vector<std::string> allgather(std::string_view bytes) {
    return comm_.allgather(bytes);
  }
  void send(int peer, std::span<const double> values) { comm_.send(peer, values); }
  void receive(int peer, std::span<double> values) { comm_.receive(peer, values); }
  void send(int peer, std::string_view bytes) { comm_.send(peer, bytes); }
  [[nodiscard]] std::string receive(int peer) { return comm_.receive(peer); }
  void allreduce_sum(std::span<double> values) { comm_.allreduce_sum(values); }
  void broadcast(std::span<double> values) { comm_.broadcast(values, 0); }
  [[nodiscard]] std::size_t bytes_sent() const { return comm_.bytes_sent(); }

  [[nodiscard]] Communicator& communicator() { return comm_; }

 private:
  Communicator comm_;
  Mode mode_;
};

static_assert(fed::Transport<Transport>);

}  // namespace edgescale::mpi
