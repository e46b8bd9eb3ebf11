// bench/bench_prune.cpp — what pruning costs: the exact empirical NTK beside one PX round.
//
//   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DEDGESCALE_BUILD_BENCH=ON
//   cmake --build build/bench --target bench_prune && build/bench/bench/bench_prune
//
// Workload: the MLP 784-w-w-10 (ReLU, float, Kaiming-normal) on a pruning batch of N samples
// (uniform [0, 1) pixels, labels n mod 10). Names are "<what>/mlp_w<w>/<N>":
//   exact_ntk/...   prune::empirical_ntk: N·K backward passes at batch 1 fill J (N·K x P), then
//                   Θ = J Jᵀ: O(N·K·P + (N·K)²·P) time, N·K·P doubles of memory
//   px_round/...    one PX round, prune::Px{}.score: a forward of the batch for the gates, one for
//                   z1, a forward and backward of one sample for z2 and ∂R/∂θ²: O(N·P)
// Two sweeps: the width, w in {16, 32, 64, 128, 256} at N = 10 (P ≈ 784w + w², both grow with P;
// the exact NTK costs at least N·K times more), and the batch, N in {1, 5, 10, 20, 40} at w = 64
// (the exact NTK grows quadratically in N·K, PX linearly in N). The "parameters" counter is P
// (trained values), "J_MB" the exact NTK's Jacobian in megabytes. Times are process CPU time
// (MeasureProcessCPUTime), as in bench_nn.
//
// PX's cost beside training's (issue 6, acceptance 3), on LeNet-300-100 and LeNet-5 (float) with
// the pruning batch of the recipe, 10 examples per class (N = 100), names "<what>/<net>/<N>":
//   fwd_bwd/...     one forward of the batch, the softmax cross-entropy gradient and one backward
//                   (parameter gradients, overwriting), the unit a PX round is compared with
//   px_score/...    prune::Px{}.score: the scores alone
//   px_round/...    one round of prune::prune_at_init's loop, averaged over the schedule to 98 %
//                   sparsity in 100 rounds: the scores, the global threshold, the masks applied
//   px_consistent/  px_round with PoolRouting::real (LeNet-5 only: z2 per sample)
// scripts/prune_bench_table.py prints the ratios to fwd_bwd.
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/overwrite.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/ntk.hpp>
#include <edgescale/prune/px.hpp>
#include <edgescale/prune/schedule.hpp>
#include <edgescale/prune/scorer.hpp>

#include <Eigen/Core>

