// edgescale/nn/pool.hpp — 2-D max and average pooling over (C, H, W) samples, no padding.
//
//   nn::MaxPool2D<2>       // 2 x 2 windows, stride 2: (C, H, W) -> (C, H/2, W/2)
//   nn::AvgPool2D<3, 1>    // 3 x 3 windows, stride 1
//
// Hout = floor((H − K) / S) + 1, likewise Wout (PyTorch's ceil_mode=False).
//   max:  y = max of the window; the first maximum in row-major window order wins ties and a NaN
//         wins over numbers (as PyTorch). dx gets dy at that position (summed when windows
//         overlap).
//   mean: y = Σ window / K²; dx gets dy / K² at every position of the window.
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/detail/window.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

namespace edgescale::nn {

namespace detail {

/// The (C, H, W) -> (C, Hout, Wout) geometry of a K x K pooling window with stride S.
template <ImageShape In, int K, int S>
struct pool_geometry {
  static_assert(K > 0 && S > 0, "pooling: window size and stride must be positive");
  static_assert(In::dims[1] >= K && In::dims[2] >= K,
                "pooling: the window is larger than the input");
  static constexpr int channels = In::dims[0];
  static constexpr int in_height = In::dims[1];
  static constexpr int in_width = In::dims[2];
  static constexpr int out_height = window_extent(in_height, K, S, 0);
  static constexpr int out_width = window_extent(in_width, K, S, 0);
  using output_shape = Shape<channels, out_height, out_width>;
  static constexpr Index plane = Index{in_height} * in_width;

  /// Calls f(window_offset, output_index) for every output value of one sample, where
  /// window_offset is the index (within the sample) of the window's top-left input value.
  template <class F>
  static void for_each_window(F&& f) {
    Index o = 0;
    for (int c = 0; c < channels; ++c) {
      for (int oy = 0; oy < out_height; ++oy) {
        for (int ox = 0; ox < out_width; ++ox, ++o) {
          f(c * plane + Index{oy * S} * in_width + ox * S, o);
        }
      }
    }
  }
};

}  // namespace detail

/// Max pooling; keeps the position of each maximum for backward.
///
/// Forward runs over output rows: each window's maximum and its position ky·K + kx in the window,
/// in a branch-free loop of constant trip counts that the compiler vectorises. Backward, when
/// the windows tile the input exactly (S = K, H and W multiples of K), writes every input
/// gradient once (dy at the window's maximum, 0 elsewhere); otherwise it zeroes dx and adds each
/// dy at its maximum (windows may overlap or leave inputs out).
template <class T, ImageShape In, int K, int S = K>
class MaxPool2DLayer {
  using geometry = detail::pool_geometry<In, K, S>;
  static constexpr int channels = geometry::channels;
  static constexpr int in_width = geometry::in_width;
  static constexpr int out_height = geometry::out_height;
  static constexpr int out_width = geometry::out_width;
  /// Every input value lies in exactly one window.
  static constexpr bool tiles =
      S == K && geometry::in_height % K == 0 && geometry::in_width % K == 0;

 public:
  using Position = std::int32_t;  ///< ky·K + kx within the window
  using scalar_type = T;
  using input_shape = In;
  using output_shape = typename geometry::output_shape;

  MaxPool2DLayer() {
    out_.reserve(output_shape::size, 1);
    argmax_.reserve(output_shape::size, 1);
  }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    batch_ = x.cols();
    auto y = out_.resize(output_shape::size, batch_);
    Position* const argmax = argmax_.resize(output_shape::size, batch_).data();
    for (Index n = 0; n < batch_; ++n) {
      const T* xn = x.col(n).data();
      T* yn = y.col(n).data();
      Position* an = argmax + n * output_shape::size;
      for (int c = 0; c < channels; ++c) {
        for (int oy = 0; oy < out_height; ++oy) {
          const Index o = (Index{c} * out_height + oy) * out_width;
          max_row(xn + c * geometry::plane + Index{oy} * S * in_width, yn + o, an + o);
        }
      }
    }
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    auto dx = grad_in_.resize(In::size, batch_);
    for (Index n = 0; n < batch_; ++n) {
      const T* dyn = dy.col(n).data();
      T* dxn = dx.col(n).data();
      const Position* an = argmax_.cview().col(n).data();
      if constexpr (!tiles) {
        std::fill_n(dxn, In::size, T(0));
      }
      for (int c = 0; c < channels; ++c) {
        for (int oy = 0; oy < out_height; ++oy) {
          const Index o = (Index{c} * out_height + oy) * out_width;
          T* window_row = dxn + c * geometry::plane + Index{oy} * S * in_width;
          if constexpr (tiles) {
            // Row by row with ky a constant: GCC vectorises spread_row<ky> but not a loop over ky.
            spread_rows(dyn + o, an + o, window_row, std::make_integer_sequence<int, K>{});
          } else {
            for (int ox = 0; ox < out_width; ++ox) {
              const Position at = an[o + ox];
              window_row[Index{at / K} * in_width + ox * S + at % K] += dyn[o + ox];
            }
          }
        }
      }
    }
    return grad_in_.cview();
  }

  /// Where each maximum of the last forward was: per output value and sample (output_shape::size
  /// x batch), its position ky·K + kx in the window. Gate recording (nn/gates.hpp) reads it.
  [[nodiscard]] ConstBatchView<Position> positions() const { return argmax_.cview(); }

