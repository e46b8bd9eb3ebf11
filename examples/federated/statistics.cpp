// FED3R, FED3R-RF and FedNCM on features and the random-feature extractor of the federated
// example (examples/federated/experiment.hpp), compiled apart from federated.cpp.
#include <edgescale/fed/fed3r.hpp>
#include <edgescale/fed/fedncm.hpp>
#include <edgescale/fed/random_features.hpp>
#include <edgescale/fed/simulate.hpp>

#include "../common/instances.hpp"
#include "experiment.hpp"

#include <cmath>
#include <cstdio>

namespace edgescale::examples::federated {

namespace {
template <class Strategy>
Outcome one_pass(Strategy& strategy, const StatisticsSettings& s, const data::Dataset<float>& pool,
                 const data::Dataset<float>& test, const fed::Partition& clients) {
  fed::SimulationOptions options = s.simulation;
  options.sampling = fed::Sampling::cyclic;
  fed::Simulation sim(strategy, pool, clients, options, s.transport);
  Outcome out;
  const int r = s.rounds > 0 ? s.rounds : sim.rounds_per_pass();
  out.history = sim.run(r, test, [&](const fed::RoundReport& report) {
    if (!s.quiet) {
      std::fprintf(stderr, "\rround %4d/%d  accuracy %6.2f%%  up %8.2f MB ", report.round + 1, r,
                   100.0 * report.accuracy, static_cast<double>(report.total_bytes_up) / 1e6);
      if (report.round + 1 == r) {
        std::fputc('\n', stderr);
      }
    }
  });
  return out;
}
}  // namespace

Outcome run_statistics(const StatisticsSettings& s, const data::Dataset<float>& pool,
                       const data::Dataset<float>& test, const fed::Partition& clients,
                       Matrix<double>* ridge_weights) {
  if (s.strategy == "fedncm") {
    fed::FedNcm<float> strategy(pool.sample_size(), pool.classes);
    return one_pass(strategy, s, pool, test, clients);
  }
  fed::Fed3rOptions options{.lambda = s.lambda};
  if (s.strategy == "fed3r-rf") {
    // σ defaults to √d, the scale of the distance between two feature vectors of d values of
    // order 1 (the Gaussian kernel then neither saturates at 0 nor at 1).
    options.random_features = fed::RandomFeatureOptions{
        .kind = fed::RandomFeatureKind::fourier,
        .features = s.rf_width,
        .sigma = s.rf_sigma > 0 ? s.rf_sigma : std::sqrt(static_cast<double>(pool.sample_size())),
        .seed = s.rf_seed};
  }
  fed::Fed3r<float> strategy(pool.sample_size(), pool.classes, options);
  Outcome out = one_pass(strategy, s, pool, test, clients);
  if (ridge_weights != nullptr) {
    *ridge_weights = strategy.weights();
  }
  return out;
}

data::Dataset<float> random_relu_features(const data::Dataset<float>& data, Index width,
                                          std::uint64_t seed) {
  const fed::RandomFeatures<float> map(
      data.sample_size(),
      {.kind = fed::RandomFeatureKind::relu, .features = width, .sigma = 1.0, .seed = seed});
  return map.map(data);
}

}  // namespace edgescale::examples::federated
