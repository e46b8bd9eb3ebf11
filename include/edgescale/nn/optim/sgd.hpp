// edgescale/nn/optim/sgd.hpp — stochastic gradient descent with momentum, Nesterov momentum and
// L2 weight decay, with PyTorch's torch.optim.SGD semantics (dampening 0):
//   g ← ∇ + λθ;  b ← μb + g (b = g at the first step);  θ ← θ − η (g + μb if Nesterov else b).
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/optim/optimizer.hpp>

namespace edgescale::nn {

struct SgdRule {
  struct options {
    double learning_rate = 0.01;
    double momentum = 0.0;
    bool nesterov = false;
    double weight_decay = 0.0;
  };
  template <class T>
  struct state {
    explicit state(Index size) : velocity(Vector<T>::Zero(size)) {}
    [[nodiscard]] Index size() const { return velocity.size(); }
    Vector<T> velocity;
  };

  template <class T>
  void update(Vector<T>& value, const Vector<T>& grad, state<T>& s, const options& o,
              long step) const {
    const T lr = static_cast<T>(o.learning_rate);
    const T wd = static_cast<T>(o.weight_decay);
    const auto g = grad + wd * value;  // L2 decay enters the gradient, as PyTorch's
    if (o.momentum == 0.0) {
      value -= lr * g;
      return;
    }
    const T mu = static_cast<T>(o.momentum);
    auto& b = s.velocity;
    if (step == 1) {
      b = g;
    } else {
      b = mu * b + g;
    }
    if (o.nesterov) {
      value -= lr * (g + mu * b);
    } else {
      value -= lr * b;
    }
  }
};

/// SGD over a float or double network: `nn::SGD opt{{.learning_rate = 0.1, .momentum = 0.9}}`.
using SGD = BasicOptimizer<SgdRule>;

}  // namespace edgescale::nn
