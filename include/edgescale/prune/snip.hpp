// edgescale/prune/snip.hpp — SNIP (Lee, Ajanthan, Torr, ICLR 2019): score(θ) = |θ ⊙ ∂L/∂(θ ⊙ m)|,
// normalised to sum 1 over every prunable weight; L is the mean softmax cross-entropy of the
// pruning batch (inputs and labels), computed in evaluation mode.
//
// As the PX authors' code computes it (DESIGN §3a): the gradient with respect to a mask m on the
// weights, ∂L/∂m = θ ⊙ ∂L/∂(θ ⊙ m). Pruned weights are zero (prune::apply_masks), so they score 0
// and stay pruned; a weight whose mask is 0 but whose value is not (the reference's prune loop
// never zeroes θ) is scored like a live one and can be revived. prune::IterSnip is the variant
// that never revives. The network's gradients are used as scratch and left zero.
#pragma once

#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/prune/detail/loss_gradient.hpp>
#include <edgescale/prune/scorer.hpp>

namespace edgescale::prune {

struct Snip {
  static constexpr bool needs_data = true;

  template <nn::Network Net>
  ParameterSet<double> score(Net& net, const PruningData<typename Net::scalar_type>& data,
                             Rng& /*rng*/) const {
    return detail::loss_saliency(net, data, detail::GradientOf::effective_weight, "SNIP");
  }
};

}  // namespace edgescale::prune
