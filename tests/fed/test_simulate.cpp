// fed::Simulation: the same seed gives bit-identical results with 1 and 2 threads (stateless and
// stateful strategies, with dropouts); a user's own strategy runs in it; hostile or failing
// client updates are rejected with their reason while the round completes with the others; bytes
// are accounted as documented; checkpoint and restart resume a run bit for bit (at the end of the
// file, beside the same instantiations).
#include <edgescale/fed/concepts.hpp>
#include <edgescale/fed/features.hpp>
#include <edgescale/fed/fed3r.hpp>
#include <edgescale/fed/fedavg.hpp>
#include <edgescale/fed/fedncm.hpp>
#include <edgescale/fed/fedopt.hpp>
#include <edgescale/fed/scaffold.hpp>
#include <edgescale/fed/simulate.hpp>

#include "fed_fixtures.hpp"
#include "gaussian_classes.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

using Net = test::BlobMlp<float>;

Net initial_net() {
  Rng init = make_stream(11, "init");
  return Net{nn::init::kaiming_normal, init};
}

const fed::LocalTraining local{.epochs = 2, .batch_size = 8, .learning_rate = 0.05};

template <class Strategy>
std::pair<std::vector<fed::RoundReport>, Vector<float>> run(Strategy strategy, int threads,
                                                            double dropout) {
  const data::Dataset<float> pool = test::blobs<float>(240, 2);
  const data::Dataset<float> test_set = test::blobs<float>(90, 3);
  fed::Simulation sim(strategy, pool, test::round_robin(240, 12),
                      {.per_round = 5, .threads = threads, .dropout = dropout, .seed = 42});
  auto history = sim.run(6, test_set);
  return {history, strategy.global().values()};
}

/// A user's strategy: FedAvg, except that client 3 sends NaN, client 5 a model of the wrong size
/// and client 7 fails outright — what a server meets from broken or hostile clients.
class HostileClients {
 public:
  using Inner = fed::FedAvg<Net>;
  using scalar_type = float;
  using update_type = ParameterSet<float>;
  using client_state = fed::Stateless;
  using worker_type = Inner::worker_type;

  explicit HostileClients(const Net& net) : inner_(net, {.local = local}) {}

  [[nodiscard]] worker_type make_worker() const { return inner_.make_worker(); }
  update_type client_update(worker_type& w, const fed::ClientData<float>& d, client_state& s,
                            Rng& rng) const {
    update_type u = inner_.client_update(w, d, s, rng);
    if (d.id == 3) {
      u.values()[4] = std::numeric_limits<float>::quiet_NaN();
    } else if (d.id == 5) {
      u.values().conservativeResize(u.size() - 1);
    } else if (d.id == 7) {
      throw std::runtime_error("out of battery");
    }
    return u;
  }
  [[nodiscard]] std::string check(const update_type& u) const { return inner_.check(u); }
  void server_update(std::span<const fed::Received<update_type>> r, const fed::RoundInfo& info) {
    inner_.server_update(r, info);
  }
  [[nodiscard]] std::size_t bytes_up(const update_type& u) const { return u.bytes(); }
  [[nodiscard]] std::size_t bytes_down() const { return inner_.bytes_down(); }
  double evaluate(const data::Dataset<float>& test) { return inner_.evaluate(test); }
  [[nodiscard]] const ParameterSet<float>& global() const { return inner_.global(); }

 private:
  Inner inner_;
};

static_assert(fed::Strategy<HostileClients>);

}  // namespace

