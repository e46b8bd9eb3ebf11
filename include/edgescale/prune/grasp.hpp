// edgescale/prune/grasp.hpp — GraSP (Wang, Zhang, Grosse, ICLR 2020) as the PX authors' code
// computes it (Synaptic-Flow's GraSP, reused in iurada/px-ntk-pruning lib/pruners.py; DESIGN
// §3a): score(θ) = θ ⊙ Hg / (|Σ θ ⊙ Hg| + 1e-10), signed, the highest kept.
//
//   L  = mean softmax cross-entropy of the logits divided by the temperature 200, on the pruning
//        batch (inputs and labels) as one batch, in evaluation mode;
//   g  = ∂L/∂θ over the prunable weights only (the first pass, without a graph; 0 on biases);
//   Hg = ∂(gᵀ ∂L/∂θ)/∂θ with g held constant (the second pass), i.e. the Hessian of L times g.
// The paper removes the highest −θ ⊙ Hg; the reference keeps the highest θ ⊙ Hg (its comment
// says "negate", its code does not), which is the same mask: prune/mask.hpp keeps the highest.
// The reference's forward multiplies each weight by its mask m, so ∂L/∂θ = m ⊙ ∂L/∂(θ ⊙ m) and
// both g and Hg are 0 on pruned weights: they score 0 — above the kept weights with negative
// scores, which the next round's threshold may then prune instead (the reference does the same).
// The reference sums g and Hg over the batches of its loader; with the batch as one, the scores
// are the same up to the 1e-10 in the normaliser.
//
// Hg is exact (to rounding): forward-over-reverse through the layers, see
// prune/detail/hessian_vector.hpp for the method and the layers it supports (Dense, Conv2D,
// ReLU, LeakyReLU, MaxPool2D, AvgPool2D, Flatten). The network's gradients are used as scratch and
// left zero; its values and mode are unchanged.
#pragma once

#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/prune/detail/hessian_vector.hpp>
#include <edgescale/prune/scorer.hpp>

#include <cmath>

namespace edgescale::prune {

struct Grasp {
  static constexpr bool needs_data = true;
  double temperature = 200.0;  ///< the logits are divided by it (the reference's 200)
  double eps = 1e-10;          ///< added to |Σ scores| before dividing (the reference's 1e-10)

  template <nn::Network Net>
  ParameterSet<double> score(Net& net, const PruningData<typename Net::scalar_type>& data,
                             Rng& /*rng*/) const {
    using T = typename Net::scalar_type;
    check_data(data, Net::input_shape::size, true, "GraSP");
    const nn::ModeScope evaluation(net, false);
    ParameterSet<double> theta(net, TensorSelection::prunable);  // values and masks
    detail::HessianVectorProduct<Net> hessian(net, data.inputs, data.labels,
                                              static_cast<T>(temperature));
    ParameterSet<double> g = hessian.gradient();
    if (theta.has_mask()) {
      g.values().array() *= theta.mask().array();  // ∂L/∂θ = m ⊙ ∂L/∂(θ ⊙ m)
    }
    ParameterSet<double> s = hessian(g);
    if (theta.has_mask()) {
      s.values().array() *= theta.mask().array();
    }
    s.values().array() *= theta.values().array();
    s.values() /= std::abs(s.values().sum()) + eps;
    return s;
  }
};

}  // namespace edgescale::prune
