// edgescale/nn/init.hpp — weight initialisation schemes, each drawing from an explicit generator.
//
//   auto net = Net{nn::init::kaiming_normal, rng};
//
// A scheme is an object with `operator()(Parameter<T>&, Index fan_in, Index fan_out, Rng&)`.
// Layers call it on their weights; biases start at zero. Formulas as in PyTorch's
// torch.nn.init: Kaiming (He et al. 2015) for ReLU networks, gain sqrt(2), fan-in mode; Xavier
// (Glorot & Bengio 2010), gain 1.
#pragma once

#include <edgescale/core/parameter.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>

#include <cmath>
#include <concepts>

namespace edgescale::nn::init {

/// N(0, 2 / fan_in).
struct KaimingNormal {
  template <class T>
  void operator()(Parameter<T>& p, Index fan_in, Index /*fan_out*/, Rng& rng) const {
    const double sd = std::sqrt(2.0 / static_cast<double>(fan_in));
    for (Index i = 0; i < p.size(); ++i) {
      p.value[i] = static_cast<T>(sd * standard_normal(rng));
    }
  }
};

/// U(-b, b), b = sqrt(6 / fan_in).
struct KaimingUniform {
  template <class T>
  void operator()(Parameter<T>& p, Index fan_in, Index /*fan_out*/, Rng& rng) const {
    const double bound = std::sqrt(6.0 / static_cast<double>(fan_in));
    for (Index i = 0; i < p.size(); ++i) {
      p.value[i] = static_cast<T>(uniform(rng, -bound, bound));
    }
  }
};

/// N(0, 2 / (fan_in + fan_out)).
struct XavierNormal {
  template <class T>
  void operator()(Parameter<T>& p, Index fan_in, Index fan_out, Rng& rng) const {
    const double sd = std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
    for (Index i = 0; i < p.size(); ++i) {
      p.value[i] = static_cast<T>(sd * standard_normal(rng));
    }
  }
};

/// U(-b, b), b = sqrt(6 / (fan_in + fan_out)).
struct XavierUniform {
  template <class T>
  void operator()(Parameter<T>& p, Index fan_in, Index fan_out, Rng& rng) const {
    const double bound = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    for (Index i = 0; i < p.size(); ++i) {
      p.value[i] = static_cast<T>(uniform(rng, -bound, bound));
    }
  }
};

inline constexpr KaimingNormal kaiming_normal{};
inline constexpr KaimingUniform kaiming_uniform{};
inline constexpr XavierNormal xavier_normal{};
inline constexpr XavierUniform xavier_uniform{};

/// An initialisation scheme for parameters of scalar type T.
template <class S, class T>
concept Scheme = requires(const S& s, Parameter<T>& p, Index fan, Rng& rng) {
  s(p, fan, fan, rng);
};

}  // namespace edgescale::nn::init
