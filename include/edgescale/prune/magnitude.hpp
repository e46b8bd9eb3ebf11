// edgescale/prune/magnitude.hpp — Magnitude: score(θ) = |θ|. Data-free; weights pruned before are
// zero, so they score 0 and stay pruned.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/prune/scorer.hpp>

namespace edgescale::prune {

struct Magnitude {
  static constexpr bool needs_data = false;

  template <NamedTensors Net, class Data>
  ParameterSet<double> score(const Net& net, const Data& /*data*/, Rng& /*rng*/) const {
    ParameterSet<double> s = prunable_values(net);
    s.values() = s.values().cwiseAbs();
    return s;
  }
};

}  // namespace edgescale::prune
