// edgescale/prune/snip.hpp — SNIP (Lee, Ajanthan, Torr, ICLR 2019): score(θ) = |θ ⊙ ∂L/∂θ|,
// normalised to sum 1 over every prunable weight; L is the mean softmax cross-entropy of the
// pruning batch (inputs and labels), computed in evaluation mode.
//
// As the PX authors' code computes it (DESIGN §3a): the gradient with respect to a mask m on the
// weights, ∂L/∂m = θ ⊙ ∂L/∂(θ ⊙ m), at m = 1 on the kept weights; pruned weights are zero, so they
// score 0 and stay pruned. The network's gradients are used as scratch and left zero.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/prune/scorer.hpp>

#include <cmath>
#include <string>

namespace edgescale::prune {

struct Snip {
  static constexpr bool needs_data = true;

  template <nn::Network Net>
  ParameterSet<double> score(Net& net, const PruningData<typename Net::scalar_type>& data,
                             Rng& /*rng*/) const {
    using T = typename Net::scalar_type;
    check_data(data, Net::input_shape::size, true, "SNIP");
    const nn::ModeScope evaluation(net, false);
    const ConstBatchView<T> out = net.forward(data.inputs);
    Matrix<T> g(out.rows(), out.cols());
    BatchView<T> gv(g.data(), g.rows(), g.cols());
    nn::SoftmaxCrossEntropy{}.value_and_gradient(out, data.labels, gv);
    net.zero_grad();
    net.backward_parameters(ConstBatchView<T>(g.data(), g.rows(), g.cols()));
    ParameterSet<double> s = value_times_gradient(net);
    net.zero_grad();
    const double total = s.values().sum();
    if (!(total > 0.0) || !std::isfinite(total)) {
      throw argument_error("SNIP: the scores sum to " + std::to_string(total) +
                           " (no weight moves the loss), nothing to normalise");
    }
    s.values() /= total;
    return s;
  }
};

}  // namespace edgescale::prune
