// edgescale/prune/synflow.hpp — SynFlow (Tanaka, Kunin, Yamins, Ganguli, NeurIPS 2020): data-free
// score(θ) = |θ| ⊙ |∂R/∂|θ||, R = 1ᵀ f_{|θ|}(1): every tensor of a copy of the network made
// non-negative (biases and buffers too, as the reference's linearize does), one input of ones,
// the sum of the outputs differentiated; computed in evaluation mode, in the network's scalar
// type. Pruned weights are zero and score 0. The network itself is not touched.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/prune/scorer.hpp>

#include <string_view>

namespace edgescale::prune {

struct SynFlow {
  static constexpr bool needs_data = false;

  template <nn::Network Net, class Data>
  ParameterSet<double> score(const Net& net, const Data& /*data*/, Rng& /*rng*/) const {
    using T = typename Net::scalar_type;
    Net linear = net;  // copies leave workspaces behind
    for_each_tensor(linear, [](std::string_view, auto& p) { p.value = p.value.cwiseAbs(); });
    if constexpr (requires { linear.set_training(false); }) {
      linear.set_training(false);
    }
    const Matrix<T> ones = Matrix<T>::Ones(Net::input_shape::size, 1);
    const ConstBatchView<T> out = linear.forward(ConstBatchView<T>(ones.data(), ones.rows(), 1));
    const Matrix<T> dr = Matrix<T>::Ones(out.rows(), 1);
    linear.zero_grad();
    linear.backward_parameters(ConstBatchView<T>(dr.data(), dr.rows(), 1));
    return value_times_gradient(linear);
  }
};

}  // namespace edgescale::prune
