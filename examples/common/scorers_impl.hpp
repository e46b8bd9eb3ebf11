// examples/common/scorers_impl.hpp — the definitions of common/scorers.hpp, included only by the
// translation units that instantiate them (common/scorers_mlp.cpp, common/scorers_lenet5.cpp).
#pragma once

#include <edgescale/prune.hpp>

#include "scorers.hpp"

namespace edgescale::examples {

namespace detail {

/// Calls f(scorer) with the scorer the name names; throws argument_error for an unknown name.
template <class F>
decltype(auto) with_scorer(const std::string& name, F&& f) {
  if (name == "px") {
    return f(prune::Px{});
  }
  if (name == "px-consistent") {
    return f(prune::Px{.pooling = prune::PoolRouting::real});
  }
  if (name == "snip") {
    return f(prune::Snip{});
  }
  if (name == "itersnip") {
    return f(prune::IterSnip{});
  }
  if (name == "grasp") {
    return f(prune::Grasp{});
  }
  if (name == "synflow") {
    return f(prune::SynFlow{});
  }
  if (name == "magnitude") {
    return f(prune::Magnitude{});
  }
  if (name == "random") {
    return f(prune::Random{});
  }
  throw argument_error("unknown scorer '" + name + "' (one of " + std::string(scorer_choices) +
                       ")");
}

}  // namespace detail

template <class Net>
prune::DensityReport prune_by_name(const std::string& scorer, Net& net,
                                   const prune::PruningData<typename Net::scalar_type>& data,
                                   const prune::Options& options, Rng& rng) {
  return detail::with_scorer(
      scorer, [&](auto s) { return prune::prune_at_init(net, s, data, options, rng); });
}

template <class Net>
ParameterSet<double> score_by_name(const std::string& scorer, Net& net,
                                   const prune::PruningData<typename Net::scalar_type>& data,
                                   Rng& rng) {
  return detail::with_scorer(scorer, [&](auto s) {
    prune::check_finite(net, scorer);
    if constexpr (decltype(s)::needs_data) {
      prune::check_data(data, Net::input_shape::size, !data.labels.empty(), scorer);
    }
    return s.score(net, data, rng);
  });
}

}  // namespace edgescale::examples
