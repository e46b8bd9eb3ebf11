// export_check — the exported LeNet-5 header against the library's integer network on the whole
// Fashion-MNIST test set.
//
//   build/examples/export_check --load DIR [--data DIR]
//
// The build generates the header (quantize --net lenet5 --export, see examples/CMakeLists.txt)
// and the .npy model it was made from (--save DIR) in one run; this program includes the header,
// loads DIR into the library's quant::QNetwork, and runs every test image through both: the
// predicted class and all ten int8 output codes must agree, and the header's predict must not
// allocate (a counting operator new). Exits non-zero otherwise, saying what differed.
#include <edgescale/data/fashion_mnist.hpp>
#include <edgescale/quant/qnetwork.hpp>

#include "../common/cli.hpp"
#include "../common/instances.hpp"
#include "../common/paths.hpp"
#include "../networks.hpp"
#include "edgescale_lenet5.hpp"  // generated
#include "model_files.hpp"

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <new>
#include <string>

namespace {
std::atomic<long> allocations{0};
}  // namespace

// Replacements that count; kept out of line so that g++ -O2 pairs each allocation with its own
// deallocation function (inlined, free() would meet a pointer from operator new: a
// -Wmismatched-new-delete false positive).
[[gnu::noinline]] void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) {
    return p;
  }
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t size) {
  return ::operator new(size);
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t /*size*/) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p, std::size_t /*size*/) noexcept {
  std::free(p);
}

int main(int argc, char** argv) {
  using namespace edgescale;
  std::string load;
  std::string data_dir = data::default_fashion_mnist_dir().string();
  examples::cli::Parser cli("export_check",
                            "Checks the exported LeNet-5 header against the library's integer "
                            "network on the whole Fashion-MNIST test set.");
  cli.option("--load", load, "DIR", "the integer model the header was exported from");
  cli.option("--data", data_dir, "DIR", "Fashion-MNIST directory");
  cli.parse(argc, argv);
  cli.require(!load.empty(), "--load is required");
  try {
    examples::check_input_dir(load, "--load");
    const auto test = data::load_fashion_mnist<float>(data::Split::test, data_dir,
                                                      data::fashion_mnist_standardize);
    auto qnet = examples::quantize::load_model<quant::qnetwork_t<examples::LeNet5<>>>(load);
    static edgescale_lenet5::Buffers buffers;  // static storage, as on a device
    long class_mismatches = 0;
    long code_mismatches = 0;
    long allocated = 0;
    for (Index j = 0; j < test.size(); ++j) {
      const float* x = test.features.data() + j * test.sample_size();
      std::int8_t codes[10];
      const long before = allocations.load();
      const int predicted = edgescale_lenet5::predict(x, buffers, codes);
      allocated += allocations.load() - before;
      const quant::QBatchView y = qnet.forward(ConstBatchView<float>(x, test.sample_size(), 1));
      const Index expected = std::max_element(y.data, y.data + 10) - y.data;
      class_mismatches += predicted != expected;
      for (int c = 0; c < 10; ++c) {
        code_mismatches += codes[c] != y.data[c];
      }
    }
    std::cout << "export_check: " << test.size() << " test images: " << class_mismatches
              << " predictions and " << code_mismatches
              << " output codes differ between the exported header and the library; " << allocated
              << " heap allocations in the header's predict\n";
    return class_mismatches == 0 && code_mismatches == 0 && allocated == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "export_check: " << e.what() << "\n";
    return 1;
  }
}
