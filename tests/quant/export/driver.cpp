// The export ctest's driver (tests/quant/export/export.cmake): compiled as C++17 with the
// exported headers, it runs each exported model on the generator's test inputs and passes when
// every prediction, every int8 output code and every dequantized value equals the in-library
// QNetwork's, and no heap allocation happens during predict.
//
//   export_driver <directory>            reads <model>.bin for each model; exit 0 when all agree
//   export_driver <directory> --corrupt  flips one expected code first: must exit 1 (the check
//                                        would catch a difference)
//
// No edgescale library header here: the exported headers stand alone (counting_new.hpp is the
// tests' counting operator new).
#include "lenet5.hpp"
#include "mlp.hpp"
#include "variants.hpp"

// Every operator new is counted: an exported model must not allocate.
#include "../../counting_new.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

/// One model's expected answers (generate.cpp writes them).
struct Expected {
  std::size_t count = 0;
  std::vector<float> inputs;
  std::vector<std::int32_t> predictions;
  std::vector<std::int8_t> codes;
  std::vector<float> values;
};

template <class T>
bool get(std::FILE* file, std::vector<T>& values, std::size_t count) {
  values.resize(count);
  return std::fread(values.data(), sizeof(T), count, file) == count;
}

bool read_expected(const std::string& path, int input_size, int output_size, Expected& e) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    std::fprintf(stderr, "%s: cannot open\n", path.c_str());
    return false;
  }
  char magic[8] = {};
  std::uint32_t fields[4] = {};
  bool ok = std::fread(magic, 1, 8, file) == 8 && std::memcmp(magic, "ESEXPORT", 8) == 0 &&
            std::fread(fields, sizeof(std::uint32_t), 4, file) == 4 && fields[0] == 1 &&
            fields[2] == static_cast<std::uint32_t>(input_size) &&
            fields[3] == static_cast<std::uint32_t>(output_size);
  if (ok) {
    e.count = fields[1];
    const auto in = static_cast<std::size_t>(input_size);
    const auto out = static_cast<std::size_t>(output_size);
    ok = get(file, e.inputs, e.count * in) && get(file, e.predictions, e.count) &&
         get(file, e.codes, e.count * out) && get(file, e.values, e.count * out);
  }
  std::fclose(file);
  if (!ok) {
    std::fprintf(stderr, "%s: not the expected answers of a model of %d inputs and %d outputs\n",
                 path.c_str(), input_size, output_size);
  }
  return ok;
}

/// Runs one exported model (its predict and dequantize) over the expected answers; prints the first
/// differences, returns whether all agree.
template <int InputSize, int OutputSize, class Predict, class Dequantize>
bool check(const char* name, const std::string& dir, bool corrupt, Predict predict,
           Dequantize dequantize) {
  constexpr auto in_size = static_cast<std::size_t>(InputSize);
  constexpr auto out_size = static_cast<std::size_t>(OutputSize);
  Expected e;
  if (!read_expected(dir + "/" + name + ".bin", InputSize, OutputSize, e)) {
    return false;
  }
  if (e.count < 2000) {
    std::fprintf(stderr, "%s: %zu test inputs, expected at least 2000\n", name, e.count);
    return false;
  }
  if (corrupt) {
    const std::size_t at = (e.count / 2) * out_size + 1;
    e.codes[at] = static_cast<std::int8_t>(e.codes[at] == 0 ? 1 : 0);
  }
  std::int8_t logits[out_size] = {};
  float values[out_size] = {};
  std::size_t differences = 0;
  const long before = edgescale::test::allocations.load();
  for (std::size_t n = 0; n < e.count; ++n) {
    const float* x = e.inputs.data() + n * in_size;
    const int label = predict(x, logits);
    const int label_alone = n % 8 == 0 ? predict(x, nullptr) : label;  // without logits_out
    dequantize(logits, values);
    bool same = label == e.predictions[n] && label_alone == label;
    for (std::size_t i = 0; i < out_size; ++i) {
      same = same && logits[i] == e.codes[n * out_size + i] &&
             std::memcmp(&values[i], &e.values[n * out_size + i], sizeof(float)) == 0;
    }
    if (!same && ++differences <= 5) {
      std::fprintf(stderr, "%s: sample %zu differs: class %d (without logits_out %d), library %d\n",
                   name, n, label, label_alone, static_cast<int>(e.predictions[n]));
      for (std::size_t i = 0; i < out_size; ++i) {
        std::fprintf(stderr, "  code %zu: header %d, library %d; value header %.9g, library %.9g\n",
                     i, int{logits[i]}, int{e.codes[n * out_size + i]},
                     static_cast<double>(values[i]),
                     static_cast<double>(e.values[n * out_size + i]));
      }
    }
  }
  const long allocated = edgescale::test::allocations.load() - before;
  if (allocated != 0) {
    std::fprintf(stderr, "%s: %ld heap allocations during predict\n", name, allocated);
  }
  std::printf("%s: %zu inputs, %zu differ from the library, %ld allocations\n", name, e.count,
              differences, allocated);
  return differences == 0 && allocated == 0;
}

lenet5::Buffers lenet5_buffers;
variants::Buffers variants_buffers;
mlp::Buffers mlp_buffers;

}  // namespace

int main(int argc, char** argv) {
  const bool corrupt = argc == 3 && std::strcmp(argv[2], "--corrupt") == 0;
  if (argc != 2 && !corrupt) {
    std::fprintf(stderr, "usage: %s <directory> [--corrupt]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = check<lenet5::input_size, lenet5::output_size>(
      "lenet5", dir, corrupt,
      [](const float* x, std::int8_t* logits) {
        return lenet5::predict(x, lenet5_buffers, logits);
      },
      [](const std::int8_t* logits, float* values) { lenet5::dequantize(logits, values); });
  ok =
      check<variants::input_size, variants::output_size>(
          "variants", dir, false,
          [](const float* x, std::int8_t* logits) {
            return variants::predict(x, variants_buffers, logits);
          },
          [](const std::int8_t* logits, float* values) { variants::dequantize(logits, values); }) &&
      ok;
  ok = check<mlp::input_size, mlp::output_size>(
           "mlp", dir, false,
           [](const float* x, std::int8_t* logits) { return mlp::predict(x, mlp_buffers, logits); },
           [](const std::int8_t* logits, float* values) { mlp::dequantize(logits, values); }) &&
       ok;
  std::printf("%s\n", ok ? "every exported model agrees with the library"
                         : "an exported model differs from the library");
  return ok ? 0 : 1;
}
