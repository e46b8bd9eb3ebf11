// edgescale/edgescale.hpp — umbrella: the core of every area. Optional headers (zlib-backed
// data/gz.hpp and data/fashion_mnist.hpp, mpi/, interop/) are never included here.
#pragma once

#include <edgescale/core.hpp>
#include <edgescale/data.hpp>
#include <edgescale/nn.hpp>
#include <edgescale/fed.hpp>
#include <edgescale/prune.hpp>
#include <edgescale/quant.hpp>
