// The fixed reduction order (fed/reduce.hpp) and the simulation over several ranks
// (fed/transport.hpp), with ranks played by threads (thread_transport.hpp): every Reducible
// strategy gives the same bits on 1 to 8 ranks as in one process. tests/mpi repeats the
// federation checks under mpirun.
#include <edgescale/fed/aggregate.hpp>
#include <edgescale/fed/fed3r.hpp>
#include <edgescale/fed/fedavg.hpp>
#include <edgescale/fed/fedncm.hpp>
#include <edgescale/fed/fedopt.hpp>
#include <edgescale/fed/reduce.hpp>
#include <edgescale/fed/scaffold.hpp>
#include <edgescale/fed/simulate.hpp>
#include <edgescale/fed/transport.hpp>

#include "fed/fed_fixtures.hpp"
#include "fed/gaussian_classes.hpp"
#include "fed/gradient_run.hpp"
#include "fed/thread_transport.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

namespace edgescale {
namespace {

using Mlp = test::BlobMlp<float>;

static_assert(fed::Transport<fed::InProcess>);
static_assert(fed::Transport<fed::AnyTransport>);
static_assert(fed::Reducible<fed::Fed3r<float>>);
static_assert(fed::Reducible<fed::FedNcm<double>>);
static_assert(fed::Reducible<fed::FedAvg<Mlp>>);
static_assert(fed::Reducible<fed::Scaffold<Mlp>>);
static_assert(fed::Reducible<fed::FedAdam<Mlp>>);
// The median needs every update: one process only.
static_assert(fed::Strategy<fed::FedAvg<Mlp, fed::Median>>);
static_assert(!fed::Reducible<fed::FedAvg<Mlp, fed::Median>>);

bool same_bits(std::span<const double> a, std::span<const double> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}
bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

// Runs make(transport) -> result on `ranks` thread ranks; returns every rank's result. Both the
// thread ranks and one process (fed::AnyTransport{}) go through fed::AnyTransport, so each
// strategy's simulation is compiled once.
template <class Result>
std::vector<Result> on_ranks(int ranks, bool deterministic,
                             const std::function<Result(fed::AnyTransport)>& make) {
  test::ThreadWorld world(ranks);
  std::vector<Result> out(static_cast<std::size_t>(ranks));
  world.run([&](int r) {
    out[static_cast<std::size_t>(r)] =
        make(fed::AnyTransport(test::ThreadTransport(world, r, deterministic)));
  });
  return out;
}

}  // namespace

TEST_CASE("reduction slots: contiguous client blocks, one owner each, for any rank count") {
  for (const Index k : {1, 2, 7, 100, 1024, 1025, 5000}) {
    for (int ranks = 1; ranks <= 9; ++ranks) {
      CAPTURE(k);
      CAPTURE(ranks);
      CHECK(fed::first_slot(0, ranks) == 0);
      CHECK(fed::first_slot(ranks, ranks) == fed::reduction_slots);
      int last_owner = 0;
      Index last_slot = 0;
      for (Index c = 0; c < k; ++c) {
        const Index slot = fed::reduction_slot(c, k);
        const int owner = fed::client_owner(c, k, ranks);
        REQUIRE(slot >= last_slot);  // slots and owners never decrease with the client number
        REQUIRE(owner >= last_owner);
        REQUIRE(owner < ranks);
        REQUIRE(fed::first_slot(owner, ranks) <= slot);
        REQUIRE(slot < fed::first_slot(owner + 1, ranks));
        last_owner = owner;
        last_slot = slot;
      }
    }
  }
  CHECK_THROWS_AS((void)fed::reduction_slot(5, 5), argument_error);
  CHECK_THROWS_AS((void)fed::reduction_slot(0, 0), argument_error);
}

TEST_CASE("reduction tree: the slots' positions, not the push order, decide the association") {
  // a + (b + c) = 0 but (a + b) + c = 1 in double: 1e16 − 1e16 + 1.
  const double a = 1e16;
  const double b = -1e16;
  const double c = 1;
  const auto root = [](std::vector<std::pair<Index, double>> leaves) {
    fed::ReductionStack stack(1);
    std::size_t next = 0;
    for (Index slot = 0; slot < fed::reduction_slots; ++slot) {
      fed::ReductionNode leaf{0, slot, true, {}};
      if (next < leaves.size() && leaves[next].first == slot) {
        leaf.empty = false;
        leaf.values = {leaves[next].second};
        ++next;
      }
      stack.push(std::move(leaf));
    }
    CHECK(stack.nodes().size() == 1);
    return std::move(stack).root()[0];
  };
  // b and c siblings under the right half: a + (b + c).
  CHECK(root({{0, a}, {512, b}, {513, c}}) == 0.0);
  // a and b siblings: (a + b) + c.
  CHECK(root({{0, a}, {1, b}, {513, c}}) == 1.0);
  // Empty subtrees add nothing: one leaf anywhere is the root.
  CHECK(root({{777, c}}) == 1.0);
  CHECK(root({}) == 0.0);

  fed::ReductionStack stack(2);
  CHECK_THROWS_AS(stack.push({0, 0, false, {1.0}}), argument_error);  // wrong size
  CHECK_THROWS_AS(stack.push({11, 0, true, {}}), argument_error);     // above the root
  CHECK_THROWS_AS(stack.push({3, 128, true, {}}), argument_error);    // beyond level 3's nodes
  CHECK_THROWS_AS((void)fed::ReductionStack(2).root(), std::logic_error);
}

TEST_CASE("FED3R and FedNCM over 1 to 8 ranks: W and the head are bit-identical to one process") {
  Rng rng = make_stream(3, "reduce fed3r");
  const Index d = 9;
  const Index C = 4;
  const test::GaussianClasses g{.features = d, .classes = C, .means_key = 3};
  const data::Dataset<double> pool = test::gaussian_classes(600, g, rng);
  const data::Dataset<double> test = test::gaussian_classes(200, g, rng);
  const fed::Partition clients = test::round_robin(pool.size(), 37);
  const fed::SimulationOptions options{
      .per_round = 5, .sampling = fed::Sampling::cyclic, .threads = 2, .seed = 11};

  const auto fed3r = [&](fed::AnyTransport transport) {
    fed::Fed3r<double> strategy(d, C);
    fed::Simulation sim(strategy, pool, clients, options, std::move(transport));
    const auto history = sim.run(sim.rounds_per_pass(), test);
    return std::pair{Matrix<double>(strategy.weights()), history.back().accuracy};
  };
  const auto one = fed3r(fed::AnyTransport{});
  // The tree sum differs from the plain left fold in the last bits, not more.
  fed::RidgeStatistics all(d, C);
  all.accumulate(pool.features, pool.labels);
  CHECK((one.first - fed::solve_ridge(all.A, all.b, 0.01)).cwiseAbs().maxCoeff() < 1e-10);
  for (int ranks = 1; ranks <= 8; ++ranks) {
    CAPTURE(ranks);
    const auto results = on_ranks<std::pair<Matrix<double>, double>>(ranks, true, fed3r);
    for (const auto& r : results) {
      CHECK(same_bits(
          std::span<const double>(r.first.data(), static_cast<std::size_t>(r.first.size())),
          std::span<const double>(one.first.data(), static_cast<std::size_t>(one.first.size()))));
      CHECK(r.second == one.second);
    }
  }

  // However many updates a rank holds at once before reducing them, the bits are the same.
  for (const Index held : {1, 3, 1000}) {
    fed::Fed3r<double> strategy(d, C);
    fed::SimulationOptions o = options;
    o.max_held_updates = held;
    fed::Simulation sim(strategy, pool, clients, o);
    (void)sim.run(sim.rounds_per_pass(), test);
    CHECK(strategy.weights() == one.first);
  }

  const auto fedncm = [&](fed::AnyTransport transport) {
    fed::FedNcm<double> strategy(d, C);
    fed::Simulation sim(strategy, pool, clients, options, std::move(transport));
    (void)sim.run(sim.rounds_per_pass(), test);
    return Matrix<double>(strategy.head());
  };
  const Matrix<double> head = fedncm(fed::AnyTransport{});
  for (const int ranks : {2, 3, 5}) {
    for (const auto& h : on_ranks<Matrix<double>>(ranks, true, fedncm)) {
      CHECK(same_bits(std::span<const double>(h.data(), static_cast<std::size_t>(h.size())),
                      std::span<const double>(head.data(), static_cast<std::size_t>(head.size()))));
    }
  }
}

TEST_CASE("FedAvg, FedAvgM, SCAFFOLD and FedAdam over 1 to 6 ranks: bit-identical to one process") {
  const data::Dataset<float> pool = test::blobs<float>(480, 21);
  const data::Dataset<float> test = test::blobs<float>(150, 22);
  const fed::Partition clients = test::round_robin(pool.size(), 30);
  Rng init = make_stream(4, "reduce mlp");
  const Mlp initial(nn::init::kaiming_normal, init);
  const fed::LocalTraining local{.epochs = 1, .batch_size = 8, .learning_rate = 0.05};
  const fed::SimulationOptions options{.per_round = 8, .threads = 2, .dropout = 0.2, .seed = 5};
  const auto run_gradient = [&](auto& strategy, fed::AnyTransport transport) {
    return test::run_gradient(strategy, pool, test, clients, options, 4, std::move(transport));
  };

  const auto fedavg = [&](fed::AnyTransport transport) {
    fed::FedAvg<Mlp> s(initial, {.local = local, .server_momentum = 0.5});
    return run_gradient(s, std::move(transport));
  };
  const auto scaffold = [&](fed::AnyTransport transport) {
    fed::Scaffold<Mlp> s(initial, {.local = local});
    return run_gradient(s, std::move(transport));
  };
  const auto fedadam = [&](fed::AnyTransport transport) {
    fed::FedAdam<Mlp> s(initial, {.local = local, .server_learning_rate = 0.01});
    return run_gradient(s, std::move(transport));
  };
  const test::GradientRun one_fedavg = fedavg(fed::AnyTransport{});
  const test::GradientRun one_scaffold = scaffold(fed::AnyTransport{});
  const test::GradientRun one_fedadam = fedadam(fed::AnyTransport{});
  CHECK(one_fedavg.accuracy.back() > 0.8);  // it learns: the comparison is not of a still model
  for (const int ranks : {1, 2, 3, 4, 6}) {
    CAPTURE(ranks);
    for (const auto& r : on_ranks<test::GradientRun>(ranks, true, fedavg)) {
      test::check_same_run(r, one_fedavg);
    }
    for (const auto& r : on_ranks<test::GradientRun>(ranks, true, scaffold)) {
      test::check_same_run(r, one_scaffold);
    }
    for (const auto& r : on_ranks<test::GradientRun>(ranks, true, fedadam)) {
      test::check_same_run(r, one_fedadam);
    }
  }

  // The fast mode: the ranks agree with each other, and with the fixed order up to rounding.
  const auto fast = on_ranks<test::GradientRun>(4, false, fedavg);
  for (const auto& r : fast) {
    CHECK(same_bits(std::span<const float>(r.global), std::span<const float>(fast[0].global)));
    for (std::size_t i = 0; i < r.global.size(); ++i) {
      CHECK(r.global[i] == doctest::Approx(one_fedavg.global[i]).epsilon(1e-4));
    }
  }
}

TEST_CASE(
    "ranks that disagree on the federation, or a strategy that is not Reducible, are refused") {
  const data::Dataset<float> pool = test::blobs<float>(60, 1);
  const fed::Partition clients = test::round_robin(pool.size(), 6);
  Rng init = make_stream(4, "reduce mlp");
  const Mlp initial(nn::init::kaiming_normal, init);
  test::ThreadWorld world(3);
  std::vector<std::string> messages(3);
  world.run([&](int r) {
    fed::FedAvg<Mlp> s(initial);
    const fed::SimulationOptions options{.per_round = 2, .seed = r == 2 ? 9U : 1U};
    try {
      fed::Simulation sim(s, pool, clients, options, test::ThreadTransport(world, r));
    } catch (const argument_error& e) {
      messages[static_cast<std::size_t>(r)] = e.what();
    }
  });
  for (const std::string& m : messages) {
    CHECK(m.find("the ranks disagree on the federation") != std::string::npos);
    CHECK(m.find("rank 2 has") != std::string::npos);
  }

  test::ThreadWorld two(2);
  std::vector<std::string> refused(2);
  two.run([&](int r) {
    fed::FedAvg<Mlp, fed::Median> s(initial);
    try {
      fed::Simulation sim(s, pool, clients, {.per_round = 2}, test::ThreadTransport(two, r));
    } catch (const argument_error& e) {
      refused[static_cast<std::size_t>(r)] = e.what();
    }
  });
  for (const std::string& m : refused) {
    CHECK(m.find("not fed::Reducible") != std::string::npos);
  }
  // In one process it runs.
  fed::FedAvg<Mlp, fed::Median> s(initial);
  fed::Simulation sim(s, pool, clients, {.per_round = 2});
  CHECK(sim.run_round(nullptr, false).received == 2);
}

TEST_CASE("AnyTransport: a handle to the in-process model or a thread rank runs the same") {
  fed::AnyTransport any;
  CHECK(any.ranks() == 1);
  CHECK(any.deterministic());
  CHECK(any.allgather("x") == std::vector<std::string>{"x"});
  CHECK_THROWS_AS(any.send(1, std::string_view("x")), argument_error);

  Rng rng = make_stream(3, "reduce fed3r");
  const test::GaussianClasses g{.features = 5, .classes = 3, .means_key = 3};
  const data::Dataset<double> pool = test::gaussian_classes(200, g, rng);
  const fed::Partition clients = test::round_robin(pool.size(), 10);
  const auto fed3r = [&](fed::AnyTransport transport) {
    fed::Fed3r<double> strategy(5, 3);
    fed::Simulation sim(strategy, pool, clients,
                        {.per_round = 3, .sampling = fed::Sampling::cyclic}, std::move(transport));
    (void)sim.run(sim.rounds_per_pass(), pool);
    return Matrix<double>(strategy.weights());
  };
  const Matrix<double> one = fed3r(fed::AnyTransport{});
  for (const auto& w : on_ranks<Matrix<double>>(3, true, fed3r)) {
    CHECK(w == one);
  }
}

}  // namespace edgescale

