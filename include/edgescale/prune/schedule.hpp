// edgescale/prune/schedule.hpp — pruning at initialization: score, threshold, mask, R times.
//
//   prune::Options o{.sparsity = 0.98, .rounds = 100, .scope = prune::Scope::global};
//   prune::DensityReport r = prune::prune_at_init(net, scorer, data, o, rng);
//
// The loop is the reference one for every scorer (DESIGN §3a): round r = 0..R−1 keeps density
// d_r = d^{(r+1)/R} (d = 1 − sparsity), rescoring the network as the previous round masked it,
// so the last round keeps exactly the target (up to ties, which over-prune). R = 1 is one-shot.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/scorer.hpp>

#include <cmath>
#include <string>

namespace edgescale::prune {

struct Options {
  double sparsity = 0.9;  ///< fraction of the prunable weights removed, in (0, 1)
  int rounds = 1;         ///< R >= 1: the exponential schedule's rounds (100 in the PX paper)
  Scope scope = Scope::global;
};

/// Density kept after round r (0-based) of R toward the final density d: d^{(r+1)/R}.
inline double scheduled_density(double density, int round, int rounds) {
  return std::pow(density, static_cast<double>(round + 1) / static_cast<double>(rounds));
}

/// Prunes `net` in place by `scorer` on `data` (which may be empty for a scorer that reads no
/// data) under options `o`, and reports what is left. Throws argument_error, before changing
/// anything, for a sparsity outside (0, 1), rounds < 1, a non-finite value in the network, or
/// an empty (or mis-shaped) batch for a scorer that needs one.
template <class Net, PruningScorer<Net> Scorer>
DensityReport prune_at_init(Net& net, Scorer& scorer,
                            const PruningData<typename Net::scalar_type>& data, const Options& o,
                            Rng& rng) {
  check_fraction(o.sparsity, "prune: sparsity");
  if (o.rounds < 1) {
    throw argument_error("prune: rounds must be at least 1, got " + std::to_string(o.rounds));
  }
  check_finite(net, "prune");
  if constexpr (Scorer::needs_data) {
    check_data(data, Net::input_shape::size, !data.labels.empty(), "prune");
  }
  const double final_density = 1.0 - o.sparsity;
  for (int r = 0; r < o.rounds; ++r) {
    const ParameterSet<double> scores = scorer.score(net, data, rng);
    apply_masks(net,
                masks_from_scores(scores, scheduled_density(final_density, r, o.rounds), o.scope));
  }
  return density(net);
}

}  // namespace edgescale::prune
