// edgescale/prune/detail/loss_gradient.hpp — what the loss-based scorers (SNIP, IterSNIP, GraSP)
// share: the gradient of the mean softmax cross-entropy of the pruning batch and the saliency
// |θ ⊙ ∂L/∂θ| normalised to sum 1. Used by prune/snip.hpp, itersnip.hpp and grasp.hpp only.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/prune/scorer.hpp>

#include <cmath>
#include <string>
#include <string_view>

namespace edgescale::prune::detail {

/// ∂L/∂z for L = mean_n CE(z_n / temperature, y_n): (softmax(z_n / t) − e_{y_n}) / (B·t).
template <class T>
Matrix<T> cross_entropy_gradient(const ConstBatchView<T>& logits, nn::Labels labels,
                                 T temperature = T(1)) {
  const Matrix<T> scaled = logits / temperature;
  Matrix<T> g(logits.rows(), logits.cols());
  BatchView<T> gv(g.data(), g.rows(), g.cols());
  nn::SoftmaxCrossEntropy{}.value_and_gradient(
      ConstBatchView<T>(scaled.data(), scaled.rows(), scaled.cols()), labels, gv);
  g /= temperature;
  return g;
}

/// s / Σ s, with argument_error naming `what` when the sum is not positive and finite (no weight
/// moves the loss).
inline void normalise_to_sum_one(ParameterSet<double>& s, std::string_view what) {
  const double total = s.values().sum();
  if (!(total > 0.0) || !std::isfinite(total)) {
    throw argument_error(std::string(what) + ": the scores sum to " + std::to_string(total) +
                         " (no weight moves the loss), nothing to normalise");
  }
  s.values() /= total;
}

/// Which gradient multiplies θ in |θ ⊙ ∂L/∂·|.
enum class GradientOf {
  effective_weight,  ///< ∂L/∂(θ ⊙ m), what backward computes: SNIP's ∂L/∂m = θ ⊙ ∂L/∂(θ ⊙ m)
  stored_weight,  ///< ∂L/∂θ = m ⊙ ∂L/∂(θ ⊙ m): IterSNIP, 0 on every pruned weight
};

/// |θ ⊙ ∂L/∂·| / Σ over the prunable weights, L the mean softmax cross-entropy of `data` in
/// evaluation mode. The network's gradients are scratch and left zero; its mode is restored.
template <nn::Network Net>
ParameterSet<double> loss_saliency(Net& net, const PruningData<typename Net::scalar_type>& data,
                                   GradientOf of, std::string_view what) {
  using T = typename Net::scalar_type;
  check_data(data, Net::input_shape::size, true, what);
  const nn::ModeScope evaluation(net, false);
  const Matrix<T> g = cross_entropy_gradient(net.forward(data.inputs), data.labels);
  net.zero_grad();
  net.backward_parameters(ConstBatchView<T>(g.data(), g.rows(), g.cols()));
  if (of == GradientOf::stored_weight) {
    net.for_each_parameter([](std::string_view, Parameter<T>& p) { p.mask_gradient(); });
  }
  ParameterSet<double> s = value_times_gradient(net);
  net.zero_grad();
  normalise_to_sum_one(s, what);
  return s;
}

}  // namespace edgescale::prune::detail
