// bench/workloads.hpp — what bench_nn measures, shared by our side and the peers (no edgescale or
// libtorch includes here: the peer translation units compile against their own headers only).
//
// Workloads (one sample = one 28x28 Fashion-MNIST-sized image, float32):
//   mlp     LeNet-300-100: 784-300-100-10, ReLU            batch 1, 32, 256
//   lenet5  LeNet-5: conv 1->6 5x5 pad 2, ReLU, maxpool 2, conv 6->16 5x5, ReLU, maxpool 2,
//           400-120-84-10, ReLU                            batch 1, 32
// Modes:
//   forward  inference (evaluation mode, no gradient bookkeeping)
//   train    zero_grad, forward, softmax cross-entropy, backward, SGD step (lr 0.01, momentum 0.9);
//            ours runs zero_grad and backward as one backward that writes the gradients
//
// Benchmark names are "<impl>/<net>_<mode>/<batch>", impl one of ours, torch, eigen (raw Eigen
// GEMMs of exactly the shapes of our layers); scripts/bench_table.py relies on that.
//
// FLOP convention (the GFLOP/s counter): 2 FLOPs per multiply-accumulate of the matrix products
// only (Dense and convolution GEMMs); bias, activations, pooling, im2col, loss and optimizer are
// not counted. A training step counts the forward products, the weight-gradient products (as many
// MACs as forward) and the input-gradient products of every layer but the first (which neither
// we nor autograd compute, since the input needs no gradient).
#pragma once

#include <cstdint>

namespace edgescale::bench {

// ---- LeNet-300-100 ----
inline constexpr std::int64_t mlp_in = 784, mlp_h1 = 300, mlp_h2 = 100, mlp_out = 10;
inline constexpr std::int64_t mlp_macs_l1 = mlp_in * mlp_h1;   // 235 200
inline constexpr std::int64_t mlp_macs_l2 = mlp_h1 * mlp_h2;   //  30 000
inline constexpr std::int64_t mlp_macs_l3 = mlp_h2 * mlp_out;  //   1 000
inline constexpr std::int64_t mlp_forward_macs = mlp_macs_l1 + mlp_macs_l2 + mlp_macs_l3;
inline constexpr double mlp_forward_flops = 2.0 * mlp_forward_macs;  // per sample: 532 400
inline constexpr double mlp_train_flops =
    2.0 * (2 * mlp_forward_macs + mlp_macs_l2 + mlp_macs_l3);  // per sample: 1 126 800

// ---- LeNet-5 ----
// conv1: 6 x 28 x 28 outputs, 1·5·5 MACs each; conv2: 16 x 10 x 10 outputs, 6·5·5 MACs each.
inline constexpr std::int64_t lenet_conv1_pixels = 28 * 28, lenet_conv1_patch = 1 * 5 * 5;
inline constexpr std::int64_t lenet_conv2_pixels = 10 * 10, lenet_conv2_patch = 6 * 5 * 5;
inline constexpr std::int64_t lenet_macs_c1 =
    lenet_conv1_pixels * lenet_conv1_patch * 6;  // 117 600
inline constexpr std::int64_t lenet_macs_c2 =
    lenet_conv2_pixels * lenet_conv2_patch * 16;                                  // 240 000
inline constexpr std::int64_t lenet_macs_dense = 400 * 120 + 120 * 84 + 84 * 10;  // 58 920
inline constexpr std::int64_t lenet_forward_macs = lenet_macs_c1 + lenet_macs_c2 + lenet_macs_dense;
inline constexpr double lenet_forward_flops = 2.0 * lenet_forward_macs;  // per sample: 833 040
inline constexpr double lenet_train_flops =
    2.0 * (2 * lenet_forward_macs + lenet_macs_c2 + lenet_macs_dense);  // per sample: 2 263 920

inline constexpr int mlp_batches[] = {1, 32, 256};
inline constexpr int lenet_batches[] = {1, 32};

inline constexpr double learning_rate = 0.01;
inline constexpr double momentum = 0.9;

}  // namespace edgescale::bench

#ifdef EDGESCALE_HAVE_TORCH
#include <benchmark/benchmark.h>

#include <string>

/// The libtorch peer, defined in bench/peers/torch_nn.cpp (compiled against libtorch's headers
/// only). Each benchmark takes the batch size as state.range(0).
namespace edgescale::bench::torch_peer {
/// One intra-op and one inter-op thread; call once, before any benchmark runs.
void configure_threads();
/// "libtorch <version>, <threads> thread(s), BLAS ..., oneDNN ...", for the run's context.
std::string describe();
void mlp_forward(benchmark::State& state);
void mlp_train(benchmark::State& state);
void lenet5_forward(benchmark::State& state);
void lenet5_train(benchmark::State& state);
}  // namespace edgescale::bench::torch_peer
#endif
