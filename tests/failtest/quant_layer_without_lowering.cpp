// EXPECT-ERROR: has no integer lowering
// A network with a layer that has no integer form (Tanh) does not convert, and the compiler says
// why and what to do.
#include <edgescale/nn.hpp>
#include <edgescale/quant/qnetwork.hpp>

#ifdef EDGESCALE_FAILTEST_CONTROL
using Net = edgescale::nn::Sequential<edgescale::nn::Dense<4, 3>, edgescale::nn::ReLU>;
#else
using Net = edgescale::nn::Sequential<edgescale::nn::Dense<4, 3>, edgescale::nn::Tanh>;
#endif

int main() {
  Net net;
  edgescale::quant::Calibrator cal(net, [] { return edgescale::quant::MinMax{}; });
  const edgescale::Matrix<float> x = edgescale::Matrix<float>::Ones(4, 2);
  cal.observe(x);
  auto qnet = edgescale::quant::convert(net, cal);
  return qnet.forward(x).rows == 3 ? 0 : 1;
}
