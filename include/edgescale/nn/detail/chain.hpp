// edgescale/nn/detail/chain.hpp — the type-list machinery behind Sequential: binding specs one
// after another to a scalar type and to the shape the previous layer produces, finding the first
// layer that does not fit (for a readable compile error), and slicing spec lists (extractor, head).
// Users never name any of this; nn/sequential.hpp is its only includer.
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace edgescale::nn {

template <int... Dims>
struct Input;

// clang-format 14 cannot lay out requires-clauses and concepts (see nn/concepts.hpp): laid out by
// hand.
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

/// The sample shape after the first K layers of a tuple of layers (In when K = 0).
template <std::size_t K, class In, class Tuple>
struct shape_after {
  using type = typename std::tuple_element_t<K - 1, Tuple>::output_shape;
};
template <class In, class Tuple>
struct shape_after<0, In, Tuple> {
  using type = In;
};

template <class T, class InputMarker, class List>
struct network_from_list;

}  // namespace detail

}  // namespace edgescale::nn
// clang-format on
