// edgescale/fed/features.hpp — ψ(x) for a whole dataset: the federation's features, computed once.
//
//   data::Dataset<float> psi = fed::extract_features(net, images);        // all layers but the
//   last data::Dataset<float> h = fed::extract_features<4>(net, images);       // layers [0, 4)
//
// Every client of a simulation would compute ψ of its own samples with the same extractor; running
// the extractor once over the pool gives the same numbers for a fraction of the time (FED3R's
// clients, FedNCM's, a head trained by FedAvg on a frozen extractor). The extractor runs in
// evaluation mode, in batches, and its mode is restored afterwards.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/network.hpp>

#include <algorithm>
#include <cstddef>
#include <string>

namespace edgescale::fed {

/// The dataset whose samples are layers [0, K) of `net` applied to those of `data` (K: all but
/// the last layer by default), with the same labels, classes and name + " features". Throws
/// shape_error when the samples of `data` are not the network's input size, argument_error for a
/// batch < 1.
template <std::size_t K = nn::all_but_last, nn::Network Net>
data::Dataset<typename Net::scalar_type> extract_features(
    Net& net, const data::Dataset<typename Net::scalar_type>& data, Index batch = 1000) {
  using T = typename Net::scalar_type;
  constexpr Index in = Net::input_shape::size;
  constexpr Index out = nn::features_shape_t<Net, K>::size;
  if (data.sample_size() != in) {
    throw shape_error("extract_features: dataset '" + data.name + "'" + " has samples of " +
                      std::to_string(data.sample_size()) + " values, the network takes " +
                      std::to_string(in));
  }
  if (batch < 1) {
    throw argument_error("extract_features: batch must be >= 1");
  }
  data::Dataset<T> psi;
  psi.name = data.name + " features";
  psi.labels = data.labels;
  psi.classes = data.classes;
  psi.sample_shape = {1, 1, out};
  psi.features.resize(out, data.size());
  const nn::ModeScope evaluation(net, false);
  for (Index start = 0; start < data.size(); start += batch) {
    const Index n = std::min(batch, data.size() - start);
    const ConstBatchView<T> x(data.features.col(start).data(), in, n);
    psi.features.middleCols(start, n) = nn::features<K>(net, x);
  }
  return psi;
}

}  // namespace edgescale::fed
