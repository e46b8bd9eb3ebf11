// data::class_balanced_indices / class_balanced_subset and prune::PruningBatch: k examples of
// every class, the right samples with their labels, deterministic per seed, refused when a class
// is short; the batch's view feeds a scorer that needs data.
#include <edgescale/data/dataset.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/prune/pruning_batch.hpp>
#include <edgescale/prune/schedule.hpp>
#include <edgescale/prune/snip.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <set>
#include <utility>
#include <vector>

using namespace edgescale;

namespace {

/// 40 samples of 6 values, classes 0, 1, 2 with 15, 12 and 13 samples; sample i holds i in its
/// first value, so a drawn column names the sample it came from.
data::Dataset<double> uneven() {
  data::Dataset<double> d;
  d.name = "uneven";
  d.classes = 3;
  d.sample_shape = {1, 1, 6};
  d.features = Matrix<double>::Random(6, 40);
  for (Index i = 0; i < 40; ++i) {
    d.features(0, i) = static_cast<double>(i);
    d.labels.push_back(i < 15 ? 0 : (i < 27 ? 1 : 2));
  }
  return d;
}

/// The pruning batch as docs/concepts.md draws it.
prune::PruningBatch<double> draw(const data::Dataset<double>& d, Rng& rng,
                                 Index per_class = prune::default_examples_per_class) {
  data::Dataset<double> drawn = data::class_balanced_subset(d, per_class, rng);
  return prune::PruningBatch<double>{std::move(drawn.features), std::move(drawn.labels)};
}

}  // namespace

TEST_CASE("a class-balanced batch draws k examples of every class, class by class") {
  const data::Dataset<double> d = uneven();
  Rng rng = make_stream(21, "pruning-batch");
  const prune::PruningBatch<double> b = draw(d, rng, 4);
  REQUIRE(b.size() == 12);
  CHECK(b.inputs.rows() == 6);
  std::set<Index> seen;
  for (Index j = 0; j < 12; ++j) {
    CAPTURE(j);
    CHECK(b.labels[static_cast<std::size_t>(j)] == j / 4);
    const auto i = static_cast<Index>(b.inputs(0, j));
    CHECK(b.inputs.col(j) == d.features.col(i));  // the sample itself
    CHECK(d.labels[static_cast<std::size_t>(i)] == b.labels[static_cast<std::size_t>(j)]);
    seen.insert(i);
  }
  CHECK(seen.size() == 12);  // without replacement

  const prune::PruningData<double> v = b.view();
  CHECK(v.inputs.data() == b.inputs.data());
  CHECK(v.inputs.cols() == 12);
  CHECK(v.labels.size() == 12);
}

TEST_CASE("a class-balanced batch is deterministic per seed; 10 per class by default") {
  const data::Dataset<double> d = uneven();
  Rng a = make_stream(22, "pruning-batch");
  Rng b = make_stream(22, "pruning-batch");
  Rng other = make_stream(23, "pruning-batch");
  const prune::PruningBatch<double> x = draw(d, a);
  const prune::PruningBatch<double> y = draw(d, b);
  const prune::PruningBatch<double> z = draw(d, other);
  CHECK(x.size() == 3 * prune::default_examples_per_class);
  CHECK(x.inputs == y.inputs);
  CHECK(x.labels == y.labels);
  CHECK(x.inputs != z.inputs);
  CHECK(x.labels == z.labels);  // always class by class
  // The same draw as the data-side indices.
  Rng c = make_stream(22, "pruning-batch");
  const std::vector<Index> idx = data::class_balanced_indices(d, 10, c);
  REQUIRE(idx.size() == 30);
  for (std::size_t j = 0; j < idx.size(); ++j) {
    CHECK(x.inputs(0, static_cast<Index>(j)) == static_cast<double>(idx[j]));
  }
}

TEST_CASE("a class-balanced batch is refused for a class with fewer than k examples and k < 1") {
  const data::Dataset<double> d = uneven();
  Rng rng = make_stream(24, "pruning-batch");
  CHECK_THROWS_WITH_AS(draw(d, rng, 13),
                       "class-balanced sample of dataset 'uneven': class 1 has 12 samples, 13 per "
                       "class were asked for",
                       argument_error);
  CHECK_THROWS_WITH_AS(
      draw(d, rng, 0),
      "class-balanced sample of dataset 'uneven': samples per class must be at least 1, got 0",
      argument_error);
  data::Dataset<double> missing = d;
  missing.classes = 4;  // class 3 has no sample
  CHECK_THROWS_AS(draw(missing, rng, 1), argument_error);
}

TEST_CASE("the batch's view feeds a scorer that needs data") {
  using Mlp = nn::BasicSequential<double, nn::Input<6>, nn::Dense<6, 5>, nn::ReLU, nn::Dense<5, 3>>;
  Rng rng = make_stream(25, "pruning-batch");
  Mlp net{nn::init::kaiming_normal, rng};
  const prune::PruningBatch<double> batch = draw(uneven(), rng, 5);
  prune::Snip snip;
  const prune::DensityReport r =
      prune::prune_at_init(net, snip, batch.view(), {.sparsity = 0.5}, rng);
  CHECK(r.kept == 45 - 22);
}
