// Labelled features in Gaussian classes, for the FED3R and FedNCM tests: one generator, each test
// file with its own parameters.
#pragma once

#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace edgescale::test {

struct GaussianClasses {
  Index features = 0;
  Index classes = 0;
  Index present = 0;            ///< labels drawn from the first `present` classes (0: all)
  double offset = 0.0;          ///< added to every feature
  double noise = 0.7;           ///< standard deviation around the class mean
  std::uint64_t means_key = 0;  ///< the class means come from make_stream(means_key, means_stream)
  std::string_view means_stream = "class means";
  std::string_view name = "gaussian classes";
};

/// n samples: label y uniform over the present classes (from `rng`), feature j = offset +
/// mean(j, y) + noise·N(0, 1). The means depend on (means_key, means_stream) only, so a training
/// and a test set drawn apart share them.
inline data::Dataset<double> gaussian_classes(Index n, const GaussianClasses& g, Rng& rng) {
  Rng means_rng = make_stream(g.means_key, g.means_stream);
  Matrix<double> means(g.features, g.classes);
  for (Index i = 0; i < means.size(); ++i) {
    means.data()[i] = standard_normal(means_rng);
  }
  const Index present = g.present > 0 ? g.present : g.classes;
  data::Dataset<double> pool;
  pool.name = std::string(g.name);
  pool.classes = g.classes;
  pool.sample_shape = {1, 1, g.features};
  pool.features.resize(g.features, n);
  pool.labels.resize(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) {
    const auto y =
        static_cast<std::int32_t>(uniform_index(rng, static_cast<std::uint64_t>(present)));
    pool.labels[static_cast<std::size_t>(i)] = y;
    for (Index j = 0; j < g.features; ++j) {
      pool.features(j, i) = g.offset + means(j, y) + g.noise * standard_normal(rng);
    }
  }
  return pool;
}

}  // namespace edgescale::test
