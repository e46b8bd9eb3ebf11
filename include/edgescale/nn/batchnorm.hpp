// edgescale/nn/batchnorm.hpp — batch normalisation (Ioffe & Szegedy 2015), PyTorch's conventions.
//
//   nn::Sequential<nn::Input<1, 28, 28>, nn::Conv2D<1, 8, 3>, nn::BatchNorm, nn::ReLU, ...>
//
// On Shape<N> it normalises each of the N features over the batch (BatchNorm1d); on
// Shape<C, H, W> each channel over batch x H x W (BatchNorm2d). With m values per channel:
//   training  μ = Σx / m,  σ² = Σ(x − μ)² / m (biased),  x̂ = (x − μ) / √(σ² + ε),  y = γ x̂ + β;
//             running_mean ← (1 − α) running_mean + α μ,
//             running_var  ← (1 − α) running_var  + α σ² m / (m − 1)  (unbiased), α = 0.1
//   eval      x̂ = (x − running_mean) / √(running_var + ε),  y = γ x̂ + β
//   backward  dγ += Σ dy x̂,  dβ += Σ dy;
//             training: dx = γ / (m √(σ² + ε)) · (m dy − Σdy − x̂ Σ(dy x̂))  (through μ and σ²)
//             eval:     dx = γ dy / √(running_var + ε)
// Tensors: "weight" γ (1; role `scale`: trained, never pruned), "bias" β (0), "running_mean" (0)
// and "running_var" (1), the last two buffers. PyTorch's num_batches_tracked counter is not kept
// (load PyTorch weights with it dropped).
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>

#include <array>
#include <cmath>
#include <span>
#include <string>
#include <type_traits>

namespace edgescale::nn {

/// Batch normalisation of samples of shape S (rank 1 or 3), see above.
template <class T, StaticShape S>
class BatchNormLayer {
  static_assert(S::rank == 1 || S::rank == 3,
                "BatchNorm: samples must be feature vectors (N) or images (C, H, W)");
  static constexpr int channels = S::dims[0];
  static constexpr Index spatial = S::size / channels;  // values per channel per sample
  // Statistics are summed in double when T is float (as PyTorch's CPU kernels accumulate).
  using accumulator = std::conditional_t<(sizeof(T) < sizeof(double)), double, T>;

 public:
  using scalar_type = T;
  using input_shape = S;
  using output_shape = S;
  static constexpr double eps = 1e-5;
  static constexpr double momentum = 0.1;

  BatchNormLayer()
      : params_{Parameter<T>("weight", {channels}, ParameterRole::scale),
                Parameter<T>("bias", {channels}, ParameterRole::bias),
                Parameter<T>("running_mean", {channels}, ParameterRole::buffer),
                Parameter<T>("running_var", {channels}, ParameterRole::buffer)},
        mean_(channels),
        inv_std_(channels),
        sum_(channels),
        sum_product_(channels) {
    reset();
    out_.reserve(S::size, 1);
    normalized_.reserve(S::size, 1);
  }

  /// γ = 1, β = 0, running statistics 0 and 1 (torch's reset_parameters); draws nothing.
  void reset() {
    params_[0].value.setOnes();
    params_[1].value.setZero();
    params_[2].value.setZero();
    params_[3].value.setOnes();
  }
  template <class Scheme>
  void initialize(const Scheme& /*scheme*/, Rng& /*rng*/) {
    reset();
  }

  /// Training (batch statistics, running statistics updated) or evaluation (running statistics).
  void set_training(bool on) { training_ = on; }
  [[nodiscard]] bool training() const { return training_; }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    batch_ = x.cols();
    batch_statistics_ = training_;
    if (training_) {
      update_batch_statistics(x);
    } else {
      for (int c = 0; c < channels; ++c) {
        mean_[c] = params_[2].value[c];
        inv_std_[c] = T(1) / std::sqrt(params_[3].value[c] + T(eps));
      }
    }
    auto xhat = normalized_.resize(S::size, batch_);
    auto y = out_.resize(S::size, batch_);
    const T* gamma = params_[0].value.data();
    const T* beta = params_[1].value.data();
    for_each_segment([&](Index offset, int c) {
      for (Index i = offset; i < offset + spatial; ++i) {
        const T v = (x.data()[i] - mean_[c]) * inv_std_[c];
        xhat.data()[i] = v;
        y.data()[i] = gamma[c] * v + beta[c];
      }
    });
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    backward_parameters(dy);  // leaves Σdy in sum_ and Σ dy x̂ in sum_product_
    const auto xhat = normalized_.cview();
    auto dx = grad_in_.resize(S::size, batch_);
    const T* gamma = params_[0].value.data();
    if (batch_statistics_) {
      const T m = static_cast<T>(count());
      for_each_segment([&](Index offset, int c) {
        const T scale = gamma[c] * inv_std_[c] / m;
        const T sum_dy = static_cast<T>(sum_[c]);
        const T sum_dy_xhat = static_cast<T>(sum_product_[c]);
        for (Index i = offset; i < offset + spatial; ++i) {
          dx.data()[i] = scale * (m * dy.data()[i] - sum_dy - xhat.data()[i] * sum_dy_xhat);
        }
      });
    } else {
      for_each_segment([&](Index offset, int c) {
        const T scale = gamma[c] * inv_std_[c];
        for (Index i = offset; i < offset + spatial; ++i) {
          dx.data()[i] = scale * dy.data()[i];
        }
      });
    }
    return grad_in_.cview();
  }

