// edgescale/prune/mask.hpp — from scores to masks, masks onto a network, and what is left.
//
//   ParameterSet<double> keep = prune::masks_from_scores(scores, 0.02);   // keep 2 %, globally
//   prune::apply_masks(net, keep);                  // Parameter::mask set, pruned values zeroed
//   prune::DensityReport r = prune::density(net);   // per tensor and overall
//
// The threshold rule is the reference one (Synaptic-Flow's code, reused by PX's authors; DESIGN
// §3a): with N scores and density d, k = ⌊(1 − d)·N⌋; every score ≤ the k-th smallest is pruned,
// so ties at the threshold over-prune; k = 0 prunes nothing. Global scope thresholds all prunable
// tensors together, layer scope each tensor alone. Scores of weights pruned before take part like
// any other (a scorer that gives them a high score revives them, as the reference's SNIP and
// Random do when iterated; their value stays zero until training moves them).
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgescale::prune {

/// Thresholds over all prunable tensors together, or each tensor alone.
enum class Scope { global, layer };

/// Throws argument_error unless 0 < `value` < 1 (or <= 1 when `allow_one`); `what` names it.
inline void check_fraction(double value, std::string_view what, bool allow_one = false) {
  const bool ok = value > 0.0 && (value < 1.0 || (allow_one && value == 1.0));
  if (!ok) {  // NaN fails too
    throw argument_error(std::string(what) + " must be in (0, 1" + (allow_one ? "]" : ")") +
                         ", got " + std::to_string(value));
  }
}

namespace detail {

/// The k-th smallest (1-based) of `values` (no NaN). A sample of the values brackets the k-th
/// between two of them, lo < hi; one pass counts the values below lo and equal to it and gathers
/// those in (lo, hi], a few percent of them; std::nth_element finishes on those. The pass's
/// branches are predictable, where std::nth_element's partitioning of every value mispredicts half
/// the time: this made the threshold the dearest part of a pruning round (bench/bench_prune.cpp,
/// px_round). Exact whatever the data: when the bracket misses, std::nth_element on a copy of all.
/// The sample is strided, not random, so the result and its cost are deterministic.
inline double kth_smallest(std::span<const double> values, Index k, std::vector<double>& scratch) {
  const auto n = static_cast<Index>(values.size());
  const auto whole = [&] {
    scratch.assign(values.begin(), values.end());
    std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end());
    return scratch[static_cast<std::size_t>(k - 1)];
  };
  constexpr Index samples = 2048;
  if (n <= 8 * samples) {
    return whole();
  }
  scratch.resize(samples);
  for (Index i = 0; i < samples; ++i) {
    scratch[static_cast<std::size_t>(i)] = values[static_cast<std::size_t>(i * n / samples)];
  }
  std::sort(scratch.begin(), scratch.end());
  // k's place in the sample, widened by about 3 standard deviations of a sample quantile
  const Index at = (k - 1) * samples / n;
  constexpr Index margin = 72;  // 3·sqrt(2048 / 4), the widest (median) case
  const double lo = scratch[static_cast<std::size_t>(std::max<Index>(at - margin, 0))];
  const double hi = scratch[static_cast<std::size_t>(std::min<Index>(at + margin, samples - 1))];
  // a counting pass the compiler vectorises, then a branch-free gathering of those in (lo, hi]
  Index below = 0;
  Index at_lo = 0;
  Index inside = 0;
  for (const double v : values) {
    below += v < lo ? 1 : 0;
    at_lo += v == lo ? 1 : 0;
    inside += ((v > lo) & (v <= hi)) ? 1 : 0;
  }
  if (k <= below) {
    return whole();
  }
  if (k <= below + at_lo) {
    return lo;
  }
  scratch.resize(static_cast<std::size_t>(inside) + 1);  // + 1: the branch-free gather's last write
  double* out = scratch.data();
  for (const double v : values) {
    *out = v;
    out += ((v > lo) & (v <= hi)) ? 1 : 0;
  }
  scratch.pop_back();
  const Index r = k - below - at_lo;  // the r-th smallest of (lo, hi]
  if (r > static_cast<Index>(scratch.size())) {
    return whole();
  }
  std::nth_element(scratch.begin(), scratch.begin() + (r - 1), scratch.end());
  return scratch[static_cast<std::size_t>(r - 1)];
}

/// 0/1 entries keeping the values of `scores` above the reference threshold for density d: with
/// k = ⌊(1 − d)·n⌋, the values <= the k-th smallest are pruned (ties over-prune).
inline void threshold(Eigen::Ref<const Vector<double>> scores, double density,
                      Eigen::Ref<Vector<double>> mask, std::vector<double>& scratch) {
  const Index n = scores.size();
  const auto k = static_cast<Index>(std::floor((1.0 - density) * static_cast<double>(n)));
  if (k < 1) {
    mask.setOnes();
    return;
  }
  const double t = kth_smallest(std::span<const double>(scores.data(), scores.size()), k, scratch);
  mask = (scores.array() > t).template cast<double>().matrix();
}

}  // namespace detail

