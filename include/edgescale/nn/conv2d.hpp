// edgescale/nn/conv2d.hpp — 2-D convolution (cross-correlation, as PyTorch's nn.Conv2d) by
// im2col + GEMM.
//
//   using LeNet = nn::Sequential<nn::Input<1, 28, 28>, nn::Conv2D<1, 6, 5, nn::Pad<2>>, nn::ReLU,
//                                nn::MaxPool2D<2>, nn::Conv2D<6, 16, 5>, ...>;
//   nn::Conv2D<16, 32, 3, nn::Stride<2>, nn::Pad<1>, nn::NoBias>   // options in any order
//
//   y[o, oy, ox] = b[o] + Σ_{c, ky, kx} W[o, c, ky, kx] · x[c, oy·S − P + ky, ox·S − P + kx]
//   (x = 0 outside the image; Hout = floor((H + 2P − K) / S) + 1, likewise Wout)
//
// Layout. W is PyTorch's (Cout, Cin, K, K) row-major, i.e. the column-major (Cin·K·K) x Cout
// matrix Wc. For sample n, im2col writes colT_n, the column-major (Hout·Wout) x (Cin·K·K) matrix
// whose row p = (oy, ox) is the input patch under output pixel p (Caffe's col buffer). The output
// sample viewed as the column-major (Hout·Wout) x Cout matrix Y_n is already in (C, H, W) order:
//   forward   Y_n = colT_n Wc + 1 bᵀ
//   backward  dWc += colT_nᵀ dY_n,  db += dY_nᵀ 1,  dcolT_n = dY_n Wcᵀ,  dx_n = col2im(dcolT_n)
// one GEMM each per sample, on dynamic-size maps, so every convolution of one scalar type shares
// Dense's Eigen product instantiations. The batch's colT is kept from forward for backward. A 1x1
// convolution with stride 1 and no padding needs no im2col: colT_n is the input sample itself.
#pragma once

#include <edgescale/core/parameter.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/detail/gemm.hpp>
#include <edgescale/nn/detail/window.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/options.hpp>

#include <algorithm>
#include <array>
#include <span>
#include <type_traits>

namespace edgescale::nn {

/// A convolution over (C, H, W) samples of shape In, Cout output channels, K x K kernel, stride
/// S, zero padding P. Tensors: "weight" {Cout, Cin, K, K} and, with Bias, "bias" {Cout}.
template <class T, ImageShape In, int Cout, int K, int S = 1, int P = 0, bool Bias = true>
class Conv2DLayer {
  static constexpr int in_channels = In::dims[0];
  static constexpr int in_height = In::dims[1];
  static constexpr int in_width = In::dims[2];
  static_assert(Cout > 0 && K > 0 && S > 0 && P >= 0, "Conv2D: invalid geometry");
  static_assert(in_height + 2 * P >= K && in_width + 2 * P >= K,
                "Conv2D: the kernel is larger than the padded input");

 public:
  using scalar_type = T;
  using input_shape = In;
  static constexpr int out_height = detail::window_extent(in_height, K, S, P);
  static constexpr int out_width = detail::window_extent(in_width, K, S, P);
  using output_shape = Shape<Cout, out_height, out_width>;
  static constexpr bool has_bias = Bias;
  /// Rows of colT_n (output pixels) and its columns (values under one kernel placement).
  static constexpr Index pixels = Index{out_height} * out_width;
  static constexpr Index patch_size = Index{in_channels} * K * K;

  Conv2DLayer() : params_{make_parameters()} {
    // Batch-1 inference allocates nothing after construction.
    out_.reserve(output_shape::size, 1);
    if constexpr (!direct_patches) {
      col_.reserve(pixels * patch_size, 1);
    }
  }

