// Batch-1 inference of a static-shape network performs no heap allocation: global operator new
// is replaced (for this test executable) by one that counts (tests/counting_new.hpp).
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/sequential.hpp>

#include "counting_new.hpp"
#include <doctest/doctest.h>

using namespace edgescale;

TEST_CASE("batch-1 inference of LeNet-300-100 allocates nothing, from the first call") {
  using Mlp = nn::Sequential<nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 100>, nn::ReLU,
                             nn::Dense<100, 10>>;
  Rng rng = make_stream(1, "init");
  Mlp net{nn::init::kaiming_normal, rng};
  net.set_training(false);
  Eigen::Matrix<float, 784, 1> x = Eigen::Matrix<float, 784, 1>::Random();
  Eigen::internal::set_is_malloc_allowed(false);  // Eigen asserts on any malloc of its own
  float checksum = 0;
  const long n = test::count_allocations([&] {
    for (int i = 0; i < 3; ++i) {
      checksum += net.forward(x)(3, 0);
    }
  });
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(n == 0);
  CHECK(std::isfinite(checksum));
}

TEST_CASE("after a large batch, batch 1 reuses the workspaces") {
  using Mlp = nn::Sequential<nn::Dense<20, 8>, nn::Tanh, nn::Dense<8, 3>>;
  Mlp net;
  Matrix<float> big = Matrix<float>::Random(20, 64);
  net.forward(big);
  Eigen::Matrix<float, 20, 1> one = Eigen::Matrix<float, 20, 1>::Random();
  Eigen::internal::set_is_malloc_allowed(false);
  const long n = test::count_allocations([&] { net.forward(one); });
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(n == 0);
}
