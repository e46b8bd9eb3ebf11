// edgescale/prune/post_training.hpp — magnitude pruning of a trained network, at once or
// gradually during training.
//
//   prune::DensityReport r = prune::prune_by_magnitude(net, 0.9);   // drop the 90 % smallest |θ|
//   prune::prune_by_magnitude(net, 0.9, prune::Scope::layer);      // 90 % of each tensor
//
//   prune::GradualMagnitudePruning gradual{{.final_sparsity = 0.9, .start_step = 200,
//                                           .interval = 100, .pruning_steps = 20}};
//   nn::fit(trainer, opt, train, test, {.epochs = 10}, schedule, rng, gradual);
//
// Gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune", arXiv:1710.01878,
// Eq. 1): the sparsity rises from s_i to s_f over n pruning steps Δt apart, starting at step t_0,
//   s_t = s_f + (s_i − s_f)·(1 − (t − t_0)/(nΔt))³,   t ∈ {t_0, t_0 + Δt, …, t_0 + nΔt},
// fast at first, while redundant weights abound, and slower toward the end. At each of those
// steps the network is pruned to s_t by |θ|, per tensor by default as in the paper ("each layer
// chosen to be pruned" gets its own mask) or globally. The callback counts optimizer steps
// itself: t = 0 is the first step it sees (nn::fit's on_step_end, after the optimizer's update).
//
// Both reuse the pieces of prune_at_init: Magnitude scores, the reference threshold
// (masks_from_scores, ties over-prune) and apply_masks. Masks only grow: a weight pruned once stays
// pruned (its new mask is the product of the old and the new), and the optimizers keep masked
// weights exactly zero between pruning steps (core/parameter.hpp).
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/prune/magnitude.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/scorer.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>

