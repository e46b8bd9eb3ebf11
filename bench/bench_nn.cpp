// bench/bench_nn.cpp — LeNet-300-100 and LeNet-5, inference and one SGD training step, ours beside
// the raw Eigen GEMMs of the same shapes and (when libtorch was found) libtorch, in one executable.
//
//   scripts/bench.sh                        # configure, build, run pinned to one core, table
//   build/bench/bench/bench_nn --benchmark_filter='mlp_forward/256'
//
// Built twice (bench/CMakeLists.txt): bench_nn with Eigen's own GEMM kernels, bench_nn_blas with
// EIGEN_USE_BLAS, where Eigen (ours and the "eigen" rows alike) calls the system BLAS.
//
// Workloads, names and the FLOP convention: bench/workloads.hpp. Counters: items_per_second is
// samples/s; GFLOP/s counts the matrix products only. Rates are per second of process CPU time
// (MeasureProcessCPUTime): the CPU time of every thread of the process, so a helper thread of any
// implementation cannot hide work, while time the core spent on other processes (a shared machine)
// is not charged to the benchmark. The Time column is wall-clock.
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/train.hpp>

#include <Eigen/Core>

#include "run.hpp"
#include "workloads.hpp"
#include <benchmark/benchmark.h>

#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using namespace edgescale;
namespace wl = edgescale::bench;

using Mlp = nn::Sequential<nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 100>, nn::ReLU,
                           nn::Dense<100, 10>>;
using LeNet5 =
    nn::Sequential<nn::Input<1, 28, 28>, nn::Conv2D<1, 6, 5, nn::Pad<2>>, nn::ReLU,
                   nn::MaxPool2D<2>, nn::Conv2D<6, 16, 5>, nn::ReLU, nn::MaxPool2D<2>, nn::Flatten,
                   nn::Dense<400, 120>, nn::ReLU, nn::Dense<120, 84>, nn::ReLU, nn::Dense<84, 10>>;

constexpr std::uint64_t seed = 2024;

/// A features x batch batch of uniform [0, 1) pixels, as normalised images would be.
Matrix<float> random_images(Index features, Index batch, Rng& rng) {
  Matrix<float> x(features, batch);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = uniform01<float>(rng);
  }
  return x;
}

std::vector<std::int32_t> random_labels(Index batch, Rng& rng) {
  std::vector<std::int32_t> y(static_cast<std::size_t>(batch));
  for (auto& label : y) {
    label = static_cast<std::int32_t>(uniform_index(rng, 10));
  }
  return y;
}

Matrix<float> random_matrix(Index rows, Index cols, Rng& rng) {
  Matrix<float> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) {
    m.data()[i] = uniform<float>(rng, -0.1F, 0.1F);
  }
  return m;
}

/// samples/s as items_per_second, and GFLOP/s from the FLOPs of one sample.
void set_counters(benchmark::State& state, Index batch, double flops_per_sample) {
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_sample * static_cast<double>(batch) * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate);
}

// ---- ours ----

/// Inference; with hooks, each is called after every layer (what calibration runs): a no-op hook
/// measures the hooked path itself (layer paths built as strings), while a plain forward runs none
/// of it.
template <class Net, class... Hooks>
void ours_forward(benchmark::State& state, double flops_per_sample, Hooks... hooks) {
  const Index batch = state.range(0);
  Rng rng = make_stream(seed, "init");
  Net net{nn::init::kaiming_normal, rng};
  net.set_training(false);
  Rng data = make_stream(seed, "data");
  const Matrix<float> x = random_images(Net::input_shape::size, batch, data);
  for (auto _ : state) {
    const ConstBatchView<float> out = net.forward(x, hooks...);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, batch, flops_per_sample);
}

/// A hook that does nothing but be called.
struct NoOpHook {
  template <class L>
  void operator()(std::string_view /*path*/, const L& /*layer*/,
                  const ConstBatchView<float>& out) const {
    benchmark::DoNotOptimize(out.data());
  }
};

