// edgescale/core.hpp — what every area builds on: tensors and shapes, errors, random streams,
// progress display.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/progress.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
