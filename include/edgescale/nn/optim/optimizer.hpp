// edgescale/nn/optim/optimizer.hpp — BasicOptimizer: one update rule applied to every trained
// tensor of a network, with per-tensor state and the pruning mask enforced.
//
//   nn::SGD opt{{.learning_rate = 0.1, .momentum = 0.9, .nesterov = true}};
//   net.zero_grad(); net.backward_parameters(grad); opt.step(net);
//
// An update rule (policy, as ensmallen's update policies) provides
//   struct options;                       its hyper-parameters, with learning_rate
//   template <class T> struct state {     per-tensor state
//     explicit state(Index size); Index size() const;
//     template <class F> void for_each_field(F&& f);   // f("velocity", Vector<T>&), ...
//   };
//   void update(Vector<T>& value, const Vector<T>& grad, state<T>&, const options&, long step);
// The masked gradient is zeroed before the update and the masked values after it, so a masked
// weight stays exactly zero whatever momentum or decay the rule carries.
//
// The state is reachable in the network's layout, by tensor name, as ParameterSets: a stateful
// federated client keeps its momentum between rounds, a strategy resets or averages it.
//   ParameterSet<float> v = opt.state<float>("velocity", layout);   opt.set_state("velocity", v);
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/tensor.hpp>

#include <cmath>
#include <memory>
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
    auto& states = states_of<T>();
    ++steps_;
    std::size_t i = 0;
    net.for_each_parameter([&](std::string_view name, Parameter<T>& p) {
      if (i == states.size()) {
        states.emplace_back(p.size());
        names_.emplace_back(name);
      } else if (states[i].size() != p.size() || names_[i] != name) {
        throw shape_error("optimizer: tensor " + std::string(name) +
                          " is not the tensor (or size) the optimizer's state was made for");
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
  /// Forgets momentum and moments (for instance after the mask changed, or between federated
  /// rounds).
  void reset() {
    std::get<0>(states_).clear();
    std::get<1>(states_).clear();
    names_.clear();
    steps_ = 0;
  }

  /// The state field `field` of every tensor (SGD: "velocity"; Adam: "m" and "v") in `layout`,
  /// matched by name: zeros before the first step. Throws argument_error for an unknown field and
  /// shape_error when the layout's tensors are not the optimizer's.
  template <class T>
  ParameterSet<T> state(std::string_view field,
                        const std::shared_ptr<const ParameterLayout>& layout) const {
    ParameterSet<T> out(layout);
    const auto& states = states_of<T>();
    if (states.empty()) {
      check_field<T>(field);
      return out;
    }
    match(out.layout(), [&](const TensorSlot& slot, std::size_t i) {
      // Rules visit their fields through a non-const member; this only reads them.
      auto& s = const_cast<typename Rule::template state<T>&>(states[i]);
      check_size(slot, s.size());
      out.tensor(slot.name) = field_of<T>(s, field);
    });
    return out;
  }

  /// Sets the state field `field` of every tensor from `values`, matched by name; before the first
  /// step this creates the state (so a client's momentum can be restored before it trains).
  template <class T>
  void set_state(std::string_view field, const ParameterSet<T>& values) {
    auto& states = states_of<T>();
    const ParameterLayout& layout = values.layout();
    if (states.empty()) {
      check_field<T>(field);
      for (const TensorSlot& slot : layout.tensors()) {
        states.emplace_back(slot.size);
        names_.push_back(slot.name);
      }
    }
    match(layout, [&](const TensorSlot& slot, std::size_t i) {
      check_size(slot, states[i].size());
      field_of<T>(states[i], field) = values.tensor(slot.name);
    });
  }

 private:
  static void check_learning_rate(double lr) {
    if (!(lr >= 0.0) || !std::isfinite(lr)) {
      throw argument_error("optimizer: learning rate must be finite and >= 0, got " +
                           std::to_string(lr));
    }
  }

  template <class T>
  auto& states_of() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "BasicOptimizer keeps state for float and double networks");
    return std::get<std::vector<typename Rule::template state<T>>>(states_);
  }
  template <class T>
  const auto& states_of() const {
    return const_cast<BasicOptimizer*>(this)->template states_of<T>();
  }

  template <class T, class State>
  static Vector<T>& field_of(State& s, std::string_view field) {
    Vector<T>* found = nullptr;
    s.for_each_field([&](std::string_view name, Vector<T>& v) {
      if (name == field) {
        found = &v;
      }
    });
    if (found == nullptr) {
      throw argument_error("optimizer: no state field '" + std::string(field) + "'");
    }
    return *found;
  }

  template <class T>
  static void check_field(std::string_view field) {
    typename Rule::template state<T> probe(0);
    (void)field_of<T>(probe, field);
  }

  static void check_size(const TensorSlot& slot, Index state_size) {
    if (slot.size != state_size) {
      throw shape_error("optimizer state: tensor '" + slot.name + "' has " +
                        std::to_string(slot.size) + " values in the layout and " +
                        std::to_string(state_size) + " in the optimizer");
    }
  }

  /// Calls f(slot, state index) for each tensor of `layout`, which must hold exactly the
  /// optimizer's tensors.
  template <class F>
  void match(const ParameterLayout& layout, F&& f) const {
    const std::vector<std::size_t> slots = layout.match(names_, "optimizer state");
    for (std::size_t i = 0; i < slots.size(); ++i) {
      f(layout.tensors()[slots[i]], i);
    }
  }

  Rule rule_{};
  options_type options_{};
  std::tuple<std::vector<typename Rule::template state<float>>,
             std::vector<typename Rule::template state<double>>>
      states_;
  std::vector<std::string> names_;  // the tensor each state belongs to
  long steps_ = 0;
};

}  // namespace edgescale::nn