/// ParameterSet traffic of one federated client and one server aggregate on LeNet-300-100
/// (266 610 floats): write a set into the worker network, read it back, and the weighted mean of
/// state.range(0) client sets. Bytes/s counts the set bytes moved.
void parameter_set_roundtrip(benchmark::State& state) {
  Rng rng = make_stream(seed, "init");
  Mlp net{nn::init::kaiming_normal, rng};
  ParameterSet<float> set(net);
  for (auto _ : state) {
    set.write(net);
    set.read(net);
    benchmark::DoNotOptimize(set.values().data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<std::int64_t>(set.bytes()));
}

void parameter_set_mean(benchmark::State& state) {
  Rng rng = make_stream(seed, "init");
  Mlp net{nn::init::kaiming_normal, rng};
  const auto clients = static_cast<std::size_t>(state.range(0));
  std::vector<ParameterSet<float>> sets(clients, ParameterSet<float>(net));
  std::vector<double> weights(clients);
  for (std::size_t k = 0; k < clients; ++k) {
    sets[k].values().array() += static_cast<float>(k);
    weights[k] = static_cast<double>(k + 1);
  }
  for (auto _ : state) {
    const ParameterSet<float> mean = weighted_mean<float>(sets, weights);
    benchmark::DoNotOptimize(mean.values().data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(clients) *
                          static_cast<std::int64_t>(sets[0].bytes()));
}

template <class Net>
void ours_train(benchmark::State& state, double flops_per_sample) {
  const Index batch = state.range(0);
  Rng rng = make_stream(seed, "init");
  Net net{nn::init::kaiming_normal, rng};
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = wl::learning_rate, .momentum = wl::momentum}};
  Rng data = make_stream(seed, "data");
  const Matrix<float> x = random_images(Net::input_shape::size, batch, data);
  const std::vector<std::int32_t> y = random_labels(batch, data);
  const ConstBatchView<float> xv(x.data(), x.rows(), x.cols());
  for (auto _ : state) {
    const float loss = trainer.step(opt, xv, y);
    benchmark::DoNotOptimize(loss);
  }
  set_counters(state, batch, flops_per_sample);
}

/// One piece of our training step (LeNet-300-100 or LeNet-5), timed alone (the profile of the
/// step, in docs/results/nn.md): the network is run through one whole step first, so every
/// workspace, the gradients and the optimizer state are in place; then only `part` repeats.
/// The weights keep moving (the SGD piece), which changes no cost (no
/// data-dependent branches but max pooling's, and the values stay far from overflow and from
/// subnormals over a benchmark's iterations).
enum class Part { forward, loss, backward, sgd };

