// edgescale/prune/random.hpp — Random: a standard normal score per weight, redrawn at every call
// (every round of an iterative schedule), as the reference's Rand scorer does. Global thresholds
// of these scores keep every tensor at about the same density. Data-free.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/prune/scorer.hpp>

namespace edgescale::prune {

struct Random {
  static constexpr bool needs_data = false;

  template <NamedTensors Net, class Data>
  ParameterSet<double> score(const Net& net, const Data& /*data*/, Rng& rng) const {
    ParameterSet<double> s = zero_scores(net);
    for (double& v : s.values()) {
      v = standard_normal<double>(rng);
    }
    return s;
  }
};

}  // namespace edgescale::prune
