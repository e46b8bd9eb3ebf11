// quant/export.hpp: model sizes against hand counts (dense, low-bit, pruned); the exported
// header's text (what it includes and holds, what it must not use, names and comments). That the
// header compiles and computes the integer network's codes is tests/quant/export's ctest.
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn.hpp>
#include <edgescale/quant/calibrate.hpp>
#include <edgescale/quant/export.hpp>
#include <edgescale/quant/qnetwork.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iomanip>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

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

namespace {

std::string exported(const auto& qnet, const quant::ExportOptions& options = {}) {
  std::ostringstream out;
  quant::export_header(qnet, out, options);
  return out.str();
}

/// Whether `word` occurs in `text` as a whole identifier.
bool has_word(std::string_view text, std::string_view word) {
  const auto ident = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (std::size_t at = text.find(word); at != std::string_view::npos;
       at = text.find(word, at + 1)) {
    const bool left = at == 0 || !ident(text[at - 1]);
    const bool right = at + word.size() == text.size() || !ident(text[at + word.size()]);
    if (left && right) {
      return true;
    }
  }
  return false;
}

/// The #include lines of a header.
std::vector<std::string> includes(const std::string& text) {
  std::vector<std::string> found;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("#include")) {
      found.push_back(line);
    }
  }
  return found;
}

/// What every exported header must and must not hold.
void check_self_contained(const std::string& h, std::string_view name) {
  CHECK(includes(h) == std::vector<std::string>{"#include <cstddef>", "#include <cstdint>"});
  CHECK(h.find("#pragma once") != std::string::npos);
  CHECK(h.find("namespace " + std::string(name) + " {") != std::string::npos);
  CHECK(h.find("}  // namespace " + std::string(name)) != std::string::npos);
  for (const std::string_view banned :
       {"new", "delete", "malloc", "calloc", "free", "Eigen", "thread_local", "static_assert"}) {
    CAPTURE(banned);
    CHECK_FALSE(has_word(h, banned));
  }
  for (const std::string_view banned :
       {"std::vector", "<vector>", "std::array", "edgescale::", "std::nearbyint(", "std::sqrt("}) {
    CAPTURE(banned);
    CHECK(h.find(banned) == std::string::npos);
  }
  CHECK(h.find("inline int predict(const float* input, Buffers& buffers, std::int8_t* "
               "logits_out = nullptr)") != std::string::npos);
  CHECK(h.find("inline void dequantize(const std::int8_t* logits, float* values)") !=
        std::string::npos);
  CHECK(h.find("struct Buffers {") != std::string::npos);
  CHECK_MESSAGE(
      std::all_of(h.begin(), h.end(), [](char c) { return static_cast<unsigned char>(c) < 128; }),
      "the header is ASCII");
}

/// The array `name` as the header writes it, from the values of the stage.
template <class T>
std::string array_text(std::string_view type, std::string_view name, std::span<const T> values) {
  std::ostringstream out;
  quant::detail::write_array(out, type, name, values);
  return out.str();
}

}  // namespace

TEST_CASE(
    "export_header: a self-contained header holding the stages' codes, biases and "
    "multipliers") {
  TinyMlp net = tiny_mlp();
  const auto qnet = converted(net, {});
  const std::string h = exported(qnet, {.name = "tiny", .comment = "A tiny MLP\nsecond line"});
  check_self_contained(h, "tiny");
  CHECK(h.starts_with("// A tiny MLP\n// second line\n"));
  const auto& rq = qnet.stage<1>().requantizer();
  CHECK(h.find("struct layer0 {\n  static constexpr int in = 4, out = 3;\n") != std::string::npos);
  CHECK(h.find(array_text("std::int8_t", "weights", rq.codes())) != std::string::npos);
  CHECK(h.find(array_text("std::int32_t", "bias", rq.bias())) != std::string::npos);
  std::vector<std::int32_t> multipliers;
  for (const auto& m : rq.multipliers()) {
    multipliers.push_back(m.value);
  }
  CHECK(h.find(array_text("std::int32_t", "multiplier",
                          std::span<const std::int32_t>(multipliers))) != std::string::npos);
  // The ReLU after layer 0 is fused: its clamp starts at the output zero point.
  CHECK(h.find("  static constexpr std::int32_t output_zero_point = " +
               std::to_string(rq.output_params().zero_point) +
               ", act_min = " + std::to_string(rq.act_min())) != std::string::npos);
  CHECK(rq.act_min() == std::max(rq.output_params().qmin, rq.output_params().zero_point));
  CHECK(h.find("// layer1: ReLU, fused into the clamp of layer0") != std::string::npos);
  CHECK(h.find("kernels::dense<layer0>(buffers.codes[0], buffers.codes[1]);") != std::string::npos);
  CHECK(h.find("kernels::dense<layer2>(buffers.codes[1], buffers.codes[0]);") != std::string::npos);
  CHECK(h.find("  return buffers.codes[0];\n}") != std::string::npos);
  // Buffers: two of the largest activation (the 4 input codes), a 1-code patch (no convolution).
  CHECK(h.find("  std::int8_t codes[2][4];\n  std::int8_t patch[1];\n") != std::string::npos);
  // The input and output quantization, as floats that read back exactly.
  std::ostringstream scale;
  scale << "static constexpr float scale = " << std::scientific << std::setprecision(8)
        << qnet.stage<0>().output_params().scale << "F;";
  CHECK(h.find(scale.str()) != std::string::npos);
  CHECK(std::stof(quant::detail::float_literal(0.1F)) == 0.1F);
  CHECK(std::stof(quant::detail::float_literal(3.0e-38F)) == 3.0e-38F);
}

