// A whole LeNet-5 in double, checked end to end against finite differences: the input gradient
// and every parameter tensor through Sequential's backward.
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/sequential.hpp>

#include "nn/gradcheck.hpp"
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>

using namespace edgescale;

namespace {

using LeNet5 = nn::BasicSequential<double, nn::Input<1, 28, 28>, nn::Conv2D<1, 6, 5, nn::Pad<2>>,
                                   nn::ReLU, nn::MaxPool2D<2>, nn::Conv2D<6, 16, 5>, nn::ReLU,
                                   nn::MaxPool2D<2>, nn::Flatten, nn::Dense<400, 120>, nn::ReLU,
                                   nn::Dense<120, 84>, nn::ReLU, nn::Dense<84, 10>>;

/// Smallest |pre-activation| over a layer's output (the distance to the ReLU kink).
double kink_margin(const ConstBatchView<double>& pre) {
  return pre.cwiseAbs().minCoeff();
}

/// Smallest gap between the largest and the second largest value of a 2x2 window of a (C, H, W)
/// batch, over windows whose maximum is positive (all-zero windows after a ReLU are flat: their
/// gradient is zero whichever entry is chosen).
template <class S>
double pool_margin(const ConstBatchView<double>& a) {
  constexpr int c = S::dims[0], h = S::dims[1], w = S::dims[2];
  double margin = std::numeric_limits<double>::infinity();
  for (Index n = 0; n < a.cols(); ++n) {
    for (int ch = 0; ch < c; ++ch) {
      for (int y = 0; y + 1 < h; y += 2) {
        for (int x = 0; x + 1 < w; x += 2) {
          double v[4];
          for (int k = 0; k < 4; ++k)
            v[k] = a((ch * h + y + k / 2) * w + x + k % 2, n);
          std::sort(v, v + 4);
          if (v[3] > 0)
            margin = std::min(margin, v[3] - v[2]);
        }
      }
    }
  }
  return margin;
}

}  // namespace

TEST_CASE("LeNet-5 gradients match finite differences (input and every tensor)") {
  // Seed chosen so that, for this batch, no ReLU pre-activation lies within 1e-4 of 0 and no
  // max-pool window has two leading values within 1e-4 (checked below): the central difference
  // (h = 1e-6) then never crosses a kink, and the 1e-6 bound holds. With another seed that hits a
  // kink, change the seed; do not loosen the bound.
  Rng rng = make_stream(2024, "lenet5-gradcheck");
  LeNet5 net{nn::init::kaiming_normal, rng};
  // Non-zero biases so that every bias gradient is exercised through the kinks' sides too.
  net.for_each_parameter([&](std::string_view, Parameter<double>& p) {
    if (p.role == ParameterRole::bias) {
      for (Index i = 0; i < p.size(); ++i)
        p.value[i] = 0.1 * standard_normal(rng);
    }
  });
  const Matrix<double> x = test::random_batch(784, 2, rng);

  // Walk the layers by hand to see every pre-activation (each layer keeps its own output).
  const ConstBatchView<double> xv(x.data(), 784, 2);
  const auto conv1 = net.layer<0>().forward(xv);
  const auto relu1 = net.layer<1>().forward(conv1);
  const auto pool1 = net.layer<2>().forward(relu1);
  const auto conv2 = net.layer<3>().forward(pool1);
  const auto relu2 = net.layer<4>().forward(conv2);
  const auto pool2 = net.layer<5>().forward(relu2);
  const auto fc1 = net.layer<7>().forward(net.layer<6>().forward(pool2));
  const auto fc2 = net.layer<9>().forward(net.layer<8>().forward(fc1));
  const double relu_margin =
      std::min({kink_margin(conv1), kink_margin(conv2), kink_margin(fc1), kink_margin(fc2)});
  const double max_margin =
      std::min(pool_margin<Shape<6, 28, 28>>(relu1), pool_margin<Shape<16, 10, 10>>(relu2));
  INFO("ReLU margin ", relu_margin, ", max-pool margin ", max_margin);
  REQUIRE(relu_margin > 1e-4);
  REQUIRE(max_margin > 1e-4);

  const auto r = test::gradient_check(net, x, rng);
  CHECK(r.input_error < 1e-6);
  REQUIRE(r.names.size() == 10);
  for (std::size_t i = 0; i < r.names.size(); ++i) {
    INFO(r.names[i], ": ", r.parameter_errors[i]);
    CHECK(r.parameter_errors[i] < 1e-6);
  }
}
