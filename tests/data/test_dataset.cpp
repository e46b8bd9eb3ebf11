#include <edgescale/data/dataset.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <numeric>
#include <ranges>
#include <vector>

using namespace edgescale;
using namespace edgescale::data;

namespace {

/// A dataset whose sample i is the column (i, i + 0.5, ...) with label i % classes, so a batch
/// shows which samples it holds.
template <class T>
Dataset<T> numbered(Index n, Index d = 3, Index classes = 4) {
  Dataset<T> data;
  data.name = "numbered";
  data.classes = classes;
  data.sample_shape = {1, 1, d};
  data.features.resize(d, n);
  data.labels.resize(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) {
    for (Index r = 0; r < d; ++r) {
      data.features(r, i) = static_cast<T>(i) + static_cast<T>(r) / 2;
    }
    data.labels[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % classes);
  }
  return data;
}

/// The samples of one epoch, in the order the batches delivered them, checking that each batch's
/// features and labels are those of the samples it names.
template <class T>
std::vector<Index> epoch_order(BatchSampler<T>& sampler, Rng* rng) {
  std::vector<Index> seen;
  Index expected_number = 0;
  for (const Batch<T>& batch : rng != nullptr ? sampler.epoch(*rng) : sampler.epoch()) {
    CHECK(batch.number == expected_number++);
    REQUIRE(batch.targets.size() == static_cast<std::size_t>(batch.size()));
    REQUIRE(batch.indices.size() == static_cast<std::size_t>(batch.size()));
    for (Index j = 0; j < batch.size(); ++j) {
      const Index i = batch.indices[static_cast<std::size_t>(j)];
      CHECK(batch.features(0, j) == static_cast<T>(i));
      CHECK(batch.features(1, j) == static_cast<T>(i) + T(0.5));
      CHECK(batch.targets[static_cast<std::size_t>(j)] ==
            sampler.dataset().labels[static_cast<std::size_t>(i)]);
      seen.push_back(i);
    }
  }
  CHECK(expected_number == sampler.batches_per_epoch());
  return seen;
}

std::vector<Index> iota(Index n) {
  std::vector<Index> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), Index{0});
  return v;
}

}  // namespace

static_assert(std::input_iterator<BatchSampler<float>::iterator>);
static_assert(std::sentinel_for<std::default_sentinel_t, BatchSampler<float>::iterator>);
static_assert(std::ranges::input_range<BatchSampler<double>::Batches>);
// A sampler keeps a pointer to its dataset: binding one to a temporary must not compile.
static_assert(!std::is_constructible_v<BatchSampler<float>, Dataset<float>&&, Index>);
static_assert(std::is_constructible_v<BatchSampler<float>, Dataset<float>&, Index>);

TEST_CASE_TEMPLATE("from_idx scales pixels to [0, 1], one image per column", T, float, double) {
  const IdxImages images{2, 2, 3, {0, 51, 102, 153, 204, 255, 255, 0, 1, 2, 3, 4}};
  const std::vector<std::uint8_t> labels{7, 2};
  const Dataset<T> data = from_idx<T>(images, labels, 10, "tiny");
  CHECK(data.size() == 2);
  CHECK(data.sample_size() == 6);
  CHECK(data.sample_shape == std::array<Index, 3>{1, 2, 3});
  CHECK(data.classes == 10);
  CHECK(data.name == "tiny");
  CHECK(data.labels == std::vector<std::int32_t>{7, 2});
  for (Index i = 0; i < 2; ++i) {
    for (Index p = 0; p < 6; ++p) {
      // row-major image (h, w) -> feature h * W + w: the CHW order with C = 1
      CHECK(data.features(p, i) ==
            static_cast<T>(images.pixels[static_cast<std::size_t>(i * 6 + p)]) / T(255));
    }
  }
  CHECK(data.features(5, 0) == T(1));
  CHECK(data.features(1, 1) == T(0));

  const Dataset<T> standard =
      from_idx<T>(images, labels, 10, "tiny", {.mean = 0.5, .stddev = 0.25});
  CHECK(standard.features(0, 0) == doctest::Approx(-2.0));
  CHECK(standard.features(5, 0) == doctest::Approx(2.0));
}

