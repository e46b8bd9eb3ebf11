// quant/export.hpp: model sizes against hand counts (dense, low-bit, pruned).
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn.hpp>
#include <edgescale/quant/calibrate.hpp>
#include <edgescale/quant/export.hpp>
#include <edgescale/quant/qnetwork.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace edgescale {
namespace {

/// Random calibration inputs of `rows` values, `cols` samples.
Matrix<float> random_batch(Rng& rng, Index rows, Index cols) {
  Matrix<float> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = standard_normal<float>(rng);
  }
  return x;
}

/// Sets a parameter's values (row-major, PyTorch's order).
void set_values(Parameter<float>& p, std::initializer_list<float> values) {
  REQUIRE(static_cast<Index>(values.size()) == p.size());
  Index i = 0;
  for (const float v : values) {
    p.value[i++] = v;
  }
}

using TinyMlp = nn::Sequential<nn::Input<4>, nn::Dense<4, 3>, nn::ReLU, nn::Dense<3, 2>>;

/// The MLP with hand-set weights: layer 0 has 5 zeros among its 12 weights, and every nonzero
/// weight is large enough against its channel's maximum to keep a nonzero code down to 2 bits.
TinyMlp tiny_mlp() {
  Rng rng = make_stream(21, "init");
  TinyMlp net(nn::init::kaiming_normal, rng);
  auto p0 = net.layer<0>().parameters();
  set_values(p0[0], {1.0F, 0.0F, -0.8F, 0.0F,  //
                     0.0F, 0.6F, 0.0F, -1.0F,  //
                     0.9F, -0.7F, 0.0F, 0.75F});
  set_values(p0[1], {0.1F, -0.2F, 0.3F});
  auto p2 = net.layer<2>().parameters();
  set_values(p2[0], {0.5F, -1.0F, 0.7F,  //
                     -0.9F, 0.8F, 1.0F});
  set_values(p2[1], {0.05F, -0.05F});
  return net;
}

template <class Net>
auto converted(Net& net, const quant::ConvertOptions& options) {
  Rng rng = make_stream(22, "calibration");
  quant::Calibrator cal(net, [] { return quant::MinMax{}; });
  cal.observe(random_batch(rng, Net::input_shape::size, 32));
  return quant::convert(net, cal, options);
}

}  // namespace

TEST_CASE("model_size: hand counts of a small MLP, dense and with its zeros as a bitmap") {
  TinyMlp net = tiny_mlp();
  const auto qnet = converted(net, {});
  const quant::ModelSize s = quant::model_size(qnet);
  REQUIRE(s.layers.size() == 2);
  CHECK(s.layers[0].stage == 1);
  CHECK(s.layers[1].stage == 3);
  CHECK(s.layers[0].bits == 8);
  CHECK(s.layers[0].weights == 12);
  CHECK(s.layers[0].nonzero == 7);
  CHECK(s.layers[1].nonzero == 6);
  CHECK(s.weights == 18);
  CHECK(s.nonzero_weights == 13);
  // fp32: 4 bytes per weight and per bias.
  CHECK(s.layers[0].fp32_bytes == 4 * 12 + 4 * 3);
  CHECK(s.fp32_bytes == 4 * (12 + 3) + 4 * (6 + 2));
  // quantized: one byte per 8-bit weight, 4 + 4 + 1 per channel, 7 per activation tensor (the
  // input and two weighted outputs).
  CHECK(s.activation_bytes == 3 * 7);
  CHECK(s.layers[0].quantized_bytes == 12 + 9 * 3);
  CHECK(s.quantized_bytes == (12 + 9 * 3) + (6 + 9 * 2) + 21);
  // sparse: 7 nonzero codes + a 2-byte bitmap for 12 weights; layer 2 has no zero and pays the
  // bitmap (1 byte) for nothing.
  CHECK(s.layers[0].sparse_bytes == 7 + 2 + 9 * 3);
  CHECK(s.layers[1].sparse_bytes == 6 + 1 + 9 * 2);
  CHECK(s.sparse_bytes == (7 + 2 + 27) + (6 + 1 + 18) + 21);
  CHECK(s.sparse_bytes < s.quantized_bytes);
}

TEST_CASE("model_size: low-bit weights are packed at their width, rounded up per layer") {
  TinyMlp net = tiny_mlp();
  const auto q4 = converted(net, {.weight_bits = 4, .activation_bits = 4});
  const quant::ModelSize s4 = quant::model_size(q4);
  CHECK(s4.layers[0].bits == 4);
  CHECK(s4.layers[0].quantized_bytes == 6 + 27);   // 12 weights x 4 bits
  CHECK(s4.layers[1].quantized_bytes == 3 + 18);   // 6 x 4 bits
  CHECK(s4.layers[0].sparse_bytes == 4 + 2 + 27);  // 7 x 4 bits = 3.5 -> 4
  const auto q2 = converted(net, {.weight_bits = 2, .activation_bits = 8});
  const quant::ModelSize s2 = quant::model_size(q2);
  CHECK(s2.layers[0].bits == 2);
  CHECK(s2.layers[0].quantized_bytes == 3 + 27);  // 12 x 2 bits
  CHECK(s2.layers[1].quantized_bytes == 2 + 18);  // 6 x 2 bits = 1.5 -> 2
  CHECK(s2.fp32_bytes == s4.fp32_bytes);
}

TEST_CASE(
    "model_size: a convolution counts Cout x Cin x K x K weights; pooling and BatchNorm "
    "cost nothing") {
  using Net = nn::Sequential<nn::Input<2, 6, 6>, nn::Conv2D<2, 3, 3, nn::Pad<1>>, nn::BatchNorm,
                             nn::ReLU, nn::MaxPool2D<2>, nn::Flatten, nn::Dense<27, 4>>;
  Rng rng = make_stream(23, "init");
  Net net(nn::init::kaiming_normal, rng);
  // A pruned first channel: all 18 of its weights zero.
  auto w = net.layer<0>().parameters();
  for (Index k = 0; k < 18; ++k) {
    w[0].value[k] = 0.0F;
  }
  const auto qnet = converted(net, {});
  const quant::ModelSize s = quant::model_size(qnet);
  REQUIRE(s.layers.size() == 2);
  CHECK(s.layers[0].weights == 3 * 2 * 3 * 3);
  CHECK(s.layers[0].channels == 3);
  CHECK(s.layers[0].nonzero <= 36);
  CHECK(s.layers[0].nonzero >= 30);  // the other channels: a random code rounds to 0 rarely
  CHECK(s.layers[1].weights == 27 * 4);
  CHECK(s.fp32_bytes == 4 * (54 + 3) + 4 * (108 + 4));
  CHECK(s.quantized_bytes == (54 + 27) + (108 + 36) + 3 * 7);
  CHECK(s.layers[0].sparse_bytes == s.layers[0].nonzero + 7 + 27);
}

}  // namespace edgescale
