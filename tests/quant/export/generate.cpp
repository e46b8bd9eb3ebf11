// The export ctest's generator (tests/quant/export/export.cmake): small networks with
// deterministic random weights, calibrated on deterministic random inputs and converted to
// integers; for each, the exported header and the integer network's answers on test inputs.
//
//   export_generate <directory>     writes <model>.hpp and <model>.bin for each model below
//
// <model>.bin (native byte order, read by driver.cpp):
//   "ESEXPORT", u32 version 1, u32 count, u32 input_size, u32 output_size,
//   f32 inputs[count][input_size]           CHW, as the float network takes them
//   i32 predictions[count]                  QNetwork::predict
//   i8  codes[count][output_size]           QNetwork::forward's output codes
//   f32 values[count][output_size]          quant::dequantize of those codes
//
// The models cover every stage kind and both ends of the arithmetic: LeNet-5 at 8 bits (padded
// convolution, folded BatchNorm, fused ReLUs, max and average pooling, flatten); a 4-bit network
// with 8-bit ends (1x1 and strided convolutions, an unfused ReLU, overlapping average pooling,
// a BatchNorm folded into a 1x1 convolution, Dense without ReLU, flatten of a vector); a 3-bit
// MLP on vector input with MSE-clipped weights. The test inputs are wider than the calibration
// data (so codes saturate), and some samples hold exact rounding ties of the input quantization,
// huge values, infinities and NaNs.
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn.hpp>
#include <edgescale/quant/calibrate.hpp>
#include <edgescale/quant/export.hpp>
#include <edgescale/quant/qnetwork.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace edgescale;

constexpr Index test_samples = 2000;

using LeNet5 =
    nn::Sequential<nn::Input<1, 28, 28>, nn::Conv2D<1, 6, 5, nn::Pad<2>>, nn::BatchNorm, nn::ReLU,
                   nn::MaxPool2D<2>, nn::Conv2D<6, 16, 5>, nn::ReLU, nn::AvgPool2D<2>, nn::Flatten,
                   nn::Dense<400, 120>, nn::ReLU, nn::Dense<120, 84>, nn::ReLU, nn::Dense<84, 10>>;

using Variants =
    nn::Sequential<nn::Input<3, 12, 12>, nn::Conv2D<3, 8, 1>, nn::BatchNorm, nn::MaxPool2D<2>,
                   nn::ReLU, nn::Conv2D<8, 12, 3, nn::Stride<2>, nn::Pad<1>>, nn::ReLU,
                   nn::AvgPool2D<2, 1>, nn::Flatten, nn::Dense<48, 16>, nn::Flatten,
                   nn::Dense<16, 6>>;

using Mlp = nn::Sequential<nn::Input<20>, nn::Dense<20, 32>, nn::ReLU, nn::Dense<32, 7>>;

Matrix<float> normal_batch(Rng& rng, Index rows, Index cols, float sigma) {
  Matrix<float> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = sigma * standard_normal<float>(rng);
  }
  return x;
}

/// Non-trivial running statistics and affine parameters for every BatchNorm of the network.
template <class Net>
void randomize_batchnorms(Net& net, Rng& rng) {
  quant::detail::for_each_index<Net::size>([&](auto i) {
    constexpr std::size_t I = decltype(i)::value;
    using L = typename Net::template layer_type<I>;
    if constexpr (quant::lowering<L>::role == quant::LoweringRole::folds) {
      auto p = net.template layer<I>().parameters();
      for (Index c = 0; c < p[0].size(); ++c) {
        p[0].value[c] = 0.5F + uniform01<float>(rng);
        p[1].value[c] = uniform(rng, -0.3F, 0.3F);
        p[2].value[c] = uniform(rng, -0.5F, 0.5F);
        p[3].value[c] = 0.5F + uniform01<float>(rng);
      }
    }
  });
}

