// edgescale/nn/transform.hpp — networks whose specs are rewritten at compile time.
//
//   // every Dense and Conv2D wrapped, everything else as it was:
//   template <class Spec> struct Instrument { using type = Spec; };
//   template <int I, int O, class... Opt> struct Instrument<nn::Dense<I, O, Opt...>> {
//     using type = Counted<nn::Dense<I, O, Opt...>>;
//   };
//   using Twin = nn::transform_specs_t<Net, Instrument>;
//   Twin twin;  copy_tensors(net, twin, TensorMatch::target_extra);   // weights by name
//
// `transform_specs_t<Net, Wrap, U>` is Net with each spec S replaced by `Wrap<S>::type` and the
// scalar type U (Net's by default). Containers are rewritten inside first: a Residual's body specs
// pass through Wrap, then the rewritten Residual itself does. Input<...> markers stay. The result
// is an ordinary network: its shapes are checked again, and its tensors keep their qualified names
// as long as the wrappers keep their inner layer's tensor names, so weights move over by name
// (copy_tensors, ParameterSet). Fake quantization, mask layers, instrumentation and PX's
// gate-imposed twin (nn/gates.hpp) are such transforms; `rebind_scalar_t` is the one that changes
// only the scalar type.
#pragma once

#include <edgescale/nn/detail/spec_transform.hpp>
#include <edgescale/nn/sequential.hpp>

#include <type_traits>

namespace edgescale::nn {

namespace detail {

template <class Spec, template <class> class Wrap>
struct transform_top {
  using type = transform_spec_t<Spec, Wrap>;
};
template <int... D, template <class> class Wrap>
struct transform_top<Input<D...>, Wrap> {
  using type = Input<D...>;
};

template <class Net, template <class> class Wrap, class U>
struct transform_network;
template <class T, class... Specs, template <class> class Wrap, class U>
struct transform_network<BasicSequential<T, Specs...>, Wrap, U> {
  using type = BasicSequential<U, typename transform_top<Specs, Wrap>::type...>;
};

}  // namespace detail

/// Net with every spec S rewritten as `Wrap<S>::type` (recursing into Residual bodies), in
/// scalar type U.
template <class Net, template <class> class Wrap, class U = typename Net::scalar_type>
using transform_specs_t = typename detail::transform_network<Net, Wrap, U>::type;

/// The same network with scalar type U: `rebind_scalar_t<Net, double>` for gradient checks.
template <class Net, class U>
using rebind_scalar_t = transform_specs_t<Net, std::type_identity, U>;

}  // namespace edgescale::nn
