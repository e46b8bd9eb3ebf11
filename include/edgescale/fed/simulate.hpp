// edgescale/fed/simulate.hpp — a federation of K simulated clients in one process.
//
//   data::Dataset<float> pool = ..., test = ...;                      // images or features ψ(x)
//   fed::Partition clients = fed::DirichletPrior{.alpha = 0.05}.partition(labels, 10, 100, rng);
//   fed::FedAvg<Net> strategy(net, {.local = {.epochs = 1, .batch_size = 32, .learning_rate =
//   0.05}}); fed::Simulation sim(strategy, pool, clients, {.per_round = 10, .threads = 2, .seed =
//   1}); std::vector<fed::RoundReport> history = sim.run(100, test, [](const fed::RoundReport& r) {
//     std::cerr << r.round << ' ' << r.accuracy << '\n';
//   });
//
// Each round samples m of K clients uniformly without replacement from the stream "sampling",
// drops each with probability `dropout` (stragglers that never report; stream "dropout"), runs
// the others' client procedure on a pool of `threads` threads — each client with its own
// generator fed::client_stream(seed, round, client) — screens every update with the strategy's
// check (a rejected update, or a client that throws, is reported with its reason and left out),
// and hands the accepted ones to the server in ascending client order. Results are therefore
// bit-identical for any thread count. Client data stay index sets until a client runs; client
// state is kept only for stateful strategies and only for clients that have taken part, so
// 10 000 clients cost their indices and nothing else.
//
// Over several processes (a fed::Transport, e.g. mpi::Transport; fed/transport.hpp) every rank
// builds the same simulation: the same strategy, pool, partition and options. Every rank draws the
// same sampling and dropouts; each runs the sampled clients it owns (fed::client_owner, a rule that
// does not depend on the rank count, so a client's state stays on one rank); the ranks exchange the
// round's outcomes (rejections, bytes), reduce the accepted updates (fed/reduce.hpp: the fixed
// tree, so the result is bit-identical for any rank count and equal to one process) and every
// rank applies the sum, so the server state is the same everywhere without being sent. Rank 0
// evaluates and broadcasts the accuracy. Only fed::Reducible strategies run on more than one rank.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/concepts.hpp>
#include <edgescale/fed/detail/wire.hpp>
#include <edgescale/fed/reduce.hpp>
#include <edgescale/fed/transport.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <istream>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace edgescale::fed {

/// How a round picks its clients.
enum class Sampling {
  uniform,  ///< m of K uniformly without replacement, independently each round (FedAvg's)
  cyclic,   ///< passes over a random permutation, drawn afresh each pass: every client exactly
            ///< once per pass, m a round (the last round of a pass takes the K mod m left); how
            ///< FED3R visits each client once
};

struct SimulationOptions {
  Index per_round = 10;  ///< m, clients sampled each round
  Sampling sampling = Sampling::uniform;
  int threads = 1;         ///< client procedures run at once (results do not depend on it)
  double dropout = 0.0;    ///< probability that a sampled client never reports
  int evaluate_every = 1;  ///< evaluate the global model every this many rounds (and the last)
  std::uint64_t seed = 0;  ///< of the sampling, dropout and client streams
  /// Client updates a rank holds at once before they are screened and added to the round's
  /// reduction (fed::Reducible strategies; the others hold the whole round); 0: 4 per thread.
  /// Memory is this many updates plus one partial sum per tree level, so FED3R-RF's 400 MB
  /// statistics at D = 10⁴ stream through a rank. Within a window the threads balance their
  /// load. Results do not depend on it.
  Index max_held_updates = 0;
};

/// A client update the server refused, with the reason.
struct Rejection {
  Index client = 0;
  std::string reason;
};

/// What happened in one round.
struct RoundReport {
  int round = 0;                                               ///< from 0
  double accuracy = std::numeric_limits<double>::quiet_NaN();  ///< NaN when not evaluated
  std::vector<Index> sampled;                                  ///< ascending
  std::vector<Index> dropped;  ///< sampled clients that did not report
  std::vector<Rejection> rejected;
  Index received = 0;              ///< accepted updates
  std::size_t bytes_up = 0;        ///< this round: every update that reached the server
  std::size_t bytes_down = 0;      ///< this round: the broadcast to every sampled client
  std::size_t total_bytes_up = 0;  ///< cumulative
  std::size_t total_bytes_down = 0;
  std::size_t transport_bytes = 0;  ///< sent by this rank over the transport this round
  double seconds = 0;
};

