// edgescale/nn/residual.hpp — a residual block, y = x + body(x) (He et al. 2016).
//
//   using Net = nn::Sequential<nn::Input<1, 28, 28>, nn::Conv2D<1, 8, 3, nn::Pad<1>>, nn::ReLU,
//                              nn::Residual<nn::Conv2D<8, 8, 3, nn::Pad<1>>, nn::BatchNorm,
//                                           nn::ReLU, nn::Conv2D<8, 8, 3, nn::Pad<1>>>,
//                              nn::ReLU, ...>;
//
// The body is a network of its own (`BasicSequential<T, Input<shape of x>, Specs...>`), bound to
// the block's input shape; the block accepts an input when the body does and the body's output has
// as many values as its input. Backward: dx = dy + body'(x)ᵀ dy. The body's tensors are named
// "body.<i>.<name>", so a network names them "3.body.0.weight", as PyTorch names a module
// holding its body in an attribute `body`.
#pragma once

#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/detail/spec_transform.hpp>
#include <edgescale/nn/overwrite.hpp>
#include <edgescale/nn/sequential.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace edgescale::nn {

/// Specs form a residual body for inputs of shape S and scalar type T: they compose from S and
/// the body's output has S::size values.
template <class T, class S, class... Specs>
concept ResidualBody =
    StaticShape<S> && ComposableLayers<T, typename detail::input_of<S>::type, Specs...> &&
    BasicSequential<T, typename detail::input_of<S>::type, Specs...>::output_shape::size == S::size;

template <class T, StaticShape S, class... Specs>
  requires ResidualBody<T, S, Specs...>
class ResidualLayer {
 public:
  using scalar_type = T;
  using input_shape = S;
  using output_shape = S;
  using body_type = BasicSequential<T, typename detail::input_of<S>::type, Specs...>;

  ResidualLayer() { out_.reserve(S::size, 1); }

  template <class Scheme>
  void initialize(const Scheme& scheme, Rng& rng) {
    body_.initialize(scheme, rng);
  }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) { return add_skip(x, body_.forward(x)); }

  /// forward with hooks (nn/concepts.hpp, HasSublayers): the body's layers are hooked under
  /// "<path>body.<i>"; the block itself is hooked by its container.
  template <class... Hooks>
  ConstBatchView<T> forward_hooked(const ConstBatchView<T>& x, std::string& path, Hooks&... hooks) {
    const std::size_t base = path.size();
    path += "body.";
    const ConstBatchView<T> fx = body_.forward_hooked(x, path, hooks...);
    path.resize(base);
    return add_skip(x, fx);
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    const ConstBatchView<T> dbody = body_.backward(dy);
    grad_in_.resize(S::size, dy.cols()).noalias() = dy + dbody;
    return grad_in_.cview();
  }

  /// The body's parameter gradients, without the input gradient.
  void backward_parameters(const ConstBatchView<T>& dy) { body_.backward_parameters(dy); }

  /// backward writing the body's gradients instead of adding to them (nn/overwrite.hpp).
  ConstBatchView<T> backward(const ConstBatchView<T>& dy, OverwriteGradients tag) {
    const ConstBatchView<T> dbody = body_.backward(dy, tag);
    grad_in_.resize(S::size, dy.cols()).noalias() = dy + dbody;
    return grad_in_.cview();
  }
  void backward_parameters(const ConstBatchView<T>& dy, OverwriteGradients tag) {
    body_.backward_parameters(dy, tag);
  }

  /// Every tensor of the body, named "body.<name>".
  template <class F>
  void for_each_tensor(F&& f) {
    visit(body_, f);
  }
  template <class F>
  void for_each_tensor(F&& f) const {
    visit(body_, f);
  }

  /// f(path, layer) for the body's layers, under "<path>body.<i>" (nn::for_each_layer).
  template <class F>
  void for_each_sublayer(F&& f, std::string& path) {
    visit_sublayers(body_, f, path);
  }
  template <class F>
  void for_each_sublayer(F&& f, std::string& path) const {
    visit_sublayers(body_, f, path);
  }

  /// The body's scratch buffers and the block's own (nn::release_workspaces).
  template <class F>
  void for_each_workspace(F&& f) {
    body_.for_each_workspace(f);
    f(out_);
    f(grad_in_);
  }

  void set_training(bool on) { body_.set_training(on); }
  [[nodiscard]] bool training() const { return body_.training(); }

  body_type& body() { return body_; }
  const body_type& body() const { return body_; }

 private:
  ConstBatchView<T> add_skip(const ConstBatchView<T>& x, const ConstBatchView<T>& fx) {
    out_.resize(S::size, x.cols()).noalias() = x + fx;
    return out_.cview();
  }

  template <class Body, class F>
  static void visit_sublayers(Body& body, F& f, std::string& path) {
    const std::size_t base = path.size();
    path += "body.";
    body.for_each_sublayer(f, path);
    path.resize(base);
  }

  template <class Body, class F>
  static void visit(Body& body, F& f) {
    std::string name;
    body.for_each_tensor([&](std::string_view local, auto& p) {
      name.assign("body.");
      name += local;
      f(std::string_view(name), p);
    });
  }

  body_type body_;
  Workspace<T> out_;
  Workspace<T> grad_in_;
};

/// Layer spec: `Residual<Specs...>`, y = x + body(x) with the body the network of Specs.
template <class... Specs>
struct Residual {
  static_assert(sizeof...(Specs) > 0, "Residual<Specs...>: the body needs at least one layer");
  // Whether a body binds does not depend on the scalar type; `layer` checks T again.
  template <StaticShape S>
  static constexpr bool accepts = ResidualBody<float, S, Specs...>;
  template <class T, StaticShape S>
  using layer = ResidualLayer<T, S, Specs...>;
  /// The same block with every spec of its body rewritten by Wrap (nn/transform.hpp).
  template <template <class> class Wrap>
  using with_transformed_specs = Residual<detail::transform_spec_t<Specs, Wrap>...>;
};

}  // namespace edgescale::nn
