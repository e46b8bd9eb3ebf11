// Compile-only tests of the nn concepts, on models and near-misses (mp-units' style): each
// concept is checked on a built-in, on a minimal user model, and on types that miss exactly one
// named requirement. Nothing here runs; it compiles or the build fails.
#include <edgescale/data/dataset.hpp>
#include <edgescale/nn.hpp>

#include <span>
#include <string_view>

namespace edgescale::static_tests {

using F = ConstBatchView<float>;

// ---- Layer ----
struct MinimalLayer {  // the least a layer needs
  using scalar_type = float;
  using input_shape = Shape<4>;
  using output_shape = Shape<4>;
  F forward(const F& x) { return x; }
  F backward(const F& dy) { return dy; }
};
struct NoScalar {
  using input_shape = Shape<4>;
  using output_shape = Shape<4>;
  F forward(const F& x) { return x; }
  F backward(const F& dy) { return dy; }
};
struct IntScalar : MinimalLayer {
  using scalar_type = int;
};
struct NoShapes {
  using scalar_type = float;
  F forward(const F& x) { return x; }
  F backward(const F& dy) { return dy; }
};
struct ShapeNotAShape : MinimalLayer {
  using input_shape = int;
};
struct NoForward {
  using scalar_type = float;
  using input_shape = Shape<4>;
  using output_shape = Shape<4>;
  F backward(const F& dy) { return dy; }
};
struct ForwardReturnsVoid : NoForward {
  void forward(const F&) {}
};
struct NoBackward {
  using scalar_type = float;
  using input_shape = Shape<4>;
  using output_shape = Shape<4>;
  F forward(const F& x) { return x; }
};

static_assert(nn::Layer<MinimalLayer>);
static_assert(nn::Layer<nn::DenseLayer<float, 3, 2>>);
static_assert(nn::Layer<nn::DenseLayer<double, 3, 2, false>>);
static_assert(nn::Layer<nn::ReLU::layer<float, Shape<2, 3, 4>>>);
static_assert(nn::Layer<nn::Conv2D<1, 6, 5, nn::Pad<2>>::layer<float, Shape<1, 28, 28>>>);
static_assert(nn::Layer<nn::MaxPool2D<2>::layer<float, Shape<6, 28, 28>>>);
static_assert(nn::Layer<nn::BatchNorm::layer<float, Shape<6, 28, 28>>>);
static_assert(!HasScalarType<NoScalar> && !nn::Layer<NoScalar>);
static_assert(!HasScalarType<IntScalar> && !nn::Layer<IntScalar>);
static_assert(!nn::HasStaticShapes<NoShapes> && !nn::Layer<NoShapes>);
static_assert(!nn::HasStaticShapes<ShapeNotAShape> && !nn::Layer<ShapeNotAShape>);
static_assert(!nn::HasForward<NoForward> && !nn::Layer<NoForward>);
static_assert(!nn::HasForward<ForwardReturnsVoid> && !nn::Layer<ForwardReturnsVoid>);
static_assert(!nn::HasBackward<NoBackward> && !nn::Layer<NoBackward>);
static_assert(!nn::Layer<int>);

// optional members are detected
static_assert(HasParameterSpan<nn::DenseLayer<float, 3, 2>>);
static_assert(nn::HasParameterOnlyBackward<nn::DenseLayer<float, 3, 2>>);
static_assert(!HasParameterSpan<MinimalLayer> && !HasTensorVisitor<MinimalLayer>);
static_assert(!nn::HasParameterOnlyBackward<MinimalLayer>);
static_assert(nn::HasTrainingMode<nn::BatchNorm::layer<float, Shape<8>>>);
static_assert(!nn::HasTrainingMode<MinimalLayer>);

// ---- layer specs ----
static_assert(nn::SpecBindsTo<nn::Dense<4, 2>, float, Shape<4>>);
static_assert(nn::SpecBindsTo<nn::Dense<4, 2>, double, Shape<1, 2, 2>>);  // any shape of 4 values
static_assert(!nn::SpecBindsTo<nn::Dense<4, 2>, float, Shape<5>>);
static_assert(nn::SpecBindsTo<nn::Conv2D<1, 6, 5>, float, Shape<1, 28, 28>>);
static_assert(!nn::SpecBindsTo<nn::Conv2D<3, 6, 5>, float, Shape<1, 28, 28>>);  // channels
static_assert(!nn::SpecBindsTo<nn::Conv2D<1, 6, 5>, float, Shape<784>>);        // not an image
static_assert(!nn::SpecBindsTo<nn::Conv2D<1, 6, 5>, float, Shape<1, 4, 4>>);    // kernel > image
static_assert(!nn::SpecBindsTo<nn::MaxPool2D<2>, float, Shape<10>>);
static_assert(nn::AcceptsInput<MinimalLayer, float, Shape<4>>);     // a concrete layer stands in
static_assert(nn::AcceptsInput<MinimalLayer, float, Shape<2, 2>>);  // same size
static_assert(!nn::AcceptsInput<MinimalLayer, double, Shape<4>>);   // scalar type differs
static_assert(!nn::AcceptsInput<MinimalLayer, float, Shape<5>>);
static_assert(!nn::AcceptsInput<int, float, Shape<4>>);

// ---- Network ----
using Mlp = nn::Sequential<nn::Dense<8, 4>, nn::ReLU, nn::Dense<4, 2>>;
static_assert(nn::Network<Mlp>);
static_assert(nn::Network<nn::Sequential<nn::Input<4>, MinimalLayer, nn::Dense<4, 2>>>);
static_assert(!nn::Network<MinimalLayer>);  // a layer alone has no tensor visitor or mode
static_assert(!nn::Network<nn::DenseLayer<float, 3, 2>>);

// ---- Loss ----
static_assert(nn::Loss<nn::SoftmaxCrossEntropy, float, nn::Labels>);
static_assert(nn::Loss<nn::SoftmaxCrossEntropy, double, nn::Labels>);
static_assert(nn::Loss<nn::MeanSquaredError, float, ConstBatchView<float>>);
static_assert(!nn::Loss<nn::MeanSquaredError, float, nn::Labels>);  // MSE needs a target batch
struct ValueOnlyLoss {
  template <class T>
  T value(const ConstBatchView<T>&, nn::Labels) const {
    return 0;
  }
};
static_assert(!nn::Loss<ValueOnlyLoss, float, nn::Labels>);  // no gradient
static_assert(!nn::Loss<int, float, nn::Labels>);

// ---- Optimizer ----
static_assert(nn::Optimizer<nn::SGD, Mlp>);
static_assert(nn::Optimizer<nn::Adam, Mlp>);
static_assert(nn::Optimizer<nn::AdamW, Mlp>);
struct NoLearningRate {
  template <class N>
  void step(N&) {}
};
static_assert(!nn::Optimizer<NoLearningRate, Mlp>);
static_assert(!nn::Optimizer<nn::SGD, MinimalLayer>);  // an optimizer steps a network

// ---- hooks ----
struct Observer {  // a forward hook: any layer
  template <class L>
  void operator()(std::string_view, const L&, const F&) {}
};
struct DenseOnlyObserver {  // takes one layer type only: not a hook (hooks see every layer)
  void operator()(std::string_view, const nn::DenseLayer<float, 3, 2>&, const F&) {}
};
static_assert(nn::ForwardHook<Observer, float>);
static_assert(!nn::ForwardHook<Observer, double>);  // outputs are float views
static_assert(!nn::ForwardHook<DenseOnlyObserver, float>);
static_assert(!nn::ForwardHook<int, float>);
struct Clip {
  void operator()(Mlp&) const {}
};
static_assert(nn::GradientHook<Clip, Mlp>);
static_assert(!nn::GradientHook<Observer, Mlp>);
static_assert(nn::HasSublayers<Mlp>);
static_assert(!nn::HasSublayers<MinimalLayer>);
static_assert(nn::HasWorkspaces<nn::DenseLayer<float, 3, 2>>);
static_assert(nn::HasWorkspaces<Mlp>);
static_assert(!nn::HasWorkspaces<MinimalLayer>);

// ---- losses as training losses (they name their target type) ----
static_assert(nn::TrainingLoss<nn::SoftmaxCrossEntropy, float>);
static_assert(nn::TrainingLoss<nn::MeanSquaredError, double>);
static_assert(!nn::TrainingLoss<ValueOnlyLoss, float>);

// ---- named tensors and batch sources (core) ----
static_assert(NamedTensors<Mlp>);
static_assert(NamedTensors<nn::DenseLayer<float, 3, 2>>);
static_assert(!NamedTensors<MinimalLayer>);
static_assert(BatchSource<data::BatchSampler<float>, float>);
static_assert(!BatchSource<data::BatchSampler<float>, double>);
static_assert(!BatchSource<Mlp, float>);

// ---- schedules and initialisers ----
static_assert(nn::LearningRateSchedule<nn::StepSchedule>);
static_assert(!nn::LearningRateSchedule<int>);
static_assert(nn::init::Scheme<nn::init::KaimingNormal, float>);
static_assert(nn::init::Scheme<nn::init::XavierUniform, double>);
static_assert(!nn::init::Scheme<int, float>);

}  // namespace edgescale::static_tests
