// Checkpoint and restart of a simulation (fed::SimulationCheckpoint, fed::Checkpointable): a run
// stopped after some rounds, saved as text, loaded into a rebuilt simulation and continued is bit
// for bit the run that never stopped; a checkpoint that is not one, or is another federation's,
// is refused with its reason and changes nothing.
#include <edgescale/fed/fed3r.hpp>
#include <edgescale/fed/fedavg.hpp>
#include <edgescale/fed/fedncm.hpp>
#include <edgescale/fed/fedopt.hpp>
#include <edgescale/fed/scaffold.hpp>
#include <edgescale/fed/simulate.hpp>

#include "fed/fed_fixtures.hpp"
#include "fed/gaussian_classes.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace edgescale {
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

}  // namespace edgescale
