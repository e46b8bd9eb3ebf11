// edgescale/prune/itersnip.hpp — IterSNIP (iterative SNIP, as in de Jorge et al., ICLR 2021, and
// the PX paper's baselines; DESIGN §3a): score(θ) = |θ ⊙ ∂L/∂θ|, normalised to sum 1 over every
// prunable weight; L is the mean softmax cross-entropy of the pruning batch, in evaluation mode.
//
// How it differs from prune::Snip: the gradient is taken w.r.t. the stored weight θ, which the
// forward uses as θ ⊙ m, so ∂L/∂θ = m ⊙ ∂L/∂(θ ⊙ m) and a pruned weight (m = 0) scores 0 whatever
// its value: pruned weights are never revived. SNIP's |∂L/∂m| = |θ ⊙ ∂L/∂(θ ⊙ m)| scores a weight
// with m = 0 but θ ≠ 0 like a live one. edgescale zeroes pruned weights (prune::apply_masks),
// so on a network masked that way the two give the same scores
// (scripts/fixtures/make_pruning_fixtures.py checks both facts on PyTorch's side).
#pragma once

#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/prune/detail/loss_gradient.hpp>
#include <edgescale/prune/scorer.hpp>

namespace edgescale::prune {

struct IterSnip {
  static constexpr bool needs_data = true;

  template <nn::Network Net>
  ParameterSet<double> score(Net& net, const PruningData<typename Net::scalar_type>& data,
                             Rng& /*rng*/) const {
    return detail::loss_saliency(net, data, detail::GradientOf::stored_weight, "IterSNIP");
  }
};

}  // namespace edgescale::prune
