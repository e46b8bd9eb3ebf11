// bench/bench_fed.cpp — what FED3R costs a client and the server (fed/fed3r.hpp).
//
//   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DEDGESCALE_BUILD_BENCH=ON
//   cmake --build build/bench --target bench_fed && build/bench/bench/bench_fed
//
// Workload: one client of n = 600 samples (a CIFAR-100 client of a 100-client split) with C = 100
// classes, features of d = D − 1 values in float (uniform [−1, 1)), for D in {257, 1281, 5001}: a
// ResNet-18-like 256-feature extractor, MobileNetV2's 1280 features, and FED3R-RF's 5000 random
// features. Names are "<what>/<D>":
//   client_statistics/D  fed::RidgeStatistics::accumulate of the client's 600 samples: the
//                        symmetric rank update of A in blocks of 256 columns, the scatter into b
//                        and the mirror of A's triangle. GFLOP/s counts the rank update only,
//                        n·D·(D+1) FLOPs (the lower triangle of ΦΦᵀ, a multiply and an add each).
//   eigen_gemm/D         the machine's GEMM reference: Eigen's G = ΦᵀΦ of the same shape (Φ n x D,
//                        double) as a general product, 2·n·D² FLOPs — twice the rank update's work.
//   server_aggregate/D   the server adding 10 clients' statistics (A and b) into its running sum:
//                        memory-bound, ~10·8·D² bytes read.
//   server_solve/D       fed::solve_ridge: W = (A + λI)⁻¹ b by Cholesky, on the statistics of one
//                        client (n < D for D > 601: λ keeps A + λI definite). GFLOP/s counts
//                        D³/3 (the factorisation) + 2·D²·C (the two triangular solves).
// scripts/bench_fed3r_numpy.py times the same computations with numpy/scipy (OpenBLAS).
// Times are process CPU time (MeasureProcessCPUTime), as in bench_nn.
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/fed/fed3r.hpp>

#include <Eigen/Core>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

namespace {

using namespace edgescale;

constexpr Index client_samples = 600;
constexpr Index classes = 100;
constexpr int aggregated_clients = 10;

/// A client's features (d x n, float) and labels, the same for every run.
struct ClientWorkload {
  Matrix<float> features;
  std::vector<std::int32_t> labels;

  explicit ClientWorkload(Index D) : features(D - 1, client_samples) {
    Rng rng = make_stream(2024, "bench_fed client");
    for (Index i = 0; i < features.size(); ++i) {
      features.data()[i] = uniform(rng, -1.0F, 1.0F);
    }
    labels.resize(static_cast<std::size_t>(client_samples));
    for (Index i = 0; i < client_samples; ++i) {
      labels[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % classes);
    }
  }

  [[nodiscard]] fed::RidgeStatistics statistics() const {
    fed::RidgeStatistics s(features.rows(), classes);
    s.accumulate(features, labels);
    return s;
  }
};

void client_statistics(benchmark::State& state) {
  const Index D = state.range(0);
  const ClientWorkload client(D);
  fed::RidgeStatistics s(D - 1, classes);
  Workspace<double> scratch;
  for (auto _ : state) {
    s.accumulate(client.features, client.labels, scratch);
    benchmark::DoNotOptimize(s.A.data());
    benchmark::ClobberMemory();
  }
  const auto flops = static_cast<double>(client_samples * D * (D + 1));
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void eigen_gemm(benchmark::State& state) {
  const Index D = state.range(0);
  const ClientWorkload client(D);
  Matrix<double> phi(client_samples, D);  // one sample per row, as the product ΦᵀΦ wants it
  phi.leftCols(D - 1) = client.features.transpose().cast<double>();
  phi.col(D - 1).setOnes();
  Matrix<double> gram(D, D);
  for (auto _ : state) {
    gram.noalias() = phi.transpose() * phi;
    benchmark::DoNotOptimize(gram.data());
    benchmark::ClobberMemory();
  }
  const auto flops = 2.0 * static_cast<double>(client_samples * D * D);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void server_aggregate(benchmark::State& state) {
  const Index D = state.range(0);
  // One client's statistics stand for all ten: at D = 5001 each A is 200 MB, far beyond any
  // cache, so adding the same one ten times moves as many bytes as ten different ones.
  const fed::RidgeStatistics client = ClientWorkload(D).statistics();
  fed::RidgeStatistics server(D - 1, classes);
  for (auto _ : state) {
    for (int k = 0; k < aggregated_clients; ++k) {
      server += client;
    }
    benchmark::DoNotOptimize(server.A.data());
    benchmark::ClobberMemory();
  }
  state.counters["clients"] = aggregated_clients;
}

void server_solve(benchmark::State& state) {
  const Index D = state.range(0);
  const fed::RidgeStatistics s = ClientWorkload(D).statistics();
  for (auto _ : state) {
    Matrix<double> W = fed::solve_ridge(s.A, s.b, 0.01);
    benchmark::DoNotOptimize(W.data());
  }
  const auto d = static_cast<double>(D);
  const double flops = d * d * d / 3.0 + 2.0 * d * d * static_cast<double>(classes);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void dimensions(benchmark::internal::Benchmark* b) {
  for (const int D : {257, 1281, 5001}) {
    b->Arg(D);
  }
  b->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(client_statistics)->Apply(dimensions);
BENCHMARK(eigen_gemm)->Apply(dimensions);
BENCHMARK(server_aggregate)->Apply(dimensions);
BENCHMARK(server_solve)->Apply(dimensions);

}  // namespace

BENCHMARK_MAIN();