/// Where a simulation stands between rounds: the round count, the sampling and dropout streams,
/// the byte totals, and the strategy's server state (fed::Checkpointable). A simulation rebuilt
/// with the same strategy settings, pool, partition and options and given it (restore) continues
/// bit for bit as if it had never stopped. save/load write it as text; load rejects a file that is
/// not one, with the reason.
struct SimulationCheckpoint {
  int round = 0;
  Index pass_position = 0;
  std::vector<Index> order;
  Rng sampling;
  Rng dropout;
  std::size_t total_bytes_up = 0;
  std::size_t total_bytes_down = 0;
  std::vector<double> server_state;

  void save(std::ostream& out) const {
    out << "edgescale-fed-checkpoint 1\n"
        << round << ' ' << pass_position << ' ' << total_bytes_up << ' ' << total_bytes_down << '\n'
        << order.size();
    for (const Index c : order) {
      out << ' ' << c;
    }
    out << '\n' << sampling << '\n' << dropout << '\n' << server_state.size();
    char hex[32];
    for (const double v : server_state) {
      std::snprintf(hex, sizeof hex, " %a", v);  // exact: hexadecimal floating point
      out << hex;
    }
    out << '\n';
    if (!out) {
      throw error("SimulationCheckpoint::save: the stream failed");
    }
  }

  [[nodiscard]] static SimulationCheckpoint load(std::istream& in) {
    const auto bad = [](const std::string& what) {
      return format_error("SimulationCheckpoint::load: not a checkpoint: " + what);
    };
    std::string magic;
    int version = 0;
    in >> magic >> version;
    if (!in || magic != "edgescale-fed-checkpoint" || version != 1) {
      throw bad("no 'edgescale-fed-checkpoint 1' header");
    }
    SimulationCheckpoint c;
    std::size_t count = 0;
    in >> c.round >> c.pass_position >> c.total_bytes_up >> c.total_bytes_down >> count;
    if (!in || c.round < 0 || c.pass_position < 0 || count > (std::size_t{1} << 40)) {
      throw bad("a bad round, position or client count");
    }
    c.order.resize(count);
    for (Index& k : c.order) {
      in >> k;
    }
    in >> c.sampling >> c.dropout >> count;
    if (!in || count > (std::size_t{1} << 40)) {
      throw bad("a truncated client order, generator state or server state");
    }
    c.server_state.resize(count);
    std::string word;
    for (double& v : c.server_state) {
      in >> word;
      char* end = nullptr;
      v = std::strtod(word.c_str(), &end);
      if (!in || end == word.c_str() || *end != '\0') {
        throw bad("a truncated or unreadable server state");
      }
    }
    return c;
  }
};

namespace detail {

// The round reducer of a Reducible strategy; nothing for the others.
template <class S, class X, bool Reducible>
struct ReducerFor {
  using type = int;
};
template <class S, class X>
struct ReducerFor<S, X, true> {
  using type = RoundReducer<S, X>;
};

// A rank's round outcomes on the wire: per client its number, whether it was accepted, the bytes
// of its update and the reason it was rejected.
struct Outcome {
  Index client = 0;
  bool accepted = false;
  std::size_t bytes = 0;
  std::string reason;
};

inline std::string encode_outcomes(const std::vector<Outcome>& outcomes) {
  std::string out;
  for (const Outcome& o : outcomes) {
    put_word(out, o.client);
    put_word(out, o.accepted ? 1 : 0);
    put_word(out, static_cast<std::int64_t>(o.bytes));
    put_bytes(out, o.reason);
  }
  return out;
}

inline void decode_outcomes(const std::string& in, int rank, std::vector<Outcome>& out) {
  WordReader r(in, "Simulation: rank " + std::to_string(rank) + " sent malformed round outcomes");
  while (!r.done()) {
    Outcome o;
    o.client = r.word();
    o.accepted = r.word() != 0;
    o.bytes = static_cast<std::size_t>(r.word());
    o.reason = r.bytes();
    out.push_back(std::move(o));
  }
}

}  // namespace detail