TEST_CASE("the same seed gives bit-identical results with 1 and 2 threads") {
  SUBCASE("FedAvg") {
    const auto [h1, x1] = run(fed::FedAvg<Net>(initial_net(), {.local = local}), 1, 0.0);
    const auto [h2, x2] = run(fed::FedAvg<Net>(initial_net(), {.local = local}), 2, 0.0);
    CHECK(x1 == x2);
    REQUIRE(h1.size() == h2.size());
    for (std::size_t r = 0; r < h1.size(); ++r) {
      CHECK(h1[r].accuracy == h2[r].accuracy);
      CHECK(h1[r].sampled == h2[r].sampled);
    }
    CHECK(h1.back().accuracy > 0.8);  // the federation learns the blobs
  }
  SUBCASE("SCAFFOLD (stateful) with dropouts") {
    const auto [h1, x1] = run(fed::Scaffold<Net>(initial_net(), {.local = local}), 1, 0.3);
    const auto [h2, x2] = run(fed::Scaffold<Net>(initial_net(), {.local = local}), 2, 0.3);
    CHECK(x1 == x2);
    std::size_t dropped = 0;
    for (std::size_t r = 0; r < h1.size(); ++r) {
      CHECK(h1[r].accuracy == h2[r].accuracy);
      CHECK(h1[r].dropped == h2[r].dropped);
      dropped += h1[r].dropped.size();
    }
    CHECK(dropped > 0);
  }
  SUBCASE("another seed gives another run") {
    const data::Dataset<float> pool = test::blobs<float>(240, 2);
    fed::FedAvg<Net> a(initial_net(), {.local = local});
    fed::FedAvg<Net> b(initial_net(), {.local = local});
    fed::Simulation sa(a, pool, test::round_robin(240, 12), {.per_round = 5, .seed = 1});
    fed::Simulation sb(b, pool, test::round_robin(240, 12), {.per_round = 5, .seed = 2});
    sa.run_round(nullptr, false);
    sb.run_round(nullptr, false);
    CHECK(a.global().values() != b.global().values());
  }
}

TEST_CASE("sampling draws m distinct clients a round and covers the federation") {
  const data::Dataset<double> pool = test::constant_inputs(std::vector<std::int32_t>(40, 1));
  fed::FedAvg<test::Scalar> strategy(test::scalar_model(0.0));
  fed::Simulation sim(strategy, pool, test::round_robin(40, 20), {.per_round = 7, .seed = 9});
  std::set<Index> seen;
  for (int r = 0; r < 30; ++r) {
    const fed::RoundReport report = sim.run_round(nullptr, false);
    REQUIRE(report.sampled.size() == 7);
    CHECK(std::set<Index>(report.sampled.begin(), report.sampled.end()).size() == 7);
    CHECK(std::is_sorted(report.sampled.begin(), report.sampled.end()));
    seen.insert(report.sampled.begin(), report.sampled.end());
  }
  CHECK(seen.size() == 20);
}

TEST_CASE("hostile updates are rejected with their reason and the round completes") {
  const data::Dataset<float> pool = test::blobs<float>(240, 2);
  const fed::Partition clients = test::round_robin(240, 12);
  HostileClients hostile(initial_net());
  fed::Simulation sim(hostile, pool, clients, {.per_round = 12, .threads = 2, .seed = 4});
  const fed::RoundReport r = sim.run_round(nullptr, false);
  REQUIRE(r.rejected.size() == 3);
  CHECK(r.received == 9);
  CHECK(r.rejected[0].client == 3);
  CHECK(r.rejected[0].reason.find("NaN or Inf in tensor '0.") != std::string::npos);
  CHECK(r.rejected[1].client == 5);
  CHECK(r.rejected[1].reason.find("values, the model") != std::string::npos);
  CHECK(r.rejected[2].client == 7);
  CHECK(r.rejected[2].reason.find("out of battery") != std::string::npos);
  CHECK(hostile.global().all_finite());

  // The model is FedAvg's over the nine others: the same federation where clients 3, 5 and 7
  // hold no data (weight 0) gives the same global model.
  fed::Partition without = clients;
  for (const std::size_t k : {3, 5, 7}) {
    without[k].clear();
  }
  fed::FedAvg<Net> honest(initial_net(), {.local = local});
  fed::Simulation reference(honest, pool, without, {.per_round = 12, .seed = 4});
  reference.run_round(nullptr, false);
  CHECK((hostile.global().values() - honest.global().values()).norm() <=
        1e-6F * honest.global().values().norm());
  CHECK(hostile.global().values() != ParameterSet<float>(initial_net()).values());
}

