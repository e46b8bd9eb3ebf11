// examples/quantize/options.hpp — the quantize example's flags (parsed in examples/quantize.cpp)
// and its two halves, one per network (quantize/run_mlp.cpp, run_lenet5.cpp).
#pragma once

#include <edgescale/core/tensor.hpp>

#include <cstdint>
#include <string>

namespace edgescale::examples::quantize {

struct Options {
  std::string net = "lenet5";
  std::string mode = "ptq";
  int bits = 8;
  std::string observer = "minmax";
  bool uniform = false;
  std::uint64_t seed = 1;
  std::string out;
  std::string load;
  std::string save;
  std::string export_path;
  std::string data;
  int epochs = 10;
  int qat_epochs = 3;
  double qat_lr = 0.01;
  int calibration_batches = 32;
  Index test_samples = 0;
};

int run_mlp(const Options& o);
int run_lenet5(const Options& o);

}  // namespace edgescale::examples::quantize
