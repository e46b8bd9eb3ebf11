// edgescale/nn/concepts.hpp — the plug-in points of the network core: Layer, LayerSpec, Network,
// ForwardHook, Loss, Optimizer, GradientHook.
//
// Each concept is a conjunction of small named requirements, so that a type that does not model
// one reads "`MyLayer` does not satisfy `Layer` because `HasBackward<MyLayer>` is false" rather
// than an instantiation trace. Everything here works on `ConstBatchView<T>`, a map of a
// features x batch column-major matrix (see core/tensor.hpp for the layout).
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/tensor.hpp>

#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

// clang-format 14 cannot lay out C++20 concepts and requires-clauses (it glues `&&` to its
// operands and joins a requires-clause to the declaration after it): this file is laid out by
// hand, in the style of .clang-format.
// clang-format off
namespace edgescale::nn {

// ---------------------------------------------------------------------------------------------
// Layer: a concrete, typed layer.
//
// A layer owns its parameters and the workspaces of its outputs, so a training step allocates
// nothing once the largest batch has been seen; it returns views into those workspaces. It knows
// its sample shapes at compile time (`input_shape`, `output_shape`), which is what lets a
// `Sequential` check a whole network's shapes before it runs. The batch size is always dynamic.
//
//   forward(x)   x: input_shape::size x B  ->  output_shape::size x B (a view, valid until the
//                next forward). The input must stay valid and unchanged until backward.
//   backward(dy) dy: output_shape::size x B -> dx: input_shape::size x B; *adds* the parameter
//                gradients of this batch to each Parameter::grad (zero them between steps).
//
// Optional members, detected at compile time:
//   for_each_tensor(f) or parameters()     every tensor (trained or buffer) of the layer: the
//                                          named-tensor contract of core/concepts.hpp. Absent: no
//                                          parameters.
//   backward_parameters(dy)                parameter gradients only, no dx: the first layer of a
//                                          network skips the input gradient this way.
//   set_training(bool)                     train/eval behaviour (BatchNorm).
//   initialize(scheme, rng)                draw initial weights (see nn/init.hpp).
//   for_each_workspace(f)                  f(Workspace<U>&) for each scratch buffer, so a network
//                                          can report and release them (nn/network.hpp).
//   for_each_sublayer(f, path)             a container (Residual, a nested network): visits its
//   forward_hooked(x, path, hooks...)      layers and runs its forward with hooks (see Network).
// ---------------------------------------------------------------------------------------------

template <class L>
concept HasStaticShapes = requires {
  typename L::input_shape;
  typename L::output_shape;
} && StaticShape<typename L::input_shape> && StaticShape<typename L::output_shape>;

template <class L>
concept HasForward = HasScalarType<L> &&
    requires(L& layer, const ConstBatchView<typename L::scalar_type>& x) {
  { layer.forward(x) } -> std::convertible_to<ConstBatchView<typename L::scalar_type>>;
};

template <class L>
concept HasBackward = HasScalarType<L> &&
    requires(L& layer, const ConstBatchView<typename L::scalar_type>& dy) {
  { layer.backward(dy) } -> std::convertible_to<ConstBatchView<typename L::scalar_type>>;
};

template <class L>
concept HasParameterOnlyBackward = HasScalarType<L> &&
    requires(L& layer, const ConstBatchView<typename L::scalar_type>& dy) {
  layer.backward_parameters(dy);
};

template <class L>
concept HasTrainingMode = requires(L& layer, bool on) { layer.set_training(on); };

template <class L>
concept HasWorkspaces = requires(L& layer) {
  layer.for_each_workspace([](auto& /*workspace*/) {});
};

/// A concrete layer: scalar type, static sample shapes, forward and backward (see above).
template <class L>
concept Layer = HasScalarType<L> && HasStaticShapes<L> && HasForward<L> && HasBackward<L>;

// ---------------------------------------------------------------------------------------------
// LayerSpec: what users write inside `Sequential<...>`.
//
// `Dense<784, 300>` or `ReLU` say what a layer is, not its scalar type or (for shape-agnostic
// layers) its input shape: the network binds each spec to the scalar type and to the shape that
// the previous layer produces, so one spelling serves float training and double gradient checks.
//
//   template <class T, StaticShape In> using layer = ...;       the concrete Layer
//   template <StaticShape In> static constexpr bool accepts = ...; whether In is a valid input
//   using input_shape = Shape<...>;                             optional: the shape it needs when
//                                                               it is first in a network
// A concrete Layer can also stand in a Sequential directly, when its scalar type matches and its
// input size equals what the previous layer produces.
// ---------------------------------------------------------------------------------------------

template <class Spec, class In>
concept SpecAcceptsInput = StaticShape<In> && requires {
  { Spec::template accepts<In> } -> std::convertible_to<bool>;
} && Spec::template accepts<In>;

template <class Spec, class T, class In>
concept SpecBindsTo = SpecAcceptsInput<Spec, In> && requires {
  typename Spec::template layer<T, In>;
} && Layer<typename Spec::template layer<T, In>>;

/// A layer spec or a concrete layer that can follow a layer producing samples of shape `In`.
template <class Spec, class T, class In>
concept AcceptsInput =
    SpecBindsTo<Spec, T, In> ||
    (Layer<Spec> && std::same_as<typename Spec::scalar_type, T> &&
     Spec::input_shape::size == In::size);

// ---------------------------------------------------------------------------------------------
// ForwardHook: an observer called after each layer of a forward pass with
//   hook(std::string_view path, const auto& layer, const ConstBatchView<T>& output)
// where path is the layer's index path ("3", or "2.body.1" inside a Residual; a container is
// called after its own layers) and `layer` its static type, so a hook picks layers with
// `if constexpr`. Hooks see every layer, so they take the layer as `const auto&`. Quantization
// observers and pruning diagnostics are hooks; a forward without hooks runs none of this.
// ---------------------------------------------------------------------------------------------
namespace detail {
/// Stands for "some layer" when checking that a hook accepts any layer.
template <class T>
struct AnyLayer {
  using scalar_type = T;
};
/// Stands for "some hook" and "some layer visitor" when checking a container.
struct AnyVisitor {
  template <class... Args>
  void operator()(const Args&... /*args*/) const {}
};
}  // namespace detail

template <class H, class T>
concept ForwardHook = requires(H& hook, std::string_view path, const detail::AnyLayer<T>& layer,
                               const ConstBatchView<T>& output) {
  hook(path, layer, output);
};

/// A container of layers: visits them with their index paths, and runs its forward with hooks.
/// `path` is the container's own path followed by '.', or empty at the top.
template <class L>
concept HasSublayers = HasScalarType<L> &&
    requires(L& layer, std::string& path, const ConstBatchView<typename L::scalar_type>& x,
             detail::AnyVisitor& visitor) {
  layer.for_each_sublayer(visitor, path);
  { layer.forward_hooked(x, path, visitor) } -> std::convertible_to<ConstBatchView<typename L::scalar_type>>;
};

// ---------------------------------------------------------------------------------------------
// Network: a composition of layers with the same contract as a layer, whose tensors can be
// visited by qualified name ("0.weight", as PyTorch's state_dict names them) — the handle that
// pruning, quantization and federated learning use — and whose mode can be switched.
// for_each_tensor visits every tensor (buffers too, for saving); for_each_parameter the trained
// ones (for optimizers and scorers). Its layers are visited in order with their paths
// (for_each_layer in nn/network.hpp) and its forward takes hooks.
// ---------------------------------------------------------------------------------------------
template <class N>
concept Network = Layer<N> && HasTensorVisitor<N> && HasTrainingMode<N> && HasSublayers<N> &&
    requires(N& net, const N& cnet) {
  net.zero_grad();
  net.for_each_parameter([](std::string_view, Parameter<typename N::scalar_type>&) {});
  cnet.for_each_tensor([](std::string_view, const Parameter<typename N::scalar_type>&) {});
};

// ---------------------------------------------------------------------------------------------
// Loss: the mean over the batch of a per-sample loss, and its gradient w.r.t. the network output,
// written into a caller-owned view (so a training step allocates nothing). `Target` is what the
// loss compares against: class labels for cross-entropy, a batch of values for MSE.
// A TrainingLoss also names that type, `target_type<T>`, so a Trainer knows what a step takes.
// ---------------------------------------------------------------------------------------------
template <class L, class T, class Target>
concept Loss = std::floating_point<T> &&
    requires(const L& loss, const ConstBatchView<T>& output, const Target& target,
             BatchView<T>& grad) {
  { loss.value(output, target) } -> std::convertible_to<T>;
  { loss.value_and_gradient(output, target, grad) } -> std::convertible_to<T>;
};

template <class L, class T>
concept TrainingLoss = requires { typename L::template target_type<T>; } &&
                       Loss<L, T, typename L::template target_type<T>>;

/// Class labels, one per column of the output.
using Labels = std::span<const std::int32_t>;

// ---------------------------------------------------------------------------------------------
// Optimizer: one update of every trainable parameter of a network from its accumulated
// gradients, keeping any per-parameter state itself. It must leave masked entries exactly zero
// (BasicOptimizer does this for every update rule). The learning rate is exposed so that
// schedules can drive it.
// ---------------------------------------------------------------------------------------------
template <class O, class N>
concept Optimizer = Network<N> && requires(O& opt, N& net, double lr) {
  opt.step(net);
  { opt.learning_rate() } -> std::convertible_to<double>;
  opt.set_learning_rate(lr);
};

// ---------------------------------------------------------------------------------------------
// GradientHook: called with the network between backward and the optimizer step, when every
// Parameter::grad holds the batch's gradient, to correct it: FedProx adds μ(θ − θ_global),
// SCAFFOLD adds c − c_i, clipping rescales. hook(net).
// ---------------------------------------------------------------------------------------------
template <class H, class N>
concept GradientHook = Network<N> && std::invocable<H&, N&>;

}  // namespace edgescale::nn
// clang-format on
