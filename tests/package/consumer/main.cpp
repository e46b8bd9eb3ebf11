// A minimal user of the installed (or vendored) edgescale: the umbrella header, a network with
// static shapes, a seeded stream, one training step and a forward pass.
#include <edgescale/edgescale.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  using namespace edgescale;
  using Net = nn::Sequential<nn::Input<1, 8, 8>, nn::Conv2D<1, 4, 3, nn::Pad<1>>, nn::ReLU,
                             nn::MaxPool2D<2>, nn::Flatten, nn::Dense<64, 3>>;
  static_assert(nn::Network<Net>);

  Rng rng = make_stream(1, "consumer");
  Net net{nn::init::kaiming_normal, rng};
  Matrix<float> batch(Net::input_shape::size, 4);
  for (Index i = 0; i < batch.size(); ++i) {
    batch.data()[i] = standard_normal<float>(rng);
  }
  const std::vector<std::int32_t> labels{0, 1, 2, 1};
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = 0.1}};
  const float loss =
      trainer.step(opt, ConstBatchView<float>(batch.data(), batch.rows(), 4), nn::Labels(labels));
  const Matrix<float> logits = net.forward(batch);

  std::printf("consumer: %lld parameters, loss %.4f, logits %lld x %lld\n",
              static_cast<long long>(net.parameter_count()), static_cast<double>(loss),
              static_cast<long long>(logits.rows()), static_cast<long long>(logits.cols()));
  return std::isfinite(loss) && logits.rows() == 3 && logits.cols() == 4 ? 0 : 1;
}