template <class Net>
void ours_part(benchmark::State& state, Part part) {
  const Index batch = state.range(0);
  Rng rng = make_stream(seed, "init");
  Net net{nn::init::kaiming_normal, rng};
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = wl::learning_rate, .momentum = wl::momentum}};
  const nn::SoftmaxCrossEntropy loss;
  Rng data = make_stream(seed, "data");
  const Matrix<float> x = random_images(Net::input_shape::size, batch, data);
  const std::vector<std::int32_t> y = random_labels(batch, data);
  const ConstBatchView<float> xv(x.data(), x.rows(), x.cols());
  trainer.step(opt, xv, y);
  trainer.step(opt, xv, y);
  Matrix<float> grad(Net::output_shape::size, batch);
  BatchView<float> gv(grad.data(), grad.rows(), grad.cols());
  const ConstBatchView<float> gcv(grad.data(), grad.rows(), grad.cols());
  net.zero_grad();
  const ConstBatchView<float> out = net.forward(xv);
  loss.value_and_gradient(out, y, gv);
  net.backward_parameters(gcv);
  for (auto _ : state) {
    switch (part) {
      case Part::forward:
        benchmark::DoNotOptimize(net.forward(xv).data());
        break;
      case Part::loss:
        benchmark::DoNotOptimize(loss.value_and_gradient(out, y, gv));
        break;
      case Part::backward:  // as the step runs it: writing the gradients (nn/overwrite.hpp)
        net.backward_parameters(gcv, nn::overwrite_gradients);
        break;
      case Part::sgd:
        opt.step(net);
        break;
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

// ---- raw Eigen GEMMs of exactly our layers' shapes (no bias, activation, pooling, im2col) ----

/// The products of three dense layers in -> n1 -> n2 -> out at batch B, as our Dense layers issue
/// them: forward; then the three weight gradients, the input gradients of the last two and, when
/// asked, of the first.
struct DenseStackGemms {
  DenseStackGemms(Index in, Index n1, Index n2, Index out, Index batch, Rng& rng)
      : w1(random_matrix(n1, in, rng)),
        w2(random_matrix(n2, n1, rng)),
        w3(random_matrix(out, n2, rng)),
        h1(n1, batch),
        h2(n2, batch),
        z(out, batch),
        dz(random_matrix(out, batch, rng)),
        dh2(n2, batch),
        dh1(n1, batch),
        dx(in, batch),
        dw1(Matrix<float>::Zero(n1, in)),
        dw2(Matrix<float>::Zero(n2, n1)),
        dw3(Matrix<float>::Zero(out, n2)) {}

  void forward(const Matrix<float>& x) {
    h1.noalias() = w1 * x;
    h2.noalias() = w2 * h1;
    z.noalias() = w3 * h2;
  }
  void backward(const Matrix<float>& x, bool input_gradient) {
    dw3.noalias() += dz * h2.transpose();
    dh2.noalias() = w3.transpose() * dz;
    dw2.noalias() += dh2 * h1.transpose();
    dh1.noalias() = w2.transpose() * dh2;
    dw1.noalias() += dh1 * x.transpose();
    if (input_gradient) {
      dx.noalias() = w1.transpose() * dh1;
    }
  }

  Matrix<float> w1, w2, w3, h1, h2, z, dz, dh2, dh1, dx, dw1, dw2, dw3;
};

/// LeNet-300-100's products: the dense stack, no input gradient for the first layer.
struct MlpGemms {
  explicit MlpGemms(Index batch)
      : rng(make_stream(seed, "gemm")),
        x(random_images(wl::mlp_in, batch, rng)),
        dense(wl::mlp_in, wl::mlp_h1, wl::mlp_h2, wl::mlp_out, batch, rng) {}

  void forward() { dense.forward(x); }
  void backward() { dense.backward(x, false); }
  [[nodiscard]] const Matrix<float>& output() const { return dense.z; }

  Rng rng;
  Matrix<float> x;
  DenseStackGemms dense;
};

/// LeNet-5's products as our layers issue them: per sample (784x25)(25x6) and (100x150)(150x16)
/// on im2col buffers, then the dense layers at batch B.
struct LeNetGemms {
  explicit LeNetGemms(Index batch)
      : rng(make_stream(seed, "gemm")),
        col1(random_matrix(wl::lenet_conv1_pixels * wl::lenet_conv1_patch, batch, rng)),
        col2(random_matrix(wl::lenet_conv2_pixels * wl::lenet_conv2_patch, batch, rng)),
        wc1(random_matrix(wl::lenet_conv1_patch, 6, rng)),
        wc2(random_matrix(wl::lenet_conv2_patch, 16, rng)),
        y1(wl::lenet_conv1_pixels * 6, batch),
        y2(wl::lenet_conv2_pixels * 16, batch),
        dy1(random_matrix(wl::lenet_conv1_pixels * 6, batch, rng)),
        dy2(random_matrix(wl::lenet_conv2_pixels * 16, batch, rng)),
        dcol2(wl::lenet_conv2_pixels, wl::lenet_conv2_patch),
        dwc1(Matrix<float>::Zero(wl::lenet_conv1_patch, 6)),
        dwc2(Matrix<float>::Zero(wl::lenet_conv2_patch, 16)),
        f(random_images(400, batch, rng)),
        dense(400, 120, 84, 10, batch, rng) {}

  static ConstBatchView<float> sample(const Matrix<float>& m, Index n, Index rows, Index cols) {
    return {m.col(n).data(), rows, cols};
  }
  static BatchView<float> sample(Matrix<float>& m, Index n, Index rows, Index cols) {
    return {m.col(n).data(), rows, cols};
  }

  void forward() {
    for (Index n = 0; n < col1.cols(); ++n) {
      sample(y1, n, wl::lenet_conv1_pixels, 6).noalias() =
          sample(col1, n, wl::lenet_conv1_pixels, wl::lenet_conv1_patch) * wc1;
      sample(y2, n, wl::lenet_conv2_pixels, 16).noalias() =
          sample(col2, n, wl::lenet_conv2_pixels, wl::lenet_conv2_patch) * wc2;
    }
    dense.forward(f);
  }
  void backward() {
    dense.backward(f, true);
    for (Index n = 0; n < col1.cols(); ++n) {
      const auto dyn2 = sample(std::as_const(dy2), n, wl::lenet_conv2_pixels, 16);
      dwc2.noalias() +=
          sample(std::as_const(col2), n, wl::lenet_conv2_pixels, wl::lenet_conv2_patch)
              .transpose() *
          dyn2;
      dcol2.noalias() = dyn2 * wc2.transpose();
      dwc1.noalias() +=
          sample(std::as_const(col1), n, wl::lenet_conv1_pixels, wl::lenet_conv1_patch)
              .transpose() *
          sample(std::as_const(dy1), n, wl::lenet_conv1_pixels, 6);
    }
  }

  [[nodiscard]] const Matrix<float>& output() const { return dense.z; }

  Rng rng;
  Matrix<float> col1, col2, wc1, wc2, y1, y2, dy1, dy2, dcol2, dwc1, dwc2;
  Matrix<float> f;
  DenseStackGemms dense;
};

/// The raw products of a workload (MlpGemms or LeNetGemms): forward only, or a training step.
template <class Gemms, bool Train>
void eigen_products(benchmark::State& state) {
  const Index batch = state.range(0);
  Gemms g(batch);
  for (auto _ : state) {
    g.forward();
    if constexpr (Train) {
      g.backward();
    }
    benchmark::DoNotOptimize(g.output().data());
    benchmark::ClobberMemory();
  }
  constexpr bool mlp = std::is_same_v<Gemms, MlpGemms>;
  set_counters(state, batch,
               Train ? (mlp ? wl::mlp_train_flops : wl::lenet_train_flops)
                     : (mlp ? wl::mlp_forward_flops : wl::lenet_forward_flops));
}

// ---- registration: per workload, ours, then libtorch, then Eigen ----

using BenchFn = void (*)(benchmark::State&);

void add(const std::string& name, BenchFn fn, const int* batches, std::size_t count) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), fn);
  for (std::size_t i = 0; i < count; ++i) {
    b->Arg(batches[i]);
  }
  b->MeasureProcessCPUTime()->Unit(benchmark::kMicrosecond);
}