TEST_CASE("bytes: the model down to every sampled client, each update up; SCAFFOLD doubles both") {
  const data::Dataset<float> pool = test::blobs<float>(240, 2);
  const std::size_t model = static_cast<std::size_t>(ParameterSet<float>(initial_net()).size()) * 4;
  fed::FedAvg<Net> fedavg(initial_net(), {.local = local});
  fed::Simulation a(fedavg, pool, test::round_robin(240, 12), {.per_round = 4, .seed = 1});
  a.run_round(nullptr, false);
  const fed::RoundReport r = a.run_round(nullptr, false);
  CHECK(r.bytes_down == 4 * model);
  CHECK(r.bytes_up == 4 * model);
  CHECK(r.total_bytes_up == 8 * model);
  fed::Scaffold<Net> scaffold(initial_net(), {.local = local});
  fed::Simulation b(scaffold, pool, test::round_robin(240, 12), {.per_round = 4, .seed = 1});
  const fed::RoundReport s = b.run_round(nullptr, false);
  CHECK(s.bytes_down == 8 * model);
  CHECK(s.bytes_up == 8 * model);
  // Head only: layer 2 trains and travels; layer 0 (6·8 + 8 values) stays home.
  fed::FedAvg<Net> head(initial_net(), {.local = local, .frozen = {"0."}});
  fed::Simulation c(head, pool, test::round_robin(240, 12), {.per_round = 4, .seed = 1});
  const ParameterSet<float> before = head.global();
  const fed::RoundReport h = c.run_round(nullptr, false);
  CHECK(h.bytes_up == 4 * (model - (6 * 8 + 8) * 4));
  CHECK(head.global().tensor("0.weight") == before.tensor("0.weight"));
  CHECK(head.global().tensor("2.weight") != before.tensor("2.weight"));
}

TEST_CASE("a simulation refuses an impossible set-up") {
  const data::Dataset<float> pool = test::blobs<float>(24, 2);
  fed::FedAvg<Net> s(initial_net());
  CHECK_THROWS_AS(fed::Simulation(s, pool, fed::Partition{}), argument_error);
  CHECK_THROWS_AS(fed::Simulation(s, pool, test::round_robin(24, 4), {.per_round = 5}),
                  argument_error);
  CHECK_THROWS_AS(fed::Simulation(s, pool, fed::Partition{{0, 99}}), argument_error);
  CHECK_THROWS_AS(fed::Simulation(s, pool, test::round_robin(24, 4), {.dropout = 1.0}),
                  argument_error);
}

TEST_CASE("cyclic sampling visits every client exactly once per pass") {
  const data::Dataset<double> pool = test::constant_inputs(std::vector<std::int32_t>(46, 1));
  fed::FedAvg<test::Scalar> strategy(test::scalar_model(0.0));
  fed::Simulation sim(strategy, pool, test::round_robin(46, 23),
                      {.per_round = 5, .sampling = fed::Sampling::cyclic, .seed = 2});
  REQUIRE(sim.rounds_per_pass() == 5);
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<Index> visited;
    for (int r = 0; r < sim.rounds_per_pass(); ++r) {
      const fed::RoundReport report = sim.run_round(nullptr, false);
      CHECK(report.sampled.size() == (r < 4 ? 5U : 3U));
      visited.insert(visited.end(), report.sampled.begin(), report.sampled.end());
    }
    std::sort(visited.begin(), visited.end());
    std::vector<Index> all(23);
    std::iota(all.begin(), all.end(), Index{0});
    CHECK(visited == all);
  }
}

