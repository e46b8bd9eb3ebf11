// edgescale/prune/scorer.hpp — the PruningScorer concept: per-weight scores for a network and a
// pruning batch, from which prune/mask.hpp keeps the highest.
//
//   prune::Magnitude scorer;
//   ParameterSet<double> s = scorer.score(net, data, rng);   // one score per prunable weight
//
// Scores live in a ParameterSet<double> over the network's prunable tensors (role weight:
// weight matrices and kernels; biases, BatchNorm's scales and buffers are never scored), named as
// the network names them, so they can be saved, compared with PyTorch's by name and thresholded
// globally or per tensor. Higher means more important: the masks keep the highest scores. A
// scorer computes on the network as it is, masks applied (pruned weights are zero), so rescoring
// a masked network is what the iterative schedule (prune/schedule.hpp) does each round. Scores
// are double whatever the network's scalar type, so reference values can be matched to 1e-10.
//
// A scorer provides
//   static constexpr bool needs_data;     whether it reads the pruning batch (SNIP, GraSP, PX) or
//                                         not (Random, Magnitude, SynFlow)
//   ParameterSet<double> score(Net& net, const PruningData<T>& data, Rng& rng);
// and may change nothing in the network it is given but transient state (workspaces, gradients).
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>

#include <cmath>
#include <concepts>
#include <memory>
#include <string>
#include <string_view>

namespace edgescale::prune {

/// The pruning batch: inputs (input_shape::size x n) and their class labels (n, or empty for a
/// scorer without labels). Views: the caller keeps both alive during scoring.
template <class T>
struct PruningData {
  ConstBatchView<T> inputs{nullptr, 0, 0};
  nn::Labels labels{};
};

/// Scores: one double per value of the prunable tensors of `net`, zero to start with.
template <NamedTensors Net>
ParameterSet<double> zero_scores(const Net& net) {
  return ParameterSet<double>(
      std::make_shared<const ParameterLayout>(ParameterLayout::of(net, TensorSelection::prunable)));
}

/// The values of the prunable tensors of `net`, in double, without their masks: where most
/// scores start.
template <NamedTensors Net>
ParameterSet<double> prunable_values(const Net& net) {
  ParameterSet<double> s(net, TensorSelection::prunable);
  s.set_mask({});
  return s;
}

/// |θ ⊙ ∂/∂θ| for every prunable weight, from the values and the gradients `net` holds (SNIP's
/// and SynFlow's score, each after its own backward).
template <NamedTensors Net>
ParameterSet<double> value_times_gradient(const Net& net) {
  ParameterSet<double> s = zero_scores(net);
  for_each_tensor(net, [&](std::string_view name, const auto& p) {
    if (p.prunable()) {
      s.tensor(name) =
          (p.value.template cast<double>().array() * p.grad.template cast<double>().array())
              .abs()
              .matrix();
    }
  });
  return s;
}

template <class S, class Net>
concept PruningScorer = nn::Network<Net> &&
    requires(S& scorer, Net& net, const PruningData<typename Net::scalar_type>& data, Rng& rng) {
  { S::needs_data } -> std::convertible_to<bool>;
  { scorer.score(net, data, rng) } -> std::same_as<ParameterSet<double>>;
};

/// Throws argument_error naming the first tensor of `net` with a NaN or infinite value (a weight,
/// bias or buffer): scoring it would give meaningless or NaN scores.
template <NamedTensors Net>
void check_finite(const Net& net, std::string_view what) {
  for_each_tensor(net, [&](std::string_view name, const auto& p) {
    if (!p.value.allFinite()) {
      throw argument_error(std::string(what) + ": tensor '" + std::string(name) +
                           "' has a NaN or infinite value");
    }
  });
}

/// Throws argument_error unless `data` has at least one sample, the network's input size, and
/// (when `labels`) one label per sample.
template <class T>
void check_data(const PruningData<T>& data, Index input_size, bool labels, std::string_view what) {
  if (data.inputs.cols() == 0) {
    throw argument_error(std::string(what) + ": the pruning batch is empty");
  }
  if (data.inputs.rows() != input_size) {
    throw shape_error(std::string(what) + ": pruning inputs have " +
                      std::to_string(data.inputs.rows()) +
                      " values per sample, the network takes " + std::to_string(input_size));
  }
  if (!data.inputs.allFinite()) {
    throw argument_error(std::string(what) + ": the pruning batch has a NaN or infinite input");
  }
  if (labels && static_cast<Index>(data.labels.size()) != data.inputs.cols()) {
    throw shape_error(std::string(what) + ": " + std::to_string(data.labels.size()) +
                      " labels for " + std::to_string(data.inputs.cols()) + " pruning samples");
  }
}

}  // namespace edgescale::prune
