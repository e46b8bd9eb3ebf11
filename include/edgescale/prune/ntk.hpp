// edgescale/prune/ntk.hpp — the exact empirical neural tangent kernel of a small network: the
// oracle PX's bound is tested against (DESIGN §3a).
//
//   prune::EmpiricalNtk ntk = prune::empirical_ntk(net, inputs);   // inputs: features x N
//   ntk.jacobian;              // (N·K) x P: ∂f_k(x_n)/∂θ_j, row n·K + k (sample-major)
//   ntk.kernel;                // Θ = J Jᵀ, (N·K) x (N·K); block (n, m) is Θ(x_n, x_m), K x K
//   ntk.frobenius_norm();  ntk.trace();
//
// Θ(x, x') = J_θ f(x) J_θ f(x')ᵀ (Jacot et al. 2018) governs early gradient descent,
// f(x, θ_{t+1}) ≈ f(x, θ_t) − α Θ ∇_f L. Columns are every trained value of the network, in the
// order of ParameterSet<double>(net, TensorSelection::trained): weights, biases and scales alike.
// A masked value (Parameter::mask 0) is held at zero by the optimizers, so it is no parameter of
// the network that trains: its column is zero (the Jacobian of f(θ ⊙ m) with respect to θ).
//
// Cost: one forward per sample and one backward_parameters per (sample, output), O(N·K) passes
// at batch 1, then O((N·K)²·P) for Θ, and (N·K)·P doubles of memory for J. That is the quadratic
// cost PX avoids (bench/bench_prune.cpp): use this on small networks, as an oracle.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/overwrite.hpp>

#include <string>

namespace edgescale::prune {

/// J = ∂f/∂θ over a batch and Θ = J Jᵀ. Row r = n·K + k is output k of sample n (sample-major);
/// column j is the j-th trained value of the network (ParameterSet<double> trained order).
struct EmpiricalNtk {
  Matrix<double> jacobian;
  Matrix<double> kernel;

  /// ‖Θ‖_F.
  [[nodiscard]] double frobenius_norm() const { return kernel.norm(); }
  /// Tr Θ = ‖J‖²_F.
  [[nodiscard]] double trace() const { return kernel.trace(); }
};

/// The empirical NTK of `net` on the batch `inputs` (input_shape::size x N, N >= 1), computed in
/// evaluation mode (the network's mode is restored after) by the network's own backward with a
/// one-hot output gradient per (sample, output), at batch 1. The network's gradients are used as
/// scratch and left zero. Throws shape_error for inputs of the wrong size, argument_error for an
/// empty batch.
template <nn::Network Net>
EmpiricalNtk empirical_ntk(Net& net, const ConstBatchView<typename Net::scalar_type>& inputs) {
  using T = typename Net::scalar_type;
  constexpr Index in = Net::input_shape::size;
  constexpr Index outputs = Net::output_shape::size;
  if (inputs.rows() != in) {
    throw shape_error("empirical_ntk: inputs have " + std::to_string(inputs.rows()) +
                      " values per sample, the network takes " + std::to_string(in));
  }
  if (inputs.cols() == 0) {
    throw argument_error("empirical_ntk: the batch is empty");
  }
  const Index samples = inputs.cols();
  const nn::ModeScope evaluation(net, false);

  ParameterSet<double> gradient(net, TensorSelection::trained);  // the layout, and the masks
  const Vector<double> mask = gradient.has_mask() ? gradient.mask() : Vector<double>();
  EmpiricalNtk ntk;
  ntk.jacobian.resize(samples * outputs, gradient.size());
  Matrix<T> one_hot = Matrix<T>::Zero(outputs, 1);
  const ConstBatchView<T> dy(one_hot.data(), outputs, 1);
  for (Index n = 0; n < samples; ++n) {
    net.forward(ConstBatchView<T>(inputs.data() + n * in, in, 1));
    for (Index k = 0; k < outputs; ++k) {
      one_hot.setZero();
      one_hot(k) = T(1);
      if constexpr (nn::OverwritesGradients<Net>) {
        net.backward_parameters(dy, nn::overwrite_gradients);
      } else {
        net.zero_grad();
        if constexpr (nn::HasParameterOnlyBackward<Net>) {
          net.backward_parameters(dy);
        } else {
          net.backward(dy);
        }
      }
      gradient.read_gradients(net);
      auto row = ntk.jacobian.row(n * outputs + k);
      if (mask.size() != 0) {
        row = gradient.values().cwiseProduct(mask).transpose();
      } else {
        row = gradient.values().transpose();
      }
    }
  }
  net.zero_grad();

  // J Jᵀ by a symmetric rank update: half the products, and Θ exactly symmetric.
  const Index rows = ntk.jacobian.rows();
  Matrix<double> lower = Matrix<double>::Zero(rows, rows);
  lower.selfadjointView<Eigen::Lower>().rankUpdate(ntk.jacobian);
  ntk.kernel = lower.selfadjointView<Eigen::Lower>();
  return ntk;
}

/// empirical_ntk over an Eigen matrix (input_shape::size x N, column-major) the caller owns.
template <nn::Network Net, class Derived>
EmpiricalNtk empirical_ntk(Net& net, const Eigen::PlainObjectBase<Derived>& inputs) {
  return empirical_ntk(net, batch_view(inputs));
}

}  // namespace edgescale::prune
