// edgescale/mpi/data_parallel.hpp — one network trained centrally on N ranks, each on its share
// of every batch, the gradients averaged in one flat buffer per step.
//
//   mpi::DataParallel<Net> dp(world);
//   dp.broadcast_parameters(net);                       // rank 0's initial weights everywhere
//   for (each global batch of N·B samples, drawn the same way on every rank) {
//     auto [first, count] = mpi::shard(batch_size, world.rank(), world.size());
//     trainer.step(opt, x.middleCols(first, count), y_slice, dp.average(count));
//   }
//
// The hook runs between backward and the optimizer step (nn::Trainer::step's gradient hooks): it
// copies every trained parameter's gradient, times the rank's sample count n_r, into one buffer
// of doubles (with n_r last), allreduces it once, and writes back Σ n_r g_r / Σ n_r, which is the
// gradient of the mean loss over the whole global batch. Every rank then takes the same optimizer
// step, so the replicas stay equal: N ranks with batch B equal one rank with batch N·B up to the
// order of the floating-point sums (tests/mpi: to 1e-6 after 10 steps). Layers that couple the
// samples of a batch (BatchNorm's batch statistics) see only their rank's share, as in PyTorch's
// DistributedDataParallel without SyncBatchNorm.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/mpi/communicator.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgescale::mpi {

/// Rank `rank`'s contiguous share of a batch of `batch` samples split over `ranks`: (first,
/// count), the counts differing by at most one.
[[nodiscard]] inline std::pair<Index, Index> shard(Index batch, int rank, int ranks) {
  if (batch < 0 || ranks < 1 || rank < 0 || rank >= ranks) {
    throw argument_error("mpi::shard: batch " + std::to_string(batch) + ", rank " +
                         std::to_string(rank) + " of " + std::to_string(ranks));
  }
  const Index first = batch * rank / ranks;
  const Index last = batch * (rank + 1) / ranks;
  return {first, last - first};
}

/// Gradient averaging across ranks for data-parallel training (see the top of this file).
template <class Net>
class DataParallel {
 public:
  explicit DataParallel(Communicator comm) : comm_(std::move(comm)) {}

  /// The gradient hook of one step on `samples` of this rank's share.
  [[nodiscard]] auto average(Index samples) {
    return [this, samples](Net& net) { allreduce_gradients(net, samples); };
  }

  /// grad ← Σ_r n_r grad_r / Σ_r n_r over every trained parameter, in one allreduce. Throws
  /// argument_error when the ranks' networks have different sizes, or none holds a sample.
  void allreduce_gradients(Net& net, Index samples) {
    std::size_t size = 0;
    for_each_parameter(
        net, [&](std::string_view, auto& p) { size += static_cast<std::size_t>(p.grad.size()); });
    buffer_.assign(size + 2, 0.0);
    const auto n = static_cast<double>(samples);
    std::size_t at = 0;
    for_each_parameter(net, [&](std::string_view, auto& p) {
      const auto* g = p.grad.data();
      for (Index i = 0; i < p.grad.size(); ++i) {
        buffer_[at++] = n * static_cast<double>(g[i]);
      }
    });
    buffer_[size] = n;
    buffer_[size + 1] = static_cast<double>(size);
    comm_.allreduce_sum(std::span<double>(buffer_));
    if (buffer_[size + 1] != static_cast<double>(size) * comm_.size()) {
      throw argument_error("mpi::DataParallel: the ranks' networks differ in size");
    }
    const double total = buffer_[size];
    if (!(total > 0)) {
      throw argument_error("mpi::DataParallel: no rank holds a sample of this batch");
    }
    at = 0;
    for_each_parameter(net, [&](std::string_view, auto& p) {
      using S = typename std::remove_reference_t<decltype(p.grad)>::Scalar;
      auto* g = p.grad.data();
      for (Index i = 0; i < p.grad.size(); ++i) {
        g[i] = static_cast<S>(buffer_[at++] / total);
      }
    });
  }

  /// Rank 0's values of every tensor (weights and buffers) on every rank: the replicas start
  /// equal.
  void broadcast_parameters(Net& net) {
    for_each_tensor(net, [&](std::string_view, auto& p) {
      using S = typename std::remove_reference_t<decltype(p.value)>::Scalar;
      static_assert(std::is_same_v<S, float> || std::is_same_v<S, double>);
      comm_.broadcast(std::span<S>(p.value.data(), static_cast<std::size_t>(p.value.size())), 0);
    });
  }

  [[nodiscard]] Communicator& communicator() { return comm_; }

 private:
  Communicator comm_;
  std::vector<double> buffer_;
};

}  // namespace edgescale::mpi