namespace edgescale::prune {

/// Throws argument_error unless 0 <= `value` < 1; `what` names it.
inline void check_sparsity(double value, std::string_view what) {
  if (!(value >= 0.0 && value < 1.0)) {  // NaN fails too
    throw argument_error(std::string(what) + " must be in [0, 1), got " + std::to_string(value));
  }
}

namespace detail {

/// Prunes `net` to `sparsity` by |θ| within `scope`, keeping every weight pruned before pruned.
template <NamedTensors Net>
DensityReport prune_smallest(Net& net, double sparsity, Scope scope) {
  Rng unused(0);  // Magnitude draws nothing
  ParameterSet<double> masks =
      masks_from_scores(Magnitude{}.score(net, PruningData<typename Net::scalar_type>{}, unused),
                        1.0 - sparsity, scope);
  const ParameterSet<double> before(net, TensorSelection::prunable);
  if (before.has_mask()) {
    masks.values().array() *= before.mask().array();
  }
  apply_masks(net, masks);
  return density(net);
}

}  // namespace detail

/// Prunes a trained `net` in place to `sparsity` (the fraction of prunable weights removed, in
/// [0, 1)) by magnitude, over all prunable tensors together (Scope::global) or each alone
/// (Scope::layer), and reports what is left. Weights pruned before stay pruned. Throws
/// argument_error, before changing anything, for a sparsity outside [0, 1) or a NaN or infinite
/// value in the network.
template <NamedTensors Net>
DensityReport prune_by_magnitude(Net& net, double sparsity, Scope scope = Scope::global) {
  check_sparsity(sparsity, "prune_by_magnitude: sparsity");
  check_finite(net, "prune_by_magnitude");
  return detail::prune_smallest(net, sparsity, scope);
}

/// The schedule of gradual magnitude pruning (Zhu & Gupta 2017): s_i, s_f, t_0, Δt, n.
struct GradualOptions {
  double initial_sparsity = 0.0;  ///< s_i in [0, 1): the first pruning step's target
  double final_sparsity = 0.9;    ///< s_f in [s_i, 1): reached at step t_0 + nΔt
  long start_step = 0;            ///< t_0 >= 0: the optimizer step of the first pruning
  long interval = 100;            ///< Δt >= 1: optimizer steps between two prunings
  long pruning_steps = 10;        ///< n >= 1: prunings after the first (n + 1 in all)
  Scope scope = Scope::layer;     ///< per tensor, as the paper; or Scope::global
};

/// Throws argument_error unless `o` is a schedule: sparsities in [0, 1) with s_i <= s_f, t_0 >= 0,
/// Δt >= 1, n >= 1.
inline void check_gradual_options(const GradualOptions& o) {
  check_sparsity(o.initial_sparsity, "gradual pruning: initial sparsity s_i");
  check_sparsity(o.final_sparsity, "gradual pruning: final sparsity s_f");
  if (o.initial_sparsity > o.final_sparsity) {
    throw argument_error(
        "gradual pruning: initial sparsity s_i = " + std::to_string(o.initial_sparsity) +
        " must not exceed the final sparsity s_f = " + std::to_string(o.final_sparsity));
  }
  if (o.start_step < 0) {
    throw argument_error("gradual pruning: start step t_0 must be >= 0, got " +
                         std::to_string(o.start_step));
  }
  if (o.interval < 1) {
    throw argument_error("gradual pruning: interval Δt must be at least 1 step, got " +
                         std::to_string(o.interval));
  }
  if (o.pruning_steps < 1) {
    throw argument_error("gradual pruning: the number of pruning steps n must be at least 1, got " +
                         std::to_string(o.pruning_steps));
  }
}

/// s_t of the cubic schedule (Zhu & Gupta 2017, Eq. 1) at optimizer step t: 0 before t_0 (nothing
/// pruned yet), s_f from t_0 + nΔt on; between, the closed form (the network is pruned to it at the
/// steps t_0 + kΔt and keeps that sparsity in between).
inline double gradual_sparsity(const GradualOptions& o, long t) {
  if (t < o.start_step) {
    return 0.0;
  }
  const double span = static_cast<double>(o.interval) * static_cast<double>(o.pruning_steps);
  const double progress = std::min(1.0, static_cast<double>(t - o.start_step) / span);
  const double remaining = 1.0 - progress;
  return o.final_sparsity +
         (o.initial_sparsity - o.final_sparsity) * remaining * remaining * remaining;
}

/// Gradual magnitude pruning as a training callback: call on_step_end(net) after each optimizer
/// step (nn::fit does), and at steps t_0, t_0 + Δt, …, t_0 + nΔt the network is pruned to s_t
/// by |θ|. Masks accumulate. Throws argument_error from the constructor for a bad schedule.
class GradualMagnitudePruning {
 public:
  explicit GradualMagnitudePruning(const GradualOptions& options) : options_(options) {
    check_gradual_options(options_);
  }

  /// Counts one optimizer step and prunes `net` if the schedule says so. Throws argument_error
  /// for a NaN or infinite weight at a pruning step (training diverged).
  template <NamedTensors Net>
  void on_step_end(Net& net) {
    const long t = steps_++;
    if (!prunes_at(t)) {
      return;
    }
    check_finite(net, "gradual pruning");
    sparsity_ = gradual_sparsity(options_, t);
    detail::prune_smallest(net, sparsity_, options_.scope);
  }

  /// Whether step t is one of t_0 + kΔt, k = 0..n.
  [[nodiscard]] bool prunes_at(long t) const {
    const long since = t - options_.start_step;
    return since >= 0 && since % options_.interval == 0 &&
           since / options_.interval <= options_.pruning_steps;
  }
  /// s_t at optimizer step t (gradual_sparsity).
  [[nodiscard]] double sparsity_at(long t) const { return gradual_sparsity(options_, t); }
  /// The target of the last pruning (0 before the first).
  [[nodiscard]] double sparsity() const { return sparsity_; }
  /// Optimizer steps seen so far.
  [[nodiscard]] long steps() const { return steps_; }
  /// Whether the last pruning step is behind.
  [[nodiscard]] bool done() const {
    return steps_ > options_.start_step + options_.interval * options_.pruning_steps;
  }
  [[nodiscard]] const GradualOptions& options() const { return options_; }

 private:
  GradualOptions options_;
  long steps_ = 0;
  double sparsity_ = 0.0;
};

}  // namespace edgescale::prune
