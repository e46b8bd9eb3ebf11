// The worked examples of docs/concepts.md (a scorer, an observer, an aggregator), as they are
// written there, run on small networks with checks of what they compute. Keep the two in step.
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/nn.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

// ---- docs/concepts.md, "Example: a pruning scorer" ----
template <class Net>
ParameterSet<float> magnitude_scores(const Net& net) {
  ParameterSet<float> scores(net);
  for (const TensorSlot& slot : scores.layout().tensors()) {
    auto part = scores.tensor(slot.name);
    if (slot.role == ParameterRole::weight) {
      part = part.cwiseAbs();
    } else {
      part.setZero();
    }
  }
  return scores;
}

template <class Net>
void prune_globally(Net& net, const ParameterSet<float>& scores, double density) {
  std::vector<float> ranked;
  for (const TensorSlot& slot : scores.layout().tensors()) {
    if (slot.role == ParameterRole::weight) {
      const auto part = scores.tensor(slot.name);
      ranked.insert(ranked.end(), part.begin(), part.end());
    }
  }
  const auto k = static_cast<std::size_t>((1.0 - density) * static_cast<double>(ranked.size()));
  std::nth_element(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(k), ranked.end());
  const float threshold = k == 0 ? -1.0F : ranked[k - 1];
  ParameterSet<float> masked(net);
  Vector<float> mask = Vector<float>::Ones(masked.size());
  for (const TensorSlot& slot : scores.layout().tensors()) {
    if (slot.role == ParameterRole::weight) {
      mask.segment(slot.offset, slot.size) =
          (scores.tensor(slot.name).array() > threshold).cast<float>().matrix();
    }
  }
  masked.set_mask(mask);
  masked.write(net);
  for_each_parameter(net, [](std::string_view, auto& p) { p.apply_mask(); });
}

// ---- docs/concepts.md, "Example: a calibration observer" ----
struct RangeObserver {
  std::map<std::string, std::pair<float, float>, std::less<>> ranges;

  template <class L>
  void operator()(std::string_view path, const L& /*layer*/, const ConstBatchView<float>& out) {
    auto [it, fresh] = ranges.try_emplace(std::string(path), out.minCoeff(), out.maxCoeff());
    if (!fresh) {
      it->second.first = std::min(it->second.first, out.minCoeff());
      it->second.second = std::max(it->second.second, out.maxCoeff());
    }
  }
};

// ---- docs/concepts.md, "Example: an aggregator" ----
ParameterSet<float> coordinate_median(const std::vector<ParameterSet<float>>& updates,
                                      const ParameterSet<float>& model) {
  std::vector<const ParameterSet<float>*> kept;
  for (const auto& u : updates) {
    if (u.all_finite() && u.layout() == model.layout()) {
      kept.push_back(&u);
    }
  }
  if (kept.empty()) {
    throw argument_error("coordinate_median: no acceptable update");
  }
  ParameterSet<float> median = model.zeros_like();
  std::vector<float> column(kept.size());
  for (Index i = 0; i < median.size(); ++i) {
    for (std::size_t k = 0; k < kept.size(); ++k) {
      column[k] = kept[k]->values()[i];
    }
    const auto mid = column.begin() + static_cast<std::ptrdiff_t>(column.size() / 2);
    std::nth_element(column.begin(), mid, column.end());
    float m = *mid;
    if (column.size() % 2 == 0) {
      m = (m + *std::max_element(column.begin(), mid)) / 2;
    }
    median.values()[i] = m;
  }
  return median;
}

using Net = nn::Sequential<nn::Dense<8, 16>, nn::BatchNorm, nn::ReLU, nn::Dense<16, 3>>;

}  // namespace

TEST_CASE(
    "docs: the magnitude scorer prunes the smallest weights globally, never biases or scales") {
  Rng rng = make_stream(1, "doc scorer");
  Net net{nn::init::kaiming_normal, rng};
  const ParameterSet<float> scores = magnitude_scores(net);
  prune_globally(net, scores, 0.25);
  const ParameterSet<float> after(net);
  REQUIRE(after.has_mask());
  Index kept = 0;
  Index total = 0;
  float smallest_kept = std::numeric_limits<float>::max();
  float largest_pruned = 0;
  for (const TensorSlot& slot : after.layout().tensors()) {
    const auto mask = after.mask().segment(slot.offset, slot.size);
    const auto score = scores.tensor(slot.name);
    if (slot.role != ParameterRole::weight) {
      CHECK(mask.isOnes());
      continue;
    }
    total += slot.size;
    kept += static_cast<Index>(mask.sum());
    for (Index i = 0; i < slot.size; ++i) {
      if (mask[i] == 1) {
        smallest_kept = std::min(smallest_kept, score[i]);
      } else {
        largest_pruned = std::max(largest_pruned, score[i]);
        CHECK(after.tensor(slot.name)[i] == 0);
      }
    }
  }
  CHECK(total == 8 * 16 + 16 * 3);
  CHECK(kept == total - static_cast<Index>(0.75 * static_cast<double>(total)));
  CHECK(largest_pruned <= smallest_kept);  // a global threshold across both layers
}

TEST_CASE("docs: the observer records each layer's output range over calibration batches") {
  Rng rng = make_stream(2, "doc observer");
  Net net{nn::init::kaiming_normal, rng};
  data::Dataset<float> calibration;
  calibration.name = "calibration";
  calibration.classes = 3;
  calibration.sample_shape = {1, 1, 8};
  calibration.features = Matrix<float>::Random(8, 40);
  calibration.labels.assign(40, 0);
  data::BatchSampler batches(calibration, 16);

  RangeObserver observer;
  net.set_training(false);
  for (const auto& batch : batches.epoch()) {
    net.forward(batch.features, observer);
  }
  REQUIRE(observer.ranges.size() == 4);
  const Matrix<float> all = net.forward(calibration.features);
  CHECK(observer.ranges.at("3").first == all.minCoeff());
  CHECK(observer.ranges.at("3").second == all.maxCoeff());
  CHECK(observer.ranges.at("2").first == 0.0F);  // after a ReLU
}

TEST_CASE("docs: the median aggregator rejects a hostile update and takes the median") {
  Rng rng = make_stream(3, "doc median");
  Net net{nn::init::kaiming_normal, rng};
  const ParameterSet<float> model(net);
  std::vector<ParameterSet<float>> updates(4, model);
  for (std::size_t k = 0; k < updates.size(); ++k) {
    updates[k].values().array() += static_cast<float>(k);  // 0, 1, 2, 3
  }
  updates[3].values()[5] = std::numeric_limits<float>::infinity();            // rejected whole
  updates.push_back(ParameterSet<float>(nn::Sequential<nn::Dense<8, 3>>{}));  // foreign layout
  const ParameterSet<float> median = coordinate_median(updates, model);
  CHECK((median.values() - (model.values().array() + 1.0F).matrix()).cwiseAbs().maxCoeff() < 1e-6F);
  CHECK_THROWS_AS(coordinate_median({updates[3]}, model), argument_error);
}