  /// fan_in = Cin·K·K, fan_out = Cout·K·K (torch.nn.init's convention); bias zero.
  template <class Scheme>
  void initialize(const Scheme& scheme, Rng& rng) {
    scheme(params_[0], patch_size, Index{Cout} * K * K, rng);
    if constexpr (Bias) {
      params_[1].value.setZero();
    }
  }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    x_ = x.data();
    batch_ = x.cols();
    auto y = out_.resize(output_shape::size, batch_);
    if constexpr (!direct_patches) {
      auto col = col_.resize(pixels * patch_size, batch_);
      for (Index n = 0; n < batch_; ++n) {
        im2col(x.col(n).data(), col.col(n).data());
      }
    }
    const ConstBatchView<T> wc = weight_matrix();
    for (Index n = 0; n < batch_; ++n) {
      BatchView<T> yn(y.col(n).data(), pixels, Cout);
      if constexpr (Bias) {
        yn.rowwise() = params_[1].value.transpose();
      } else {
        yn.setZero();
      }
      detail::gemm_nn<T>(patches(n), wc, yn);
    }
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    backward_parameters(dy);
    const ConstBatchView<T> wc = weight_matrix();
    auto dx = grad_in_.resize(In::size, batch_);
    if constexpr (direct_patches) {
      dx.setZero();
      for (Index n = 0; n < batch_; ++n) {
        detail::gemm_nt<T>(output_gradient(dy, n), wc,
                           BatchView<T>(dx.col(n).data(), pixels, in_channels));
      }
    } else {
      dx.setZero();
      auto dcol = dcol_.resize(pixels, patch_size);
      for (Index n = 0; n < batch_; ++n) {
        dcol.setZero();
        detail::gemm_nt<T>(output_gradient(dy, n), wc, dcol);
        col2im(dcol.data(), dx.col(n).data());
      }
    }
    return grad_in_.cview();
  }

  /// The parameter gradients of backward, without the input gradient.
  void backward_parameters(const ConstBatchView<T>& dy) {
    BatchView<T> dwc(params_[0].grad.data(), patch_size, Cout);
    for (Index n = 0; n < batch_; ++n) {
      const ConstBatchView<T> dyn = output_gradient(dy, n);
      detail::gemm_tn<T>(patches(n), dyn, dwc);
      if constexpr (Bias) {
        params_[1].grad.noalias() += dyn.colwise().sum().transpose();
      }
    }
  }

  std::span<Parameter<T>> parameters() { return params_; }
  std::span<const Parameter<T>> parameters() const { return params_; }

  /// W as the column-major (Cin·K·K) x Cout matrix (the memory of PyTorch's weight).
  ConstBatchView<T> weight_matrix() const { return {params_[0].value.data(), patch_size, Cout}; }

  /// The output, im2col and gradient buffers (see Workspace; nn::release_workspaces).
  template <class F>
  void for_each_workspace(F&& f) {
    f(out_);
    f(col_);
    f(dcol_);
    f(grad_in_);
  }

 private:
  static constexpr bool direct_patches = K == 1 && S == 1 && P == 0;

  static auto make_parameters() {
    Parameter<T> weight("weight", {Cout, in_channels, K, K}, ParameterRole::weight);
    if constexpr (Bias) {
      return std::array<Parameter<T>, 2>{std::move(weight),
                                         Parameter<T>("bias", {Cout}, ParameterRole::bias)};
    } else {
      return std::array<Parameter<T>, 1>{std::move(weight)};
    }
  }

  /// colT_n, (Hout·Wout) x (Cin·K·K).
  ConstBatchView<T> patches(Index n) const {
    if constexpr (direct_patches) {
      return {x_ + n * In::size, pixels, patch_size};
    } else {
      return {col_.cview().col(n).data(), pixels, patch_size};
    }
  }

  static ConstBatchView<T> output_gradient(const ConstBatchView<T>& dy, Index n) {
    return {dy.col(n).data(), pixels, Cout};
  }

  // Output columns [begin, end) read in-bounds input columns for kernel column k: 0 <= ox·S − P +
  // k < extent. The same holds for rows.
  static constexpr int valid_begin(int k, int out) {
    return std::min(out, k >= P ? 0 : (P - k + S - 1) / S);
  }
  static constexpr int valid_end(int k, int extent, int out) {
    const int last = extent - 1 + P - k;  // largest ox·S that stays inside
    return std::max(valid_begin(k, out), last < 0 ? 0 : std::min(out, last / S + 1));
  }

