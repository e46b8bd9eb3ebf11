// edgescale/prune/schedule.hpp — pruning at initialization: score, threshold, mask, R times.
//
//   prune::Options o{.sparsity = 0.98, .rounds = 100, .scope = prune::Scope::global};
//   prune::DensityReport r = prune::prune_at_init(net, scorer, data, o, rng);
//
// The loop is the reference one for every scorer (DESIGN §3a): round r = 0..R−1 keeps density
// d_r = d^{(r+1)/R} (d = 1 − sparsity), rescoring the network as the previous round masked it,
// so the last round keeps exactly the target (up to ties, which over-prune). R = 1 is one-shot.
//
// A round may keep a weight an earlier round pruned (revival): Random redraws every score, and
// GraSP's signed scores put the pruned weights' 0 above kept weights' negative scores. As in the
// reference, where the stored weights never change while pruning and the forward multiplies them
// by the mask, a revived weight comes back with the value it had when prune_at_init was called
// (masked weights are zero in between, so every scorer sees the network the reference's forward
// computes). Scorers that give pruned weights 0 and no negative score (Magnitude, SNIP, IterSNIP,
// SynFlow, PX) never revive: for them the masks only grow.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/scorer.hpp>

#include <cmath>
#include <string>
#include <string_view>
#include <type_traits>

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

namespace detail {

/// Every kept weight of `net` gets its value from `initial` (the values before pruning): a
/// weight a later round keeps again after an earlier one pruned it comes back as it was.
template <class Net, class T>
void restore_revived(Net& net, const ParameterSet<T>& initial, const ParameterSet<double>& masks) {
  for_each_tensor(net, [&](std::string_view name, auto& p) {
    if (p.prunable()) {
      using U = typename std::remove_cvref_t<decltype(p)>::scalar_type;
      p.value =
          (initial.tensor(name).array() * masks.tensor(name).array().template cast<U>()).matrix();
    }
  });
}

}  // namespace detail

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
  ParameterSet<typename Net::scalar_type> initial(net, TensorSelection::prunable);
  initial.set_mask({});
  for (int r = 0; r < o.rounds; ++r) {
    const ParameterSet<double> scores = scorer.score(net, data, rng);
    const ParameterSet<double> masks =
        masks_from_scores(scores, scheduled_density(final_density, r, o.rounds), o.scope);
    apply_masks(net, masks);
    detail::restore_revived(net, initial, masks);
  }
  return density(net);
}

}  // namespace edgescale::prune
