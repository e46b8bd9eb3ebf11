// edgescale/quant/calibrate.hpp — post-training calibration: observers on a float network's
// input and on the output of each of its layers, fed by forward hooks in evaluation mode.
//
//   quant::Calibrator cal(net, [] { return quant::MinMax{}; });   // any quant::Observer
//   for (Index b = 0; b < 8; ++b) cal.observe(batch(b));          // N calibration batches
//   auto qnet = quant::convert(net, cal, {.weight_bits = 8, .activation_bits = 8});
//
// Observers are per tensor (one range per layer output, as activations are quantized per
// tensor). A NaN or infinite activation is an argument_error naming the layer (the observers
// refuse it), never a silent range. Layers inside containers (Residual) are not observed: the
// integer network lowers the top-level layers only.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/quant/concepts.hpp>
#include <edgescale/quant/observer.hpp>

#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace edgescale::quant {

/// Observers on a network's input and on each top-level layer's output (see the top of this
/// file). MakeObserver is a callable returning a fresh quant::Observer.
template <class Net, class MakeObserver>
  requires Observer<std::invoke_result_t<MakeObserver&>>
class Calibrator {
 public:
  using observer_type = std::invoke_result_t<MakeObserver&>;
  using network_type = Net;

  Calibrator(Net& net, MakeObserver make) : net_(net), input_(make()) {
    outputs_.reserve(Net::size);
    for (std::size_t i = 0; i < Net::size; ++i) {
      outputs_.push_back(make());
    }
  }

  /// One calibration batch (input_shape::size x B), run in evaluation mode.
  void observe(const ConstBatchView<float>& x) {
    nn::ModeScope eval(net_, false);
    observe_one(input_, x, "the network input");
    net_.forward(x,
                 [&](std::string_view path, const auto& /*layer*/, const ConstBatchView<float>& y) {
                   if (path.find('.') != std::string_view::npos) {
                     return;  // inside a container
                   }
                   std::size_t i = 0;
                   std::from_chars(path.data(), path.data() + path.size(), i);
                   observe_one(outputs_.at(i), y, "the output of layer " + std::string(path));
                 });
    ++batches_;
  }
  template <class Derived>
  void observe(const Eigen::PlainObjectBase<Derived>& x) {
    observe(ConstBatchView<float>(x.derived().data(), x.rows(), x.cols()));
  }

  [[nodiscard]] Index batches() const { return batches_; }
  [[nodiscard]] const observer_type& input() const { return input_; }
  [[nodiscard]] const observer_type& output(std::size_t layer) const { return outputs_.at(layer); }
  [[nodiscard]] const Net& network() const { return net_; }

 private:
  template <class V>
  static void observe_one(observer_type& o, const V& y, const std::string& what) {
    try {
      o.observe(y);
    } catch (const argument_error& e) {
      throw argument_error("quant::Calibrator: " + what + ": " + e.what());
    }
  }

  Net& net_;
  observer_type input_;
  std::vector<observer_type> outputs_;
  Index batches_ = 0;
};

template <class Net, class MakeObserver>
Calibrator(Net&, MakeObserver) -> Calibrator<Net, MakeObserver>;

/// The range of an observer for `bits`-bit codes: observers whose choice depends on the width
/// (MseClipping) are asked for that width.
template <class O>
[[nodiscard]] Ranges observed_range(const O& o, int bits) {
  if constexpr (requires { o.range(bits); }) {
    return o.range(bits);
  } else {
    return o.range();
  }
}

}  // namespace edgescale::quant
