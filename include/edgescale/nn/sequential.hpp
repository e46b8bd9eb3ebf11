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
// split: `extractor<K>()` is layers [0, K) and `head<K>()` layers [K, N), as networks of their
// own; `set_head<K>(h)` writes a trained head back. Tensors are named "<index>.<name>", the keys
// of PyTorch's nn.Sequential state_dict.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace edgescale::nn {

/// Marker that fixes a network's input sample shape; it adds no layer.
template <int... Dims>
struct Input {
  using shape = Shape<Dims...>;
};

// clang-format 14 cannot lay out requires-clauses and concepts (see nn/concepts.hpp): the
// regions between "clang-format off" and "on" are laid out by hand.
// clang-format off
namespace detail {

template <class... X>
struct type_list {};

template <class S>
struct is_input : std::false_type {};
template <int... D>
struct is_input<Input<D...>> : std::true_type {};

template <class S>
struct input_of;
template <int... D>
struct input_of<Shape<D...>> {
  using type = Input<D...>;
};

/// The concrete layer a spec (or a concrete layer) stands for, after the previous shape S.
template <class Spec, class T, class S>
struct bound {
  using type = Spec;
};
template <class Spec, class T, class S>
  requires SpecBindsTo<Spec, T, S>
struct bound<Spec, T, S> {
  using type = typename Spec::template layer<T, S>;
};

/// Stands for "no layer failed" in the chain check.
struct no_failure {};

/// Binds Specs one after another from shape In. `valid` says whether every layer accepts the
/// shape before it; if not, `failing_spec` and `failing_input` name the first that does not.
template <class T, class In, class... Specs>
struct chain {
  static constexpr bool valid = true;
  using layers = type_list<>;
  using output_shape = In;
  using failing_spec = no_failure;
  using failing_input = In;
};

template <class Spec>
concept IsSpec = requires {
  { Spec::template accepts<Shape<1>> } -> std::convertible_to<bool>;
};

/// A spec is something that binds (has `accepts`); anything else in a Sequential must be a
/// concrete Layer. A type that is neither is always a mistake, so it stops compilation here with
/// the requirement it misses, rather than as one more shape that did not fit.
template <class Spec, bool = IsSpec<Spec>>
struct require_layer {
  static constexpr bool value = true;
};
template <class Spec>
struct require_layer<Spec, false> {
  static_assert(HasScalarType<Spec>,
                "this type in a Sequential is neither a layer spec (no `accepts`/`layer`) nor a "
                "Layer: HasScalarType is false (add `using scalar_type = float;`)");
  static_assert(HasStaticShapes<Spec>,
                "this type in a Sequential is not a Layer: HasStaticShapes is false (add "
                "`using input_shape = Shape<...>; using output_shape = Shape<...>;`)");
  static_assert(HasForward<Spec>,
                "this type in a Sequential is not a Layer: HasForward is false (add "
                "`ConstBatchView<T> forward(const ConstBatchView<T>&)`)");
  static_assert(HasBackward<Spec>,
                "this type in a Sequential is not a Layer: HasBackward is false (add "
                "`ConstBatchView<T> backward(const ConstBatchView<T>&)`)");
  static constexpr bool value = true;
};

template <class T, class In, class Spec>
struct chain_failure {
  static_assert(require_layer<Spec>::value);
  static constexpr bool valid = false;
  using layers = type_list<>;
  using output_shape = In;
  using failing_spec = Spec;
  using failing_input = In;
};

/// Satisfied when the chain is valid; otherwise the compiler's message names the first layer
/// that does not fit and the shape it was offered: "required for the satisfaction of
/// 'LayerAcceptsPreviousOutput<Spec, T, In>' [with Spec = Dense<200, 10>; T = float;
/// In = Shape<300>]".
template <class Spec, class T, class In>
concept LayerAcceptsPreviousOutput = std::is_same_v<Spec, no_failure> || AcceptsInput<Spec, T, In>;

template <class L, class List>
struct prepend;
template <class L, class... Ls>
struct prepend<L, type_list<Ls...>> {
  using type = type_list<L, Ls...>;
};

template <class T, class In, class Spec, class... Rest>
struct chain_step {
  using layer = typename bound<Spec, T, In>::type;
  using next = chain<T, typename layer::output_shape, Rest...>;
  static constexpr bool valid = next::valid;
  using layers = typename prepend<layer, typename next::layers>::type;
  using output_shape = typename next::output_shape;
  using failing_spec = typename next::failing_spec;
  using failing_input = typename next::failing_input;
};

template <class T, class In, class Spec, class... Rest>
struct chain<T, In, Spec, Rest...>
    : std::conditional_t<AcceptsInput<Spec, T, In>, chain_step<T, In, Spec, Rest...>,
                         chain_failure<T, In, Spec>> {};

/// The input shape a network of these specs takes: from Input<...>, or from the first layer.
template <class First, class... Rest>
struct network_input {
  using type = void;
};
template <class First, class... Rest>
  requires is_input<First>::value
struct network_input<First, Rest...> {
  using type = typename First::shape;
};
template <class First, class... Rest>
  requires(!is_input<First>::value && requires { typename First::input_shape; })
struct network_input<First, Rest...> {
  using type = typename First::input_shape;
};

/// Specs without a leading Input<...>.
template <class... Specs>
struct strip_input {
  using type = type_list<Specs...>;
};
template <class First, class... Rest>
  requires is_input<First>::value
struct strip_input<First, Rest...> {
  using type = type_list<Rest...>;
};

template <class T, class In, class List>
struct chain_of_list;
template <class T, class In, class... Specs>
struct chain_of_list<T, In, type_list<Specs...>> {
  using type = chain<T, In, Specs...>;
};

template <class T, class... Specs>
using network_chain = typename chain_of_list<T, typename network_input<Specs...>::type,
                                             typename strip_input<Specs...>::type>::type;

template <class List>
struct tuple_of;
template <class... Ls>
struct tuple_of<type_list<Ls...>> {
  using type = std::tuple<Ls...>;
};

/// Specs [Begin, End) of a list.
template <std::size_t Begin, std::size_t End, class List>
struct slice;
template <std::size_t Begin, std::size_t End, class... Specs>
struct slice<Begin, End, type_list<Specs...>> {
  template <std::size_t... I>
  static auto pick(std::index_sequence<I...>)
      -> type_list<std::tuple_element_t<Begin + I, std::tuple<Specs...>>...>;
  using type = decltype(pick(std::make_index_sequence<End - Begin>{}));
};

template <class T, class InputMarker, class List>
struct network_from_list;

}  // namespace detail

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

  /// Layers [0, K) as a network of their own (the feature extractor).
  template <std::size_t K>
  using extractor_type =
      typename detail::network_from_list<T, typename detail::input_of<input_shape>::type,
                                         typename detail::slice<0, K, spec_list>::type>::type;
  /// Layers [K, size) as a network of their own (the head).
  template <std::size_t K>
  using head_type = typename detail::network_from_list<
      T, typename detail::input_of<typename layer_type<K - 1>::output_shape>::type,
      typename detail::slice<K, size, spec_list>::type>::type;

  /// All parameters zero: load them, or use the initialising constructor.
  BasicSequential() = default;

  /// Draws every layer's weights with `scheme` (nn/init.hpp) from `rng`, in layer order.
  template <class Scheme>
  BasicSequential(const Scheme& scheme, Rng& rng) {
    initialize(scheme, rng);
  }

  /// Takes the given layers (used by extractor/head; layers are values).
  explicit BasicSequential(layer_tuple layers) : layers_(std::move(layers)) {}

  template <class Scheme>
  void initialize(const Scheme& scheme, Rng& rng) {
    std::apply(
        [&](auto&... layer) {
          (
              [&](auto& l) {
                if constexpr (requires { l.initialize(scheme, rng); }) {
                  l.initialize(scheme, rng);
                }
              }(layer),
              ...);
        },
        layers_);
  }

  /// x: input_shape::size x B. Returns the output, output_shape::size x B, valid until the next
  /// forward. Keep x alive and unchanged until backward.
  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    check_rows(x, input_shape::size, "input");
    return forward_from<0>(x);
  }
  template <class Derived>
  ConstBatchView<T> forward(const Eigen::PlainObjectBase<Derived>& x) {
    static_assert(std::is_same_v<typename Derived::Scalar, T>,
                  "forward: the input's scalar type differs from the network's");
    static_assert(!Derived::IsRowMajor || Derived::ColsAtCompileTime == 1,
                  "forward: the input must be column-major, one sample per column");
    return forward(ConstBatchView<T>(x.data(), x.rows(), x.cols()));
  }

  /// dy: output_shape::size x B (the loss gradient). Adds to every parameter gradient; returns
  /// the gradient w.r.t. the input.
  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    check_rows(dy, output_shape::size, "output gradient");
    return backward_from<size - 1>(dy);
  }

  /// As backward, without the input gradient (what training needs).
  void backward_parameters(const ConstBatchView<T>& dy) {
    check_rows(dy, output_shape::size, "output gradient");
    if constexpr (size == 1) {
      first_layer_parameters(dy);
    } else {
      first_layer_parameters(backward_from<size - 1, 1>(dy));
    }
  }

  /// Every tensor, buffers included: f(std::string_view qualified_name, Parameter<T>&).
  template <class F>
  void for_each_tensor(F&& f) {
    visit_tensors(*this, f);
  }
  template <class F>
  void for_each_tensor(F&& f) const {
    visit_tensors(*this, f);
  }
  /// Trained tensors only (weights, biases): what optimizers and scorers visit.
  template <class F>
  void for_each_parameter(F&& f) {
    visit_tensors(*this, [&](std::string_view name, Parameter<T>& p) {
      if (p.trainable()) {
        f(name, p);
      }
    });
  }
  template <class F>
  void for_each_parameter(F&& f) const {
    visit_tensors(*this, [&](std::string_view name, const Parameter<T>& p) {
      if (p.trainable()) {
        f(name, p);
      }
    });
  }

  /// Number of trained scalars.
  [[nodiscard]] Index parameter_count() const {
    Index n = 0;
    for_each_parameter([&](std::string_view, const Parameter<T>& p) { n += p.size(); });
    return n;
  }

  void zero_grad() {
    for_each_parameter([](std::string_view, Parameter<T>& p) { p.zero_grad(); });
  }

  /// Training (BatchNorm uses batch statistics) or evaluation mode; networks start in training.
  void set_training(bool on) {
    training_ = on;
    std::apply(
        [&](auto&... layer) {
          (
              [&](auto& l) {
                if constexpr (HasTrainingMode<std::remove_cvref_t<decltype(l)>>) {
                  l.set_training(on);
                }
              }(layer),
              ...);
        },
        layers_);
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
  /// Copies of layers [0, K) as a network.
  template <std::size_t K>
    requires(K > 0 && K < size)
  extractor_type<K> extractor() const {
    return extractor_type<K>(copy_layers<0>(std::make_index_sequence<K>{}));
  }
  /// Copies of layers [K, size) as a network.
  template <std::size_t K>
    requires(K > 0 && K < size)
  head_type<K> head() const {
    return head_type<K>(copy_layers<K>(std::make_index_sequence<size - K>{}));
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
  template <class Self, class F>
  static void visit_tensors(Self& self, F&& f) {
    std::string name;
    visit_layers_tensors(self, f, name, std::make_index_sequence<size>{});
  }

  template <class Self, class F, std::size_t... I>
  static void visit_layers_tensors(Self& self, F& f, std::string& name, std::index_sequence<I...>) {
    (visit_layer_tensors<I>(self, f, name), ...);
  }

  template <std::size_t I, class Self, class F>
  static void visit_layer_tensors(Self& self, F& f, std::string& name) {
    // Layers that only offer non-const access are visited through a const_cast; f receives a
    // const Parameter when the network is const.
    auto& l = const_cast<layer_type<I>&>(std::get<I>(self.layers_));
    using P = std::conditional_t<std::is_const_v<Self>, const Parameter<T>, Parameter<T>>;
    auto emit = [&](std::string_view local, P& p) {
      name.assign(std::to_string(I));
      name += '.';
      name += local;
      f(std::string_view(name), p);
    };
    using L = layer_type<I>;
    if constexpr (HasTensorVisitor<L>) {
      l.for_each_tensor([&](std::string_view local, Parameter<T>& p) { emit(local, p); });
    } else if constexpr (HasParameterSpan<L>) {
      for (Parameter<T>& p : l.parameters()) {
        emit(p.name, p);
      }
    }
  }

  static void check_rows(const ConstBatchView<T>& x, Index rows, const char* what) {
    if (x.rows() != rows) {
      throw shape_error("Sequential: " + std::string(what) + " has " + std::to_string(x.rows()) +
                        " rows per sample, the network expects " + std::to_string(rows));
    }
  }

  template <std::size_t I>
  ConstBatchView<T> forward_from(const ConstBatchView<T>& x) {
    if constexpr (I == size) {
      return x;
    } else {
      return forward_from<I + 1>(std::get<I>(layers_).forward(x));
    }
  }

  /// Backward through layers I, I-1, ..., Stop; returns the gradient w.r.t. layer Stop's input.
  template <std::size_t I, std::size_t Stop = 0>
  ConstBatchView<T> backward_from(const ConstBatchView<T>& dy) {
    const ConstBatchView<T> dx = std::get<I>(layers_).backward(dy);
    if constexpr (I == Stop) {
      return dx;
    } else {
      return backward_from<I - 1, Stop>(dx);
    }
  }

  void first_layer_parameters(const ConstBatchView<T>& dy) {
    auto& first = std::get<0>(layers_);
    if constexpr (HasParameterOnlyBackward<layer_type<0>>) {
      first.backward_parameters(dy);
    } else {
      first.backward(dy);
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

template <class Net, class U>
struct rebind_scalar;
template <class T, class... Specs, class U>
struct rebind_scalar<BasicSequential<T, Specs...>, U> {
  using type = BasicSequential<U, Specs...>;
};
}  // namespace detail

/// The same network with scalar type U: `rebind_scalar_t<Net, double>` for gradient checks.
template <class Net, class U>
using rebind_scalar_t = typename detail::rebind_scalar<Net, U>::type;

/// Copies every tensor of `from` into `to` (same network, any scalar types), e.g. float -> double.
template <class To, class From>
void copy_tensors(const From& from, To& to) {
  using U = typename To::scalar_type;
  std::vector<const Vector<typename From::scalar_type>*> values;
  from.for_each_tensor([&](std::string_view, const auto& p) { values.push_back(&p.value); });
  std::size_t i = 0;
  to.for_each_tensor(
      [&](std::string_view, Parameter<U>& p) { p.value = values.at(i++)->template cast<U>(); });
}

}  // namespace edgescale::nn
