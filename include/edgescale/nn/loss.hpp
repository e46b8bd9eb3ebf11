// edgescale/nn/loss.hpp — losses: softmax cross-entropy (fused, optionally tempered) and mean
// squared error.
//
//   nn::SoftmaxCrossEntropy loss;
//   T value = loss.value_and_gradient(logits, labels, grad);   // grad: C x B, caller-owned
//
// Both return the mean over the batch, and the gradient of that mean. Each names its
// `target_type<T>` (labels, or a batch of values), which is what nn::Trainer::step takes.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>

#include <cmath>
#include <string>

namespace edgescale::nn {

namespace detail {
template <class T>
void check_labels(const ConstBatchView<T>& logits, Labels labels) {
  if (static_cast<Index>(labels.size()) != logits.cols()) {
    throw shape_error("SoftmaxCrossEntropy: " + std::to_string(labels.size()) + " labels for " +
                      std::to_string(logits.cols()) + " outputs");
  }
  for (const auto y : labels) {
    if (y < 0 || y >= logits.rows()) {
      throw argument_error("SoftmaxCrossEntropy: label " + std::to_string(y) + " outside [0, " +
                           std::to_string(logits.rows()) + ")");
    }
  }
}
}  // namespace detail

/// L = -1/B Σ_n log softmax(z_n)[y_n]; ∂L/∂z_n = (softmax(z_n) - e_{y_n}) / B. Computed with the
/// log-sum-exp shift by max(z_n), so large logits neither overflow nor lose the gradient.
struct SoftmaxCrossEntropy {
  /// What a training step compares the output with: one class label per sample.
  template <class T>
  using target_type = Labels;

  template <class T>
  T value(const ConstBatchView<T>& logits, Labels labels) const {
    detail::check_labels(logits, labels);
    T total = 0;
    for (Index n = 0; n < logits.cols(); ++n) {
      const auto z = logits.col(n);
      const T m = z.maxCoeff();
      const T lse = m + std::log((z.array() - m).exp().sum());
      total += lse - z[labels[static_cast<std::size_t>(n)]];
    }
    return total / static_cast<T>(logits.cols());
  }

  template <class T>
  T value_and_gradient(const ConstBatchView<T>& logits, Labels labels, BatchView<T>& grad) const {
    detail::check_labels(logits, labels);
    if (grad.rows() != logits.rows() || grad.cols() != logits.cols()) {
      throw shape_error("SoftmaxCrossEntropy: gradient view has the wrong shape");
    }
    const T inv_batch = T(1) / static_cast<T>(logits.cols());
    T total = 0;
    for (Index n = 0; n < logits.cols(); ++n) {
      const auto z = logits.col(n);
      auto g = grad.col(n);
      const T m = z.maxCoeff();
      g.array() = (z.array() - m).exp();
      const T sum = g.sum();
      const auto y = labels[static_cast<std::size_t>(n)];
      total += m + std::log(sum) - z[y];
      g *= inv_batch / sum;
      g[y] -= inv_batch;
    }
    return total * inv_batch;
  }
};

/// Softmax cross-entropy of the logits divided by a temperature τ: L = −1/B Σ_n log
/// softmax(z_n / τ)[y_n], ∂L/∂z_n = (softmax(z_n / τ) − e_{y_n}) / (B τ). A small τ (FED3R+FT's
/// 0.1, Fanì et al. 2024) sharpens the softmax of a head whose class vectors have unit norm.
/// Predictions (the largest logit) do not depend on τ.
struct TemperedSoftmaxCrossEntropy {
  double temperature = 1.0;

  template <class T>
  using target_type = Labels;

  template <class T>
  T value(const ConstBatchView<T>& logits, Labels labels) const {
    return compute<T, false>(logits, labels, nullptr);
  }
  template <class T>
  T value_and_gradient(const ConstBatchView<T>& logits, Labels labels, BatchView<T>& grad) const {
    if (grad.rows() != logits.rows() || grad.cols() != logits.cols()) {
      throw shape_error("TemperedSoftmaxCrossEntropy: gradient view has the wrong shape");
    }
    return compute<T, true>(logits, labels, &grad);
  }

 private:
  template <class T, bool Gradient>
  T compute(const ConstBatchView<T>& logits, Labels labels, BatchView<T>* grad) const {
    detail::check_labels(logits, labels);
    if (!(temperature > 0) || !std::isfinite(temperature)) {
      throw argument_error("TemperedSoftmaxCrossEntropy: the temperature must be > 0, got " +
                           std::to_string(temperature));
    }
    const T inv_t = static_cast<T>(1.0 / temperature);
    const T inv_batch = T(1) / static_cast<T>(logits.cols());
    T total = 0;
    for (Index n = 0; n < logits.cols(); ++n) {
      const auto z = logits.col(n);
      const T m = z.maxCoeff() * inv_t;
      const auto y = labels[static_cast<std::size_t>(n)];
      const auto shifted = (z.array() * inv_t - m).exp();
      const T sum = shifted.sum();
      total += m + std::log(sum) - z[y] * inv_t;
      if constexpr (Gradient) {
        auto g = grad->col(n);
        g.array() = shifted * (inv_batch * inv_t / sum);
        g[y] -= inv_batch * inv_t;
      }
    }
    return total * inv_batch;
  }
};

/// L = 1/(B·D) Σ (z − t)², the mean over every element, as PyTorch's MSELoss;
/// ∂L/∂z = 2 (z − t) / (B·D).
struct MeanSquaredError {
  /// What a training step compares the output with: a batch of target values.
  template <class T>
  using target_type = ConstBatchView<T>;

  template <class T>
  T value(const ConstBatchView<T>& output, const ConstBatchView<T>& target) const {
    check(output, target);
    return (output - target).squaredNorm() / static_cast<T>(output.size());
  }
  template <class T>
  T value_and_gradient(const ConstBatchView<T>& output, const ConstBatchView<T>& target,
                       BatchView<T>& grad) const {
    check(output, target);
    if (grad.rows() != output.rows() || grad.cols() != output.cols()) {
      throw shape_error("MeanSquaredError: gradient view has the wrong shape");
    }
    const T scale = T(2) / static_cast<T>(output.size());
    grad = (output - target) * scale;
    return grad.squaredNorm() / (scale * scale) / static_cast<T>(output.size());
  }

 private:
  template <class T>
  static void check(const ConstBatchView<T>& output, const ConstBatchView<T>& target) {
    if (output.rows() != target.rows() || output.cols() != target.cols()) {
      throw shape_error("MeanSquaredError: output is " + std::to_string(output.rows()) + "x" +
                        std::to_string(output.cols()) + ", target " +
                        std::to_string(target.rows()) + "x" + std::to_string(target.cols()));
    }
  }
};

/// Number of columns whose largest logit is the label.
template <class T>
Index count_correct(const ConstBatchView<T>& logits, Labels labels) {
  Index correct = 0;
  for (Index n = 0; n < logits.cols(); ++n) {
    Index best = 0;
    logits.col(n).maxCoeff(&best);
    correct += best == labels[static_cast<std::size_t>(n)] ? 1 : 0;
  }
  return correct;
}

}  // namespace edgescale::nn
