// edgescale/nn/optim/optimizer.hpp — BasicOptimizer: one update rule applied to every trained
// tensor of a network, with per-tensor state and the pruning mask enforced.
//
//   nn::SGD opt{{.learning_rate = 0.1, .momentum = 0.9, .nesterov = true}};
//   net.zero_grad(); net.backward_parameters(grad); opt.step(net);
//
// An update rule (policy, as ensmallen's update policies) provides
//   struct options;                       its hyper-parameters, with learning_rate
//   template <class T> struct state { explicit state(Index size); Index size() const; };
//   void update(Vector<T>& value, const Vector<T>& grad, state<T>&, const options&, long step);
// The masked gradient is zeroed before the update and the masked values after it, so a masked
// weight stays exactly zero whatever momentum or decay the rule carries.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>

#include <cmath>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

namespace edgescale::nn {

template <class Rule>
class BasicOptimizer {
 public:
  using options_type = typename Rule::options;

  BasicOptimizer() = default;
  explicit BasicOptimizer(options_type options) : options_(options) {
    check_learning_rate(options_.learning_rate);
  }

  /// Updates every trained tensor of `net` from its gradient. The first call sizes the state;
  /// the network must keep the same tensors afterwards.
  template <class Net>
  void step(Net& net) {
    using T = typename Net::scalar_type;
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "BasicOptimizer keeps state for float and double networks");
    auto& states = std::get<std::vector<typename Rule::template state<T>>>(states_);
    ++steps_;
    std::size_t i = 0;
    net.for_each_parameter([&](std::string_view name, Parameter<T>& p) {
      if (i == states.size()) {
        states.emplace_back(p.size());
      } else if (states[i].size() != p.size()) {
        throw shape_error("optimizer: tensor " + std::string(name) + " changed size");
      }
      p.mask_gradient();
      rule_.update(p.value, p.grad, states[i], options_, steps_);
      p.apply_mask();
      ++i;
    });
  }

  [[nodiscard]] double learning_rate() const { return options_.learning_rate; }
  /// Throws argument_error, leaving the rate as it was, unless lr is finite and >= 0.
  void set_learning_rate(double lr) {
    check_learning_rate(lr);
    options_.learning_rate = lr;
  }
  [[nodiscard]] const options_type& options() const { return options_; }
  [[nodiscard]] long steps() const { return steps_; }
  /// Forgets momentum and moments (for instance after the mask changed).
  void reset() {
    std::get<0>(states_).clear();
    std::get<1>(states_).clear();
    steps_ = 0;
  }

 private:
  static void check_learning_rate(double lr) {
    if (!(lr >= 0.0) || !std::isfinite(lr)) {
      throw argument_error("optimizer: learning rate must be finite and >= 0, got " +
                           std::to_string(lr));
    }
  }

  Rule rule_{};
  options_type options_{};
  std::tuple<std::vector<typename Rule::template state<float>>,
             std::vector<typename Rule::template state<double>>>
      states_;
  long steps_ = 0;
};

}  // namespace edgescale::nn
