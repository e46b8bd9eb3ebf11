// edgescale/data.hpp — the data area: IDX files, datasets and batches, .npy arrays and parameter
// files. Needs Eigen and the standard library only; the zlib-backed readers are in the optional
// headers data/gz.hpp and data/fashion_mnist.hpp, which are not included here.
#pragma once

#include <edgescale/data/dataset.hpp>
#include <edgescale/data/idx.hpp>
#include <edgescale/data/npy.hpp>
#include <edgescale/data/parameter_file.hpp>