/// Test inputs: N(0, 1.5²) (the calibration saw N(0, 1)); every 40th sample is filled with exact
/// rounding ties of the input quantization, (k + 1/2)·S for k across and beyond the codes; every
/// 97th gets huge values, ±∞ and NaN at a few positions.
Matrix<float> test_inputs(Rng& rng, Index rows, const quant::ActivationParams& input) {
  Matrix<float> x = normal_batch(rng, rows, test_samples, 1.5F);
  Index ties = 0;
  for (Index j = 0; j < test_samples; j += 40) {
    for (Index r = 0; r < rows; ++r) {
      const auto k = static_cast<float>(static_cast<int>(uniform_index(rng, 300)) - 150);
      const float v = (k + 0.5F) * input.scale;
      if (v / input.scale == k + 0.5F) {  // a tie the quantizer sees as one
        x(r, j) = v;
        ++ties;
      }
    }
  }
  const float specials[] = {1e30F,
                            -1e30F,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            3e9F * input.scale,
                            -3e9F * input.scale,
                            2e8F * input.scale,
                            -2.5e7F * input.scale};
  for (Index j = 5; j < test_samples; j += 97) {
    for (const float v : specials) {
      x(static_cast<Index>(uniform_index(rng, static_cast<std::uint64_t>(rows))), j) = v;
    }
  }
  if (ties < rows) {
    throw std::runtime_error("too few exact rounding ties in the test inputs");
  }
  return x;
}

template <class T>
void put(std::ofstream& out, const T* data, std::size_t count) {
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(sizeof(T) * count));
}

/// Builds, calibrates, converts and writes one model.
template <class Net>
void generate(const std::string& dir, const std::string& name, std::uint64_t seed,
              const quant::ConvertOptions& options, const std::string& comment) {
  Rng rng = make_stream(seed, "init");
  Net net(nn::init::kaiming_normal, rng);
  randomize_batchnorms(net, rng);
  constexpr Index in_size = Net::input_shape::size;
  Rng data = make_stream(seed, "calibration");
  quant::Calibrator cal(net, [] { return quant::MinMax{}; });
  for (int b = 0; b < 4; ++b) {
    cal.observe(normal_batch(data, in_size, 64, 1.0F));
  }
  auto qnet = quant::convert(net, cal, options);
  {
    std::ofstream header(dir + "/" + name + ".hpp");
    quant::export_header(qnet, header, {.name = name, .comment = comment});
  }
  Rng test = make_stream(seed, "test");
  const Matrix<float> x = test_inputs(test, in_size, qnet.template stage<0>().output_params());
  const std::vector<Index> predicted = qnet.predict(batch_view(x));
  const quant::QBatchView y = qnet.forward(x);
  const Matrix<float> values = quant::dequantize(y);
  std::vector<std::int32_t> predictions(predicted.begin(), predicted.end());
  const std::set<std::int32_t> classes(predictions.begin(), predictions.end());
  if (classes.size() < 3) {
    throw std::runtime_error(name + ": the network predicts " + std::to_string(classes.size()) +
                             " distinct classes on the test inputs; a test of fewer proves little");
  }
  std::ofstream out(dir + "/" + name + ".bin", std::ios::binary);
  out.write("ESEXPORT", 8);
  const std::uint32_t fields[] = {1, static_cast<std::uint32_t>(test_samples),
                                  static_cast<std::uint32_t>(in_size),
                                  static_cast<std::uint32_t>(y.rows)};
  put(out, fields, 4);
  put(out, x.data(), static_cast<std::size_t>(x.size()));
  put(out, predictions.data(), predictions.size());
  put(out, y.data, static_cast<std::size_t>(y.rows * y.cols));
  put(out, values.data(), static_cast<std::size_t>(values.size()));
  if (!out) {
    throw std::runtime_error("cannot write " + dir + "/" + name + ".bin");
  }
  const quant::ModelSize size = quant::model_size(qnet);
  std::printf("%s: %zu weights, %zu classes predicted; %zu bytes fp32, %zu quantized, %zu sparse\n",
              name.c_str(), size.weights, classes.size(), size.fp32_bytes, size.quantized_bytes,
              size.sparse_bytes);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory>\n", argv[0]);
    return 2;
  }
  try {
    const std::string dir = argv[1];
    generate<LeNet5>(dir, "lenet5", 31, {}, "LeNet-5 (random weights), int8: tests/quant/export");
    generate<Variants>(dir, "variants", 32,
                       {.weight_bits = 4, .activation_bits = 4, .eight_bit_ends = true},
                       "Every stage variant, 4 bits with 8-bit ends: tests/quant/export");
    generate<Mlp>(dir, "mlp", 33,
                  {.weight_bits = 3, .activation_bits = 6, .weight_range = quant::WeightRange::mse},
                  "A 3-bit MLP on a vector input: tests/quant/export");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "export_generate: %s\n", e.what());
    return 1;
  }
  return 0;
}
