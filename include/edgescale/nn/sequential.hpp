// edgescale/nn/sequential.hpp — Sequential: layers composed at compile time, shapes checked.
//
//   using Mlp = nn::Sequential<nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 100>, nn::ReLU,
//                              nn::Dense<100, 10>>;
//   Rng rng = make_stream(seed, "init");
//   Mlp net{nn::init::kaiming_normal, rng};
//   auto logits = net.forward(batch);          // 10 x B view
//   net.backward(loss_gradient);               // accumulates every Parameter::grad
//
// `Sequential<Specs...>` is float; `BasicSequential<double, Specs...>` is the same network in
// double (gradient checks, reference comparisons). A network whose first layer does not fix its
// input shape (Conv2D) starts with `Input<C, H, W>`. A shape mismatch between two layers is a
// compile error naming the layer and the shape it was offered, e.g.
//   clang: "AcceptsInput<Dense<200, 10>, float, Shape<300>> evaluated to false"; g++ names the
//   unsatisfied LayerAcceptsPreviousOutput (-fconcepts-diagnostics-depth=3 shows the layer).
//   A type that is neither a spec nor a Layer stops with the requirement it misses.
//
// Tensors are named "<index>.<name>", the keys of PyTorch's nn.Sequential state_dict; layers
// have index paths ("3", "2.body.1" inside a Residual). The handles other parts use:
//   net.for_each_tensor(f), for_each_parameter(f)   named tensors (core/concepts.hpp)
//   nn::for_each_layer(net, f)                      every layer in order, with path and type
//   net.forward(x, hooks...)                        hooks called after each layer (ForwardHook)
//   nn::features<K>(net, x)                         layers [0, K) without copying (nn/network.hpp)
//   extractor<K>(), head<K>()                       copies of layers [0, K) and [K, N) as networks
//                                                   of their own; set_head<K>(h) writes one back
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/detail/chain.hpp>
#include <edgescale/nn/overwrite.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace edgescale::nn {

/// Marker that fixes a network's input sample shape; it adds no layer.
template <int... Dims>
struct Input {
  using shape = Shape<Dims...>;
};

// clang-format 14 cannot lay out requires-clauses and concepts (see nn/concepts.hpp): the
// regions between "clang-format off" and "on" are laid out by hand.
// clang-format off

/// The specs form a network of scalar type T: the first fixes an input shape and each accepts
/// the shape its predecessor produces.
template <class T, class... Specs>
concept ComposableLayers =
    std::floating_point<T> && sizeof...(Specs) > 0 &&
    StaticShape<typename detail::network_input<Specs...>::type> &&
    detail::LayerAcceptsPreviousOutput<typename detail::network_chain<T, Specs...>::failing_spec,
                                       T, typename detail::network_chain<T, Specs...>::failing_input>;

// clang-format on

template <class T, class... Specs>
  requires ComposableLayers<T, Specs...>
class BasicSequential {
  using chain = detail::network_chain<T, Specs...>;
  using spec_list = typename detail::strip_input<Specs...>::type;
  using layer_tuple = typename detail::tuple_of<typename chain::layers>::type;

 public:
  using scalar_type = T;
  using input_shape = typename detail::network_input<Specs...>::type;
  using output_shape = typename chain::output_shape;
  static constexpr std::size_t size = std::tuple_size_v<layer_tuple>;

  template <std::size_t I>
  using layer_type = std::tuple_element_t<I, layer_tuple>;

  /// The sample shape that layers [0, K) produce (the input shape for K = 0).
  template <std::size_t K>
  using shape_after = typename detail::shape_after<K, input_shape, layer_tuple>::type;

  /// Layers [0, K) as a network of their own (the feature extractor).
  template <std::size_t K>
  using extractor_type =
      typename detail::network_from_list<T, typename detail::input_of<input_shape>::type,
                                         typename detail::slice<0, K, spec_list>::type>::type;
  /// Layers [K, size) as a network of their own (the head).
  template <std::size_t K>
  using head_type =
      typename detail::network_from_list<T, typename detail::input_of<shape_after<K>>::type,
                                         typename detail::slice<K, size, spec_list>::type>::type;

  /// All parameters zero: load them, or use the initialising constructor.
  BasicSequential() = default;

  /// Draws every layer's weights with `scheme` (nn/init.hpp) from `rng`, in layer order.
  template <class Scheme>
  BasicSequential(const Scheme& scheme, Rng& rng) {
    initialize(scheme, rng);
  }

