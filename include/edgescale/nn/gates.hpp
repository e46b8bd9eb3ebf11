// edgescale/nn/gates.hpp — capture one network's ReLU gates (and max-pooling choices) and impose
// them on a twin.
//
//   nn::GateRecorder<double> gates;
//   net.forward(x, gates);                       // a forward hook: gates a = [pre-activation > 0]
//   nn::gated_twin_t<Net> twin;                  // Net with every ReLU a GatedReLU, every max
//   copy_tensors(net, twin);                     //   pooling a RoutedMaxPool2D
//   /* ... set the twin's weights as needed ... */
//   nn::impose_gates(twin, gates);               // each GatedReLU multiplies by the recorded gate
//   nn::impose_routes(twin, gates);              // (optional) each pooling window takes the value
//   auto z = twin.forward(x2);                   //   where net's maximum was
//
// Why: a ReLU network is a sum over paths of (product of weights) × (input) × (0/1 gates along the
// path). PX (Iurada et al., CVPR 2024) evaluates path sums of an auxiliary network — weights set to
// 1, input squared — under the gates of the real network on the pruning batch; that auxiliary
// network is this twin. A GatedReLU with a gate computes y = a ⊙ x and dy/dx = a, a linear map;
// with no gate it is an ordinary ReLU. Max pooling is a choice too: a RoutedMaxPool2D with a route
// takes each window's value at the recorded position (a linear map, so paths stay paths), and
// without one it is an ordinary max pooling of its own input. Gates and routes are per value and
// per sample (features x batch), so the twin must run on a batch of the same size as the recorded
// one; `open_gates` imposes all-ones gates (every ReLU the identity) for any batch size.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/transform.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>

namespace edgescale::nn {

/// Positions of the maxima of one max-pooling layer: per output value and sample, ky·K + kx.
using PoolRoute = Eigen::Matrix<std::int32_t, Eigen::Dynamic, Eigen::Dynamic>;

/// A forward hook that records the 0/1 gates [output > 0] of every ReLU layer (for a ReLU, output
/// > 0 exactly when its input > 0) and the positions of the maxima of every max-pooling layer, by
/// layer path. Recording again replaces them.
template <class T>
class GateRecorder {
 public:
  template <class L>
  void operator()(std::string_view path, const L& layer, const ConstBatchView<T>& output) {
    if constexpr (is_relu_layer_v<L>) {
      slot(gates_, path) = (output.array() > T(0)).template cast<T>();
    } else if constexpr (is_max_pool_layer_v<L>) {
      slot(routes_, path) = layer.positions();
    }
  }

  /// The gates of the ReLU at `path` (features x batch); throws argument_error if none recorded.
  [[nodiscard]] const Matrix<T>& gate(std::string_view path) const {
    const auto it = gates_.find(path);
    if (it == gates_.end()) {
      throw argument_error("GateRecorder: no gates recorded for a ReLU at path '" +
                           std::string(path) + "'");
    }
    return it->second;
  }
  [[nodiscard]] const std::map<std::string, Matrix<T>, std::less<>>& gates() const {
    return gates_;
  }
  /// The positions of the maxima of the max pooling at `path` (outputs x batch); throws
  /// argument_error if none recorded.
  [[nodiscard]] const PoolRoute& route(std::string_view path) const {
    const auto it = routes_.find(path);
    if (it == routes_.end()) {
      throw argument_error("GateRecorder: no pooling choices recorded for a max pooling at path '" +
                           std::string(path) + "'");
    }
    return it->second;
  }
  void clear() {
    gates_.clear();
    routes_.clear();
  }

 private:
  template <class M>
  static M& slot(std::map<std::string, M, std::less<>>& map, std::string_view path) {
    auto it = map.find(path);
    if (it == map.end()) {
      it = map.emplace(std::string(path), M()).first;
    }
    return it->second;
  }

  std::map<std::string, Matrix<T>, std::less<>> gates_;
  std::map<std::string, PoolRoute, std::less<>> routes_;
};

/// A ReLU whose gates can be imposed: with a gate a (set_gate), y = a ⊙ x and dx = a ⊙ dy; without,
/// y = max(x, 0) as ReLU.
template <class T, class S>
class GatedReluLayer {
 public:
  using scalar_type = T;
  using input_shape = S;
  using output_shape = S;

  GatedReluLayer() { out_.reserve(S::size, 1); }