TEST_CASE("extract_features: a prefix of the network over a dataset, column by column") {
  Net net = initial_net();
  const data::Dataset<float> images = test::blobs<float>(25, 5);
  const data::Dataset<float> psi = fed::extract_features(net, images, 7);  // batches 7, 7, 7, 4
  REQUIRE(psi.sample_size() == 8);
  CHECK(psi.labels == images.labels);
  CHECK(psi.classes == images.classes);
  for (Index i = 0; i < images.size(); ++i) {
    const Matrix<float> x = images.features.col(i);
    const Matrix<float> h = nn::features(net, x);  // Dense<6, 8> then ReLU, one sample
    // A batch of one takes another product kernel than a batch of 7: float rounding apart.
    CHECK((psi.features.col(i) - h.col(0)).norm() <= 1e-6F * (1 + h.norm()));
  }
  CHECK((psi.features.array() >= 0).all());
  const data::Dataset<float> wrong = test::blobs<float>(3, 5);
  data::Dataset<float> narrow = wrong;
  narrow.features = wrong.features.topRows(5);
  narrow.sample_shape = {1, 1, 5};
  CHECK_THROWS_AS(fed::extract_features(net, narrow), shape_error);
}

TEST_CASE("clients without data: no weight, no zero delta in a robust aggregate, no crash") {
  const data::Dataset<float> pool = test::blobs<float>(240, 2);
  fed::Partition clients = test::round_robin(240, 12);
  for (const std::size_t k : {0, 1, 2, 3}) {
    clients[k].clear();
  }
  // Only empty clients in the round: the model stays, nothing throws.
  fed::FedAvg<Net> fedavg(initial_net(), {.local = local});
  fed::Partition empty_only(clients.begin(), clients.begin() + 4);
  fed::Simulation sim(fedavg, pool, empty_only, {.per_round = 4, .seed = 3});
  const ParameterSet<float> before = fedavg.global();
  const fed::RoundReport r = sim.run_round(nullptr, false);
  CHECK(r.received == 4);
  CHECK(fedavg.global().values() == before.values());
  // A median aggregate over a round with the four empty clients is the median of the eight
  // others' deltas (computed here client by client with their own streams), not the median of
  // twelve with four zeros.
  fed::FedAvg<Net, fed::Median> robust(initial_net(), {.local = local});
  fed::Simulation sim_robust(robust, pool, clients, {.per_round = 12, .seed = 5});
  sim_robust.run_round(nullptr, false);
  fed::FedAvg<Net, fed::Median> reference(initial_net(), {.local = local});
  auto worker = reference.make_worker();
  std::vector<ParameterSet<float>> deltas;
  for (Index k = 4; k < 12; ++k) {
    fed::Stateless none;
    Rng rng = fed::client_stream(5, 0, k);
    deltas.push_back(reference.client_update(
        worker, {k, &pool, clients[static_cast<std::size_t>(k)]}, none, rng));
  }
  std::vector<const ParameterSet<float>*> eight;
  for (const auto& d : deltas) {
    eight.push_back(&d);
  }
  const std::vector<double> ones(12, 1.0);
  const ParameterSet<float> median = fed::Median{}.combine(
      std::span<const ParameterSet<float>* const>(eight), std::span<const double>(ones).first(8));
  const Vector<float> expected = before.values() + median.values();
  CHECK((robust.global().values() - expected).norm() <= 1e-6F * expected.norm());
  const ParameterSet<float> zero = before.zeros_like();
  std::vector<const ParameterSet<float>*> twelve = eight;
  for (int i = 0; i < 4; ++i) {
    twelve.push_back(&zero);
  }
  const ParameterSet<float> diluted = fed::Median{}.combine(
      std::span<const ParameterSet<float>* const>(twelve), std::span<const double>(ones));
  CHECK((diluted.values() - median.values()).norm() > 1e-3F);  // the exclusion matters here
}

