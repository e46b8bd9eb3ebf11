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

#include <cmath>

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
template <class T, ImageShape In, int K, int S = K>
class MaxPool2DLayer {
  using geometry = detail::pool_geometry<In, K, S>;

 public:
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
    Index* const argmax = argmax_.resize(output_shape::size, batch_).data();
    for (Index n = 0; n < batch_; ++n) {
      const T* xn = x.col(n).data();
      T* yn = y.col(n).data();
      Index* an = argmax + n * output_shape::size;
      geometry::for_each_window([&](Index window, Index o) {
        Index best = window;
        T best_value = xn[window];
        for (int ky = 0; ky < K; ++ky) {
          for (int kx = 0; kx < K; ++kx) {
            const Index i = window + Index{ky} * geometry::in_width + kx;
            const T v = xn[i];
            if (v > best_value || std::isnan(v)) {
              best = i;
              best_value = v;
            }
          }
        }
        yn[o] = best_value;
        an[o] = best;
      });
    }
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    auto dx = grad_in_.resize(In::size, batch_);
    dx.setZero();
    for (Index n = 0; n < batch_; ++n) {
      const Index* an = argmax_.cview().col(n).data();
      for (Index o = 0; o < output_shape::size; ++o) {
        dx(an[o], n) += dy(o, n);
      }
    }
    return grad_in_.cview();
  }

  /// The output, argmax and input-gradient buffers (see Workspace; nn::release_workspaces).
  template <class F>
  void for_each_workspace(F&& f) {
    f(out_);
    f(argmax_);
    f(grad_in_);
  }

 private:
  Workspace<T> out_;
  Workspace<T> grad_in_;
  Workspace<Index> argmax_;  // per output value, the input index (within its sample) it came from
  Index batch_ = 0;
};

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