template <Strategy S, Transport X = InProcess>
class Simulation {
 public:
  using T = typename S::scalar_type;
  using update_type = typename S::update_type;
  using client_state = typename S::client_state;
  static constexpr bool stateful = !std::is_same_v<client_state, Stateless>;
  static constexpr bool reducible = Reducible<S>;

  /// `pool` (which must outlive the simulation) holds every client's samples; `clients` lists
  /// each client's columns of it. Throws argument_error for an empty federation, per_round
  /// outside [1, K], threads < 1, dropout outside [0, 1), or a client index outside the pool.
  /// Over `transport`, every rank passes the same strategy, pool, partition and options; throws
  /// argument_error on every rank when they disagree (a fingerprint of them is compared), or
  /// when a strategy that is not fed::Reducible is asked to run on more than one rank.
  Simulation(S& strategy, const data::Dataset<T>& pool, Partition clients,
             SimulationOptions options = {}, X transport = {})
      : strategy_(strategy),
        transport_(std::move(transport)),
        pool_(pool),
        clients_(std::move(clients)),
        o_(options),
        sampling_(make_stream(options.seed, "sampling")),
        dropout_(make_stream(options.seed, "dropout")) {
    const auto k = static_cast<Index>(clients_.size());
    if (k == 0) {
      throw argument_error("Simulation: no clients");
    }
    if (o_.per_round < 1 || o_.per_round > k) {
      throw argument_error("Simulation: per_round must be in [1, " + std::to_string(k) + "], got " +
                           std::to_string(o_.per_round));
    }
    if (o_.threads < 1 || o_.evaluate_every < 1 || o_.max_held_updates < 0) {
      throw argument_error(
          "Simulation: threads and evaluate_every must be >= 1, max_held_updates >= 0");
    }
    if (o_.max_held_updates == 0) {
      o_.max_held_updates = 4 * static_cast<Index>(o_.threads);
    }
    if (!(o_.dropout >= 0 && o_.dropout < 1)) {
      throw argument_error("Simulation: dropout must be in [0, 1)");
    }
    for (std::size_t c = 0; c < clients_.size(); ++c) {
      for (const Index i : clients_[c]) {
        if (i < 0 || i >= pool_.size()) {
          throw argument_error("Simulation: client " + std::to_string(c) + " holds sample " +
                               std::to_string(i) + ", outside the pool of " +
                               std::to_string(pool_.size()));
        }
      }
    }
    order_.resize(clients_.size());
    for (std::size_t c = 0; c < order_.size(); ++c) {
      order_[c] = static_cast<Index>(c);
    }
    if (transport_.ranks() > 1) {
      if constexpr (!reducible) {
        throw argument_error(
            "Simulation: this strategy is not fed::Reducible (its server step needs every update, "
            "e.g. a median or Krum), so it runs on one rank only, not " +
            std::to_string(transport_.ranks()));
      }
      check_same_everywhere();
    }
  }
  Simulation(S&, const data::Dataset<T>&&, Partition, SimulationOptions = {}, X = {}) = delete;

