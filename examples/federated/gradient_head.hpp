// examples/federated/gradient_head.hpp — a linear head Dense<D, 10> trained by a gradient-based
// strategy; each width is compiled in its own file (gradient_head_<D>.cpp).
#pragma once

#include "experiment.hpp"

#include <cstdint>

namespace edgescale::examples::federated::detail {

#define EDGESCALE_FEDERATED_HEAD(D)                                                     \
  Outcome run_head_##D(const GradientSettings& s, const data::Dataset<float>& pool,     \
                       const data::Dataset<float>& test, const fed::Partition& clients, \
                       std::uint64_t seed)
EDGESCALE_FEDERATED_HEAD(84);
EDGESCALE_FEDERATED_HEAD(784);
EDGESCALE_FEDERATED_HEAD(1024);

}  // namespace edgescale::examples::federated::detail
