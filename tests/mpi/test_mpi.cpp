// The federated strategies and data-parallel training over MPI (edgescale/mpi), run by ctest
// under mpirun -np 1, 2 and 4: every rank checks its results against the single-process
// simulation it also runs, so the same checks prove 1, 2 and 4 ranks bit-identical to each other.
#include <edgescale/fed/aggregate.hpp>
#include <edgescale/fed/fed3r.hpp>
#include <edgescale/fed/fedavg.hpp>
#include <edgescale/fed/fedopt.hpp>
#include <edgescale/fed/scaffold.hpp>
#include <edgescale/fed/simulate.hpp>
#include <edgescale/mpi/communicator.hpp>
#include <edgescale/mpi/data_parallel.hpp>
#include <edgescale/mpi/transport.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/train.hpp>

#include "fed/fed_fixtures.hpp"
#include "fed/gaussian_classes.hpp"
#include "fed/gradient_run.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace edgescale {
namespace {

using Mlp = test::BlobMlp<float>;

template <class T>
std::string bytes_of(const T* data, Index n) {
  return std::string(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n) * sizeof(T));
}

// True when every rank holds the same bytes.
bool same_everywhere(mpi::Communicator& comm, const std::string& mine) {
  const std::vector<std::string> all = comm.allgather(mine);
  for (const std::string& s : all) {
    if (s != all[0]) {
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("communicator: messages, gathers and sums of any length, in chunks") {
  mpi::Communicator comm;
  const int rank = comm.rank();
  const int ranks = comm.size();
  MESSAGE("rank ", rank, " of ", ranks);
  for (const std::size_t chunk : {std::size_t{3}, mpi::Communicator::default_chunk}) {
    CAPTURE(chunk);
    comm.set_chunk(chunk);
    // allreduce: Σ_r (r + 1)·(i + 1) = (i + 1)·P(P + 1)/2, exact in double.
    std::vector<double> v(10);
    for (std::size_t i = 0; i < v.size(); ++i) {
      v[i] = static_cast<double>((rank + 1) * static_cast<int>(i + 1));
    }
    comm.allreduce_sum(std::span<double>(v));
    for (std::size_t i = 0; i < v.size(); ++i) {
      CHECK(v[i] == static_cast<double>(i + 1) * ranks * (ranks + 1) / 2);
    }
    // broadcast from rank 0
    std::vector<double> b(7, static_cast<double>(rank));
    comm.broadcast(std::span<double>(b));
    CHECK(b == std::vector<double>(7, 0.0));
    // allgather of strings of different lengths, one of them empty
    const std::vector<std::string> all = comm.allgather(
        std::string(static_cast<std::size_t>(rank) * 4, 'a' + static_cast<char>(rank)));
    REQUIRE(all.size() == static_cast<std::size_t>(ranks));
    for (int r = 0; r < ranks; ++r) {
      CHECK(all[static_cast<std::size_t>(r)] ==
            std::string(static_cast<std::size_t>(r) * 4, 'a' + static_cast<char>(r)));
    }
    // a ring of point-to-point messages
    if (ranks > 1) {
      const int next = (rank + 1) % ranks;
      const int previous = (rank + ranks - 1) % ranks;
      std::vector<double> out(11, rank + 0.5);
      std::vector<double> in(11, -1);
      if (rank % 2 == 0) {
        comm.send(next, std::span<const double>(out));
        comm.receive(previous, std::span<double>(in));
        comm.send(next, std::string_view("from " + std::to_string(rank)));
        CHECK(comm.receive(previous) == "from " + std::to_string(previous));
      } else {
        comm.receive(previous, std::span<double>(in));
        comm.send(next, std::span<const double>(out));
        CHECK(comm.receive(previous) == "from " + std::to_string(previous));
        comm.send(next, std::string_view("from " + std::to_string(rank)));
      }
      CHECK(in == std::vector<double>(11, previous + 0.5));
    }
  }
  CHECK(comm.bytes_sent() > 0);
  // MPI's own failure (a rank that does not exist) is an exception naming the call, not an abort.
  std::vector<double> x(1);
  CHECK_THROWS_AS(comm.send(ranks + 3, std::span<const double>(x)), mpi::error);
  CHECK_THROWS_AS(comm.set_chunk(0), argument_error);
}

TEST_CASE(
    "FED3R over MPI: W bit-identical to one process (deterministic), close and shared (fast)") {
  mpi::Communicator comm;
  Rng rng = make_stream(3, "mpi fed3r");
  const Index d = 11;
  const Index C = 5;
  const test::GaussianClasses g{.features = d, .classes = C, .means_key = 7};
  const data::Dataset<double> pool = test::gaussian_classes(900, g, rng);
  const data::Dataset<double> test = test::gaussian_classes(300, g, rng);
  const fed::Partition clients = test::round_robin(pool.size(), 53);
  const fed::SimulationOptions options{
      .per_round = 10, .sampling = fed::Sampling::cyclic, .threads = 2, .seed = 17};
  const auto fed3r = [&](fed::AnyTransport transport,
                         std::vector<fed::RoundReport>* history = nullptr) {
    fed::Fed3r<double> strategy(d, C);
    fed::Simulation sim(strategy, pool, clients, options, std::move(transport));
    auto h = sim.run(sim.rounds_per_pass(), test);
    if (history != nullptr) {
      *history = std::move(h);
    }
    return Matrix<double>(strategy.weights());
  };
  std::vector<fed::RoundReport> one_history;
  const Matrix<double> one = fed3r(fed::AnyTransport{}, &one_history);

  mpi::Communicator small = comm;
  small.set_chunk(7);  // the reduction's messages travel in many chunks
  std::vector<fed::RoundReport> history;
  const Matrix<double> w = fed3r(fed::AnyTransport(mpi::Transport(small)), &history);
  CHECK(std::memcmp(w.data(), one.data(), static_cast<std::size_t>(w.size()) * sizeof(double)) ==
        0);
  REQUIRE(history.size() == one_history.size());
  for (std::size_t r = 0; r < history.size(); ++r) {
    CHECK(history[r].sampled == one_history[r].sampled);
    CHECK(history[r].received == one_history[r].received);
    CHECK(history[r].total_bytes_up == one_history[r].total_bytes_up);
    CHECK(history[r].accuracy == one_history[r].accuracy);
  }

  const Matrix<double> fast = fed3r(fed::AnyTransport(mpi::Transport(comm, mpi::Mode::fast)));
  CHECK(same_everywhere(comm, bytes_of(fast.data(), fast.size())));
  const double difference = (fast - one).cwiseAbs().maxCoeff() / one.cwiseAbs().maxCoeff();
  MESSAGE("FED3R fast vs deterministic on ", comm.size(), " ranks: max relative difference of W ",
          difference);
  CHECK(difference < 1e-10);
}

TEST_CASE("FedAvg, SCAFFOLD and FedAdam over MPI reproduce the single-process curve bit for bit") {
  mpi::Communicator comm;
  const data::Dataset<float> pool = test::blobs<float>(600, 31);
  const data::Dataset<float> test = test::blobs<float>(200, 32);
  const fed::Partition clients = test::round_robin(pool.size(), 40);
  Rng init = make_stream(6, "mpi mlp");
  const Mlp initial(nn::init::kaiming_normal, init);
  const fed::LocalTraining local{.epochs = 2, .batch_size = 8, .learning_rate = 0.1};

  const fed::SimulationOptions options{.per_round = 8, .threads = 2, .dropout = 0.1, .seed = 5};
  const auto run_gradient = [&](auto& strategy, fed::AnyTransport transport) {
    return test::run_gradient(strategy, pool, test, clients, options, 6, std::move(transport));
  };
  const auto check_same = test::check_same_run;
  {
    fed::FedAvg<Mlp> one(initial, {.local = local});
    fed::FedAvg<Mlp> over(initial, {.local = local});
    const test::GradientRun a = run_gradient(one, fed::AnyTransport{});
    const test::GradientRun b = run_gradient(over, fed::AnyTransport(mpi::Transport(comm)));
    check_same(a, b);
    CHECK(a.accuracy.back() > 0.8);  // a model that learnt, not a still one
    MESSAGE("FedAvg accuracy after 6 rounds on ", comm.size(), " ranks: ", b.accuracy.back());
  }
  {
    fed::Scaffold<Mlp> one(initial, {.local = local});
    fed::Scaffold<Mlp> over(initial, {.local = local});
    check_same(run_gradient(one, fed::AnyTransport{}),
               run_gradient(over, fed::AnyTransport(mpi::Transport(comm))));
    // The server control variate is the same on every rank, without having been sent.
    CHECK(same_everywhere(comm, bytes_of(over.control().values().data(), over.control().size())));
  }
  {
    fed::FedAdam<Mlp> one(initial, {.local = local, .server_learning_rate = 0.01});
    fed::FedAdam<Mlp> over(initial, {.local = local, .server_learning_rate = 0.01});
    check_same(run_gradient(one, fed::AnyTransport{}),
               run_gradient(over, fed::AnyTransport(mpi::Transport(comm))));
  }
  {
    // The fast mode: every rank holds the same model, equal to the fixed order up to rounding.
    fed::FedAvg<Mlp> one(initial, {.local = local});
    fed::FedAvg<Mlp> fast(initial, {.local = local});
    const test::GradientRun a = run_gradient(one, fed::AnyTransport{});
    const test::GradientRun b =
        run_gradient(fast, fed::AnyTransport(mpi::Transport(comm, mpi::Mode::fast)));
    CHECK(same_everywhere(comm, bytes_of(b.global.data(), static_cast<Index>(b.global.size()))));
    float worst = 0;
    for (std::size_t i = 0; i < a.global.size(); ++i) {
      worst = std::max(worst, std::abs(a.global[i] - b.global[i]));
    }
    MESSAGE("FedAvg fast vs deterministic: max |Δx| = ", worst);
    CHECK(worst < 1e-4F);
  }
}

TEST_CASE("a checkpoint of one process resumes over MPI ranks to the bits of the straight run") {
  mpi::Communicator comm;
  const data::Dataset<float> pool = test::blobs<float>(400, 61);
  const data::Dataset<float> test = test::blobs<float>(100, 62);
  const fed::Partition clients = test::round_robin(pool.size(), 20);
  Rng init = make_stream(6, "mpi mlp");
  const Mlp initial(nn::init::kaiming_normal, init);
  const fed::FedAvg<Mlp>::options o{.local = {.epochs = 1, .batch_size = 8, .learning_rate = 0.1},
                                    .server_momentum = 0.5};
  const fed::SimulationOptions options{.per_round = 6, .dropout = 0.1, .seed = 2};
  fed::FedAvg<Mlp> straight(initial, o);
  fed::Simulation one(straight, pool, clients, options, fed::AnyTransport{});
  const auto history = one.run(6, test);

  fed::FedAvg<Mlp> first(initial, o);
  fed::Simulation stopped(first, pool, clients, options, fed::AnyTransport{});
  (void)stopped.run(3, test);
  std::stringstream file;  // rank 0 would write it to a shared file system
  stopped.checkpoint().save(file);

  fed::FedAvg<Mlp> second(initial, o);
  fed::Simulation resumed(second, pool, clients, options, fed::AnyTransport(mpi::Transport(comm)));
  resumed.restore(fed::SimulationCheckpoint::load(file));
  const auto rest = resumed.run(3, test);
  CHECK(rest.back().accuracy == history.back().accuracy);
  CHECK(rest.back().total_bytes_up == history.back().total_bytes_up);
  CHECK(second.server_state() == straight.server_state());
}

TEST_CASE("a federation the ranks disagree on, or a strategy that is not Reducible, is refused") {
  mpi::Communicator comm;
  if (comm.size() == 1) {
    return;  // nothing to disagree with
  }
  const data::Dataset<float> pool = test::blobs<float>(60, 1);
  const fed::Partition clients = test::round_robin(pool.size(), 6);
  Rng init = make_stream(6, "mpi mlp");
  const Mlp initial(nn::init::kaiming_normal, init);
  fed::FedAvg<Mlp> s(initial);
  const fed::SimulationOptions options{.per_round = 2, .seed = comm.rank() == 1 ? 99U : 1U};
  CHECK_THROWS_WITH_AS(
      fed::Simulation(s, pool, clients, options, fed::AnyTransport(mpi::Transport(comm))),
      doctest::Contains("the ranks disagree on the federation"), argument_error);
  fed::FedAvg<Mlp, fed::Median> median(initial);
  CHECK_THROWS_WITH_AS(fed::Simulation(median, pool, clients, {.per_round = 2},
                                       fed::AnyTransport(mpi::Transport(comm))),
                       doctest::Contains("not fed::Reducible"), argument_error);
}

TEST_CASE("data-parallel: N ranks with batch B equal one rank with batch N·B after 10 steps") {
  mpi::Communicator comm;
  const int ranks = comm.size();
  const Index B = 8;
  const Index global_batch = B * ranks;
  const int steps = 10;
  const data::Dataset<float> data = test::blobs<float>(global_batch * steps, 41);
  Rng init = make_stream(comm.rank() + 1, "dp init");  // different on purpose: broadcast fixes it
  Mlp net(nn::init::kaiming_normal, init);
  mpi::DataParallel<Mlp> dp(comm);
  dp.broadcast_parameters(net);
  Mlp reference = net;  // one rank, the whole batch

  nn::Trainer<Mlp> trainer(net);
  nn::Trainer<Mlp> reference_trainer(reference);
  nn::SGD opt({.learning_rate = 0.1, .momentum = 0.9});
  nn::SGD reference_opt({.learning_rate = 0.1, .momentum = 0.9});
  const auto [first, count] = mpi::shard(global_batch, comm.rank(), ranks);
  for (int s = 0; s < steps; ++s) {
    const Index begin = s * global_batch;
    const ConstBatchView<float> x(data.features.col(begin).data(), 6, global_batch);
    const nn::Labels y(data.labels.data() + begin, static_cast<std::size_t>(global_batch));
    trainer.step(opt, ConstBatchView<float>(x.col(first).data(), 6, count),
                 y.subspan(static_cast<std::size_t>(first), static_cast<std::size_t>(count)),
                 dp.average(count));
    reference_trainer.step(reference_opt, x, y);
  }
  float worst = 0;
  std::string mine;
  for_each_parameter(net, [&](std::string_view name, auto& p) {
    Parameter<float>* q = nullptr;
    for_each_parameter(reference, [&](std::string_view n, auto& r) {
      if (n == name) {
        q = &r;
      }
    });
    REQUIRE(q != nullptr);
    worst = std::max(worst, (p.value - q->value).cwiseAbs().maxCoeff());
    mine += bytes_of(p.value.data(), p.value.size());
  });
  MESSAGE("data-parallel on ", ranks, " ranks: max |w − w_reference| after ", steps,
          " steps = ", worst);
  CHECK(worst <= 1e-6F);
  CHECK(same_everywhere(comm, mine));  // the replicas stay equal
  CHECK(mpi::shard(10, 2, 3) == std::pair<Index, Index>{6, 4});
  CHECK_THROWS_AS((void)mpi::shard(10, 3, 3), argument_error);
}

}  // namespace edgescale
