// edgescale/core.hpp — what every area builds on: tensors and shapes, named parameters and
// parameter sets, the shared contracts (named tensors, batch sources), errors, random streams,
// progress display.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/progress.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