TEST_CASE("export_header: every stage kind of quant/stages.hpp exports") {
  // Conv2D with padding and BatchNorm (folded) and ReLU (fused), max pooling, an unfused ReLU, a
  // strided convolution, a 1x1 direct one, average pooling, flatten of an image, Dense, flatten
  // of a vector, Dense.
  using Net =
      nn::Sequential<nn::Input<2, 8, 8>, nn::Conv2D<2, 4, 3, nn::Pad<1>>, nn::BatchNorm, nn::ReLU,
                     nn::MaxPool2D<2>, nn::ReLU, nn::Conv2D<4, 4, 3, nn::Stride<2>, nn::Pad<1>>,
                     nn::Conv2D<4, 3, 1>, nn::AvgPool2D<2, 1>, nn::Flatten, nn::Dense<3, 6>,
                     nn::Flatten, nn::Dense<6, 2>>;
  Rng rng = make_stream(24, "init");
  Net net(nn::init::kaiming_normal, rng);
  const auto qnet =
      converted(net, {.weight_bits = 4, .activation_bits = 4, .eight_bit_ends = true});
  const std::string h = exported(qnet, {.name = "every::stage"});
  check_self_contained(h, "every::stage");
  for (const char* expected :
       {"kernels::quantize_input<input_params>(input, buffers.codes[0]);",
        "// layer0: Conv2D 2x8x8 -> 4x8x8, 3x3 kernels, stride 1, padding 1\n",
        "kernels::conv2d<layer0>(buffers.codes[0], buffers.patch, buffers.codes[1]);",
        "// layer1: BatchNorm, folded into layer0",
        "// layer2: ReLU, fused into the clamp of layer0",
        "kernels::max_pool<4, 8, 8, 2, 2>(buffers.codes[1], buffers.codes[0]);",
        "// layer4: ReLU\n  kernels::relu<64, ", "kernels::conv2d<layer5>", "stride 2, padding 1",
        "kernels::conv2d<layer6>", "static constexpr bool direct = true;",
        "kernels::relu<64, -128>(buffers.codes[0]);", "kernels::avg_pool<3, 2, 2, 2, 1>",
        "kernels::hwc_to_chw<3, 1>", "kernels::dense<layer9>",
        "// layer10: Flatten of a vector (nothing to do)", "kernels::dense<layer11>",
        "4-bit weights", "std::int8_t patch[36];"}) {
    CAPTURE(expected);
    CHECK(h.find(expected) != std::string::npos);
  }
}

TEST_CASE("export_header: namespace names, comments, and stages without weights") {
  TinyMlp net = tiny_mlp();
  const auto qnet = converted(net, {});
  CHECK(exported(qnet).find("namespace edgescale_model {") != std::string::npos);
  for (const char* bad : {"", "1model", "my model", "a::", "::a", "a:::b", "a-b", "a::b::"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS((void)exported(qnet, {.name = bad}), argument_error);
  }
  CHECK_NOTHROW((void)exported(qnet, {.name = "_m2::v1"}));
  // A comment line ending in a backslash would splice the next line into the comment.
  const std::string h = exported(qnet, {.comment = "ends in \\\n\nlast  "});
  CHECK(h.starts_with("// ends in \\.\n//\n// last\n"));
  // A default-constructed integer network has no weights to export.
  const quant::qnetwork_t<TinyMlp> empty;
  CHECK_THROWS_AS((void)exported(empty), argument_error);
}

}  // namespace edgescale
