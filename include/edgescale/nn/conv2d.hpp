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
// Dense's Eigen product instantiations. A 1x1 convolution with stride 1 and no padding needs no
// im2col: colT_n is the input sample itself.
//
// im2col reads a zero-padded copy of the sample (the sample itself when P = 0), so every row of
// colT_n's column (c, ky, kx) is Wout values of one padded input row, without bounds tests: with
// stride 1 a contiguous copy of a length known at compile time. col2im is its adjoint on the same
// padded layout. Each sample's colT_n is built just before its product, into one buffer that stays
// in cache; backward builds them again (but the last, which is still there).
//
// Small layers skip im2col and the GEMM in forward: a direct kernel (nn/detail/direct_conv.hpp)
// reads the padded sample in place, its accumulators in registers — DirectChannels when Cout is
// a multiple of the SIMD width (LeNet-5's second convolution), DirectRows for stride 1 otherwise
// (its first), chosen at compile time by detail::conv_kernel from the shapes. The weight
// gradient of a direct layer is direct too, from the same layouts (forward's shifted copies, the
// sample read in place) when its accumulators fit the registers; the input gradient is
// dcolT_n = dY_n Wcᵀ and col2im whichever computed forward.
#pragma once

#include <edgescale/core/parameter.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/detail/direct_conv.hpp>
#include <edgescale/nn/detail/gemm.hpp>
#include <edgescale/nn/detail/window.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/options.hpp>

