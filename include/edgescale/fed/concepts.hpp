// edgescale/fed/concepts.hpp — the plug-in points of federated learning: Partitioner, Strategy
// and Aggregator.
//
// A simulation (fed/simulate.hpp) is generic over all three, so a user's own split, strategy or
// robust aggregation runs in the same loop, with the same seeding, threading and byte accounting
// as the built-ins (tests/fed/test_simulate.cpp plugs in a strategy of its own).
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/client.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace edgescale::fed {

// clang-format off

/// Splits a labelled dataset among K clients: partition(labels, classes, K, rng) returns K index
/// sets (fed::Partition). It sees the labels only (label skew is what non-IID splits control) and
/// draws every random choice from `rng`, so a seed gives the same split everywhere.
template <class P>
concept Partitioner = requires(const P& p, std::span<const std::int32_t> labels, Index classes,
                               Index clients, Rng& rng) {
  { p.partition(labels, classes, clients, rng) } -> std::same_as<Partition>;
};

/// The types a strategy names: the dataset's scalar type, what a client sends up (update_type),
/// what a client keeps between rounds (client_state; fed::Stateless when nothing, and then the
/// simulation stores nothing per client), and the per-thread scratch a client procedure works in
/// (worker_type: a copy of the network, its optimizer, buffers), made by make_worker().
template <class S>
concept HasStrategyTypes = requires {
  typename S::scalar_type;
  typename S::update_type;
  typename S::client_state;
  typename S::worker_type;
} && std::default_initializable<typename S::client_state>;

/// The client procedure. client_update is const because the simulation calls it for many
/// clients at once on one strategy: it reads the global model and writes only into the worker,
/// the client's state and its result. The generator is the client's own for this round
/// (fed::client_stream), so a result does not depend on the thread that computed it.
template <class S>
concept HasClientProcedure = HasStrategyTypes<S> &&
    requires(const S& s, typename S::worker_type& w,
             const ClientData<typename S::scalar_type>& d, typename S::client_state& st,
             Rng& rng, const typename S::update_type& u) {
  { s.make_worker() } -> std::same_as<typename S::worker_type>;
  { s.client_update(w, d, st, rng) } -> std::same_as<typename S::update_type>;
  // The server's screening of one update: empty to accept it, otherwise the reason it is
  // rejected (wrong shape, NaN/Inf, inconsistent counts). A rejected update is left out of the
  // round, which completes with the others.
  { s.check(u) } -> std::convertible_to<std::string>;
};

/// The server update: the accepted updates of a round, in the order the clients were sampled
/// (a fixed order, so the sum is the same for any thread count).
template <class S>
concept HasServerUpdate = HasStrategyTypes<S> &&
    requires(S& s, std::span<const Received<typename S::update_type>> received,
             const RoundInfo& info) {
  s.server_update(received, info);
};

/// Communication accounting: bytes one client sends for its update, and bytes the server sends
/// each sampled client at the start of a round (the model, control variates, a seed).
template <class S>
concept HasByteCounts = HasStrategyTypes<S> &&
    requires(const S& s, const typename S::update_type& u) {
  { s.bytes_up(u) } -> std::convertible_to<std::size_t>;
  { s.bytes_down() } -> std::convertible_to<std::size_t>;
};

/// Accuracy of the current global model on a test set of the federation's kind (images, or the
/// same features the clients see).
template <class S>
concept HasEvaluation = HasStrategyTypes<S> &&
    requires(S& s, const data::Dataset<typename S::scalar_type>& test) {
  { s.evaluate(test) } -> std::convertible_to<double>;
};

/// A federated strategy: client procedure + server update + per-client and server state + the
/// bytes it moves. Built-ins: FedAvg, FedAvgM, FedProx, Scaffold, FedOpt (FedAdagrad, FedAdam,
/// FedYogi), FedNcm, Fed3r.
template <class S>
concept Strategy = HasClientProcedure<S> && HasServerUpdate<S> && HasByteCounts<S> &&
                   HasEvaluation<S>;

/// A strategy whose server state (the global model, FedAvgM's velocity, FedOpt's moments, FED3R's
/// statistics) can be saved as values and loaded back bit for bit: what a checkpoint of a
/// simulation holds (fed::Simulation::checkpoint). load_server_state throws argument_error for
/// values of another length or a non-finite value, leaving the strategy unchanged.
template <class S>
concept Checkpointable = requires(const S& cs, S& s, std::span<const double> values) {
  { cs.server_state() } -> std::same_as<std::vector<double>>;
  s.load_server_state(values);
};

/// Combines client models (or deltas) with weights into one: combine(sets, weights). The
/// weights are the clients' sample counts (FedAvg); a robust aggregator may ignore them.
template <class A, class T>
concept Aggregator = requires(const A& a, std::span<const ParameterSet<T>* const> sets,
                              std::span<const double> weights) {
  { a.combine(sets, weights) } -> std::same_as<ParameterSet<T>>;
};

// clang-format on

}  // namespace edgescale::fed