  /// Runs one round; evaluates on `test` when `evaluate` is true.
  RoundReport run_round(const data::Dataset<T>* test, bool evaluate) {
    const auto start = std::chrono::steady_clock::now();
    RoundReport report;
    report.round = round_;
    const auto k = static_cast<Index>(clients_.size());
    if (o_.sampling == Sampling::cyclic) {
      if (pass_position_ == 0) {
        shuffle(order_, sampling_);
      }
      const Index take = std::min(o_.per_round, k - pass_position_);
      report.sampled.assign(order_.begin() + pass_position_,
                            order_.begin() + pass_position_ + take);
      pass_position_ = (pass_position_ + take) % k;
    } else {
      // m of K without replacement: a partial Fisher–Yates over a persistent permutation (its
      // state carries over, which is fine: each draw is uniform given any starting order).
      for (Index i = 0; i < o_.per_round; ++i) {
        const auto j =
            i + static_cast<Index>(uniform_index(sampling_, static_cast<std::uint64_t>(k - i)));
        std::swap(order_[static_cast<std::size_t>(i)], order_[static_cast<std::size_t>(j)]);
      }
      report.sampled.assign(order_.begin(), order_.begin() + o_.per_round);
    }
    std::sort(report.sampled.begin(), report.sampled.end());
    std::vector<Index> running;
    for (const Index c : report.sampled) {
      // One draw per sampled client whatever the dropout, so the streams stay aligned.
      const double u = uniform01<double>(dropout_);
      if (u < o_.dropout) {
        report.dropped.push_back(c);
      } else {
        running.push_back(c);
      }
    }
    report.bytes_down = report.sampled.size() * strategy_.bytes_down();

    // This rank's clients (all of them in one process).
    std::vector<Index> local;
    for (const Index c : running) {
      if (owner(c) == transport_.rank()) {
        local.push_back(c);
      }
    }
    // Client states exist before the threads start (references into an unordered_map stay
    // valid when it grows).
    std::vector<client_state*> states(local.size(), nullptr);
    for (std::size_t i = 0; i < local.size(); ++i) {
      states[i] = stateful ? &states_[local[i]] : &stateless_;
    }
    // A Reducible strategy's updates are screened and added to the reduction a window at a time
    // (max_held_updates), so a rank never holds its whole round; the others need every update.
    const std::size_t window =
        reducible ? std::min(local.size(), static_cast<std::size_t>(o_.max_held_updates))
                  : local.size();
    std::vector<std::optional<update_type>> results(window);
    std::vector<std::string> failures(window);
    const auto threads = static_cast<std::size_t>(
        std::min<Index>(o_.threads, std::max<Index>(1, static_cast<Index>(window))));
    while (workers_.size() < threads) {
      workers_.push_back(strategy_.make_worker());
    }
    typename detail::ReducerFor<S, X, reducible>::type reducer = make_reducer(k);
    std::vector<Received<update_type>> accepted;
    std::vector<detail::Outcome> outcomes;
    for (std::size_t begin = 0; begin < local.size(); begin += window) {
      const std::size_t count = std::min(window, local.size() - begin);
      std::atomic<std::size_t> next{0};
      const auto work = [&](std::size_t worker) {
        for (std::size_t i = next++; i < count; i = next++) {
          const Index c = local[begin + i];
          const ClientData<T> client{c, &pool_, clients_[static_cast<std::size_t>(c)]};
          Rng rng = client_stream(o_.seed, round_, c);
          try {
            results[i].emplace(
                strategy_.client_update(workers_[worker], client, *states[begin + i], rng));
          } catch (const std::exception& e) {
            failures[i] = std::string("the client failed: ") + e.what();
          }
        }
      };
      {
        std::vector<std::jthread> pool;
        for (std::size_t t = 1; t < std::min(threads, count); ++t) {
          pool.emplace_back(work, t);
        }
        work(0);
      }
      // Screening, in client order.
      for (std::size_t i = 0; i < count; ++i) {
        const Index c = local[begin + i];
        if (!results[i]) {
          outcomes.push_back({c, false, 0, std::move(failures[i])});
          failures[i].clear();
          continue;
        }
        const std::size_t bytes = strategy_.bytes_up(*results[i]);
        std::string reason = strategy_.check(*results[i]);
        if (!reason.empty()) {
          outcomes.push_back({c, false, bytes, std::move(reason)});
          results[i].reset();
          continue;
        }
        outcomes.push_back({c, true, bytes, {}});
        const auto samples = static_cast<Index>(clients_[static_cast<std::size_t>(c)].size());
        if constexpr (reducible) {
          reducer.add(c, *results[i], samples);
          results[i].reset();
        } else {
          accepted.push_back({c, samples, &*results[i]});
        }
      }
    }
    const std::size_t sent_before = transport_.bytes_sent();
    // Every rank's outcomes on every rank (in client order).
    if (transport_.ranks() > 1) {
      const std::vector<std::string> all = transport_.allgather(detail::encode_outcomes(outcomes));
      outcomes.clear();
      for (std::size_t r = 0; r < all.size(); ++r) {
        detail::decode_outcomes(all[r], static_cast<int>(r), outcomes);
      }
      std::sort(outcomes.begin(), outcomes.end(),
                [](const auto& a, const auto& b) { return a.client < b.client; });
    }
    for (const detail::Outcome& o : outcomes) {
      report.bytes_up += o.bytes;
      if (o.accepted) {
        ++report.received;
      } else {
        report.rejected.push_back({o.client, o.reason});
      }
    }
    const RoundInfo info{round_, k, static_cast<Index>(report.sampled.size()), report.received};
    if constexpr (reducible) {
      const std::vector<double> sum = std::move(reducer).finish();
      strategy_.apply(std::span<const double>(sum), info);
    } else {
      strategy_.server_update(std::span<const Received<update_type>>(accepted), info);
    }

    total_up_ += report.bytes_up;
    total_down_ += report.bytes_down;
    report.total_bytes_up = total_up_;
    report.total_bytes_down = total_down_;
    if (evaluate && test != nullptr) {
      double accuracy = 0;
      if (transport_.rank() == 0) {
        accuracy = strategy_.evaluate(*test);
      }
      if (transport_.ranks() > 1) {
        transport_.broadcast(std::span<double>(&accuracy, 1));
      }
      report.accuracy = accuracy;
    }
    report.transport_bytes = transport_.bytes_sent() - sent_before;
    ++round_;
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  }

