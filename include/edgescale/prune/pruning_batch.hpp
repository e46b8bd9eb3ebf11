// edgescale/prune/pruning_batch.hpp — the pruning batch a scorer reads, owned: inputs and labels
// with the PruningData view of them.
//
//   Rng draw = make_stream(seed, "pruning-batch");
//   data::Dataset<float> drawn = data::class_balanced_subset(
//       train, prune::default_examples_per_class, draw);            // 10 per class (DESIGN §3a)
//   prune::PruningBatch<float> batch{std::move(drawn.features), std::move(drawn.labels)};
//   prune::prune_at_init(net, snip, batch.view(), options, rng);
//
// The class-balanced draw is data's (data::class_balanced_indices and class_balanced_subset):
// it needs a dataset's classes and labels, and prune builds on core and nn only, never on data
// (DESIGN §1, checked by tests/static/check_includes.cmake), so the two meet here through core
// types: a features x samples matrix and int32 labels, which any source of samples can fill.
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/prune/scorer.hpp>

#include <concepts>
#include <cstdint>
#include <vector>

namespace edgescale::prune {

/// Examples per class in the pruning batch of the PX paper and its baselines (DESIGN §3a).
inline constexpr Index default_examples_per_class = 10;

/// Owning storage of a pruning batch: inputs (sample size x n, one sample per column) and their
/// labels (n, or empty for a scorer without labels). view() is the PruningData a scorer takes,
/// valid while the batch lives and is not resized.
template <std::floating_point T>
struct PruningBatch {
  Matrix<T> inputs;
  std::vector<std::int32_t> labels;

  [[nodiscard]] PruningData<T> view() const& {
    return {ConstBatchView<T>(inputs.data(), inputs.rows(), inputs.cols()), labels};
  }
  /// A view of a temporary would dangle.
  PruningData<T> view() const&& = delete;
  [[nodiscard]] Index size() const { return inputs.cols(); }
};

}  // namespace edgescale::prune
