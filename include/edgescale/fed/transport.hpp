// edgescale/fed/transport.hpp — how client results reach the server: the Transport concept, its
// in-process model, and a type-erased handle to any model.
//
//   fed::Simulation sim(strategy, pool, clients, options);                    // fed::InProcess
//   fed::Simulation sim(strategy, pool, clients, options, mpi::Transport(world)); // over MPI
//
// A simulation runs on `ranks()` processes that all hold the same strategy, pool and partition.
// Each simulates the clients of its own block (fed/reduce.hpp assigns clients to ranks by a rule
// that does not depend on the rank count), and the round's updates are reduced across ranks into
// one buffer that every rank applies, so the server state (the model, SCAFFOLD's control variate,
// FedOpt's moments, FED3R's statistics) is the same on every rank without being sent. In-process
// is the model with one rank: nothing is sent. The MPI model is in edgescale/mpi/transport.hpp;
// a user's own (another message-passing library, a test double) satisfies the same concept.
//
// The concept asks for a few primitives, each collective over all ranks unless it says otherwise,
// and leaves the reduction's algorithm to fed/reduce.hpp so every model computes the same sums:
//   rank(), ranks()             this process's number and the count
//   deterministic()             true: the fixed reduction tree (bit-identical for any rank count);
//                               false: allreduce_sum in the transport's own order (faster)
//   allgather(bytes)            every rank's bytes, in rank order (round outcomes, fingerprints)
//   send(to, ...), receive(from, ...)   point to point, doubles or bytes (the reduction tree)
//   allreduce_sum(values)       values summed over ranks, on every rank (fast mode)
//   broadcast(values)           rank 0's values on every rank
//   bytes_sent()                bytes this rank has sent so far (communication accounting)
#pragma once

#include <edgescale/core/error.hpp>

#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace edgescale::fed {

// clang-format off

/// How a federation's ranks talk (see the top of this file).
template <class X>
concept Transport = requires(X& t, const X& ct, std::string_view bytes, int peer,
                             std::span<const double> in, std::span<double> out) {
  { ct.rank() } -> std::convertible_to<int>;
  { ct.ranks() } -> std::convertible_to<int>;
  { ct.deterministic() } -> std::convertible_to<bool>;
  { t.allgather(bytes) } -> std::same_as<std::vector<std::string>>;
  t.send(peer, in);
  t.receive(peer, out);
  t.send(peer, bytes);
  { t.receive(peer) } -> std::same_as<std::string>;
  t.allreduce_sum(out);
  t.broadcast(out);
  { ct.bytes_sent() } -> std::convertible_to<std::size_t>;
};

// clang-format on

/// One process, no messages: the thread-pool simulation of fed/simulate.hpp. Point-to-point
/// calls have no peer and throw; the collectives are the identity.
struct InProcess {
  [[nodiscard]] static constexpr int rank() { return 0; }
  [[nodiscard]] static constexpr int ranks() { return 1; }
  [[nodiscard]] static constexpr bool deterministic() { return true; }
  [[nodiscard]] std::vector<std::string> allgather(std::string_view bytes) const {
    return {std::string(bytes)};
  }
  void send(int peer, std::span<const double> /*values*/) const { no_peer(peer); }
  void receive(int peer, std::span<double> /*values*/) const { no_peer(peer); }
  void send(int peer, std::string_view /*bytes*/) const { no_peer(peer); }
  [[nodiscard]] std::string receive(int peer) const {
    no_peer(peer);
    return {};
  }
  void allreduce_sum(std::span<double> /*values*/) const {}
  void broadcast(std::span<double> /*values*/) const {}
  [[nodiscard]] static constexpr std::size_t bytes_sent() { return 0; }

 private:
  [[noreturn]] static void no_peer(int peer) {
    throw argument_error("fed::InProcess: there is no rank " + std::to_string(peer) +
                         " (one process)");
  }
};

/// A copyable handle to any Transport, for code compiled once for every transport (the
/// federated examples: fed::Simulation<S, fed::AnyTransport> runs in process or over MPI).
/// The model is shared by the copies; a virtual call per message costs nothing beside it.
class AnyTransport {
 public:
  /// In-process.
  AnyTransport() : AnyTransport(InProcess{}) {}
  template <Transport X>
    requires(!std::same_as<std::remove_cvref_t<X>, AnyTransport>)
  AnyTransport(X model)  // NOLINT(google-explicit-constructor): a handle stands for its model
      : model_(std::make_shared<Model<X>>(std::move(model))) {}

  [[nodiscard]] int rank() const { return model_->rank(); }
  [[nodiscard]] int ranks() const { return model_->ranks(); }
  [[nodiscard]] bool deterministic() const { return model_->deterministic(); }
  [[nodiscard]] std::vector<std::string> allgather(std::string_view bytes) {
    return model_->allgather(bytes);
  }
  void send(int peer, std::span<const double> values) { model_->send(peer, values); }
  void receive(int peer, std::span<double> values) { model_->receive(peer, values); }
  void send(int peer, std::string_view bytes) { model_->send(peer, bytes); }
  [[nodiscard]] std::string receive(int peer) { return model_->receive(peer); }
  void allreduce_sum(std::span<double> values) { model_->allreduce_sum(values); }
  void broadcast(std::span<double> values) { model_->broadcast(values); }
  [[nodiscard]] std::size_t bytes_sent() const { return model_->bytes_sent(); }

 private:
  struct Interface {
    Interface() = default;
    Interface(const Interface&) = delete;
    Interface& operator=(const Interface&) = delete;
    virtual ~Interface() = default;
    [[nodiscard]] virtual int rank() const = 0;
    [[nodiscard]] virtual int ranks() const = 0;
    [[nodiscard]] virtual bool deterministic() const = 0;
    virtual std::vector<std::string> allgather(std::string_view bytes) = 0;
    virtual void send(int peer, std::span<const double> values) = 0;
    virtual void receive(int peer, std::span<double> values) = 0;
    virtual void send(int peer, std::string_view bytes) = 0;
    virtual std::string receive(int peer) = 0;
    virtual void allreduce_sum(std::span<double> values) = 0;
    virtual void broadcast(std::span<double> values) = 0;
    [[nodiscard]] virtual std::size_t bytes_sent() const = 0;
  };
  template <class X>
  struct Model final : Interface {
    explicit Model(X m) : x(std::move(m)) {}
    [[nodiscard]] int rank() const override { return x.rank(); }
    [[nodiscard]] int ranks() const override { return x.ranks(); }
    [[nodiscard]] bool deterministic() const override { return x.deterministic(); }
    std::vector<std::string> allgather(std::string_view bytes) override {
      return x.allgather(bytes);
    }
    void send(int peer, std::span<const double> values) override { x.send(peer, values); }
    void receive(int peer, std::span<double> values) override { x.receive(peer, values); }
    void send(int peer, std::string_view bytes) override { x.send(peer, bytes); }
    std::string receive(int peer) override { return x.receive(peer); }
    void allreduce_sum(std::span<double> values) override { x.allreduce_sum(values); }
    void broadcast(std::span<double> values) override { x.broadcast(values); }
    [[nodiscard]] std::size_t bytes_sent() const override { return x.bytes_sent(); }
    X x;
  };
  std::shared_ptr<Interface> model_;
};

}  // namespace edgescale::fed
