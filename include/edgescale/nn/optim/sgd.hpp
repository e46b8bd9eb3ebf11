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
    template <class F>
    void for_each_field(F&& f) {
      f("velocity", velocity);
    }
    Vector<T> velocity;
  };

  // One pass over the tensor (the velocity starts at zero, so b = μ·0 + g is PyTorch's b = g at
  // the first step): at batch 1 the update is a good part of a step, and three Eigen
  // expressions would read the weights three times.
  template <class T>
  void update(Vector<T>& value, const Vector<T>& grad, state<T>& s, const options& o,
              long /*step*/) const {
    const T lr = static_cast<T>(o.learning_rate);
    const T wd = static_cast<T>(o.weight_decay);  // L2 decay enters the gradient, as PyTorch's
    const T mu = static_cast<T>(o.momentum);
    T* v = value.data();
    const T* g = grad.data();
    T* b = s.velocity.data();
    const Index n = value.size();
    if (o.momentum == 0.0) {
      for (Index i = 0; i < n; ++i) {
        v[i] -= lr * (g[i] + wd * v[i]);
      }
    } else if (o.nesterov) {
      for (Index i = 0; i < n; ++i) {
        const T gi = g[i] + wd * v[i];
        b[i] = mu * b[i] + gi;
        v[i] -= lr * (gi + mu * b[i]);
      }
    } else {
      for (Index i = 0; i < n; ++i) {
        b[i] = mu * b[i] + g[i] + wd * v[i];
        v[i] -= lr * b[i];
      }
    }
  }
};

/// SGD over a float or double network: `nn::SGD opt{{.learning_rate = 0.1, .momentum = 0.9}}`.
using SGD = BasicOptimizer<SgdRule>;

}  // namespace edgescale::nn