  /// Runs `rounds` rounds, evaluating on `test` every evaluate_every rounds and after the last;
  /// calls each callback with every round's report (progress, logging).
  template <class... Callbacks>
  std::vector<RoundReport> run(int rounds, const data::Dataset<T>& test, Callbacks&&... callbacks) {
    if (rounds < 0) {
      throw argument_error("Simulation::run: rounds must be >= 0");
    }
    std::vector<RoundReport> history;
    history.reserve(static_cast<std::size_t>(rounds));
    for (int r = 0; r < rounds; ++r) {
      const bool evaluate = (r + 1) % o_.evaluate_every == 0 || r + 1 == rounds;
      history.push_back(run_round(&test, evaluate));
      (callbacks(history.back()), ...);
    }
    return history;
  }

  [[nodiscard]] int rounds_done() const { return round_; }
  [[nodiscard]] Index clients() const { return static_cast<Index>(clients_.size()); }
  /// Rounds in one pass over the clients, ceil(K / m) (cyclic sampling).
  [[nodiscard]] int rounds_per_pass() const {
    const auto k = static_cast<Index>(clients_.size());
    return static_cast<int>((k + o_.per_round - 1) / o_.per_round);
  }
  /// Where the simulation stands, for a restart (fed::Checkpointable strategies without client
  /// state; SCAFFOLD's per-client control variates are not saved, so it is not offered). Over
  /// MPI every rank holds the same checkpoint: rank 0 writes it, every rank reads it back.
  [[nodiscard]] SimulationCheckpoint checkpoint() const requires(Checkpointable<S> && !stateful) {
    return {round_,   pass_position_, order_,      sampling_,
            dropout_, total_up_,      total_down_, strategy_.server_state()};
  }
  /// Continues from `c`. Throws argument_error (the simulation unchanged) when it cannot be this
  /// federation's: another client count or order that is not a permutation of the clients, a
  /// position outside it, or a server state the strategy refuses.
  void restore(const SimulationCheckpoint& c) requires(Checkpointable<S> && !stateful) {
    const auto k = static_cast<Index>(clients_.size());
    std::vector<char> seen(clients_.size(), 0);
    bool permutation = static_cast<Index>(c.order.size()) == k;
    for (std::size_t i = 0; permutation && i < c.order.size(); ++i) {
      const Index v = c.order[i];
      permutation = v >= 0 && v < k && seen[static_cast<std::size_t>(v)] == 0;
      if (permutation) {
        seen[static_cast<std::size_t>(v)] = 1;
      }
    }
    if (!permutation || c.pass_position < 0 || c.pass_position >= k) {
      throw argument_error("Simulation::restore: the checkpoint is of another federation (" +
                           std::to_string(c.order.size()) + " clients in its order, " +
                           std::to_string(k) + " here)");
    }
    strategy_.load_server_state(std::span<const double>(c.server_state));
    round_ = c.round;
    pass_position_ = c.pass_position;
    order_ = c.order;
    sampling_ = c.sampling;
    dropout_ = c.dropout;
    total_up_ = c.total_bytes_up;
    total_down_ = c.total_bytes_down;
  }

