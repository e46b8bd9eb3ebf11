// edgescale/prune/collapse.hpp — layer collapse: does a pruned network still connect its input
// to its output, and which layer cut it?
//
//   prune::ConnectivityReport c = prune::connectivity(net);
//   if (c.collapsed()) std::cerr << "layer " << c.cut()->path << " cut every path\n";
//   for (const auto& l : c.layers) use(l.path, l.density(), l.reachable, l.alive);
//
// Layer collapse (Tanaka et al. 2020, "Pruning neural networks without any data by iteratively
// conserving synaptic flow") is a pruned network whose output no longer depends on its input:
// some layer keeps no weight between the units that reach it and the units after it. It is
// defined here by reachability through the masks:
//   - a unit of the input is reachable; a unit after layer l is reachable if a kept weight (mask
//     entry 1, whatever its value; a tensor without a mask keeps all) joins a reachable unit
//     before l to it; units are values of a feature vector and channels of an image;
//   - a unit is alive if it is reachable and some path of kept weights leads on from it to an
//     output unit (co-reachability, the same rule run backwards from the output);
//   - biases do not keep a unit reachable: a unit fed by its bias alone is a constant, no path
//     from the input. Collapse concerns weights, as in Tanaka et al.; BatchNorm's scale, never
//     pruned, passes its channel through.
// Per layer kind: Dense joins input j to output i through W[i, j]; Conv2D joins channel c to
// channel o through any kept entry of the kernel W[o, c, :, :] (channel level: which pixels the
// kept taps reach is not tracked); max and average pooling pass each channel through;
// activations, BatchNorm and Flatten pass each unit through; a Residual block y = x + body(x)
// reaches what its input or its body reaches, so a body that collapses does not cut the block.
// Any other layer is taken to join every input to every output unless it has prunable weights
// and keeps none of them: it can miss a collapse inside it, never report a false one.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/batchnorm.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/gates.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/residual.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace edgescale::prune {

/// One layer of a ConnectivityReport, in nn::for_each_layer order (a Residual block before the
/// layers of its body).
struct LayerConnectivity {
  std::string path;        ///< "3", or "2.body.1" inside a Residual
  int depth = 0;           ///< 0 for the network's own layers, 1 inside a Residual body, ...
  Index weights = 0;       ///< prunable weights of the layer (its body's, for a Residual)
  Index kept = 0;          ///< of which the masks keep
  Index units = 0;         ///< output units: values of a vector, channels of an image
  Index reachable = 0;     ///< output units reachable from the input through kept weights
  Index alive = 0;         ///< reachable output units with a path on to the network's output
  bool collapsed = false;  ///< this layer cut the path: a reachable input, no reachable output
  [[nodiscard]] double density() const {
    return weights == 0 ? 1.0 : static_cast<double>(kept) / static_cast<double>(weights);
  }
};

/// Whether a network connects its input to its output through its masks, layer by layer.
struct ConnectivityReport {
  std::vector<LayerConnectivity> layers;
  Index inputs = 0;        ///< input units (values, or channels of an image)
  Index inputs_alive = 0;  ///< input units with a path to the output
  Index outputs = 0;
  Index outputs_reachable = 0;  ///< output units with a path from the input

  /// No output unit depends on the input through kept weights.
  [[nodiscard]] bool collapsed() const { return outputs_reachable == 0; }
  /// The layer of the network (depth 0) that cut every path, or nullptr when none did.
  [[nodiscard]] const LayerConnectivity* cut() const {
    const auto it = std::find_if(layers.begin(), layers.end(), [](const LayerConnectivity& l) {
      return l.depth == 0 && l.collapsed;
    });
    return it == layers.end() ? nullptr : &*it;
  }
};

