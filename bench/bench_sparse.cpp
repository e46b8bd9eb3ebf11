// bench/bench_sparse.cpp — pruned layers and networks: dense kernels against CSR (prune/csr.hpp,
// prune/sparse.hpp), to find the density below which CSR is faster (prune::measured_crossover).
//
//   scripts/bench_sparse.sh                 # build, run pinned to one core, tables
//   build/bench/bench/bench_sparse --benchmark_filter='mlp_fc1/1/'
//
// Names are "<impl>/<workload>/<batch>/<density in per mille>":
//   layers    mlp_fc1 (784->300), mlp_fc2 (300->100), mlp_fc3 (100->10) of LeNet-300-100, and
//             lenet_conv1 (1->6, 5x5, pad 2, 28x28), lenet_conv2 (6->16, 5x5, 14x14) of LeNet-5;
//             impl dense (nn::DenseLayer / nn::Conv2DLayer forward, masked weights), csr
//             (prune::SparseDenseLayer / SparseConv2DLayer forced to CSR) and, for the Dense
//             layers, eigen_sparse (Eigen::SparseMatrix<float, RowMajor> times the batch, plus the
//             bias: the sanity peer). Densities 1000, 500, 200, 100, 50, 20, 10, 5 per mille.
//   networks  mlp (LeNet-300-100) and lenet5 (LeNet-5) inference in evaluation mode: impl dense
//             (the pruned nn::Sequential) and picked (prune::compile_sparse with
//             measured_crossover), at 50, 20 and 10 per mille (95 %, 98 %, 99 % sparsity).
// Masks are random and seeded, each weight tensor keeping exactly round(density x size) weights
// (uniform over the tensor, the same mask for every impl). Batch 1 and 32; float; rates per
// second of process CPU time (MeasureProcessCPUTime), as bench_nn.
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/prune/sparse.hpp>

#include <Eigen/SparseCore>

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace edgescale;

using Mlp = nn::Sequential<nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 100>, nn::ReLU,
                           nn::Dense<100, 10>>;
using LeNet5 =
    nn::Sequential<nn::Input<1, 28, 28>, nn::Conv2D<1, 6, 5, nn::Pad<2>>, nn::ReLU,
                   nn::MaxPool2D<2>, nn::Conv2D<6, 16, 5>, nn::ReLU, nn::MaxPool2D<2>, nn::Flatten,
                   nn::Dense<400, 120>, nn::ReLU, nn::Dense<120, 84>, nn::ReLU, nn::Dense<84, 10>>;

constexpr std::uint64_t seed = 2024;
constexpr int layer_densities[] = {1000, 500, 200, 100, 50, 20, 10, 5};  // per mille
constexpr int network_densities[] = {50, 20, 10};
constexpr int batches[] = {1, 32};
constexpr int dense_batches[] = {1, 4, 32};  // 4: below one SIMD vector of floats
constexpr prune::Crossover always_csr{.dense_single = 1, .dense_batched = 1, .conv = 1};

Matrix<float> random_matrix(Index rows, Index cols, Rng& rng) {
  Matrix<float> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) {
    m.data()[i] = uniform<float>(rng, -1.0F, 1.0F);
  }
  return m;
}

/// Keeps exactly round(density x size) weights of a tensor, chosen uniformly, and a random bias.
void prune_exactly(Parameter<float>& p, double density, Rng& rng) {
  if (!p.prunable()) {
    p.value = random_matrix(p.size(), 1, rng);
    return;
  }
  std::vector<Index> order(static_cast<std::size_t>(p.size()));
  std::iota(order.begin(), order.end(), Index{0});
  shuffle(order, rng);
  const auto kept = static_cast<std::size_t>(std::lround(density * static_cast<double>(p.size())));
  p.mask = Vector<float>::Zero(p.size());
  for (std::size_t i = 0; i < kept; ++i) {
    p.mask[order[i]] = 1.0F;
  }
  p.apply_mask();
}

template <class L>
void prune_layer(L& layer, double density) {
  Rng rng = make_stream(seed, "init");
  layer.initialize(nn::init::kaiming_normal, rng);
  Rng masks = make_stream(seed, "masks");
  for (Parameter<float>& p : layer.parameters()) {
    prune_exactly(p, density, masks);
  }
}

void set_counters(benchmark::State& state, Index batch) {
  state.SetItemsProcessed(state.iterations() * batch);
}

enum class Impl { dense, csr, eigen_sparse };