#include <algorithm>
#include <array>
#include <cstring>
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
    if constexpr (kernel == detail::ConvKernel::rows) {
      zeroed(direct_, Rows::workspace_size);
    } else if constexpr (kernel == detail::ConvKernel::channels) {
      direct_.reserve(Channels::weight_size, 1);
    } else if constexpr (!direct_patches) {
      col_.reserve(pixels * patch_size, 1);
    }
    if constexpr (P > 0 && kernel != detail::ConvKernel::rows) {
      zeroed(padded_, padded_size);  // the border stays zero; forward overwrites the inside
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
    col_sample_ = -1;  // a new input
    auto y = out_.resize(output_shape::size, batch_);
    if constexpr (kernel != detail::ConvKernel::gemm) {
      direct_forward(y);
    } else {
      const ConstBatchView<T> wc = weight_matrix();
      for (Index n = 0; n < batch_; ++n) {
        T* yn = y.col(n).data();
        for (int o = 0; o < Cout; ++o) {
          T b(0);
          if constexpr (Bias) {
            b = params_[1].value[o];
          }
          std::fill_n(yn + o * pixels, pixels, b);
        }
        detail::gemm_nn<T>(patches(n), wc, BatchView<T>(yn, pixels, Cout));
      }
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
      auto dcol = dcol_.resize(pixels, patch_size);
      for (Index n = 0; n < batch_; ++n) {
        dcol.setZero();
        detail::gemm_nt<T>(output_gradient(dy, n), wc, dcol);
        T* dxn = dx.col(n).data();
        if constexpr (P == 0) {
          std::fill_n(dxn, In::size, T(0));
          col2im(dcol.data(), dxn);
        } else {
          T* padded_grad = padded_grad_.resize(padded_size, 1).setZero().data();
          col2im(dcol.data(), padded_grad);
          unpad(padded_grad, dxn);
        }
      }
    }
    return grad_in_.cview();
  }

  /// The parameter gradients of backward, without the input gradient.
  void backward_parameters(const ConstBatchView<T>& dy) {
    if constexpr (direct_gradient) {
      direct_weight_gradient(dy);
    } else {
      gemm_weight_gradient(dy);
    }
    if constexpr (Bias) {
      for (Index n = batch_ - 1; n >= 0; --n) {
        params_[1].grad.noalias() += output_gradient(dy, n).colwise().sum().transpose();
      }
    }
  }

  std::span<Parameter<T>> parameters() { return params_; }
  std::span<const Parameter<T>> parameters() const { return params_; }

  /// W as the column-major (Cin·K·K) x Cout matrix (the memory of PyTorch's weight).
  ConstBatchView<T> weight_matrix() const { return {params_[0].value.data(), patch_size, Cout}; }

  /// The scratch buffers (see Workspace; nn::release_workspaces).
  template <class F>
  void for_each_workspace(F&& f) {
    f(out_);
    f(col_);
    f(dcol_);
    f(grad_in_);
    f(padded_);
    f(padded_grad_);
    f(dy_padded_);
    f(dw_padded_);
    f(direct_);
    f(dy_direct_);
  }

 private:
  static constexpr bool direct_patches = K == 1 && S == 1 && P == 0;

  static constexpr detail::ConvKernel kernel =
      direct_patches
          ? detail::ConvKernel::gemm
          : detail::conv_kernel<T>(in_channels, Cout, K, S, in_height + 2 * P, in_width + 2 * P);
  using Rows = detail::DirectRows<T, in_channels, Cout, K, in_height, in_width, P, Bias>;
  using Channels =
      detail::DirectChannels<T, in_channels, Cout, K, S, in_height + 2 * P, in_width + 2 * P, Bias>;
  /// Whether backward computes the weight gradient by the direct kernel of forward's kind too
  /// (no im2col, no GEMM packing): when its accumulators fit the registers.
  static constexpr bool direct_gradient = [] {
    if constexpr (kernel == detail::ConvKernel::rows) {
      return Rows::has_weight_gradient;
    } else if constexpr (kernel == detail::ConvKernel::channels) {
      return Channels::has_weight_gradient;
    } else {
      return false;
    }
  }();

  /// Forward by a direct kernel, sample by sample.
  void direct_forward(BatchView<T> y) {
    const T* w = params_[0].value.data();
    const T* b = nullptr;
    if constexpr (Bias) {
      b = params_[1].value.data();
    }
    if constexpr (kernel == detail::ConvKernel::rows) {
      // Zeroed when (re)allocated; unfold writes only the sample's values.
      T* copies = zeroed(direct_, Rows::workspace_size);
      for (Index n = 0; n < batch_; ++n) {
        Rows::unfold(x_ + n * In::size, copies);
        Rows::forward(copies, w, b, y.col(n).data());
      }
      copies_sample_ = batch_ - 1;  // backward starts from them
    } else {
      T* wt = direct_.resize(Channels::weight_size, 1).data();
      Channels::transpose_weights(w, wt);
      for (Index n = 0; n < batch_; ++n) {
        Channels::forward(padded_input(x_ + n * In::size), wt, b, y.col(n).data());
      }
    }
  }

  /// dWc += colT_nᵀ dY_n over the batch, by GEMM.
  void gemm_weight_gradient(const ConstBatchView<T>& dy) {
    BatchView<T> dwc(params_[0].grad.data(), patch_size, Cout);
    T* dy_padded = nullptr;
    T* dw_padded = nullptr;
    if constexpr (grad_columns != Cout) {
      dy_padded = zeroed(dy_padded_, pixels * grad_columns);  // the columns past Cout stay zero
      dw_padded = dw_padded_.resize(patch_size * grad_columns, 1).setZero().data();
    }
    // Last sample first: after an im2col + GEMM forward its colT_n is still in col_.
    for (Index n = batch_ - 1; n >= 0; --n) {
      const ConstBatchView<T> dyn = output_gradient(dy, n);
      if constexpr (grad_columns == Cout) {
        detail::gemm_tn<T>(patches(n), dyn, dwc);
      } else {
        std::copy_n(dyn.data(), pixels * Cout, dy_padded);
        detail::gemm_tn<T>(patches(n), ConstBatchView<T>(dy_padded, pixels, grad_columns),
                           BatchView<T>(dw_padded, patch_size, grad_columns));
      }
    }
    if constexpr (grad_columns != Cout) {
      T* grad = params_[0].grad.data();
      for (Index i = 0; i < patch_size * Cout; ++i) {
        grad[i] += dw_padded[i];
      }
    }
  }

  /// The weight gradient by the direct kernel of forward's kind, sample by sample from the last
  /// (whose shifted copies, for DirectRows, forward left in direct_).
  void direct_weight_gradient(const ConstBatchView<T>& dy) {
    T* dw = params_[0].grad.data();
    if constexpr (kernel == detail::ConvKernel::rows) {
      if (direct_.rows() != Rows::workspace_size) {
        copies_sample_ = -1;  // released since forward: zeroed() allocates it again
      }
      T* copies = zeroed(direct_, Rows::workspace_size);
      T* rows = zeroed(dy_direct_, Rows::gradient_rows_size);  // the thrown-away outputs stay 0
      for (Index n = batch_ - 1; n >= 0; --n) {
        if (n != copies_sample_) {
          Rows::unfold(x_ + n * In::size, copies);
          copies_sample_ = n;
        }
        Rows::spread(dy.data() + n * output_shape::size, rows);
        Rows::weight_gradient(copies, rows, dw);
      }
    } else {
      T* dyt = dy_direct_.resize(Channels::gradient_size, 1).data();
      for (Index n = batch_ - 1; n >= 0; --n) {
        Channels::transpose_gradient(dy.data() + n * output_shape::size, dyt);
        Channels::weight_gradient(padded_input(x_ + n * In::size), dyt, dw);
      }
    }
  }

  // Eigen's GEMM kernel (3.4) computes 4 columns at a time and the columns left over one by one,
  // much more slowly: the weight gradient colT_nᵀ dY_n of LeNet-5's first convolution takes
  // 8.7 µs with Cout = 6 columns and 7.5 µs with 8 (two of them zero). So with 2 or 3 columns
  // left over, the weight gradient is computed with Cout rounded up to a multiple of 4, from a
  // copy of dY_n with zero columns, and added in.
  static constexpr int grad_columns = Cout > 4 && Cout % 4 >= 2 ? (Cout + 3) / 4 * 4 : Cout;

  static auto make_parameters() {
    Parameter<T> weight("weight", {Cout, in_channels, K, K}, ParameterRole::weight);
    if constexpr (Bias) {
      return std::array<Parameter<T>, 2>{std::move(weight),
                                         Parameter<T>("bias", {Cout}, ParameterRole::bias)};
    } else {
      return std::array<Parameter<T>, 1>{std::move(weight)};
    }
  }

  /// colT_n, (Hout·Wout) x (Cin·K·K): the input sample itself for a 1x1 convolution, else
  /// unfolded into col_ (unless it is there already). Only one sample's colT_n is kept: backward
  /// unfolds the others again from the input, which stays valid until then. At batch 1 that
  /// costs nothing, and at larger batches it is cheaper than keeping every sample's colT_n
  /// (K² times the input) and reading it back from memory. A direct forward builds none.
  ConstBatchView<T> patches(Index n) {
    if constexpr (direct_patches) {
      return {x_ + n * In::size, pixels, patch_size};
    } else {
      // A copied layer, or one whose workspaces were released, holds no colT_n.
      if (col_sample_ != n || col_.rows() != pixels * patch_size) {
        im2col(padded_input(x_ + n * In::size), col_.resize(pixels * patch_size, 1).data());
        col_sample_ = n;
      }
      return {col_.cview().data(), pixels, patch_size};
    }
  }

  static ConstBatchView<T> output_gradient(const ConstBatchView<T>& dy, Index n) {
    return {dy.col(n).data(), pixels, Cout};
  }

  // The sample with P zeros on every side: (Cin, H + 2P, W + 2P).
  static constexpr int padded_height = in_height + 2 * P;
  static constexpr int padded_width = in_width + 2 * P;
  static constexpr Index padded_plane = Index{padded_height} * padded_width;
  static constexpr Index padded_size = Index{in_channels} * padded_plane;

  /// The sample as im2col reads it: itself when P = 0, else copied inside padded_'s zero border.
  const T* padded_input(const T* x) {
    if constexpr (P == 0) {
      return x;
    } else {
      // Zeroed when (re)allocated; forward writes only the inside.
      T* padded = zeroed(padded_, padded_size);
      for (int c = 0; c < in_channels; ++c) {
        for (int iy = 0; iy < in_height; ++iy) {
          std::memcpy(padded + c * padded_plane + Index{iy + P} * padded_width + P,
                      x + (Index{c} * in_height + iy) * in_width, sizeof(T) * in_width);
        }
      }
      return padded;
    }
  }

  /// The buffer's first `size` values, all zero when it had to be (re)allocated, as they were
  /// left otherwise: for buffers whose zero parts are never written after the first time.
  static T* zeroed(Workspace<T>& buffer, Index size) {
    if (buffer.rows() != size) {
      buffer.resize(size, 1).setZero();
    }
    return buffer.view().data();
  }

  /// dx from the gradient of the padded sample: its inside.
  static void unpad(const T* padded, T* dx) {
    for (int c = 0; c < in_channels; ++c) {
      for (int iy = 0; iy < in_height; ++iy) {
        std::copy_n(padded + c * padded_plane + Index{iy + P} * padded_width + P, in_width,
                    dx + (Index{c} * in_height + iy) * in_width);
      }
    }
  }

  /// colT_n column (c, ky, kx), pixel (oy, ox) = padded x[c, oy·S + ky, ox·S + kx]: row oy of the
  /// column is Wout values of one padded input row, every S-th from column kx (a contiguous copy
  /// when S = 1). The window never leaves the padded sample, so there is nothing to test.
  static void im2col(const T* x, T* col) {
    for (int c = 0; c < in_channels; ++c) {
      for (int ky = 0; ky < K; ++ky) {
        for (int kx = 0; kx < K; ++kx) {
          const T* source = x + c * padded_plane + Index{ky} * padded_width + kx;
          T* column = col + ((Index{c} * K + ky) * K + kx) * pixels;
          for (int oy = 0; oy < out_height; ++oy) {
            copy_row(source + Index{oy} * S * padded_width, column + Index{oy} * out_width);
          }
        }
      }
    }
  }

  /// The adjoint of im2col: adds each colT_n entry to the padded input pixel it was read from.
  static void col2im(const T* col, T* dx) {
    for (int c = 0; c < in_channels; ++c) {
      for (int ky = 0; ky < K; ++ky) {
        for (int kx = 0; kx < K; ++kx) {
          T* target = dx + c * padded_plane + Index{ky} * padded_width + kx;
          const T* column = col + ((Index{c} * K + ky) * K + kx) * pixels;
          for (int oy = 0; oy < out_height; ++oy) {
            add_row(column + Index{oy} * out_width, target + Index{oy} * S * padded_width);
          }
        }
      }
    }
  }

  // One output row: Wout values, every S-th of the input row. The length is a constant: with
  // stride 1 a memcpy the compiler expands to a few vector moves.
  static void copy_row(const T* source, T* row) {
    if constexpr (S == 1) {
      std::memcpy(row, source, sizeof(T) * out_width);
    } else {
      for (int ox = 0; ox < out_width; ++ox) {
        row[ox] = source[ox * S];
      }
    }
  }
  static void add_row(const T* row, T* target) {
    for (int ox = 0; ox < out_width; ++ox) {
      target[ox * S] += row[ox];
    }
  }

  std::array<Parameter<T>, Bias ? 2 : 1> params_;
  Workspace<T> out_;          // output batch
  Workspace<T> col_;          // colT_n of sample col_sample_ (-1: none), one column
  Workspace<T> dcol_;         // dcolT_n of one sample
  Workspace<T> grad_in_;      // input gradient
  Workspace<T> padded_;       // P > 0: the sample being unfolded, inside a zero border
  Workspace<T> padded_grad_;  // P > 0: its gradient, before unpad
  Workspace<T> dy_padded_;    // dY_n with grad_columns columns
  Workspace<T> dw_padded_;    // the weight gradient with grad_columns columns
  Workspace<T> direct_;       // direct kernels: shifted copies (rows), W transposed (channels)
  Workspace<T> dy_direct_;    // direct weight gradient: dY_n as rows (rows), transposed (channels)
  const T* x_ = nullptr;
  Index batch_ = 0;
  Index col_sample_ = -1;
  Index copies_sample_ = -1;  // DirectRows: the sample whose shifted copies are in direct_
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
