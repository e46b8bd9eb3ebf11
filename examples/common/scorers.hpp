// examples/common/scorers.hpp — the examples' pruning scorers by name, compiled once.
//
//   examples::prune_by_name("px", net, batch.view(), options, rng);      // prune_at_init
//   ParameterSet<double> s = examples::score_by_name("snip", net, data, rng);   // score
//
// One registry for every example that takes --scorer NAME, so the names and their meaning cannot
// drift apart between programs. The functions are defined in common/scorers_impl.hpp and
// instantiated for the example networks (float, and double for `score --double`) in
// common/scorers_mlp.cpp and common/scorers_lenet5.cpp, linked into every example: an example that
// prunes compiles none of the scorers itself (docs/results/nn.md, "Compile cost": each scorer
// instantiates the forward, backward and auxiliary twins of every network it meets).
#pragma once

#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/schedule.hpp>
#include <edgescale/prune/scorer.hpp>

#include "../networks.hpp"

#include <string>
#include <string_view>

namespace edgescale::examples {

/// The --scorer values, as cli choices.
inline constexpr std::string_view scorer_choices =
    "px|px-consistent|snip|itersnip|grasp|synflow|magnitude|random";
/// What each name means, for --help.
inline constexpr std::string_view scorer_help =
    "px (PX, the authors' max pooling), px-consistent (PX, max pooling routed as the real "
    "network), snip, itersnip, grasp, synflow, magnitude or random";

/// prune::prune_at_init with the scorer called `scorer`.
template <class Net>
prune::DensityReport prune_by_name(const std::string& scorer, Net& net,
                                   const prune::PruningData<typename Net::scalar_type>& data,
                                   const prune::Options& options, Rng& rng);

/// One scoring of `net` by the scorer called `scorer` (a data-free scorer ignores `data`).
template <class Net>
ParameterSet<double> score_by_name(const std::string& scorer, Net& net,
                                   const prune::PruningData<typename Net::scalar_type>& data,
                                   Rng& rng);

#define EDGESCALE_EXAMPLES_SCORERS(EXTERN, Net)                                       \
  EXTERN template prune::DensityReport prune_by_name<Net>(                            \
      const std::string&, Net&, const prune::PruningData<typename Net::scalar_type>&, \
      const prune::Options&, Rng&);                                                   \
  EXTERN template ParameterSet<double> score_by_name<Net>(                            \
      const std::string&, Net&, const prune::PruningData<typename Net::scalar_type>&, Rng&);

EDGESCALE_EXAMPLES_SCORERS(extern, LeNet300100<float>)
EDGESCALE_EXAMPLES_SCORERS(extern, LeNet300100<double>)
EDGESCALE_EXAMPLES_SCORERS(extern, LeNet5<float>)
EDGESCALE_EXAMPLES_SCORERS(extern, LeNet5<double>)

}  // namespace edgescale::examples