TEST_CASE("from_idx rejects files that do not belong together") {
  const IdxImages images{3, 1, 2, {1, 2, 3, 4, 5, 6}};
  const std::vector<std::uint8_t> two{1, 2};
  CHECK_THROWS_WITH_AS(from_idx<float>(images, two, 10, "pair"),
                       doctest::Contains("dataset 'pair': 3 images but 2 labels"), format_error);
  const std::vector<std::uint8_t> big{1, 10, 2};
  CHECK_THROWS_WITH_AS(from_idx<float>(images, big, 10, "pair"),
                       doctest::Contains("label 10 of sample 1 is not below the class count 10"),
                       format_error);
  const std::vector<std::uint8_t> three{0, 1, 2};
  CHECK_THROWS_AS(from_idx<float>(images, three, 0, "pair"), argument_error);
  CHECK_THROWS_AS(from_idx<float>(images, three, 3, "pair", {.mean = 0, .stddev = 0}),
                  argument_error);
}

TEST_CASE("require_sample_size names the dataset, its shape and the network") {
  const IdxImages images{1, 28, 28, std::vector<std::uint8_t>(784, 0)};
  const std::vector<std::uint8_t> labels{3};
  const Dataset<float> data = from_idx<float>(images, labels, 10, "fashion-mnist train");
  CHECK_NOTHROW(require_sample_size(data, 784, "MLP"));
  CHECK_THROWS_WITH_AS(require_sample_size(data, 3072, "LeNet-5"),
                       "dataset 'fashion-mnist train' has samples of 784 values (1x28x28) but "
                       "network 'LeNet-5' expects 3072",
                       shape_error);
}

TEST_CASE("validate catches inconsistent datasets") {
  Dataset<float> data = numbered<float>(5);
  CHECK_NOTHROW(validate(data));
  data.labels.push_back(0);
  CHECK_THROWS_WITH_AS(validate(data), doctest::Contains("5 samples but 6 labels"), shape_error);
  data.labels.pop_back();
  data.labels[2] = 4;
  CHECK_THROWS_WITH_AS(validate(data), doctest::Contains("label 4 of sample 2"), shape_error);
  data.labels[2] = 0;
  data.sample_shape = {1, 2, 2};
  CHECK_THROWS_WITH_AS(validate(data), doctest::Contains("sample shape is 1x2x2"), shape_error);
}

TEST_CASE("subset and split copy the chosen samples") {
  const Dataset<double> data = numbered<double>(6);
  const std::vector<Index> pick{4, 1, 1};
  const Dataset<double> sub = subset(data, std::span<const Index>(pick));
  REQUIRE(sub.size() == 3);
  CHECK(sub.features(0, 0) == 4.0);
  CHECK(sub.features(2, 2) == 2.0);
  CHECK(sub.labels == std::vector<std::int32_t>{0, 1, 1});
  CHECK(sub.sample_shape == data.sample_shape);
  CHECK(sub.classes == data.classes);
  const std::vector<Index> bad{0, 6};
  CHECK_THROWS_WITH_AS(subset(data, std::span<const Index>(bad)),
                       doctest::Contains("index 6 is outside [0, 6)"), argument_error);

  const auto [first, rest] = split(data, 4);
  CHECK(first.size() == 4);
  CHECK(rest.size() == 2);
  CHECK(rest.features(0, 0) == 4.0);
  CHECK(rest.labels == std::vector<std::int32_t>{0, 1});
  CHECK(first.features == data.features.leftCols(4));
  CHECK(split(data, 0).first.size() == 0);
  CHECK(split(data, 6).second.size() == 0);
  CHECK_THROWS_AS(split(data, 7), argument_error);
  CHECK_THROWS_AS(split(data, -1), argument_error);
}

TEST_CASE("batches in order cover the dataset once, with a short last batch or without it") {
  const Dataset<float> data = numbered<float>(10);
  BatchSampler keep(data, 4);
  CHECK(keep.batches_per_epoch() == 3);
  CHECK(epoch_order(keep, nullptr) == iota(10));

  BatchSampler drop(data, 4, LastBatch::drop);
  CHECK(drop.batches_per_epoch() == 2);
  CHECK(epoch_order(drop, nullptr) == iota(8));

  BatchSampler whole(data, 10, LastBatch::drop);
  CHECK(epoch_order(whole, nullptr) == iota(10));
  BatchSampler single(data, 1);
  CHECK(epoch_order(single, nullptr) == iota(10));
}

