// edgescale/fed/random_features.hpp — random feature maps drawn from a broadcast seed (FED3R-RF).
//
//   fed::RandomFeatures<float> rf(pool.sample_size(), {.features = 5000, .sigma = 1.0, .seed = 7});
//   data::Dataset<float> mapped = rf.map(pool);            // 5000 features per sample, same labels
//   rf.map(batch_view(x), z);                              // a batch: z is 5000 x batch
//
// FED3R-RF (Fanì et al., ICML 2024) lifts the frozen features ψ(x) through a random map before
// the ridge regression, so the closed-form classifier approximates a kernel machine. Every client
// must use the same map: the server broadcasts one 64-bit seed and each client draws (Ω, β) from
// it, so the map costs 8 bytes down instead of d·D values. The draws use edgescale's written-out
// distributions (core/random.hpp), so a seed gives the same map with every standard library.
//
// Kinds (Ω is d x D, β has D entries, D = options.features):
//   fourier  z(x) = √(2/D) cos(Ωᵀψ + β), Ω_ij ~ N(0, σ⁻²), β_j ~ U[0, 2π): random Fourier features
//            (Rahimi & Recht, NIPS 2007), E[z(x)ᵀz(y)] = exp(−‖ψ(x) − ψ(y)‖² / (2σ²)).
//   relu     z(x) = max(0, Ωᵀψ + β) / √D, Ω_ij and β_j ~ N(0, σ⁻²): random ReLU features, whose
//            inner product estimates the first-order arc-cosine kernel (Cho & Saul, NIPS 2009) of
//            the augmented inputs u = [ψ(x); 1]:
//            E[z(x)ᵀz(y)] = ‖u‖‖v‖ (sin θ + (π − θ) cos θ) / (2π σ²), θ the angle between u and v.
// Draw order from make_stream(seed, "fed3r random features"): Ω column by column (the d weights of
// feature 0, then feature 1, ...), then β.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <numbers>
#include <string>

namespace edgescale::fed {

/// Which random map (see the top of this file).
enum class RandomFeatureKind {
  fourier,  ///< √(2/D) cos(Ωᵀψ + β): Gaussian kernel of bandwidth σ
  relu,     ///< max(0, Ωᵀψ + β) / √D: arc-cosine kernel of order 1
};

/// The shared description of a random feature map: everything a client needs to draw it.
struct RandomFeatureOptions {
  RandomFeatureKind kind = RandomFeatureKind::fourier;
  Index features = 5000;   ///< D, the number of random features
  double sigma = 1.0;      ///< bandwidth: the entries of Ω have standard deviation 1/σ
  std::uint64_t seed = 0;  ///< the broadcast seed (the only value that travels)
};

/// A random feature map ψ ↦ z(ψ) of d inputs and D outputs, drawn from options.seed.
template <std::floating_point T>
class RandomFeatures {
 public:
  /// Draws Ω (d x D) and β (D). Throws argument_error for d < 1, D < 1 or σ not positive.
  RandomFeatures(Index input_features, RandomFeatureOptions options) : options_(options) {
    if (input_features < 1 || options.features < 1) {
      throw argument_error("random features: need at least one input and one output feature, got " +
                           std::to_string(input_features) + " inputs and " +
                           std::to_string(options.features) + " outputs");
    }
    if (!(options.sigma > 0.0) || !std::isfinite(options.sigma)) {
      throw argument_error(
          "random features: the bandwidth sigma must be positive and finite, got " +
          std::to_string(options.sigma));
    }
    Rng rng = make_stream(options.seed, "fed3r random features");
    const double inverse_sigma = 1.0 / options.sigma;
    omega_.resize(input_features, options.features);
    for (Index j = 0; j < options.features; ++j) {
      for (Index i = 0; i < input_features; ++i) {
        omega_(i, j) = static_cast<T>(standard_normal<double>(rng) * inverse_sigma);
      }
    }
    beta_.resize(options.features);
    for (Index j = 0; j < options.features; ++j) {
      beta_(j) = options.kind == RandomFeatureKind::fourier
                     ? static_cast<T>(uniform(rng, 0.0, 2.0 * std::numbers::pi))
                     : static_cast<T>(standard_normal<double>(rng) * inverse_sigma);
    }
    const auto D = static_cast<double>(options.features);
    scale_ = static_cast<T>(options.kind == RandomFeatureKind::fourier ? std::sqrt(2.0 / D)
                                                                       : 1.0 / std::sqrt(D));
  }

  [[nodiscard]] Index input_size() const { return omega_.rows(); }
  [[nodiscard]] Index output_size() const { return omega_.cols(); }
  [[nodiscard]] const RandomFeatureOptions& options() const { return options_; }
  /// Ω, input_size x output_size (column j holds the weights of feature j).
  [[nodiscard]] const Matrix<T>& omega() const { return omega_; }
  /// β, output_size phases (fourier) or offsets (relu).
  [[nodiscard]] const Vector<T>& beta() const { return beta_; }

  /// z = map(x) for a batch x (input_size x n) into z (output_size x n), one GEMM and one pass.
  /// Throws shape_error when x or z has the wrong shape.
  void map(const ConstBatchView<T>& x, BatchView<T> z) const {
    if (x.rows() != input_size() || z.rows() != output_size() || z.cols() != x.cols()) {
      throw shape_error("random features: a batch of " + std::to_string(x.rows()) + " x " +
                        std::to_string(x.cols()) + " into " + std::to_string(z.rows()) + " x " +
                        std::to_string(z.cols()) + ", expected " + std::to_string(input_size()) +
                        " x n into " + std::to_string(output_size()) + " x n");
    }
    z.noalias() = omega_.transpose() * x;
    z.colwise() += beta_;
    if (options_.kind == RandomFeatureKind::fourier) {
      z = scale_ * z.array().cos();
    } else {
      z = scale_ * z.array().max(T(0));
    }
  }

  /// The mapped batch, output_size x n.
  [[nodiscard]] Matrix<T> map(const ConstBatchView<T>& x) const {
    Matrix<T> z(output_size(), x.cols());
    map(x, BatchView<T>(z.data(), z.rows(), z.cols()));
    return z;
  }

  /// The dataset with every sample mapped: D features (sample shape 1 x 1 x D), the same labels,
  /// classes and name. Throws shape_error for an inconsistent dataset or one of another size.
  [[nodiscard]] data::Dataset<T> map(const data::Dataset<T>& data) const {
    data::validate(data);
    if (data.sample_size() != input_size()) {
      std::string message = "random features: dataset '";
      message += data.name;
      message += "' has samples of " + std::to_string(data.sample_size()) +
                 " values, the map expects " + std::to_string(input_size());
      throw shape_error(message);
    }
    data::Dataset<T> out;
    out.features = map(batch_view(data.features));
    out.labels = data.labels;
    out.sample_shape = {1, 1, output_size()};
    out.classes = data.classes;
    out.name = data.name;
    return out;
  }

 private:
  RandomFeatureOptions options_;
  Matrix<T> omega_;
  Vector<T> beta_;
  T scale_{};
};

}  // namespace edgescale::fed