namespace edgescale {

TEST_CASE("a wrong-shape update handed to server_update is refused and changes nothing") {
  fed::Fed3r<double> ridge(4, 3);
  const std::vector<double> ridge_before = ridge.server_state();
  const fed::RidgeStatistics good(4, 3);
  const fed::RidgeStatistics wrong(5, 3);
  const std::vector<fed::Received<fed::RidgeStatistics>> ridge_updates{{0, 1, &good},
                                                                       {1, 1, &wrong}};
  CHECK_THROWS_WITH_AS(ridge.server_update(ridge_updates, {.clients = 2}),
                       doctest::Contains("cannot add"), shape_error);
  CHECK(ridge.server_state() == ridge_before);

  fed::FedNcm<double> ncm(4, 3);
  const std::vector<double> ncm_before = ncm.server_state();
  const fed::NcmStatistics fine(4, 3);
  fed::NcmStatistics short_counts(4, 3);
  short_counts.counts.pop_back();
  const std::vector<fed::Received<fed::NcmStatistics>> ncm_updates{{0, 1, &fine},
                                                                   {1, 1, &short_counts}};
  CHECK_THROWS_WITH_AS(ncm.server_update(ncm_updates, {.clients = 2}),
                       doctest::Contains("4 x 3 sums and 2 counts, expected 4 x 3 and 3"),
                       shape_error);
  CHECK(ncm.server_state() == ncm_before);
}

TEST_CASE(
    "messages between ranks: node lists and round outcomes round-trip; malformed ones are "
    "refused") {
  const std::vector<fed::ReductionNode> nodes{{3, 5, false, {}}, {0, 48, true, {}}};
  const std::string bytes = fed::detail::encode_node_headers(nodes);
  const std::vector<fed::ReductionNode> back = fed::detail::decode_node_headers(bytes, 1);
  REQUIRE(back.size() == 2);
  CHECK((back[0].level == 3 && back[0].index == 5 && !back[0].empty));
  CHECK((back[1].level == 0 && back[1].index == 48 && back[1].empty));
  for (const std::string& bad :
       {std::string(), bytes.substr(0, bytes.size() - 1), bytes.substr(0, bytes.size() - 8)}) {
    CHECK_THROWS_WITH_AS((void)fed::detail::decode_node_headers(bad, 1),
                         doctest::Contains("rank 1 sent a malformed node list"), argument_error);
  }
  std::string level_11;
  fed::detail::put_word(level_11, 1);
  fed::detail::put_word(level_11, 11);
  fed::detail::put_word(level_11, 0);
  fed::detail::put_word(level_11, 1);
  CHECK_THROWS_AS((void)fed::detail::decode_node_headers(level_11, 1), argument_error);

  const std::vector<fed::detail::Outcome> outcomes{{3, true, 120, {}}, {7, false, 0, "NaN"}};
  const std::string message = fed::detail::encode_outcomes(outcomes);
  std::vector<fed::detail::Outcome> decoded;
  fed::detail::decode_outcomes(message, 2, decoded);
  REQUIRE(decoded.size() == 2);
  CHECK((decoded[1].client == 7 && !decoded[1].accepted && decoded[1].reason == "NaN"));
  CHECK((decoded[0].bytes == 120 && decoded[0].accepted));
  std::vector<fed::detail::Outcome> none;
  CHECK_THROWS_WITH_AS(fed::detail::decode_outcomes(message.substr(0, message.size() - 2), 2, none),
                       doctest::Contains("rank 2 sent malformed round outcomes"), argument_error);
}

}  // namespace edgescale