// ---- checkpoint and restart (same instantiations as above: one file, one compile) ----
// Checkpoint and restart of a simulation (fed::SimulationCheckpoint, fed::Checkpointable): a run
// stopped after some rounds, saved as text, loaded into a rebuilt simulation and continued is bit
// for bit the run that never stopped; a checkpoint that is not one, or is another federation's,
// is refused with its reason and changes nothing.
namespace edgescale::checkpointing {
namespace {

using Mlp = test::BlobMlp<float>;

static_assert(fed::Checkpointable<fed::FedAvg<Mlp>>);
static_assert(fed::Checkpointable<fed::FedAdam<Mlp>>);
static_assert(fed::Checkpointable<fed::Fed3r<float>>);
static_assert(fed::Checkpointable<fed::FedNcm<double>>);
static_assert(!fed::Checkpointable<fed::Scaffold<Mlp>>);  // its clients' c_i are not saved

// History of accuracies and byte totals, and the server state at the end.
struct Trace {
  std::vector<double> accuracy;
  std::vector<std::size_t> bytes;
  std::vector<double> state;
};

// Runs `rounds` rounds straight, or `stop` rounds, a checkpoint through text, and the rest in a
// simulation built afresh from `make`.
template <class Strategy, class T>
Trace run(const std::function<Strategy()>& make, const data::Dataset<T>& pool,
          const data::Dataset<T>& test, const fed::Partition& clients,
          const fed::SimulationOptions& options, int rounds, int stop) {
  Trace t;
  const auto record = [&](const fed::RoundReport& r) {
    t.accuracy.push_back(r.accuracy);
    t.bytes.push_back(r.total_bytes_up + r.total_bytes_down);
  };
  Strategy first = make();
  fed::Simulation sim(first, pool, clients, options);
  if (stop >= rounds) {
    (void)sim.run(rounds, test, record);
    t.state = first.server_state();
    return t;
  }
  (void)sim.run(stop, test, record);
  std::stringstream file;
  sim.checkpoint().save(file);
  Strategy second = make();
  fed::Simulation resumed(second, pool, clients, options);
  resumed.restore(fed::SimulationCheckpoint::load(file));
  CHECK(resumed.rounds_done() == stop);
  (void)resumed.run(rounds - stop, test, record);
  t.state = second.server_state();
  return t;
}

void check_same(const Trace& a, const Trace& b) {
  CHECK(a.accuracy == b.accuracy);
  CHECK(a.bytes == b.bytes);
  REQUIRE(a.state.size() == b.state.size());
  CHECK(std::memcmp(a.state.data(), b.state.data(), a.state.size() * sizeof(double)) == 0);
}

}  // namespace

TEST_CASE(
    "checkpoint: FedAvgM and FedAdam stopped, saved, loaded and resumed equal the straight run") {
  const data::Dataset<float> pool = test::blobs<float>(300, 51);
  const data::Dataset<float> test = test::blobs<float>(90, 52);
  const fed::Partition clients = test::round_robin(pool.size(), 20);
  Rng init = make_stream(8, "checkpoint mlp");
  const Mlp initial(nn::init::kaiming_normal, init);
  const fed::LocalTraining local{.epochs = 1, .batch_size = 8, .learning_rate = 0.05};
  const fed::SimulationOptions options{.per_round = 6, .threads = 2, .dropout = 0.2, .seed = 4};

  const std::function<fed::FedAvg<Mlp>()> fedavgm = [&] {
    return fed::FedAvg<Mlp>(initial, {.local = local, .server_momentum = 0.7});
  };
  const Trace straight = run(fedavgm, pool, test, clients, options, 6, 6);
  for (const int stop : {1, 3, 5}) {
    CAPTURE(stop);
    check_same(straight, run(fedavgm, pool, test, clients, options, 6, stop));
  }
  const std::function<fed::FedAdam<Mlp>()> fedadam = [&] {
    return fed::FedAdam<Mlp>(initial, {.local = local, .server_learning_rate = 0.01});
  };
  check_same(run(fedadam, pool, test, clients, options, 5, 5),
             run(fedadam, pool, test, clients, options, 5, 2));
}

TEST_CASE("checkpoint: FED3R and FedNCM resume mid-pass (cyclic sampling) to the same W and head") {
  Rng rng = make_stream(3, "checkpoint fed3r");
  const test::GaussianClasses g{.features = 7, .classes = 4, .means_key = 5};
  const data::Dataset<double> pool = test::gaussian_classes(400, g, rng);
  const data::Dataset<double> test = test::gaussian_classes(100, g, rng);
  const fed::Partition clients = test::round_robin(pool.size(), 23);
  const fed::SimulationOptions options{
      .per_round = 4, .sampling = fed::Sampling::cyclic, .seed = 9};
  const std::function<fed::Fed3r<double>()> fed3r = [] { return fed::Fed3r<double>(7, 4); };
  // 6 rounds of 4 over 23 clients: the checkpoint at 3 sits inside the first pass.
  check_same(run(fed3r, pool, test, clients, options, 9, 9),
             run(fed3r, pool, test, clients, options, 9, 3));
  const std::function<fed::FedNcm<double>()> fedncm = [] { return fed::FedNcm<double>(7, 4); };
  check_same(run(fedncm, pool, test, clients, options, 7, 7),
             run(fedncm, pool, test, clients, options, 7, 4));
}

TEST_CASE(
    "checkpoint: a file that is not one, or another federation's, is refused and changes nothing") {
  const data::Dataset<float> pool = test::blobs<float>(60, 1);
  const fed::Partition clients = test::round_robin(pool.size(), 6);
  Rng init = make_stream(8, "checkpoint mlp");
  const Mlp initial(nn::init::kaiming_normal, init);
  fed::FedAvg<Mlp> s(initial);
  fed::Simulation sim(s, pool, clients, {.per_round = 2, .seed = 1});
  (void)sim.run_round(nullptr, false);
  std::stringstream good;
  sim.checkpoint().save(good);
  const std::string text = good.str();

  const auto load = [](const std::string& t) {
    std::stringstream in(t);
    return fed::SimulationCheckpoint::load(in);
  };
  CHECK_THROWS_WITH_AS((void)load("hello"), doctest::Contains("header"), format_error);
  CHECK_THROWS_WITH_AS((void)load(text.substr(0, text.size() / 2)),
                       doctest::Contains("not a checkpoint"), format_error);
  std::string bad_number = text;
  bad_number.replace(bad_number.rfind(' ') + 1, 3, "zz!");
  CHECK_THROWS_AS((void)load(bad_number), format_error);

  const std::vector<double> before = s.server_state();
  fed::SimulationCheckpoint c = load(text);
  fed::SimulationCheckpoint other = c;
  other.order.push_back(6);  // a seventh client
  CHECK_THROWS_WITH_AS(sim.restore(other), doctest::Contains("another federation"), argument_error);
  other = c;
  other.order[0] = other.order[1];  // not a permutation
  CHECK_THROWS_AS(sim.restore(other), argument_error);
  other = c;
  other.server_state.pop_back();
  CHECK_THROWS_WITH_AS(sim.restore(other), doctest::Contains("expected"), argument_error);
  other = c;
  other.server_state[0] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(sim.restore(other), doctest::Contains("NaN"), argument_error);
  CHECK(s.server_state() == before);
  CHECK(sim.rounds_done() == 1);

  // FED3R refuses statistics that cannot be statistics (a negative count on A's diagonal).
  fed::Fed3r<float> ridge(3, 2);
  std::vector<double> state = ridge.server_state();
  state[0] = -5;  // A(0, 0) = Σ x_0² < 0
  CHECK_THROWS_WITH_AS(ridge.load_server_state(state),
                       doctest::Contains("the server state is not statistics"), argument_error);
}

}  // namespace edgescale::checkpointing