  /// colT_n column (c, ky, kx), pixel (oy, ox) = x[c, oy·S − P + ky, ox·S − P + kx] or 0.
  static void im2col(const T* x, T* col) {
    for (int c = 0; c < in_channels; ++c) {
      const T* plane = x + Index{c} * in_height * in_width;
      for (int ky = 0; ky < K; ++ky) {
        const int oy_begin = valid_begin(ky, out_height);
        const int oy_end = valid_end(ky, in_height, out_height);
        for (int kx = 0; kx < K; ++kx) {
          T* column = col + ((Index{c} * K + ky) * K + kx) * pixels;
          const int ox_begin = valid_begin(kx, out_width);
          const int ox_end = valid_end(kx, in_width, out_width);
          std::fill(column, column + Index{oy_begin} * out_width, T(0));
          for (int oy = oy_begin; oy < oy_end; ++oy) {
            T* row = column + Index{oy} * out_width;
            const T* source = plane + Index{oy * S - P + ky} * in_width;
            std::fill(row, row + ox_begin, T(0));
            for (int ox = ox_begin; ox < ox_end; ++ox) {
              row[ox] = source[ox * S - P + kx];
            }
            std::fill(row + ox_end, row + out_width, T(0));
          }
          std::fill(column + Index{oy_end} * out_width, column + pixels, T(0));
        }
      }
    }
  }

  /// The adjoint of im2col: adds each colT_n entry to the input pixel it was read from.
  static void col2im(const T* col, T* dx) {
    for (int c = 0; c < in_channels; ++c) {
      T* plane = dx + Index{c} * in_height * in_width;
      for (int ky = 0; ky < K; ++ky) {
        const int oy_begin = valid_begin(ky, out_height);
        const int oy_end = valid_end(ky, in_height, out_height);
        for (int kx = 0; kx < K; ++kx) {
          const T* column = col + ((Index{c} * K + ky) * K + kx) * pixels;
          const int ox_begin = valid_begin(kx, out_width);
          const int ox_end = valid_end(kx, in_width, out_width);
          for (int oy = oy_begin; oy < oy_end; ++oy) {
            const T* row = column + Index{oy} * out_width;
            T* target = plane + Index{oy * S - P + ky} * in_width;
            for (int ox = ox_begin; ox < ox_end; ++ox) {
              target[ox * S - P + kx] += row[ox];
            }
          }
        }
      }
    }
  }

  std::array<Parameter<T>, Bias ? 2 : 1> params_;
  Workspace<T> out_;      // output batch
  Workspace<T> col_;      // colT_n of every sample, one per column, kept for backward
  Workspace<T> dcol_;     // dcolT_n of one sample
  Workspace<T> grad_in_;  // input gradient
  const T* x_ = nullptr;
  Index batch_ = 0;
};

/// Whether L is a convolution layer (a Conv2DLayer of any geometry), for layer visitors.
template <class L>
inline constexpr bool is_conv2d_layer_v = false;
template <class T, ImageShape In, int Cout, int K, int S, int P, bool Bias>
inline constexpr bool is_conv2d_layer_v<Conv2DLayer<T, In, Cout, K, S, P, Bias>> = true;

/// Layer spec: `Conv2D<Cin, Cout, K, Options...>`, a K x K convolution from Cin to Cout channels
/// with options Stride<S>, Pad<P>, NoBias. Accepts (Cin, H, W) inputs with H + 2P >= K and
/// W + 2P >= K; a network that starts with it begins with `Input<Cin, H, W>`.
template <int InChannels, int OutChannels, int Kernel, class... Options>
struct Conv2D {
  static_assert(InChannels > 0 && OutChannels > 0 && Kernel > 0,
                "Conv2D<Cin, Cout, K>: channels and kernel size must be positive");
  using options = detail::layer_options<Options...>;
  static_assert(options::known_count == int{sizeof...(Options)},
                "Conv2D<Cin, Cout, K, Options...>: the options are Stride<S>, Pad<P> and NoBias");
  static_assert(options::each_once,
                "Conv2D<Cin, Cout, K, Options...>: each option may be given once");
  static constexpr int stride = options::stride;
  static constexpr int padding = options::pad;
  static constexpr bool has_bias = options::bias;

  template <StaticShape S>
  static constexpr bool accepts = detail::window_fits<S, InChannels, Kernel, padding>();
  template <class T, StaticShape S>
  using layer = Conv2DLayer<T, S, OutChannels, Kernel, stride, padding, has_bias>;
};

}  // namespace edgescale::nn
