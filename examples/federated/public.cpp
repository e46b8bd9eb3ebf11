// The public LeNet-5 extractor of the federated example (examples/federated/experiment.hpp),
// compiled apart from federated.cpp.
#include <edgescale/fed/features.hpp>
#include <edgescale/nn.hpp>

#include "../common/instances.hpp"
#include "experiment.hpp"

#include <iostream>

namespace edgescale::examples::federated {

PublicExtractor train_public_extractor(const data::Dataset<float>& public_set,
                                       const data::Dataset<float>& test, int epochs,
                                       std::uint64_t seed, bool quiet) {
  Rng init = make_stream(seed, "public-init");
  PublicExtractor p{LeNet5<float>{nn::init::kaiming_normal, init}, 0.0};
  nn::Trainer trainer{p.net};
  nn::SGD opt{{.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 5e-4}};
  data::BatchSampler batches(public_set, 64);
  data::BatchSampler test_batches(test, 1000);
  Rng shuffle = make_stream(seed, "public-shuffle");
  const nn::CosineSchedule schedule{.base = 0.05, .epochs = epochs, .per_step = true};
  if (!quiet) {
    std::cerr << "training the public extractor (LeNet-5) on " << public_set.size() << " samples\n";
  }
  const auto history =
      quiet ? nn::fit(trainer, opt, batches, test_batches, {.epochs = epochs}, schedule, shuffle)
            : nn::fit(trainer, opt, batches, test_batches, {.epochs = epochs}, schedule, shuffle,
                      nn::ProgressDisplay{std::cerr});
  p.accuracy = history.back().test.accuracy;
  return p;
}

data::Dataset<float> lenet5_features(LeNet5<float>& net, const data::Dataset<float>& images) {
  return fed::extract_features(net, images);
}

}  // namespace edgescale::examples::federated