void register_all() {
  struct Workload {
    const char* name;
    BenchFn ours;
    BenchFn torch;
    BenchFn eigen;
    const int* batches;
    std::size_t count;
  };
  constexpr std::size_t mlp_n = std::size(wl::mlp_batches);
  constexpr std::size_t lenet_n = std::size(wl::lenet_batches);
#ifdef EDGESCALE_HAVE_TORCH
  namespace tp = wl::torch_peer;
#define EDGESCALE_TORCH(fn) &tp::fn
#else
#define EDGESCALE_TORCH(fn) nullptr
#endif
  const Workload workloads[] = {
      {"mlp_forward", [](benchmark::State& s) { ours_forward<Mlp>(s, wl::mlp_forward_flops); },
       EDGESCALE_TORCH(mlp_forward), &eigen_products<MlpGemms, false>, wl::mlp_batches, mlp_n},
      {"mlp_train", [](benchmark::State& s) { ours_train<Mlp>(s, wl::mlp_train_flops); },
       EDGESCALE_TORCH(mlp_train), &eigen_products<MlpGemms, true>, wl::mlp_batches, mlp_n},
      {"lenet5_forward",
       [](benchmark::State& s) { ours_forward<LeNet5>(s, wl::lenet_forward_flops); },
       EDGESCALE_TORCH(lenet5_forward), &eigen_products<LeNetGemms, false>, wl::lenet_batches,
       lenet_n},
      {"lenet5_train", [](benchmark::State& s) { ours_train<LeNet5>(s, wl::lenet_train_flops); },
       EDGESCALE_TORCH(lenet5_train), &eigen_products<LeNetGemms, true>, wl::lenet_batches,
       lenet_n},
  };
#undef EDGESCALE_TORCH
  for (const Workload& w : workloads) {
    add(std::string("ours/") + w.name, w.ours, w.batches, w.count);
    if (w.torch != nullptr) {
      add(std::string("torch/") + w.name, w.torch, w.batches, w.count);
    }
    add(std::string("eigen/") + w.name, w.eigen, w.batches, w.count);
  }
  // The pieces of our training steps, each alone ("parts/<net>_<piece>/<batch>").
  const struct {
    const char* name;
    Part part;
  } pieces[] = {{"forward", Part::forward},
                {"loss", Part::loss},
                {"backward", Part::backward},
                {"sgd", Part::sgd}};
  const auto add_parts = [&](const std::string& net, auto* fn, std::span<const int> batches) {
    for (const auto& p : pieces) {
      auto* b = benchmark::RegisterBenchmark(("parts/" + net + "_" + p.name).c_str(), fn, p.part);
      for (const int batch : batches) {
        b->Arg(batch);
      }
      b->MeasureProcessCPUTime()->Unit(benchmark::kMicrosecond);
    }
  };
  add_parts("mlp", &ours_part<Mlp>, wl::mlp_batches);
  add_parts("lenet5", &ours_part<LeNet5>, wl::lenet_batches);
  // The extension points (issue 5): hooked inference beside the plain rows above, and the
  // ParameterSet traffic of federated rounds.
  add(
      "hooks/mlp_forward_hooked",
      [](benchmark::State& s) { ours_forward<Mlp>(s, wl::mlp_forward_flops, NoOpHook{}); },
      wl::mlp_batches, mlp_n);
  add(
      "hooks/lenet5_forward_hooked",
      [](benchmark::State& s) { ours_forward<LeNet5>(s, wl::lenet_forward_flops, NoOpHook{}); },
      wl::lenet_batches, lenet_n);
  constexpr int one[] = {1};
  constexpr int client_counts[] = {10, 100};
  add("parameter_set/mlp_write_read", &parameter_set_roundtrip, one, 1);
  add("parameter_set/mlp_weighted_mean", &parameter_set_mean, client_counts, 2);
}

}  // namespace

int main(int argc, char** argv) {
  edgescale::bench::use_one_eigen_thread();
#ifdef EIGEN_USE_BLAS
  benchmark::AddCustomContext("eigen_products", "BLAS sgemm/sgemv (EIGEN_USE_BLAS)");
#else
  benchmark::AddCustomContext("eigen_products", "Eigen's own kernels");
#endif
#ifdef EDGESCALE_HAVE_TORCH
  wl::torch_peer::configure_threads();
  benchmark::AddCustomContext("torch", wl::torch_peer::describe());
#else
  benchmark::AddCustomContext("torch", "not built (libtorch-dev not found)");
#endif
  edgescale::bench::add_compiler_context();
  register_all();
  return edgescale::bench::run_benchmarks(argc, argv);
}