#include "run.hpp"
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace {

using namespace edgescale;

template <int W>
using Mlp =
    nn::Sequential<nn::Dense<784, W>, nn::ReLU, nn::Dense<W, W>, nn::ReLU, nn::Dense<W, 10>>;

using LeNet300100 = nn::Sequential<nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 100>, nn::ReLU,
                                   nn::Dense<100, 10>>;
using LeNet5 =
    nn::Sequential<nn::Input<1, 28, 28>, nn::Conv2D<1, 6, 5, nn::Pad<2>>, nn::ReLU,
                   nn::MaxPool2D<2>, nn::Conv2D<6, 16, 5>, nn::ReLU, nn::MaxPool2D<2>, nn::Flatten,
                   nn::Dense<400, 120>, nn::ReLU, nn::Dense<120, 84>, nn::ReLU, nn::Dense<84, 10>>;

constexpr std::uint64_t seed = 2024;
constexpr int recipe_batch = 100;  // 10 examples per class
constexpr int pruning_batch = 10;

/// A Kaiming-initialised network and a pruning batch for it, built once per benchmark.
template <class Net>
struct PruningWorkload {
  Net net;
  Matrix<float> inputs;
  std::vector<std::int32_t> labels;

  explicit PruningWorkload(Index batch) : inputs(Net::input_shape::size, batch) {
    Rng init = make_stream(seed, "init");
    net.initialize(nn::init::kaiming_normal, init);
    Rng data = make_stream(seed, "data");
    for (Index i = 0; i < inputs.size(); ++i) {
      inputs.data()[i] = uniform01<float>(data);
    }
    for (Index n = 0; n < batch; ++n) {
      labels.push_back(static_cast<std::int32_t>(n % 10));
    }
  }
  [[nodiscard]] prune::PruningData<float> data() const { return {batch_view(inputs), labels}; }
};

/// P, and (for the exact NTK, `jacobian_rows` > 0) the megabytes of J.
template <class Net>
void set_counters(benchmark::State& state, const Net& net, Index jacobian_rows = 0) {
  const auto parameters = static_cast<double>(net.parameter_count());
  state.counters["parameters"] = parameters;
  if (jacobian_rows > 0) {
    state.counters["J_MB"] =
        parameters * static_cast<double>(jacobian_rows) * sizeof(double) * 1e-6;
  }
}

using BenchFn = void (*)(benchmark::State&);

// ---- the exact NTK against one PX round (state.range(0) = N) ----

template <int W>
void exact_ntk(benchmark::State& state) {
  const Index batch = state.range(0);
  PruningWorkload<Mlp<W>> w(batch);
  for (auto _ : state) {
    const prune::EmpiricalNtk ntk = prune::empirical_ntk(w.net, batch_view(w.inputs));
    benchmark::DoNotOptimize(ntk.kernel.data());
  }
  set_counters(state, w.net, batch * Mlp<W>::output_shape::size);
}

template <int W>
void px_round(benchmark::State& state) {
  const Index batch = state.range(0);
  PruningWorkload<Mlp<W>> w(batch);
  prune::Px px;
  Rng rng = make_stream(seed, "px");
  for (auto _ : state) {
    const ParameterSet<double> scores = px.score(w.net, w.data(), rng);
    benchmark::DoNotOptimize(scores.values().data());
  }
  set_counters(state, w.net);
}

// ---- one PX round against one forward + backward (state.range(0) = N) ----

template <class Net>
void fwd_bwd(benchmark::State& state) {
  PruningWorkload<Net> w(state.range(0));
  Matrix<float> g(Net::output_shape::size, state.range(0));
  nn::SoftmaxCrossEntropy loss;
  for (auto _ : state) {
    const ConstBatchView<float> out = w.net.forward(batch_view(w.inputs));
    BatchView<float> gv(g.data(), g.rows(), g.cols());
    benchmark::DoNotOptimize(loss.value_and_gradient(out, w.labels, gv));
    w.net.backward_parameters(batch_view(g), nn::overwrite_gradients);
    benchmark::ClobberMemory();
  }
  set_counters(state, w.net);
}

template <class Net>
void px_score(benchmark::State& state) {
  PruningWorkload<Net> w(state.range(0));
  prune::Px px;
  Rng rng = make_stream(seed, "px");
  for (auto _ : state) {
    const ParameterSet<double> scores = px.score(w.net, w.data(), rng);
    benchmark::DoNotOptimize(scores.values().data());
  }
  set_counters(state, w.net);
}

template <class Net, prune::PoolRouting Routing>
void px_full_round(benchmark::State& state) {
  PruningWorkload<Net> w(state.range(0));
  prune::Px px{.pooling = Routing};
  Rng rng = make_stream(seed, "px");
  // Iteration i is round i mod 100 of the schedule to 98 % sparsity in 100 rounds, as
  // prune::prune_at_init runs it: rescore the network as the last round masked it, threshold,
  // mask. After the last round the dense network comes back (untimed).
  constexpr int rounds = 100;
  const Net dense = w.net;
  const ParameterSet<float> initial(dense, TensorSelection::prunable);
  int round = 0;
  for (auto _ : state) {
    if (round == rounds) {
      state.PauseTiming();
      w.net = dense;
      round = 0;
      state.ResumeTiming();
    }
    const ParameterSet<double> scores = px.score(w.net, w.data(), rng);
    const ParameterSet<double> masks =
        prune::masks_from_scores(scores, prune::scheduled_density(0.02, round, rounds));
    prune::apply_masks(w.net, masks);
    prune::detail::restore_revived(w.net, initial, masks);  // as prune_at_init does
    ++round;
    benchmark::ClobberMemory();
  }
  set_counters(state, w.net);
}

template <class Net>
void add_net(const char* net, bool pooling) {
  const auto reg = [&](const char* what, BenchFn fn) {
    benchmark::RegisterBenchmark((std::string(what) + "/" + net).c_str(), fn)
        ->Arg(recipe_batch)
        ->MeasureProcessCPUTime()
        ->Unit(benchmark::kMillisecond);
  };
  reg("fwd_bwd", &fwd_bwd<Net>);
  reg("px_score", &px_score<Net>);
  reg("px_round", &px_full_round<Net, prune::PoolRouting::auxiliary>);
  if (pooling) {
    reg("px_consistent", &px_full_round<Net, prune::PoolRouting::real>);
  }
}

// ---- registration ----

/// Registers "<what>/mlp_w<W>/<N>" for each N of `batches`.
template <int W>
void add(const char* what, BenchFn fn, std::initializer_list<int> batches) {
  auto* b =
      benchmark::RegisterBenchmark((std::string(what) + "/mlp_w" + std::to_string(W)).c_str(), fn);
  for (const int n : batches) {
    b->Arg(n);
  }
  b->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
}

template <int... Widths>
void width_sweep() {
  (add<Widths>("exact_ntk", &exact_ntk<Widths>, {pruning_batch}), ...);
  (add<Widths>("px_round", &px_round<Widths>, {pruning_batch}), ...);
}

void register_all() {
  add_net<LeNet300100>("lenet300100", false);
  add_net<LeNet5>("lenet5", true);
  width_sweep<16, 32, 64, 128, 256>();
  constexpr int batch_sweep_width = 64;  // its N = 10 rows are the width sweep's
  add<batch_sweep_width>("exact_ntk", &exact_ntk<batch_sweep_width>, {1, 5, 20, 40});
  add<batch_sweep_width>("px_round", &px_round<batch_sweep_width>, {1, 5, 20, 40});
}

}  // namespace

int main(int argc, char** argv) {
  edgescale::bench::use_one_eigen_thread();
  register_all();
  return edgescale::bench::run_benchmarks(argc, argv);
}