TEST_CASE_TEMPLATE("shuffled batches cover every sample exactly once per epoch", T, float, double) {
  const Dataset<T> data = numbered<T>(23);
  BatchSampler sampler(data, 5);
  Rng rng = make_stream(1, "shuffle");
  std::vector<std::vector<Index>> epochs;
  for (int epoch = 0; epoch < 4; ++epoch) {
    std::vector<Index> order = epoch_order(sampler, &rng);
    REQUIRE(order.size() == 23);
    epochs.push_back(order);
    std::sort(order.begin(), order.end());
    CHECK(order == iota(23));
  }
  CHECK(epochs[0] != iota(23));
  CHECK(epochs[0] != epochs[1]);  // a fresh order each epoch

  // drop_last: every batch full, no sample twice
  BatchSampler drop(data, 5, LastBatch::drop);
  std::vector<Index> order = epoch_order(drop, &rng);
  CHECK(order.size() == 20);
  std::sort(order.begin(), order.end());
  CHECK(std::adjacent_find(order.begin(), order.end()) == order.end());
}

TEST_CASE("the same seed gives the same order, another seed another order") {
  const Dataset<float> data = numbered<float>(50);
  BatchSampler a(data, 8);
  BatchSampler b(data, 8);
  BatchSampler c(data, 8);
  Rng rng_a = make_stream(42, "shuffle");
  Rng rng_b = make_stream(42, "shuffle");
  Rng rng_c = make_stream(43, "shuffle");
  for (int epoch = 0; epoch < 3; ++epoch) {
    const std::vector<Index> order_a = epoch_order(a, &rng_a);
    CHECK(order_a == epoch_order(b, &rng_b));
    CHECK(order_a != epoch_order(c, &rng_c));
  }
  // the order is edgescale::shuffle of 0..n-1 with the same generator: portable across libraries
  Rng check_rng = make_stream(42, "shuffle");
  std::vector<Index> expected = iota(50);
  edgescale::shuffle(expected, check_rng);
  Rng rng_d = make_stream(42, "shuffle");
  CHECK(epoch_order(a, &rng_d) == expected);
}

TEST_CASE("batches reuse one buffer: no reallocation, the short batch views its first columns") {
  const Dataset<float> data = numbered<float>(11);
  BatchSampler sampler(data, 4);
  Rng rng = make_stream(5, "shuffle");
  const float* storage = nullptr;
  const std::int32_t* labels = nullptr;
  std::vector<Index> sizes;
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (const Batch<float>& batch : sampler.epoch(rng)) {
      if (storage == nullptr) {
        storage = batch.features.data();
        labels = batch.targets.data();
      }
      CHECK(batch.features.data() == storage);
      CHECK(batch.targets.data() == labels);
      CHECK(batch.features.rows() == 3);
      sizes.push_back(batch.size());
    }
  }
  CHECK(sizes == std::vector<Index>{4, 4, 3, 4, 4, 3, 4, 4, 3});
  CHECK(sampler.features().data() == storage);
}

TEST_CASE("the manual interface walks the same batches as the range") {
  const Dataset<double> data = numbered<double>(7);
  BatchSampler sampler(data, 3);
  CHECK_FALSE(sampler.next());  // no epoch started yet
  sampler.start_epoch();
  std::vector<Index> sizes;
  while (sampler.next()) {
    sizes.push_back(sampler.batch().size());
    sampler.features().array() *= 2.0;  // in-place augmentation of the copy
    CHECK(sampler.batch().features(0, 0) == 2.0 * static_cast<double>(sampler.batch().indices[0]));
  }
  CHECK(sizes == std::vector<Index>{3, 3, 1});
  CHECK(data.features(0, 1) == 1.0);  // the dataset is untouched
  CHECK_FALSE(sampler.next());
}

TEST_CASE("bad batch sizes and empty datasets are argument errors") {
  const Dataset<float> data = numbered<float>(5);
  CHECK_THROWS_WITH_AS(BatchSampler(data, 0), doctest::Contains("batch size 0"), argument_error);
  CHECK_THROWS_WITH_AS(BatchSampler(data, 6), doctest::Contains("outside [1, 5]"), argument_error);
  CHECK_THROWS_AS(BatchSampler(data, -1), argument_error);
  const Dataset<float> empty = numbered<float>(0);
  CHECK_THROWS_WITH_AS(BatchSampler(empty, 1), doctest::Contains("'numbered': it is empty"),
                       argument_error);
  Dataset<float> broken = numbered<float>(5);
  broken.labels.pop_back();
  CHECK_THROWS_AS(BatchSampler(broken, 2), shape_error);
}
