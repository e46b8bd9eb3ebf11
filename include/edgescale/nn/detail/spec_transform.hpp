// edgescale/nn/detail/spec_transform.hpp — rewriting one layer spec with a user's Wrap, recursing
// into specs that hold specs of their own (Residual). nn/transform.hpp applies it to a network;
// a container spec names its rewritten self as `with_transformed_specs<Wrap>`.
#pragma once

#include <type_traits>

namespace edgescale::nn::detail {

template <class Spec, template <class> class Wrap>
struct transform_spec;

/// Spec rewritten by Wrap: its inner specs first (if it is a container), then itself.
template <class Spec, template <class> class Wrap>
using transform_spec_t = typename transform_spec<Spec, Wrap>::type;

template <class Spec, template <class> class Wrap>
struct transform_spec {
  using type = typename Wrap<Spec>::type;
};

template <class Spec, template <class> class Wrap>
  requires requires {
    typename Spec::template with_transformed_specs<Wrap>;
  }
struct transform_spec<Spec, Wrap> {
  using type = typename Wrap<typename Spec::template with_transformed_specs<Wrap>>::type;
};

}  // namespace edgescale::nn::detail
