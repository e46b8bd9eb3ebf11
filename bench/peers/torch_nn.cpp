// bench/peers/torch_nn.cpp — the libtorch peer of bench_nn: the same networks, batches and SGD step
// in libtorch's C++ API, one thread. Compiled against libtorch's headers only (no edgescale
// headers), linked into bench_nn when CMake finds libtorch (Debian: libtorch-dev; with
// libopenblas0-pthread selected as libblas.so.3, see scripts/bench.sh).
//
// Inference: eval() and torch::NoGradGuard, forward only. Training: zero_grad, forward,
// cross_entropy, backward, SGD step with momentum 0.9 (torch::optim::SGD, the rule ours
// reproduces). Inputs and labels are allocated once, outside the timed loop.
#include "../workloads.hpp"
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>
#include <string>

namespace edgescale::bench::torch_peer {

namespace {

namespace tnn = torch::nn;

tnn::Sequential make_mlp() {
  return tnn::Sequential(tnn::Linear(mlp_in, mlp_h1), tnn::ReLU(), tnn::Linear(mlp_h1, mlp_h2),
                         tnn::ReLU(), tnn::Linear(mlp_h2, mlp_out));
}

tnn::Sequential make_lenet5() {
  return tnn::Sequential(
      tnn::Conv2d(tnn::Conv2dOptions(1, 6, 5).padding(2)), tnn::ReLU(),
      tnn::MaxPool2d(tnn::MaxPool2dOptions(2)), tnn::Conv2d(tnn::Conv2dOptions(6, 16, 5)),
      tnn::ReLU(), tnn::MaxPool2d(tnn::MaxPool2dOptions(2)), tnn::Flatten(), tnn::Linear(400, 120),
      tnn::ReLU(), tnn::Linear(120, 84), tnn::ReLU(), tnn::Linear(84, 10));
}

/// The input batch: (B, 784) for the MLP, (B, 1, 28, 28) for LeNet-5; uniform [0, 1) pixels.
torch::Tensor make_input(bool image, std::int64_t batch) {
  return image ? torch::rand({batch, 1, 28, 28}) : torch::rand({batch, mlp_in});
}

void set_counters(benchmark::State& state, std::int64_t batch, double flops_per_sample) {
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_sample * static_cast<double>(batch) * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate);
}

void forward(benchmark::State& state, tnn::Sequential net, bool image, double flops) {
  const std::int64_t batch = state.range(0);
  torch::manual_seed(2024);
  net->eval();
  const torch::Tensor x = make_input(image, batch);
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    torch::Tensor out = net->forward(x);
    benchmark::DoNotOptimize(out.data_ptr());
    benchmark::ClobberMemory();
  }
  set_counters(state, batch, flops);
}

void train(benchmark::State& state, tnn::Sequential net, bool image, double flops) {
  const std::int64_t batch = state.range(0);
  torch::manual_seed(2024);
  net->train();
  torch::optim::SGD opt(net->parameters(),
                        torch::optim::SGDOptions(learning_rate).momentum(momentum));
  const torch::Tensor x = make_input(image, batch);
  const torch::Tensor y = torch::randint(0, 10, {batch}, torch::kLong);
  for (auto _ : state) {
    opt.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.data_ptr());
  }
  set_counters(state, batch, flops);
}

/// The value of "KEY=value" in at::show_config()'s text ("?" if absent).
std::string config_value(const std::string& config, const std::string& key) {
  const auto at = config.find(key + "=");
  if (at == std::string::npos) {
    return "?";
  }
  const auto begin = at + key.size() + 1;
  const auto end = config.find_first_of(",\n", begin);
  return config.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

/// The BLAS shared object actually mapped into this process (libblas.so.3 resolves through the
/// Debian alternative libblas.so.3-x86_64-linux-gnu, e.g. .../openblas-pthread/libblas.so.3).
std::string loaded_blas() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::string found;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) {
      continue;
    }
    const std::string path = line.substr(slash);
    const std::string file = path.substr(path.rfind('/') + 1);
    if (file.rfind("lib", 0) == 0 && file.find("blas") != std::string::npos &&
        found.find(path) == std::string::npos) {
      found += found.empty() ? path : " " + path;
    }
  }
  return found.empty() ? "none mapped" : found;
}

}  // namespace

void configure_threads() {
  torch::set_num_threads(1);
  try {
    at::set_num_interop_threads(1);  // only possible before any inter-op work has started
  } catch (const c10::Error&) {
  }
}

std::string describe() {
  const std::string config = at::show_config();
  std::ostringstream out;
  out << "libtorch " << TORCH_VERSION << ", intra-op threads " << at::get_num_threads()
      << ", inter-op threads " << at::get_num_interop_threads() << ", BLAS_INFO "
      << config_value(config, "BLAS_INFO") << " (loaded: " << loaded_blas() << "), oneDNN "
      << (at::hasMKLDNN() ? at::get_mkldnn_version() : std::string("off"));
  return out.str();
}

void mlp_forward(benchmark::State& state) {
  forward(state, make_mlp(), false, mlp_forward_flops);
}
void mlp_train(benchmark::State& state) {
  train(state, make_mlp(), false, mlp_train_flops);
}
void lenet5_forward(benchmark::State& state) {
  forward(state, make_lenet5(), true, lenet_forward_flops);
}
void lenet5_train(benchmark::State& state) {
  train(state, make_lenet5(), true, lenet_train_flops);
}

}  // namespace edgescale::bench::torch_peer
