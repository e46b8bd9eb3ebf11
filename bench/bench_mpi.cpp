// bench/bench_mpi.cpp — the federated simulation over MPI ranks: strong and weak scaling of a
// FED3R round and a FedAvg round, in the deterministic and the fast reduction, and the bytes each
// rank hands to MPI.
//
//   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DEDGESCALE_BUILD_BENCH=ON
//   cmake --build build/bench --target bench_mpi
//   for p in 1 2 4; do mpirun -np $p --oversubscribe --bind-to none build/bench/bench/bench_mpi;
//   done (scripts/bench_mpi.sh runs that and writes docs/results/distributed/)
//
// Every rank builds the same federation from the same seed and runs the same fixed number of
// iterations (a collective inside each), so the library's adaptive iteration count is off. One
// untimed round warms up, then an iteration is one round: barrier, the round (clients, exchange of
// outcomes, reduction, apply), and its time is the slowest rank's (MPI_Allreduce MAX of MPI_Wtime
// spans: manual time). Rank 0 alone reports. Names are "<workload>/<scaling>/<mode>":
//   fed3r     every client sends the ridge statistics of 600 samples of d = 255 float features
//             (D = 256, C = 10; packed 33 k doubles); a round visits clients_per_round clients
//   fedavg    2 local epochs of SGD (batch 32) on 600 samples of 64 features through a
//             64-64-10 MLP; the update is the 4 810-value delta
//   strong    the same federation whatever P: 40 clients a round (FED3R), 16 (FedAvg)
//   weak      the work grows with P: 10·P clients a round (FED3R), 4·P (FedAvg)
//   mode      deterministic (the fixed tree: point to point, then a broadcast of the sum) or fast
//             (one MPI_Allreduce)
//   reduction/values/fast  the reduction alone: one node of `values` doubles per rank
// Counters: ranks, clients per round, bytes_rank0 and bytes_max (payload handed to MPI per round
// by rank 0 and by the busiest rank), and clients/s.
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/fed3r.hpp>
#include <edgescale/fed/fedavg.hpp>
#include <edgescale/fed/reduce.hpp>
#include <edgescale/fed/simulate.hpp>
#include <edgescale/mpi/communicator.hpp>
#include <edgescale/mpi/transport.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/sequential.hpp>

#include <benchmark/benchmark.h>
#include <malloc.h>
#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace edgescale;

constexpr int iterations = 10;

// n samples of `features` uniform [-1, 1) values, labels from the first feature's sign and the
// second's (10 classes), the same on every rank.
data::Dataset<float> synthetic(Index n, Index features, std::uint64_t seed) {
  Rng rng = make_stream(seed, "bench_mpi data");
  data::Dataset<float> d;
  d.name = "synthetic";
  d.classes = 10;
  d.sample_shape = {1, 1, features};
  d.features.resize(features, n);
  d.labels.resize(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) {
    for (Index j = 0; j < features; ++j) {
      d.features(j, i) = static_cast<float>(2 * uniform01<double>(rng) - 1);
    }
    const int y = static_cast<int>((d.features(0, i) + 1) * 5) % 10;
    d.labels[static_cast<std::size_t>(i)] = y;
    d.features(1, i) += 0.3F * static_cast<float>(y);  // a learnable signal
  }
  return d;
}

fed::Partition blocks(Index clients, Index per_client) {
  fed::Partition p(static_cast<std::size_t>(clients));
  for (Index k = 0; k < clients; ++k) {
    for (Index i = 0; i < per_client; ++i) {
      p[static_cast<std::size_t>(k)].push_back(k * per_client + i);
    }
  }
  return p;
}

