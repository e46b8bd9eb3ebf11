// Small federations shared by the fed tests: a linear model under a quadratic loss whose client
// steps are computed by hand, and a labelled dataset of Gaussian blobs for an MLP.
#pragma once

#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/sequential.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace edgescale::test {

/// w (one weight, no bias) applied to the constant input 1: out = w.
using Scalar = nn::BasicSequential<double, nn::Dense<1, 1, nn::NoBias>>;

/// Class y pulls the output towards target[y]: L = mean_n ½ (out_n − target[y_n])², so a client
/// whose samples have mean target ā has gradient w − ā: the client steps of every strategy can be
/// written out by hand.
struct QuadraticToTarget {
  static constexpr std::array<double, 3> target{-1.0, 2.0, 5.0};
  template <class T>
  using target_type = nn::Labels;

  template <class T>
  T value(const ConstBatchView<T>& out, nn::Labels y) const {
    T total = 0;
    for (Index n = 0; n < out.cols(); ++n) {
      const T d = out(0, n) - static_cast<T>(target[static_cast<std::size_t>(y[n])]);
      total += d * d / 2;
    }
    return total / static_cast<T>(out.cols());
  }
  template <class T>
  T value_and_gradient(const ConstBatchView<T>& out, nn::Labels y, BatchView<T>& grad) const {
    for (Index n = 0; n < out.cols(); ++n) {
      grad(0, n) = (out(0, n) - static_cast<T>(target[static_cast<std::size_t>(y[n])])) /
                   static_cast<T>(out.cols());
    }
    return value(out, y);
  }
};

/// Samples of constant input 1 with the given labels (classes 0..2).
inline data::Dataset<double> constant_inputs(const std::vector<std::int32_t>& labels) {
  data::Dataset<double> d;
  d.features = Matrix<double>::Ones(1, static_cast<Index>(labels.size()));
  d.labels = labels;
  d.sample_shape = {1, 1, 1};
  d.classes = 3;
  d.name = "quadratic";
  return d;
}

inline Scalar scalar_model(double w) {
  Scalar net;
  for_each_tensor(net, [&](std::string_view, auto& p) { p.value.setConstant(w); });
  return net;
}

/// 3 classes of Gaussian blobs in 6 dimensions, centres at distance ~3.
template <class T>
data::Dataset<T> blobs(Index n, std::uint64_t seed) {
  Rng rng = make_stream(seed, "blobs");
  data::Dataset<T> d;
  d.features.resize(6, n);
  d.labels.resize(static_cast<std::size_t>(n));
  d.sample_shape = {1, 1, 6};
  d.classes = 3;
  d.name = "blobs";
  for (Index i = 0; i < n; ++i) {
    const auto y = static_cast<std::int32_t>(uniform_index(rng, 3));
    d.labels[static_cast<std::size_t>(i)] = y;
    for (Index r = 0; r < 6; ++r) {
      d.features(r, i) = static_cast<T>((r % 3 == y ? 2.0 : 0.0) + 0.7 * standard_normal(rng));
    }
  }
  return d;
}

template <class T>
using BlobMlp = nn::BasicSequential<T, nn::Dense<6, 8>, nn::ReLU, nn::Dense<8, 3>>;

/// K clients over n samples, client k holding samples k, k + K, k + 2K, ...
inline fed::Partition round_robin(Index n, Index k) {
  fed::Partition p(static_cast<std::size_t>(k));
  for (Index i = 0; i < n; ++i) {
    p[static_cast<std::size_t>(i % k)].push_back(i);
  }
  return p;
}

}  // namespace edgescale::test