namespace detail::collapse {

/// One flag per value of a sample (the same flag over an image channel's plane).
using Units = std::vector<std::uint8_t>;

template <class L>
inline constexpr bool is_residual_v = false;
template <class T, class S, class... Specs>
inline constexpr bool is_residual_v<nn::ResidualLayer<T, S, Specs...>> = true;

/// Layers that pass each value through (y_i depends on x_i only, as far as masks go).
template <class L>
inline constexpr bool passes_units_v = false;
template <class T, class S, class Fn>
inline constexpr bool passes_units_v<nn::ElementwiseLayer<T, S, Fn>> = true;
template <class T, class S>
inline constexpr bool passes_units_v<nn::GatedReluLayer<T, S>> = true;
template <class T, class S>
inline constexpr bool passes_units_v<nn::BatchNormLayer<T, S>> = true;
template <class T, class S>
inline constexpr bool passes_units_v<nn::FlattenLayer<T, S>> = true;

/// Layers that pass each channel through (pooling).
template <class L>
inline constexpr bool passes_channels_v = false;
template <class T, class In, int K, int S>
inline constexpr bool passes_channels_v<nn::MaxPool2DLayer<T, In, K, S>> = true;
template <class T, class In, int K, int S>
inline constexpr bool passes_channels_v<nn::AvgPool2DLayer<T, In, K, S>> = true;

/// Layers whose one weight tensor (PyTorch layout {out, in, ...}) joins input channel c to output
/// channel o when an entry of W[o, c, ...] is kept (a Dense is the case of 1 x 1 "channels").
template <class L>
inline constexpr bool joins_through_weight_v = nn::is_dense_layer_v<L> || nn::is_conv2d_layer_v<L>;

/// Channels and values per channel of a sample shape (a vector: one value per "channel").
template <class S>
struct Channels {
  static constexpr Index count = S::rank == 3 ? S::dims[0] : S::size;
  static constexpr Index plane = S::size / count;
};

template <class S>
bool any_in_channel(const Units& u, Index c) {
  const auto first = u.begin() + c * Channels<S>::plane;
  return std::any_of(first, first + Channels<S>::plane, [](std::uint8_t v) { return v != 0; });
}

template <class S>
void fill_channel(Units& u, Index c) {
  const auto first = u.begin() + c * Channels<S>::plane;
  std::fill(first, first + Channels<S>::plane, std::uint8_t{1});
}

/// Units of shape S flagged in u (channels of an image with any flagged value).
template <class S>
Index count_units(const Units& u) {
  Index n = 0;
  for (Index c = 0; c < Channels<S>::count; ++c) {
    n += any_in_channel<S>(u, c) ? 1 : 0;
  }
  return n;
}

inline bool any(const Units& u) {
  return std::any_of(u.begin(), u.end(), [](std::uint8_t v) { return v != 0; });
}

/// Prunable weights of a layer and how many its masks keep.
template <class L>
std::pair<Index, Index> kept_weights(const L& layer) {
  Index size = 0;
  Index kept = 0;
  for_each_tensor(layer, [&](std::string_view, const auto& p) {
    if (p.prunable()) {
      size += p.size();
      kept += p.masked() ? static_cast<Index>((p.mask.array() != 0).count()) : p.size();
    }
  });
  return {size, kept};
}

/// joined[o * in + c]: whether a kept entry of W[o, c, ...] joins channel c to channel o.
template <class In, class Out, class L>
std::vector<std::uint8_t> channel_links(const L& layer) {
  constexpr Index cin = Channels<In>::count;
  constexpr Index cout = Channels<Out>::count;
  const auto& w = layer.parameters()[0];  // "weight": {out, in} or {out, in, k, k}
  const Index group = w.size() / (cin * cout);
  std::vector<std::uint8_t> joined(static_cast<std::size_t>(cin * cout), 1);
  if (w.masked()) {
    for (Index oc = 0; oc < cin * cout; ++oc) {
      joined[static_cast<std::size_t>(oc)] = (w.mask.segment(oc * group, group).array() != 0).any();
    }
  }
  return joined;
}

/// The units after `layer` (input shape In, output shape Out) that `from` (before it) joins to,
/// forward (Forward = true: reachability) or the units before it that join to `from` after it
/// (co-reachability).
template <bool Forward, class In, class Out, class L>
Units propagate(const L& layer, const Units& from) {
  using From = std::conditional_t<Forward, In, Out>;
  using To = std::conditional_t<Forward, Out, In>;
  Units to(static_cast<std::size_t>(To::size), 0);
  if constexpr (passes_units_v<L>) {
    to = from;
  } else if constexpr (passes_channels_v<L>) {
    for (Index c = 0; c < Channels<To>::count; ++c) {
      if (any_in_channel<From>(from, c)) {
        fill_channel<To>(to, c);
      }
    }
  } else if constexpr (joins_through_weight_v<L>) {
    const std::vector<std::uint8_t> joined = channel_links<In, Out>(layer);
    constexpr Index cin = Channels<In>::count;
    for (Index f = 0; f < Channels<From>::count; ++f) {
      if (!any_in_channel<From>(from, f)) {
        continue;
      }
      for (Index t = 0; t < Channels<To>::count; ++t) {
        const Index o = Forward ? t : f;
        const Index c = Forward ? f : t;
        if (joined[static_cast<std::size_t>(o * cin + c)] != 0) {
          fill_channel<To>(to, t);
        }
      }
    }
  } else {
    // Unknown: every unit to every unit, unless it has weights and keeps none.
    const auto [size, kept] = kept_weights(layer);
    if (any(from) && (size == 0 || kept > 0)) {
      std::fill(to.begin(), to.end(), std::uint8_t{1});
    }
  }
  return to;
}

/// The network's layers forward: one entry per layer (and per layer of a Residual body), and the
/// reachable units after each, in `after`. Returns the units reachable after the last layer.
template <class Net, std::size_t... I>
Units forward(const Net& net, Units units, const std::string& prefix, int depth,
              std::vector<LayerConnectivity>& layers, std::vector<Units>& after,
              std::index_sequence<I...> /*layers*/) {
  (
      [&] {
        using L = typename Net::template layer_type<I>;
        using In = typename Net::template shape_after<I>;
        using Out = typename Net::template shape_after<I + 1>;
        const L& layer = net.template layer<I>();
        const std::size_t entry = layers.size();
        LayerConnectivity l;
        l.path = prefix + std::to_string(I);
        l.depth = depth;
        std::tie(l.weights, l.kept) = kept_weights(layer);
        l.units = Channels<Out>::count;
        layers.push_back(std::move(l));
        after.emplace_back();
        Units out;
        if constexpr (is_residual_v<L>) {
          using Body = typename L::body_type;
          out = forward(layer.body(), units, layers[entry].path + ".body.", depth + 1, layers,
                        after, std::make_index_sequence<Body::size>{});
          for (std::size_t k = 0; k < out.size(); ++k) {
            out[k] = static_cast<std::uint8_t>(out[k] | units[k]);  // the skip connection
          }
        } else {
          out = propagate<true, In, Out>(layer, units);
        }
        layers[entry].reachable = count_units<Out>(out);
        layers[entry].collapsed = any(units) && !any(out);
        after[entry] = out;
        units = std::move(out);
      }(),
      ...);
  return units;
}

/// The network's layers backward from `co` (units after the last layer with a path to the output):
/// fills `alive` of each entry, consuming entries from `next` down. Returns the units before the
/// first layer with a path to the output.
template <class Net, std::size_t... I>
Units backward(const Net& net, Units co, std::vector<LayerConnectivity>& layers,
               const std::vector<Units>& after, std::size_t& next,
               std::index_sequence<I...> /*layers*/) {
  constexpr std::size_t n = sizeof...(I);
  (
      [&] {
        constexpr std::size_t i = n - 1 - I;  // last layer first
        using L = typename Net::template layer_type<i>;
        using In = typename Net::template shape_after<i>;
        using Out = typename Net::template shape_after<i + 1>;
        const L& layer = net.template layer<i>();
        auto mark_alive = [&](std::size_t entry) {
          Units both = after[entry];
          for (std::size_t k = 0; k < both.size(); ++k) {
            both[k] = static_cast<std::uint8_t>(both[k] & co[k]);
          }
          layers[entry].alive = count_units<Out>(both);
        };
        if constexpr (is_residual_v<L>) {
          using Body = typename L::body_type;
          // The body's entries follow the block's: they come first, walking back.
          Units into_body = backward(layer.body(), co, layers, after, next,
                                     std::make_index_sequence<Body::size>{});
          mark_alive(--next);
          for (std::size_t k = 0; k < co.size(); ++k) {
            co[k] = static_cast<std::uint8_t>(co[k] | into_body[k]);  // the skip connection
          }
        } else {
          mark_alive(--next);
          co = propagate<false, In, Out>(layer, co);
        }
      }(),
      ...);
  return co;
}

// clang-format off
/// A network whose layers are indexed at compile time with their shapes (a Sequential).
template <class N>
concept IndexedLayers = requires(const N& net) {
  { N::size } -> std::convertible_to<std::size_t>;
  typename N::template shape_after<0>;
  net.template layer<0>();
};
// clang-format on

}  // namespace detail::collapse

/// Reachability of `net` through its masks (see the top of this file): per layer its density,
/// reachable and alive units and whether it cut the path; overall whether the output still
/// depends on the input (collapsed()) and which layer cut it (cut()).
template <detail::collapse::IndexedLayers Net>
ConnectivityReport connectivity(const Net& net) {
  namespace c = detail::collapse;
  using In = typename Net::template shape_after<0>;
  using Out = typename Net::template shape_after<Net::size>;
  ConnectivityReport r;
  std::vector<c::Units> after;
  const c::Units inputs(static_cast<std::size_t>(In::size), 1);
  const c::Units reached =
      c::forward(net, inputs, "", 0, r.layers, after, std::make_index_sequence<Net::size>{});
  std::size_t next = r.layers.size();
  const c::Units outputs(static_cast<std::size_t>(Out::size), 1);
  const c::Units used =
      c::backward(net, outputs, r.layers, after, next, std::make_index_sequence<Net::size>{});
  r.inputs = c::Channels<In>::count;
  r.inputs_alive = c::count_units<In>(used);
  r.outputs = c::Channels<Out>::count;
  r.outputs_reachable = c::count_units<Out>(reached);
  return r;
}

}  // namespace edgescale::prune