/// Masks (1 keep, 0 prune) in the layout of `scores` keeping a fraction `density` of the weights
/// by the reference rule, over all tensors (Scope::global) or per tensor (Scope::layer). Throws
/// argument_error for a density outside (0, 1] or a NaN score.
inline ParameterSet<double> masks_from_scores(const ParameterSet<double>& scores, double density,
                                              Scope scope = Scope::global) {
  check_fraction(density, "prune: density", true);
  if (!scores.all_finite()) {
    throw argument_error("prune: a score is NaN or infinite");
  }
  ParameterSet<double> masks = scores.zeros_like();
  std::vector<double> scratch;
  if (scope == Scope::global) {
    detail::threshold(scores.values(), density, masks.values(), scratch);
  } else {
    for (const TensorSlot& s : scores.layout().tensors()) {
      detail::threshold(scores.values().segment(s.offset, s.size), density,
                        masks.values().segment(s.offset, s.size), scratch);
    }
  }
  return masks;
}

/// Sets each prunable tensor's mask from `masks` (by name) and zeroes its pruned values. The
/// layout must be the network's prunable tensors exactly (shape_error naming what differs;
/// nothing is changed then); entries must be 0 or 1 (argument_error).
template <NamedTensors Net>
void apply_masks(Net& net, const ParameterSet<double>& masks) {
  const ParameterLayout expected = ParameterLayout::of(net, TensorSelection::prunable);
  if (const std::string d = expected.difference(masks.layout()); !d.empty()) {
    throw shape_error("prune::apply_masks: the masks are not the network's prunable tensors: " + d);
  }
  bool binary = true;  // a loop the compiler vectorises (Eigen's .all() of an || does not)
  for (const double m : masks.values()) {
    binary &= (m == 0.0) | (m == 1.0);
  }
  if (!binary) {
    throw argument_error("prune::apply_masks: mask entries must be 0 or 1");
  }
  masks.zip(net, [](auto& p, const auto& segment) {
    using U = typename std::remove_cvref_t<decltype(p)>::scalar_type;
    p.mask = segment.template cast<U>();
    p.apply_mask();
  });
}

/// Kept and total weights of one prunable tensor.
struct TensorDensity {
  std::string name;
  Index kept = 0;
  Index size = 0;
  [[nodiscard]] double density() const {
    return size == 0 ? 1.0 : static_cast<double>(kept) / static_cast<double>(size);
  }
};

/// What a network keeps: each prunable tensor and all of them together. A tensor without a mask
/// counts as dense; a mask entry of 1 counts as kept, whatever the value.
struct DensityReport {
  std::vector<TensorDensity> tensors;
  Index kept = 0;
  Index size = 0;
  [[nodiscard]] double density() const {
    return size == 0 ? 1.0 : static_cast<double>(kept) / static_cast<double>(size);
  }
  [[nodiscard]] double sparsity() const { return 1.0 - density(); }
};

template <NamedTensors Net>
DensityReport density(const Net& net) {
  DensityReport r;
  for_each_tensor(net, [&](std::string_view name, const auto& p) {
    if (!p.prunable()) {
      return;
    }
    TensorDensity t{std::string(name), p.size(), p.size()};
    if (p.masked()) {
      t.kept = static_cast<Index>((p.mask.array() != 0).count());
    }
    r.kept += t.kept;
    r.size += t.size;
    r.tensors.push_back(std::move(t));
  });
  return r;
}

}  // namespace edgescale::prune