  /// The γ and β gradients of backward, without the input gradient.
  void backward_parameters(const ConstBatchView<T>& dy) {
    const auto xhat = normalized_.cview();
    sum_.setZero();
    sum_product_.setZero();
    for_each_segment([&](Index offset, int c) {
      accumulator s = 0;
      accumulator sp = 0;
      for (Index i = offset; i < offset + spatial; ++i) {
        s += dy.data()[i];
        sp += accumulator(dy.data()[i]) * xhat.data()[i];
      }
      sum_[c] += s;
      sum_product_[c] += sp;
    });
    params_[0].grad += sum_product_.template cast<T>();
    params_[1].grad += sum_.template cast<T>();
  }

  std::span<Parameter<T>> parameters() { return params_; }
  std::span<const Parameter<T>> parameters() const { return params_; }

  /// The output, x̂ and input-gradient buffers (see Workspace; nn::release_workspaces).
  template <class F>
  void for_each_workspace(F&& f) {
    f(out_);
    f(normalized_);
    f(grad_in_);
  }

 private:
  [[nodiscard]] Index count() const { return batch_ * spatial; }

  /// Calls f(offset, channel) for each sample's run of `spatial` values of one channel.
  template <class F>
  void for_each_segment(F&& f) const {
    for (Index n = 0; n < batch_; ++n) {
      for (int c = 0; c < channels; ++c) {
        f(n * S::size + c * spatial, c);
      }
    }
  }

  /// μ and 1/√(σ² + ε) from the batch (two passes, for accuracy); updates the running statistics.
  void update_batch_statistics(const ConstBatchView<T>& x) {
    const Index m = count();
    if (m < 2) {
      throw shape_error(
          "BatchNorm: training needs more than one value per channel, got a batch of " +
          std::to_string(batch_) + " sample(s) of " + std::to_string(spatial) +
          " value(s) per channel; use a larger batch or set_training(false)");
    }
    sum_.setZero();
    for_each_segment([&](Index offset, int c) {
      accumulator s = 0;
      for (Index i = offset; i < offset + spatial; ++i) {
        s += x.data()[i];
      }
      sum_[c] += s;
    });
    for (int c = 0; c < channels; ++c) {
      mean_[c] = static_cast<T>(sum_[c] / accumulator(m));
    }
    sum_.setZero();
    for_each_segment([&](Index offset, int c) {
      accumulator s = 0;
      for (Index i = offset; i < offset + spatial; ++i) {
        const accumulator d = accumulator(x.data()[i]) - accumulator(mean_[c]);
        s += d * d;
      }
      sum_[c] += s;
    });
    const accumulator a = momentum;
    for (int c = 0; c < channels; ++c) {
      const accumulator biased = sum_[c] / accumulator(m);
      const accumulator unbiased = sum_[c] / accumulator(m - 1);
      inv_std_[c] = static_cast<T>(1 / std::sqrt(biased + accumulator(eps)));
      T& running_mean = params_[2].value[c];
      T& running_var = params_[3].value[c];
      running_mean = static_cast<T>((1 - a) * running_mean + a * mean_[c]);
      running_var = static_cast<T>((1 - a) * running_var + a * unbiased);
    }
  }

  std::array<Parameter<T>, 4> params_;
  Vector<T> mean_;     // per channel: the μ this forward used
  Vector<T> inv_std_;  // per channel: 1 / √(σ² + ε) this forward used
  Eigen::Matrix<accumulator, Eigen::Dynamic, 1> sum_;          // per channel scratch sums
  Eigen::Matrix<accumulator, Eigen::Dynamic, 1> sum_product_;  // per channel scratch sums
  Workspace<T> out_;
  Workspace<T> normalized_;  // x̂, kept for backward
  Workspace<T> grad_in_;
  Index batch_ = 0;
  bool training_ = true;
  bool batch_statistics_ = true;  // whether the last forward used batch statistics
};

/// Layer spec: batch normalisation of feature vectors (N) or images (C, H, W).
struct BatchNorm {
  template <StaticShape S>
  static constexpr bool accepts = S::rank == 1 || S::rank == 3;
  template <class T, StaticShape S>
  using layer = BatchNormLayer<T, S>;
};

}  // namespace edgescale::nn
