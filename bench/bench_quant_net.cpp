// bench/bench_quant_net.cpp — whole-network inference, integer against float, in bench_quant.
//
//   build/bench/bench/bench_quant --benchmark_filter='net/'
//
// net/<impl>/<network>/<batch>: impl fp32 (our float network, evaluation mode) or int8 (its
// post-training integer twin, quant::convert with min-max calibration on random data: the
// arithmetic costs the same whatever the weights); network mlp (LeNet-300-100) or lenet5; batch
// 1, 32, 256 (mlp) and 1, 32 (lenet5). Counters: samples/s, and GOP/s with 2 operations per
// multiply-accumulate of the products (bench/workloads.hpp's convention). The int8 times include
// quantizing the float input and every requantization; the output stays int8 codes (argmax needs
// nothing more). net/int8_layer/784x300/<batch> is the first layer alone as a network (input
// quantization included) beside net/fp32_layer/784x300/<batch>, its float twin (nn::Dense
// forward); net/int8_dense_stage/784x300/<batch> is its Dense stage alone, int8 codes in and out.
#include <edgescale/core/random.hpp>
#include <edgescale/nn.hpp>
#include <edgescale/quant/calibrate.hpp>
#include <edgescale/quant/observer.hpp>
#include <edgescale/quant/qnetwork.hpp>

#include "../examples/networks.hpp"
#include "workloads.hpp"
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace {

using namespace edgescale;
namespace wl = edgescale::bench;

Matrix<float> random_input(Index rows, Index cols, std::uint64_t seed) {
  Rng rng = make_stream(seed, "bench-input");
  Matrix<float> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = standard_normal<float>(rng);
  }
  return x;
}

template <class Net>
struct Pair {
  Net net;
  quant::qnetwork_t<Net> qnet;
  Pair() : net(make()), qnet(convert(net)) {}
  static Net make() {
    Rng rng = make_stream(1, "bench-init");
    Net n(nn::init::kaiming_normal, rng);
    n.set_training(false);
    return n;
  }
  static quant::qnetwork_t<Net> convert(Net& n) {
    quant::Calibrator cal(n, [] { return quant::MinMax{}; });
    cal.observe(random_input(Net::input_shape::size, 256, 2));
    return quant::convert(n, cal);
  }
};

template <class Net, bool Integer>
void network(benchmark::State& state, double flops_per_sample) {
  static Pair<Net> pair;  // built once per network type
  const Index batch = state.range(0);
  const Matrix<float> x = random_input(Net::input_shape::size, batch, 3);
  const ConstBatchView<float> xv(x.data(), x.rows(), x.cols());
  for (auto _ : state) {
    if constexpr (Integer) {
      benchmark::DoNotOptimize(pair.qnet.forward(xv).data);
    } else {
      benchmark::DoNotOptimize(pair.net.forward(xv).data());
    }
    benchmark::ClobberMemory();
  }
  const double samples = static_cast<double>(state.iterations() * batch);
  state.counters["samples/s"] = benchmark::Counter(samples, benchmark::Counter::kIsRate);
  state.counters["GOP/s"] =
      benchmark::Counter(samples * flops_per_sample * 1e-9, benchmark::Counter::kIsRate);
}

/// The 784 -> 300 Dense stage alone: int8 codes in, int8 codes out (inside the integer network a
/// layer receives the codes of the one before it; the network's input stage quantizes floats once).
void dense_stage(benchmark::State& state) {
  static Pair<nn::Sequential<nn::Dense<784, 300>>> pair;
  const Index batch = state.range(0);
  const Matrix<float> x = random_input(784, batch, 5);
  const quant::QBatchView codes =
      pair.qnet.template stage<0>().forward(ConstBatchView<float>(x.data(), x.rows(), x.cols()));
  const std::vector<std::int8_t> in(codes.data, codes.data + codes.rows * codes.cols);
  const quant::QBatchView view{in.data(), codes.rows, codes.cols, codes.params};
  for (auto _ : state) {
    benchmark::DoNotOptimize(pair.qnet.template stage<1>().forward(view).data);
    benchmark::ClobberMemory();
  }
  const double samples = static_cast<double>(state.iterations() * batch);
  state.counters["GOP/s"] =
      benchmark::Counter(samples * 2.0 * wl::mlp_macs_l1 * 1e-9, benchmark::Counter::kIsRate);
}

/// The first layer of LeNet-300-100 alone, as a network of one layer.
using FirstLayer = nn::Sequential<nn::Dense<784, 300>>;
template <bool Integer>
void first_layer(benchmark::State& state) {
  network<FirstLayer, Integer>(state, 2.0 * wl::mlp_macs_l1);
}

using Mlp = examples::LeNet300100<float>;
using LeNet5 = examples::LeNet5<float>;

void register_all() {
  const auto with_batches = [](benchmark::internal::Benchmark* b, const auto& batches) {
    for (const int n : batches) {
      b->Arg(n);
    }
  };
  with_batches(benchmark::RegisterBenchmark(
                   "net/fp32/mlp",
                   [](benchmark::State& s) { network<Mlp, false>(s, wl::mlp_forward_flops); }),
               wl::mlp_batches);
  with_batches(benchmark::RegisterBenchmark(
                   "net/int8/mlp",
                   [](benchmark::State& s) { network<Mlp, true>(s, wl::mlp_forward_flops); }),
               wl::mlp_batches);
  with_batches(benchmark::RegisterBenchmark("net/fp32_layer/784x300", &first_layer<false>),
               wl::mlp_batches);
  with_batches(benchmark::RegisterBenchmark("net/int8_layer/784x300", &first_layer<true>),
               wl::mlp_batches);
  with_batches(benchmark::RegisterBenchmark("net/int8_dense_stage/784x300", &dense_stage),
               wl::mlp_batches);
  with_batches(benchmark::RegisterBenchmark(
                   "net/fp32/lenet5",
                   [](benchmark::State& s) { network<LeNet5, false>(s, wl::lenet_forward_flops); }),
               wl::lenet_batches);
  with_batches(benchmark::RegisterBenchmark(
                   "net/int8/lenet5",
                   [](benchmark::State& s) { network<LeNet5, true>(s, wl::lenet_forward_flops); }),
               wl::lenet_batches);
}

const int registered = (register_all(), 0);

}  // namespace
