// edgescale/prune/pruning_batch.hpp — the pruning batch a scorer reads: k examples of every
// class of a dataset (DESIGN §3a: 10 per class, the same batch for every scorer).
//
//   Rng draw = make_stream(seed, "pruning-batch");
//   prune::PruningBatch<float> batch = prune::class_balanced_batch(train, draw);   // 10 per class
//   prune::prune_at_init(net, scorer, batch.view(), options, rng);
//
// The draw itself is data's (data::class_balanced_indices: it knows datasets and nothing of
// pruning, and serves calibration batches as well); this part owns the drawn samples so the
// PruningData views handed to scorers have something to point at.
#pragma once

#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/prune/scorer.hpp>

#include <concepts>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace edgescale::prune {

/// Examples per class in the pruning batch of the PX paper and its baselines (DESIGN §3a).
inline constexpr Index default_examples_per_class = 10;

/// Owning storage of a pruning batch: inputs (sample size x n, one sample per column) and their
/// labels. view() is the PruningData a scorer takes, valid while the batch lives.
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

/// `per_class` examples of every class of `data` drawn without replacement from `rng`, class by
/// class (data::class_balanced_indices). Throws argument_error for per_class < 1 or a class with
/// fewer examples than that.
template <std::floating_point T>
PruningBatch<T> class_balanced_batch(const data::Dataset<T>& data, Rng& rng,
                                     Index per_class = default_examples_per_class) {
  const std::vector<Index> chosen = data::class_balanced_indices(data, per_class, rng);
  data::Dataset<T> drawn = data::subset(data, std::span<const Index>(chosen));
  return PruningBatch<T>{std::move(drawn.features), std::move(drawn.labels)};
}

}  // namespace edgescale::prune
