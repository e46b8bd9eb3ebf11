// edgescale/nn/optim/adam.hpp — Adam (Kingma & Ba 2015) with L2 weight decay, and AdamW
// (Loshchilov & Hutter 2019) with decoupled weight decay, as torch.optim.Adam / AdamW:
//   Adam:  g ← ∇ + λθ
//   AdamW: θ ← θ − ηλθ
//   m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  θ ← θ − η m̂ / (√v̂ + ε),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/optim/optimizer.hpp>

#include <cmath>

namespace edgescale::nn {

template <bool Decoupled>
struct AdamRule {
  struct options {
    double learning_rate = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double epsilon = 1e-8;
    double weight_decay = Decoupled ? 1e-2 : 0.0;  // the PyTorch defaults
  };
  template <class T>
  struct state {
    explicit state(Index size) : m(Vector<T>::Zero(size)), v(Vector<T>::Zero(size)) {}
    [[nodiscard]] Index size() const { return m.size(); }
    template <class F>
    void for_each_field(F&& f) {
      f("m", m);
      f("v", v);
    }
    Vector<T> m;
    Vector<T> v;
  };

  template <class T>
  void update(Vector<T>& value, const Vector<T>& grad, state<T>& s, const options& o,
              long step) const {
    // Adam: L2 decay enters the gradient. AdamW: it shrinks θ directly, apart from the moments.
    const T l2 = Decoupled ? T(0) : static_cast<T>(o.weight_decay);
    if constexpr (Decoupled) {
      value *= static_cast<T>(1.0 - o.learning_rate * o.weight_decay);
    }
    const auto g = grad + l2 * value;
    const T b1 = static_cast<T>(o.beta1);
    const T b2 = static_cast<T>(o.beta2);
    s.m = b1 * s.m + (T(1) - b1) * g;
    s.v = b2 * s.v + (T(1) - b2) * g.cwiseAbs2();
    const double t = static_cast<double>(step);
    const T step_size = static_cast<T>(o.learning_rate / (1.0 - std::pow(o.beta1, t)));
    const T v_correction = static_cast<T>(1.0 / std::sqrt(1.0 - std::pow(o.beta2, t)));
    const T eps = static_cast<T>(o.epsilon);
    value.array() -= step_size * s.m.array() / (s.v.array().sqrt() * v_correction + eps);
  }
};

/// Adam over a float or double network: `nn::Adam opt{{.learning_rate = 1e-3}}`.
using Adam = BasicOptimizer<AdamRule<false>>;
/// AdamW (decoupled weight decay, default 0.01).
using AdamW = BasicOptimizer<AdamRule<true>>;

}  // namespace edgescale::nn
