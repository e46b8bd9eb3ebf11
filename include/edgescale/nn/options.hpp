// edgescale/nn/options.hpp — named options of layer specs, one spelling across layers:
//
//   nn::Dense<784, 300, nn::NoBias>
//   nn::Conv2D<16, 32, 3, nn::Stride<2>, nn::Pad<1>, nn::NoBias>   // options in any order
//
// Each option may be given once; a layer states which it accepts, and anything else is a compile
// error that names the accepted options.
#pragma once

#include <type_traits>

namespace edgescale::nn {

/// Option: stride S in both directions (default 1).
template <int S>
struct Stride {
  static_assert(S > 0, "Stride<S>: the stride must be positive");
  static constexpr int value = S;
};

/// Option: P rows and columns of zeros on every side (default 0).
template <int P>
struct Pad {
  static_assert(P >= 0, "Pad<P>: the padding must not be negative");
  static constexpr int value = P;
};

/// Option: no bias term.
struct NoBias {};

namespace detail {

template <class O>
inline constexpr bool is_stride_option = false;
template <int S>
inline constexpr bool is_stride_option<Stride<S>> = true;
template <class O>
inline constexpr bool is_pad_option = false;
template <int P>
inline constexpr bool is_pad_option<Pad<P>> = true;

// What each option sets; the neutral value for the others.
template <class O>
inline constexpr int stride_of = 1;
template <int S>
inline constexpr int stride_of<Stride<S>> = S;
template <class O>
inline constexpr int pad_of = 0;
template <int P>
inline constexpr int pad_of<Pad<P>> = P;

/// Reads an options pack: how often each option appears and the values they set.
template <class... Options>
struct layer_options {
  static constexpr int stride_count = (0 + ... + int{is_stride_option<Options>});
  static constexpr int pad_count = (0 + ... + int{is_pad_option<Options>});
  static constexpr int no_bias_count = (0 + ... + int{std::is_same_v<Options, NoBias>});
  static constexpr int known_count = stride_count + pad_count + no_bias_count;
  static constexpr bool each_once = stride_count <= 1 && pad_count <= 1 && no_bias_count <= 1;

  static constexpr int stride = (1 * ... * stride_of<Options>);
  static constexpr int pad = (0 + ... + pad_of<Options>);
  static constexpr bool bias = no_bias_count == 0;
};

}  // namespace detail

}  // namespace edgescale::nn