  /// The rank that simulates client `c` (fed::client_owner).
  [[nodiscard]] int owner(Index c) const {
    return transport_.ranks() == 1 ? 0 : client_owner(c, clients(), transport_.ranks());
  }
  [[nodiscard]] const X& transport() const { return transport_; }
  /// Clients holding state on this rank (stateful strategies: those that have taken part).
  [[nodiscard]] std::size_t stored_states() const { return states_.size(); }
  S& strategy() { return strategy_; }

 private:
  [[nodiscard]] auto make_reducer(Index k) {
    if constexpr (reducible) {
      return RoundReducer<S, X>(strategy_, transport_, k);
    } else {
      return 0;
    }
  }

  // Every rank must simulate the same federation: compares a fingerprint of it with rank 0's.
  void check_same_everywhere() {
    std::uint64_t h = 0;  // the partition, mixed as the project mixes seeds (core/random.hpp)
    const auto mix = [&](std::uint64_t v) { h = edgescale::detail::splitmix64(h ^ v); };
    for (const auto& c : clients_) {
      mix(c.size());
      for (const Index i : c) {
        mix(static_cast<std::uint64_t>(i));
      }
    }
    std::uint64_t dropout_bits = 0;
    std::memcpy(&dropout_bits, &o_.dropout, sizeof dropout_bits);
    std::string mine = "clients " + std::to_string(clients_.size()) + ", per_round " +
                       std::to_string(o_.per_round) + ", sampling " +
                       std::to_string(static_cast<int>(o_.sampling)) + ", seed " +
                       std::to_string(o_.seed) + ", dropout bits " + std::to_string(dropout_bits) +
                       ", evaluate_every " + std::to_string(o_.evaluate_every) + ", pool " +
                       std::to_string(pool_.size()) + "x" + std::to_string(pool_.sample_size()) +
                       ", partition hash " + std::to_string(h);
    if constexpr (reducible) {
      mine += ", reduction size " + std::to_string(strategy_.reduction_size());
    }
    const std::vector<std::string> all = transport_.allgather(mine);
    for (std::size_t r = 1; r < all.size(); ++r) {
      if (all[r] != all[0]) {
        throw argument_error("Simulation: the ranks disagree on the federation: rank 0 has " +
                             all[0] + "; rank " + std::to_string(r) + " has " + all[r]);
      }
    }
  }

  S& strategy_;
  X transport_;
  const data::Dataset<T>& pool_;
  Partition clients_;
  SimulationOptions o_;
  Rng sampling_;
  Rng dropout_;
  std::vector<Index> order_;
  Index pass_position_ = 0;
  std::vector<typename S::worker_type> workers_;
  std::unordered_map<Index, client_state> states_;
  client_state stateless_{};
  int round_ = 0;
  std::size_t total_up_ = 0;
  std::size_t total_down_ = 0;
};

/// The first round (from 1: rounds run) whose accuracy reaches `target`, if any.
inline std::optional<int> rounds_to_target(const std::vector<RoundReport>& history, double target) {
  for (const RoundReport& r : history) {
    if (!std::isnan(r.accuracy) && r.accuracy >= target) {
      return r.round + 1;
    }
  }
  return std::nullopt;
}

/// Bytes up + down spent until the round that first reaches `target`, if any.
inline std::optional<std::size_t> bytes_to_target(const std::vector<RoundReport>& history,
                                                  double target) {
  for (const RoundReport& r : history) {
    if (!std::isnan(r.accuracy) && r.accuracy >= target) {
      return r.total_bytes_up + r.total_bytes_down;
    }
  }
  return std::nullopt;
}

}  // namespace edgescale::fed