// Runs the rounds of `sim`, timing each as the slowest rank's span.
template <class Sim>
void time_rounds(benchmark::State& state, Sim& sim, mpi::Communicator& comm, Index per_round) {
  (void)sim.run_round(nullptr, false);  // warm-up: workers, buffers, first touches of the pool
  std::size_t bytes = 0;
  for (auto _ : state) {
    comm.barrier();
    const double start = MPI_Wtime();
    const fed::RoundReport r = sim.run_round(nullptr, false);
    double span = MPI_Wtime() - start;
    MPI_Allreduce(MPI_IN_PLACE, &span, 1, MPI_DOUBLE, MPI_MAX, comm.native());
    state.SetIterationTime(span);
    bytes += r.transport_bytes;
    benchmark::DoNotOptimize(r.received);
  }
  const double mine = static_cast<double>(bytes) / static_cast<double>(state.iterations());
  double busiest = mine;
  MPI_Allreduce(MPI_IN_PLACE, &busiest, 1, MPI_DOUBLE, MPI_MAX, comm.native());
  state.counters["ranks"] = comm.size();
  state.counters["clients"] = static_cast<double>(per_round);
  state.counters["bytes_rank0"] = mine;  // rank 0 reports
  state.counters["bytes_max"] = busiest;
  state.counters["clients_per_s"] =
      benchmark::Counter(static_cast<double>(per_round) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

mpi::Mode mode_of(const benchmark::State& state) {
  return state.range(1) == 0 ? mpi::Mode::deterministic : mpi::Mode::fast;
}

// range(0): 0 strong, 1 weak; range(1): 0 deterministic, 1 fast.
void fed3r(benchmark::State& state) {
  mpi::Communicator comm;
  const bool weak = state.range(0) == 1;
  const Index per_round = weak ? 10 * comm.size() : 40;
  const Index per_client = 600;
  const Index d = 255;
  const data::Dataset<float> pool = synthetic(per_round * per_client, d, 7);
  fed::Fed3r<float> strategy(d, 10);
  fed::Simulation sim(strategy, pool, blocks(per_round, per_client),
                      {.per_round = per_round, .sampling = fed::Sampling::cyclic, .seed = 3},
                      mpi::Transport(comm, mode_of(state)));
  time_rounds(state, sim, comm, per_round);
}

using Mlp = nn::Sequential<nn::Dense<64, 64>, nn::ReLU, nn::Dense<64, 10>>;

void fedavg(benchmark::State& state) {
  mpi::Communicator comm;
  const bool weak = state.range(0) == 1;
  const Index per_round = weak ? 4 * comm.size() : 16;
  const Index clients = 2 * per_round;
  const Index per_client = 600;
  const data::Dataset<float> pool = synthetic(clients * per_client, 64, 8);
  Rng init = make_stream(5, "bench_mpi init");
  const Mlp initial(nn::init::kaiming_normal, init);
  fed::FedAvg<Mlp> strategy(initial,
                            {.local = {.epochs = 2, .batch_size = 32, .learning_rate = 0.05}});
  fed::Simulation sim(strategy, pool, blocks(clients, per_client),
                      {.per_round = per_round, .seed = 3}, mpi::Transport(comm, mode_of(state)));
  time_rounds(state, sim, comm, per_round);
}

void arguments(benchmark::internal::Benchmark* b) {
  b->ArgNames({"weak", "fast"});
  for (const int weak : {0, 1}) {
    for (const int fast : {0, 1}) {
      b->Args({weak, fast});
    }
  }
  b->Iterations(iterations)->UseManualTime()->Unit(benchmark::kMillisecond);
}

// The reduction alone, for the cost model of docs/distributed.md: every rank holds one node of
// `values` doubles (its first slot) and the ranks combine them into the root on every rank —
// deterministic: fed::reduce_tree (binomial tree of point-to-point messages, then MPI_Bcast);
// fast: one MPI_Allreduce. range(0): values; range(1): 0 deterministic, 1 fast.
void reduction(benchmark::State& state) {
  mpi::Communicator comm;
  mpi::Transport transport(comm, mode_of(state));
  const auto values = static_cast<std::size_t>(state.range(0));
  std::vector<double> local(values, 1.0 + comm.rank());
  std::size_t bytes = 0;
  for (auto _ : state) {
    comm.barrier();
    const std::size_t before = transport.bytes_sent();
    const double start = MPI_Wtime();
    if (transport.deterministic()) {
      fed::ReductionStack stack(static_cast<Index>(values));
      const Index first = fed::first_slot(comm.rank(), comm.size());
      const Index last = fed::first_slot(comm.rank() + 1, comm.size());
      for (Index slot = first; slot < last; ++slot) {
        fed::ReductionNode leaf{0, slot, slot != first, {}};
        if (slot == first) {
          leaf.values = local;
        }
        stack.push(std::move(leaf));
      }
      benchmark::DoNotOptimize(fed::reduce_tree(transport, std::move(stack)).data());
    } else {
      std::vector<double> sum = local;
      transport.allreduce_sum(std::span<double>(sum));
      benchmark::DoNotOptimize(sum.data());
    }
    double span = MPI_Wtime() - start;
    MPI_Allreduce(MPI_IN_PLACE, &span, 1, MPI_DOUBLE, MPI_MAX, comm.native());
    state.SetIterationTime(span);
    bytes += transport.bytes_sent() - before;
  }
  double busiest = static_cast<double>(bytes) / static_cast<double>(state.iterations());
  MPI_Allreduce(MPI_IN_PLACE, &busiest, 1, MPI_DOUBLE, MPI_MAX, comm.native());
  state.counters["ranks"] = comm.size();
  state.counters["bytes_max"] = busiest;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * values * sizeof(double)));
}

BENCHMARK(fed3r)->Apply(arguments);
BENCHMARK(fedavg)->Apply(arguments);
BENCHMARK(reduction)
    ->ArgNames({"values", "fast"})
    ->ArgsProduct({{1 << 12, 1 << 15, 1 << 18, 1 << 21}, {0, 1}})
    ->Iterations(20)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

// Every rank runs the benchmarks (their collectives meet); rank 0 alone prints and writes
// --benchmark_out, the others report to nobody.
int main(int argc, char** argv) {
  // Client updates are fresh 0.5 MB matrices each round; glibc's adaptive mmap threshold made the
  // first benchmark of a run pay page faults the later ones did not (15 % of a FED3R round).
  // Fixed thresholds keep such buffers on the heap for every benchmark alike.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  mpi::Environment env(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<char*> args(argv, argv + argc);
  if (rank != 0) {
    std::erase_if(args, [](const char* a) { return std::strncmp(a, "--benchmark_out", 15) == 0; });
  }
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  if (rank == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    class Silent : public benchmark::BenchmarkReporter {
     public:
      bool ReportContext(const Context&) override { return true; }
      void ReportRuns(const std::vector<Run>&) override {}
    } silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
  return 0;
}