  /// Imposes gates (S::size x batch, entries 0 or 1); the next forward must have that batch size.
  void set_gate(const Matrix<T>& gate) {
    if (gate.rows() != S::size) {
      throw shape_error("GatedReLU: a gate of " + std::to_string(gate.rows()) +
                        " values per sample for a layer of " + std::to_string(S::size));
    }
    gate_ = gate;
  }
  /// Back to an ordinary ReLU.
  void clear_gate() { gate_.resize(0, 0); }
  [[nodiscard]] bool gated() const { return gate_.size() != 0; }
  [[nodiscard]] const Matrix<T>& gate() const { return gate_; }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    auto y = out_.resize(S::size, x.cols());
    if (gated()) {
      check_batch(x.cols());
      y.array() = x.array() * gate_.array();
    } else {
      y.array() = detail::ReluFn::value(x.array());
    }
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    auto dx = grad_in_.resize(S::size, dy.cols());
    if (gated()) {
      check_batch(dy.cols());
      dx.array() = dy.array() * gate_.array();
    } else {
      dx.array() = detail::ReluFn::gradient(out_.cview().array(), dy.array());
    }
    return grad_in_.cview();
  }

  template <class F>
  void for_each_workspace(F&& f) {
    f(out_);
    f(grad_in_);
  }

 private:
  void check_batch(Index cols) const {
    if (cols != gate_.cols()) {
      throw shape_error("GatedReLU: gates were recorded for a batch of " +
                        std::to_string(gate_.cols()) + " samples, this batch has " +
                        std::to_string(cols));
    }
  }

  Matrix<T> gate_;
  Workspace<T> out_;
  Workspace<T> grad_in_;
};

/// Layer spec: a ReLU whose gates can be imposed (see GatedReluLayer).
struct GatedReLU {
  template <StaticShape S>
  static constexpr bool accepts = true;
  template <class T, StaticShape S>
  using layer = GatedReluLayer<T, S>;
};

template <class L>
inline constexpr bool is_gated_relu_layer_v = false;
template <class T, class S>
inline constexpr bool is_gated_relu_layer_v<GatedReluLayer<T, S>> = true;

/// Max pooling whose choices can be imposed: with a route (set_route: per output value and sample,
/// the position ky·K + kx in its window), y takes the input at that position and dx gets dy there;
/// without, an ordinary MaxPool2D of its own input.
template <class T, ImageShape In, int K, int S = K>
class RoutedMaxPool2DLayer {
  using geometry = detail::pool_geometry<In, K, S>;
  using Pool = MaxPool2DLayer<T, In, K, S>;

 public:
  using scalar_type = T;
  using input_shape = In;
  using output_shape = typename Pool::output_shape;

  RoutedMaxPool2DLayer() { out_.reserve(output_shape::size, 1); }

  /// Imposes a route (output_shape::size x batch, entries in [0, K²)); the next forward must have
  /// that batch size.
  void set_route(const PoolRoute& route) {
    if (route.rows() != output_shape::size) {
      throw shape_error("RoutedMaxPool2D: a route of " + std::to_string(route.rows()) +
                        " values per sample for a layer of " + std::to_string(output_shape::size));
    }
    if (route.size() != 0 && (route.minCoeff() < 0 || route.maxCoeff() >= K * K)) {
      throw argument_error("RoutedMaxPool2D: a route position outside its " + std::to_string(K) +
                           " x " + std::to_string(K) + " window");
    }
    route_ = route;
  }
  /// Back to an ordinary max pooling.
  void clear_route() { route_.resize(0, 0); }
  [[nodiscard]] bool routed() const { return route_.size() != 0; }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    if (!routed()) {
      return pool_.forward(x);
    }
    check_batch(x.cols());
    auto y = out_.resize(output_shape::size, x.cols());
    for (Index n = 0; n < x.cols(); ++n) {
      const T* xn = x.col(n).data();
      T* yn = y.col(n).data();
      const std::int32_t* rn = route_.col(n).data();
      geometry::for_each_window([&](Index window, Index o) { yn[o] = xn[window + offset(rn[o])]; });
    }
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    if (!routed()) {
      return pool_.backward(dy);
    }
    check_batch(dy.cols());
    auto dx = grad_in_.resize(In::size, dy.cols());
    dx.setZero();
    for (Index n = 0; n < dy.cols(); ++n) {
      const T* dyn = dy.col(n).data();
      T* dxn = dx.col(n).data();
      const std::int32_t* rn = route_.col(n).data();
      geometry::for_each_window(
          [&](Index window, Index o) { dxn[window + offset(rn[o])] += dyn[o]; });
    }
    return grad_in_.cview();
  }

  template <class F>
  void for_each_workspace(F&& f) {
    pool_.for_each_workspace(f);
    f(out_);
    f(grad_in_);
  }

 private:
  static Index offset(std::int32_t at) { return Index{at / K} * geometry::in_width + at % K; }
  void check_batch(Index cols) const {
    if (cols != route_.cols()) {
      throw shape_error("RoutedMaxPool2D: the route was recorded for a batch of " +
                        std::to_string(route_.cols()) + " samples, this batch has " +
                        std::to_string(cols));
    }
  }

  Pool pool_;
  PoolRoute route_;
  Workspace<T> out_;
  Workspace<T> grad_in_;
};