/// One layer's forward (Dense or Conv2D, given as its dense layer type) at state's batch and
/// density.
template <class Dense, Impl impl>
void layer_forward(benchmark::State& state) {
  const Index batch = state.range(0);
  const double density = static_cast<double>(state.range(1)) / 1000.0;
  Dense dense;
  prune_layer(dense, density);
  Rng data = make_stream(seed, "data");
  const Matrix<float> x = random_matrix(Dense::input_shape::size, batch, data);
  if constexpr (impl == Impl::dense) {
    for (auto _ : state) {
      benchmark::DoNotOptimize(dense.forward(batch_view(x)).data());
      benchmark::ClobberMemory();
    }
  } else if constexpr (impl == Impl::csr) {
    prune::sparse_layer_t<Dense> sparse;
    for (std::size_t i = 0; i < dense.parameters().size(); ++i) {
      sparse.parameters()[i] = dense.parameters()[i];
    }
    sparse.prepare(always_csr);
    for (auto _ : state) {
      benchmark::DoNotOptimize(sparse.forward(batch_view(x)).data());
      benchmark::ClobberMemory();
    }
  } else {
    constexpr Index in = Dense::input_shape::size;
    constexpr Index out = Dense::output_shape::size;
    const Parameter<float>& w = dense.parameters()[0];
    const Vector<float>& b = dense.parameters()[1].value;
    std::vector<Eigen::Triplet<float, int>> entries;
    for (Index i = 0; i < out; ++i) {
      for (Index j = 0; j < in; ++j) {
        if (w.mask[i * in + j] != 0.0F) {
          entries.emplace_back(static_cast<int>(i), static_cast<int>(j), w.value[i * in + j]);
        }
      }
    }
    Eigen::SparseMatrix<float, Eigen::RowMajor, int> a(out, in);
    a.setFromTriplets(entries.begin(), entries.end());
    Matrix<float> y(out, batch);
    for (auto _ : state) {
      y.noalias() = a * x;
      y.colwise() += b;
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
  }
  set_counters(state, batch);
}

/// A network's inference, pruned at state's density: the dense network, or compile_sparse's.
template <class Net, bool Picked>
void network_forward(benchmark::State& state) {
  const Index batch = state.range(0);
  const double density = static_cast<double>(state.range(1)) / 1000.0;
  Rng rng = make_stream(seed, "init");
  Net net{nn::init::kaiming_normal, rng};
  Rng masks = make_stream(seed, "masks");
  net.for_each_parameter(
      [&](std::string_view, Parameter<float>& p) { prune_exactly(p, density, masks); });
  net.set_training(false);
  Rng data = make_stream(seed, "data");
  const Matrix<float> x = random_matrix(Net::input_shape::size, batch, data);
  if constexpr (Picked) {
    auto sparse = prune::compile_sparse(net);
    for (auto _ : state) {
      benchmark::DoNotOptimize(sparse.forward(x).data());
      benchmark::ClobberMemory();
    }
    int csr_layers = 0;
    for (const prune::LayerKernels& l : prune::sparse_plan(sparse)) {
      csr_layers += (batch == 1 ? l.single : l.batched) == prune::SparseKernel::csr ? 1 : 0;
    }
    state.counters["csr_layers"] = csr_layers;
  } else {
    for (auto _ : state) {
      benchmark::DoNotOptimize(net.forward(x).data());
      benchmark::ClobberMemory();
    }
  }
  set_counters(state, batch);
}

using BenchFn = void (*)(benchmark::State&);

void add(const std::string& name, BenchFn fn, std::span<const int> densities,
         std::span<const int> batch_sizes = batches) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), fn);
  for (const int batch : batch_sizes) {
    for (const int d : densities) {
      b->Args({batch, d});
    }
  }
  b->MeasureProcessCPUTime()->Unit(benchmark::kMicrosecond);
}

/// A layer: Dense layers at batch 1, 4 and 32 with the Eigen peer, convolutions (computed
/// sample by sample whatever the batch) at batch 1 and 32.
template <class Dense>
void add_layer(const std::string& name, bool dense_layer) {
  const std::span<const int> sizes = dense_layer ? std::span<const int>(dense_batches) : batches;
  add("dense/" + name, &layer_forward<Dense, Impl::dense>, layer_densities, sizes);
  add("csr/" + name, &layer_forward<Dense, Impl::csr>, layer_densities, sizes);
  if (dense_layer) {
    add("eigen_sparse/" + name, &layer_forward<Dense, Impl::eigen_sparse>, layer_densities, sizes);
  }
}

void register_all() {
  add_layer<nn::DenseLayer<float, 784, 300, true>>("mlp_fc1", true);
  add_layer<nn::DenseLayer<float, 300, 100, true>>("mlp_fc2", true);
  add_layer<nn::DenseLayer<float, 100, 10, true>>("mlp_fc3", true);
  add_layer<nn::Conv2DLayer<float, Shape<1, 28, 28>, 6, 5, 1, 2, true>>("lenet_conv1", false);
  add_layer<nn::Conv2DLayer<float, Shape<6, 14, 14>, 16, 5, 1, 0, true>>("lenet_conv2", false);
  add("dense/mlp", &network_forward<Mlp, false>, network_densities);
  add("picked/mlp", &network_forward<Mlp, true>, network_densities);
  add("dense/lenet5", &network_forward<LeNet5, false>, network_densities);
  add("picked/lenet5", &network_forward<LeNet5, true>, network_densities);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::AddCustomContext(
      "crossover (prune::measured_crossover)",
      "dense_single " + std::to_string(prune::measured_crossover.dense_single) +
          ", dense_batched " + std::to_string(prune::measured_crossover.dense_batched) + ", conv " +
          std::to_string(prune::measured_crossover.conv));
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