  /// Takes the given layers (used by extractor/head; layers are values). The network's mode is
  /// that of its first layer that reports one (training when none does).
  explicit BasicSequential(layer_tuple layers) : layers_(std::move(layers)) {
    bool found = false;
    for_each_layer_here([&](auto& l) {
      if constexpr (requires { l.training(); }) {
        if (!found) {
          training_ = l.training();
          found = true;
        }
      }
    });
  }

  template <class Scheme>
  void initialize(const Scheme& scheme, Rng& rng) {
    for_each_layer_here([&](auto& l) {
      if constexpr (requires { l.initialize(scheme, rng); }) {
        l.initialize(scheme, rng);
      }
    });
  }

  // ---- forward and backward ----

  /// x: input_shape::size x B. Returns the output, output_shape::size x B, valid until the next
  /// forward. Keep x alive and unchanged until backward.
  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    check_rows(x, input_shape::size, "input");
    return forward_from<0, size>(x);
  }
  template <class Derived>
  ConstBatchView<T> forward(const Eigen::PlainObjectBase<Derived>& x) {
    return forward(as_batch(x));
  }

  // clang-format off
  /// forward(x), calling each hook after each layer (and after each layer inside a container)
  /// with the layer's path, the layer and its output; see ForwardHook in nn/concepts.hpp. A
  /// forward without hooks runs none of this.
  template <class... Hooks>
    requires(sizeof...(Hooks) > 0 && (ForwardHook<std::remove_cvref_t<Hooks>, T> && ...))
  ConstBatchView<T> forward(const ConstBatchView<T>& x, Hooks&&... hooks) {
    std::string path;
    return forward_hooked(x, path, hooks...);
  }
  template <class Derived, class... Hooks>
    requires(sizeof...(Hooks) > 0 && (ForwardHook<std::remove_cvref_t<Hooks>, T> && ...))
  ConstBatchView<T> forward(const Eigen::PlainObjectBase<Derived>& x, Hooks&&... hooks) {
    std::string path;
    return forward_hooked(as_batch(x), path, hooks...);
  }
  // clang-format on

  /// The container protocol behind forward(x, hooks...): `path` holds this network's own path
  /// followed by '.' (empty at the top) and is restored on return.
  template <class... Hooks>
  ConstBatchView<T> forward_hooked(const ConstBatchView<T>& x, std::string& path, Hooks&... hooks) {
    check_rows(x, input_shape::size, "input");
    const std::size_t base = path.size();
    const ConstBatchView<T> y = forward_hooked_from<0>(x, path, base, hooks...);
    path.resize(base);
    return y;
  }

  /// Layers [0, K) only: the features a head of layers [K, size) would take, as a view into
  /// layer K − 1's output (nn::features is the spelling for users).
  template <std::size_t K>
    requires(K <= size)
  ConstBatchView<T> forward_prefix(const ConstBatchView<T>& x) {
    check_rows(x, input_shape::size, "input");
    return forward_from<0, K>(x);
  }

  /// dy: output_shape::size x B (the loss gradient). Adds to every parameter gradient; returns
  /// the gradient w.r.t. the input.
  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    check_rows(dy, output_shape::size, "output gradient");
    return backward_from<false, size - 1>(dy);
  }

  /// As backward, without the input gradient (what training needs).
  void backward_parameters(const ConstBatchView<T>& dy) { parameter_backward<false>(dy); }

  /// backward and backward_parameters that write every parameter gradient instead of adding to
  /// it: the gradients of zero_grad() then backward, without the zeroing pass (nn/overwrite.hpp).
  /// Layers without the overwriting overloads have their gradients zeroed just before their
  /// backward.
  ConstBatchView<T> backward(const ConstBatchView<T>& dy, OverwriteGradients /*tag*/) {
    check_rows(dy, output_shape::size, "output gradient");
    return backward_from<true, size - 1>(dy);
  }
  void backward_parameters(const ConstBatchView<T>& dy, OverwriteGradients /*tag*/) {
    parameter_backward<true>(dy);
  }

  // ---- tensors ----

  /// Every tensor, buffers included: f(std::string_view qualified_name, Parameter<T>&).
  template <class F>
  void for_each_tensor(F&& f) {
    visit_tensors(*this, f);
  }
  template <class F>
  void for_each_tensor(F&& f) const {
    visit_tensors(*this, f);
  }
  /// Trained tensors only (weights, biases, scales): what optimizers and scorers visit.
  template <class F>
  void for_each_parameter(F&& f) {
    edgescale::for_each_parameter(*this, f);
  }
  template <class F>
  void for_each_parameter(F&& f) const {
    edgescale::for_each_parameter(*this, f);
  }

  /// Number of trained scalars.
  [[nodiscard]] Index parameter_count() const {
    Index n = 0;
    for_each_parameter([&](std::string_view, const Parameter<T>& p) { n += p.size(); });
    return n;
  }

  void zero_grad() { zero_gradients(*this); }

  // ---- layers ----

  /// The container protocol behind nn::for_each_layer: f(path, layer) for each layer in order,
  /// then for the layers inside it if it is a container. `path` holds this network's own path
  /// followed by '.' (empty at the top) and is restored on return.
  template <class F>
  void for_each_sublayer(F&& f, std::string& path) {
    visit_sublayers(*this, f, path);
  }
  template <class F>
  void for_each_sublayer(F&& f, std::string& path) const {
    visit_sublayers(*this, f, path);
  }

  /// f(Workspace<U>&) for every layer's scratch buffers (nn::release_workspaces).
  template <class F>
  void for_each_workspace(F&& f) {
    for_each_layer_here([&](auto& l) {
      if constexpr (HasWorkspaces<std::remove_cvref_t<decltype(l)>>) {
        l.for_each_workspace(f);
      }
    });
  }

  /// Training (BatchNorm uses batch statistics) or evaluation mode; networks start in training.
  void set_training(bool on) {
    training_ = on;
    for_each_layer_here([&](auto& l) {
      if constexpr (HasTrainingMode<std::remove_cvref_t<decltype(l)>>) {
        l.set_training(on);
      }
    });
  }
  [[nodiscard]] bool training() const { return training_; }

  template <std::size_t I>
  layer_type<I>& layer() {
    return std::get<I>(layers_);
  }
  template <std::size_t I>
  const layer_type<I>& layer() const {
    return std::get<I>(layers_);
  }

  // clang-format off
  /// Copies of layers [0, K) as a network, in this network's mode.
  template <std::size_t K>
    requires(K > 0 && K < size)
  extractor_type<K> extractor() const {
    extractor_type<K> part(copy_layers<0>(std::make_index_sequence<K>{}));
    part.set_training(training_);
    return part;
  }
  /// Copies of layers [K, size) as a network, in this network's mode.
  template <std::size_t K>
    requires(K > 0 && K < size)
  head_type<K> head() const {
    head_type<K> part(copy_layers<K>(std::make_index_sequence<size - K>{}));
    part.set_training(training_);
    return part;
  }
  /// Writes a head (for instance one trained alone) back into layers [K, size).
  template <std::size_t K>
    requires(K > 0 && K < size)
  void set_head(const head_type<K>& h) {
    assign_layers<K>(h, std::make_index_sequence<size - K>{});
  }
  /// Writes an extractor back into layers [0, K).
  template <std::size_t K>
    requires(K > 0 && K < size)
  void set_extractor(const extractor_type<K>& e) {
    assign_layers<0>(e, std::make_index_sequence<K>{});
  }
  // clang-format on

 private:
  template <class Derived>
  static ConstBatchView<T> as_batch(const Eigen::PlainObjectBase<Derived>& x) {
    static_assert(std::is_same_v<typename Derived::Scalar, T>,
                  "forward: the input's scalar type differs from the network's");
    static_assert(!Derived::IsRowMajor || Derived::ColsAtCompileTime == 1,
                  "forward: the input must be column-major, one sample per column");
    return ConstBatchView<T>(x.data(), x.rows(), x.cols());
  }

  /// f(layer) for each layer of this network (not recursing into containers).
  template <class F>
  void for_each_layer_here(F&& f) {
    std::apply([&](auto&... layer) { (f(layer), ...); }, layers_);
  }

  template <class Self, class F>
  static void visit_tensors(Self& self, F& f) {
    std::string name;
    visit_tensors_of(self, f, name, std::make_index_sequence<size>{});
  }

  template <class Self, class F, std::size_t... I>
  static void visit_tensors_of(Self& self, F& f, std::string& name, std::index_sequence<I...>) {
    (visit_layer_tensors<I>(self, f, name), ...);
  }

  template <std::size_t I, class Self, class F>
  static void visit_layer_tensors(Self& self, F& f, std::string& name) {
    edgescale::for_each_tensor(std::get<I>(self.layers_), [&](std::string_view local, auto& p) {
      name.assign(std::to_string(I));
      name += '.';
      name += local;
      f(std::string_view(name), p);
    });
  }

  template <class Self, class F>
  static void visit_sublayers(Self& self, F& f, std::string& path) {
    const std::size_t base = path.size();
    visit_sublayers_of(self, f, path, base, std::make_index_sequence<size>{});
    path.resize(base);
  }

  template <class Self, class F, std::size_t... I>
  static void visit_sublayers_of(Self& self, F& f, std::string& path, std::size_t base,
                                 std::index_sequence<I...>) {
    (visit_sublayer<I>(self, f, path, base), ...);
  }

  template <std::size_t I, class Self, class F>
  static void visit_sublayer(Self& self, F& f, std::string& path, std::size_t base) {
    auto& l = std::get<I>(self.layers_);
    path.resize(base);
    path += std::to_string(I);
    f(std::string_view(path), l);
    if constexpr (HasSublayers<layer_type<I>>) {
      path += '.';
      l.for_each_sublayer(f, path);
    }
  }

  static void check_rows(const ConstBatchView<T>& x, Index rows, const char* what) {
    if (x.rows() != rows) {
      throw shape_error("Sequential: " + std::string(what) + " has " + std::to_string(x.rows()) +
                        " rows per sample, the network expects " + std::to_string(rows));
    }
  }

  /// Forward through layers [I, End).
  template <std::size_t I, std::size_t End>
  ConstBatchView<T> forward_from(const ConstBatchView<T>& x) {
    if constexpr (I == End) {
      return x;
    } else {
      return forward_from<I + 1, End>(std::get<I>(layers_).forward(x));
    }
  }

  template <std::size_t I, class... Hooks>
  ConstBatchView<T> forward_hooked_from(const ConstBatchView<T>& x, std::string& path,
                                        std::size_t base, Hooks&... hooks) {
    if constexpr (I == size) {
      return x;
    } else {
      auto& l = std::get<I>(layers_);
      path.resize(base);
      path += std::to_string(I);
      const ConstBatchView<T> y = [&] {
        if constexpr (HasSublayers<layer_type<I>>) {
          const std::size_t own = path.size();
          path += '.';
          const ConstBatchView<T> out = l.forward_hooked(x, path, hooks...);
          path.resize(own);
          return out;
        } else {
          return ConstBatchView<T>(l.forward(x));
        }
      }();
      (hooks(std::string_view(path), std::as_const(l), y), ...);
      return forward_hooked_from<I + 1>(y, path, base, hooks...);
    }
  }

  /// Backward through layers I, I-1, ..., Stop, each adding to its gradients or (Overwrite)
  /// writing them; returns the gradient w.r.t. layer Stop's input.
  template <bool Overwrite, std::size_t I, std::size_t Stop = 0>
  ConstBatchView<T> backward_from(const ConstBatchView<T>& dy) {
    auto& layer = std::get<I>(layers_);
    const ConstBatchView<T> dx = [&]() -> ConstBatchView<T> {
      if constexpr (Overwrite) {
        return backward_overwriting(layer, dy);
      } else {
        return layer.backward(dy);
      }
    }();
    if constexpr (I == Stop) {
      return dx;
    } else {
      return backward_from<Overwrite, I - 1, Stop>(dx);
    }
  }

  /// The parameter gradients of every layer, the first without its input gradient.
  template <bool Overwrite>
  void parameter_backward(const ConstBatchView<T>& dy) {
    check_rows(dy, output_shape::size, "output gradient");
    auto& first = std::get<0>(layers_);
    const ConstBatchView<T> dy0 = [&]() -> ConstBatchView<T> {
      if constexpr (size == 1) {
        return dy;
      } else {
        return backward_from<Overwrite, size - 1, 1>(dy);
      }
    }();
    if constexpr (Overwrite) {
      backward_parameters_overwriting(first, dy0);
    } else if constexpr (HasParameterOnlyBackward<layer_type<0>>) {
      first.backward_parameters(dy0);
    } else {
      first.backward(dy0);
    }
  }

  template <std::size_t Offset, std::size_t... I>
  auto copy_layers(std::index_sequence<I...>) const {
    return std::make_tuple(std::get<Offset + I>(layers_)...);
  }
  template <std::size_t Offset, class Part, std::size_t... I>
  void assign_layers(const Part& part, std::index_sequence<I...>) {
    ((std::get<Offset + I>(layers_) = part.template layer<I>()), ...);
  }

  layer_tuple layers_{};
  bool training_ = true;
};

/// A float network: the common form.
template <class... Specs>
using Sequential = BasicSequential<float, Specs...>;

namespace detail {
template <class T, class InputMarker, class... Specs>
struct network_from_list<T, InputMarker, type_list<Specs...>> {
  using type = BasicSequential<T, InputMarker, Specs...>;
};
}  // namespace detail

}  // namespace edgescale::nn