/// Layer spec: K x K max pooling with stride S whose choices can be imposed (RoutedMaxPool2DLayer).
template <int K, int S = K>
struct RoutedMaxPool2D {
  template <StaticShape In>
  static constexpr bool accepts = MaxPool2D<K, S>::template accepts<In>;
  template <class T, StaticShape In>
  using layer = RoutedMaxPool2DLayer<T, In, K, S>;
};

template <class L>
inline constexpr bool is_routed_max_pool_layer_v = false;
template <class T, ImageShape In, int K, int S>
inline constexpr bool is_routed_max_pool_layer_v<RoutedMaxPool2DLayer<T, In, K, S>> = true;

namespace detail {
template <class Spec>
struct relu_to_gated {
  using type = Spec;
};
template <>
struct relu_to_gated<ReLU> {
  using type = GatedReLU;
};
template <int K, int S>
struct relu_to_gated<MaxPool2D<K, S>> {
  using type = RoutedMaxPool2D<K, S>;
};
}  // namespace detail

/// Net with every ReLU a GatedReLU and every MaxPool2D a RoutedMaxPool2D: same layers, paths and
/// tensor names otherwise; with nothing imposed it computes what Net computes.
template <class Net, class U = typename Net::scalar_type>
using gated_twin_t = transform_specs_t<Net, detail::relu_to_gated, U>;

/// Imposes the recorded gates on every GatedReLU of `twin`, matched by path. Throws
/// argument_error when a GatedReLU has no recorded gate, shape_error when sizes differ; the twin
/// is unchanged on error.
template <class Net, class T>
void impose_gates(Net& twin, const GateRecorder<T>& recorder) {
  using U = typename Net::scalar_type;
  for_each_layer(std::as_const(twin), [&](std::string_view path, const auto& layer) {
    using L = std::remove_cvref_t<decltype(layer)>;
    if constexpr (is_gated_relu_layer_v<L>) {
      if (recorder.gate(path).rows() != L::input_shape::size) {
        throw shape_error("impose_gates: the gates recorded at '" + std::string(path) + "' have " +
                          std::to_string(recorder.gate(path).rows()) +
                          " values per sample, the twin's layer " +
                          std::to_string(L::input_shape::size));
      }
    }
  });
  for_each_layer(twin, [&](std::string_view path, auto& layer) {
    if constexpr (is_gated_relu_layer_v<std::remove_cvref_t<decltype(layer)>>) {
      layer.set_gate(recorder.gate(path).template cast<U>());
    }
  });
}

/// Imposes all-ones gates for a batch of `batch` samples on every GatedReLU of `twin`: each one
/// the identity (a network with "no activations").
template <class Net>
void open_gates(Net& twin, Index batch) {
  using U = typename Net::scalar_type;
  for_each_layer(twin, [&](std::string_view, auto& layer) {
    using L = std::remove_cvref_t<decltype(layer)>;
    if constexpr (is_gated_relu_layer_v<L>) {
      layer.set_gate(Matrix<U>::Ones(L::input_shape::size, batch));
    }
  });
}

/// Imposes the recorded pooling choices on every RoutedMaxPool2D of `twin`, matched by path.
/// Throws argument_error when one has no recorded route, shape_error when sizes differ; the twin
/// is unchanged on error.
template <class Net, class T>
void impose_routes(Net& twin, const GateRecorder<T>& recorder) {
  for_each_layer(std::as_const(twin), [&](std::string_view path, const auto& layer) {
    using L = std::remove_cvref_t<decltype(layer)>;
    if constexpr (is_routed_max_pool_layer_v<L>) {
      if (recorder.route(path).rows() != L::output_shape::size) {
        throw shape_error("impose_routes: the pooling choices recorded at '" + std::string(path) +
                          "' have " + std::to_string(recorder.route(path).rows()) +
                          " values per sample, the twin's layer " +
                          std::to_string(L::output_shape::size));
      }
    }
  });
  for_each_layer(twin, [&](std::string_view path, auto& layer) {
    if constexpr (is_routed_max_pool_layer_v<std::remove_cvref_t<decltype(layer)>>) {
      layer.set_route(recorder.route(path));
    }
  });
}

}  // namespace edgescale::nn