  /// The output, argmax and input-gradient buffers (see Workspace; nn::release_workspaces).
  template <class F>
  void for_each_workspace(F&& f) {
    f(out_);
    f(argmax_);
    f(grad_in_);
  }

 private:
  // The pointers of these two kernels never alias (the layer's own workspaces and its input);
  // `__restrict` (GCC, Clang, MSVC) lets the compiler vectorise them without overlap tests.

  /// One output row from the K input rows under it: each window's maximum (the first one in
  /// row-major window order; a NaN wins over numbers) and its position.
  static void max_row(const T* __restrict in, T* __restrict out, Position* __restrict where) {
    for (int ox = 0; ox < out_width; ++ox) {
      const T* window = in + ox * S;
      T best = window[0];
      Position at = 0;
      for (int ky = 0; ky < K; ++ky) {
        for (int kx = 0; kx < K; ++kx) {
          const T v = window[ky * in_width + kx];
          const bool take = v > best || std::isnan(v);
          best = take ? v : best;
          at = take ? Position{ky * K + kx} : at;
        }
      }
      out[ox] = best;
      where[ox] = at;
    }
  }

  template <int... ky>
  static void spread_rows(const T* dy, const Position* where, T* window_row,
                          std::integer_sequence<int, ky...>) {
    (spread_row<ky>(dy, where, window_row + Index{ky} * in_width), ...);
  }

  /// Input row ky of a row of non-overlapping windows: dy where the maximum was, 0 elsewhere.
  template <int ky>
  static void spread_row(const T* __restrict dy, const Position* __restrict where,
                         T* __restrict row) {
    for (int ox = 0; ox < out_width; ++ox) {
      const T g = dy[ox];
      const Position at = where[ox];
      for (int kx = 0; kx < K; ++kx) {
        row[ox * K + kx] = at == ky * K + kx ? g : T(0);
      }
    }
  }

  Workspace<T> out_;
  Workspace<T> grad_in_;
  Workspace<Position> argmax_;  // per output value, the position of its maximum in the window
  Index batch_ = 0;
};

/// Whether L is a max-pooling layer, for layer visitors (gate recording, PX).
template <class L>
inline constexpr bool is_max_pool_layer_v = false;
template <class T, ImageShape In, int K, int S>
inline constexpr bool is_max_pool_layer_v<MaxPool2DLayer<T, In, K, S>> = true;

/// Average pooling.
template <class T, ImageShape In, int K, int S = K>
class AvgPool2DLayer {
  using geometry = detail::pool_geometry<In, K, S>;
  static constexpr T window_size = T(K * K);

 public:
  using scalar_type = T;
  using input_shape = In;
  using output_shape = typename geometry::output_shape;

  AvgPool2DLayer() { out_.reserve(output_shape::size, 1); }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    batch_ = x.cols();
    auto y = out_.resize(output_shape::size, batch_);
    for (Index n = 0; n < batch_; ++n) {
      const T* xn = x.col(n).data();
      T* yn = y.col(n).data();
      geometry::for_each_window([&](Index window, Index o) {
        T sum = 0;
        for (int ky = 0; ky < K; ++ky) {
          for (int kx = 0; kx < K; ++kx) {
            sum += xn[window + Index{ky} * geometry::in_width + kx];
          }
        }
        yn[o] = sum / window_size;
      });
    }
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    auto dx = grad_in_.resize(In::size, batch_);
    dx.setZero();
    for (Index n = 0; n < batch_; ++n) {
      const T* dyn = dy.col(n).data();
      T* dxn = dx.col(n).data();
      geometry::for_each_window([&](Index window, Index o) {
        const T share = dyn[o] / window_size;
        for (int ky = 0; ky < K; ++ky) {
          for (int kx = 0; kx < K; ++kx) {
            dxn[window + Index{ky} * geometry::in_width + kx] += share;
          }
        }
      });
    }
    return grad_in_.cview();
  }

  /// The output and input-gradient buffers (see Workspace; nn::release_workspaces).
  template <class F>
  void for_each_workspace(F&& f) {
    f(out_);
    f(grad_in_);
  }

 private:
  Workspace<T> out_;
  Workspace<T> grad_in_;
  Index batch_ = 0;
};

/// Layer spec: K x K max pooling with stride S (default K) over any (C, H, W) with H, W >= K.
template <int K, int S = K>
struct MaxPool2D {
  static_assert(K > 0 && S > 0, "MaxPool2D<K, S>: window size and stride must be positive");
  template <StaticShape In>
  static constexpr bool accepts = detail::window_fits<In, -1, K, 0>();
  template <class T, StaticShape In>
  using layer = MaxPool2DLayer<T, In, K, S>;
};

/// Layer spec: K x K average pooling with stride S (default K) over any (C, H, W) with H, W >= K.
template <int K, int S = K>
struct AvgPool2D {
  static_assert(K > 0 && S > 0, "AvgPool2D<K, S>: window size and stride must be positive");
  template <StaticShape In>
  static constexpr bool accepts = detail::window_fits<In, -1, K, 0>();
  template <class T, StaticShape In>
  using layer = AvgPool2DLayer<T, In, K, S>;
};

}  // namespace edgescale::nn
