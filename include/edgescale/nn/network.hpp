// edgescale/nn/network.hpp — what scorers, quantizers and federated strategies do to a whole
// network: visit its layers, take its features, and manage its scratch memory.
//
//   nn::for_each_layer(net, [](std::string_view path, auto& layer) {     // "0", "2.body.1", ...
//     using L = std::remove_cvref_t<decltype(layer)>;
//     if constexpr (nn::is_dense_layer_v<L>) { ... }       // pick layers by type (nn/dense.hpp)
//   });
//   auto psi = nn::features(net, x);          // layers [0, size − 1): ψ(x), no copy of any layer
//   auto h = nn::features<4>(net, x);         // layers [0, 4)
//   nn::release_workspaces(net);              // a parked client model holds no scratch memory
//   { nn::ModeScope eval(net, false); ... }   // evaluation mode here, the old mode restored after
//
// Paths: a layer's index in its network ("3"); inside a container, the container's path, its
// member name and the index ("2.body.1" in a Residual at index 2). Tensor names extend the path
// with the tensor's name ("2.body.1.weight"), as PyTorch's state_dict names them.
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

namespace edgescale::nn {

/// Calls f(std::string_view path, layer&) for every layer of `net` in forward order: a container
/// (a Residual block) first, then the layers inside it. With a const net the layers are const.
/// `layer` has its static type, so f can pick layers with `if constexpr`.
template <class Net, class F>
  requires HasSublayers<std::remove_const_t<Net>>
void for_each_layer(Net& net, F&& f) {
  std::string path;
  net.for_each_sublayer(f, path);
}

/// Marks "all layers but the last" as the default split of `features`.
inline constexpr std::size_t all_but_last = static_cast<std::size_t>(-1);

/// The output of layers [0, K) of `net` for the batch x (K defaults to all but the last layer:
/// the features a linear head sees, FED3R's ψ(x)). Runs the layers in place: no layer is copied,
/// and the result is a view into layer K − 1's output, valid until the next forward. Runs in the
/// network's current mode (call set_training(false) for evaluation-mode features).
template <std::size_t K = all_but_last, class Net>
ConstBatchView<typename Net::scalar_type> features(
    Net& net, const ConstBatchView<typename Net::scalar_type>& x) {
  constexpr std::size_t k = K == all_but_last ? Net::size - 1 : K;
  static_assert(k <= Net::size, "features<K>: K is larger than the number of layers");
  return net.template forward_prefix<k>(x);
}
template <std::size_t K = all_but_last, class Net, class Derived>
ConstBatchView<typename Net::scalar_type> features(Net& net,
                                                   const Eigen::PlainObjectBase<Derived>& x) {
  return features<K>(net, batch_view(x));
}

/// The sample shape `features<K>` returns.
template <class Net, std::size_t K = all_but_last>
using features_shape_t = typename Net::template shape_after<K == all_but_last ? Net::size - 1 : K>;

/// Frees every scratch buffer of a layer or network (outputs, im2col buffers, gradients w.r.t.
/// inputs); the next forward allocates what it needs again. Parameters are untouched.
template <class L>
void release_workspaces(L& layer) {
  if constexpr (HasWorkspaces<L>) {
    layer.for_each_workspace([](auto& workspace) { workspace.release(); });
  }
}

/// Bytes of scratch memory a layer or network holds (parameters not counted).
template <class L>
std::size_t workspace_bytes(L& layer) {
  std::size_t bytes = 0;
  if constexpr (HasWorkspaces<L>) {
    layer.for_each_workspace([&](const auto& workspace) { bytes += workspace.bytes(); });
  }
  return bytes;
}

/// Sets a network's (or layer's) training mode for a scope and restores the mode it had when the
/// scope ends, exceptions included. For a type without modes (set_training and training) it does
/// nothing.
template <class Net>
class ModeScope {
  static constexpr bool has_modes = HasTrainingMode<Net> && requires(const Net& n) {
    static_cast<bool>(n.training());
  };

 public:
  ModeScope(Net& net, bool training) : net_(net) {
    if constexpr (has_modes) {
      was_ = net.training();
      net.set_training(training);
    }
  }
  ~ModeScope() {
    if constexpr (has_modes) {
      net_.set_training(was_);
    }
  }
  ModeScope(const ModeScope&) = delete;
  ModeScope& operator=(const ModeScope&) = delete;

 private:
  Net& net_;
  bool was_ = false;
};

}  // namespace edgescale::nn
