// examples/common/instances.hpp — library code every example uses, compiled once for all of them.
//
// The library is header-only, so each example would compile its own copy of the Fashion-MNIST
// reader, the parameter-file code for the example networks and the layers' matrix products: about
// a third of an example's compile time (docs/results/nn.md, "Compile cost"). These explicit
// instantiation declarations tell the compiler that common/instances.cpp, linked into every
// example, holds them; an example that includes this header compiles none of them. The products
// are the library's own opt-in (nn/extern_kernels.hpp, which any program of several files can
// use); the rest are the examples'. The calls in the examples are unchanged: deleting this
// include gives the same program, compiled slower.
//
// What is listed must match the library's declarations exactly; when a signature changes, the
// compiler says so here (and the entry is updated or dropped).
#pragma once

#include <edgescale/nn/extern_kernels.hpp>
#include <edgescale/data/fashion_mnist.hpp>
#include <edgescale/data/parameter_file.hpp>

#include "../networks.hpp"

#include <filesystem>

namespace edgescale {

namespace data {

extern template Dataset<float> load_fashion_mnist<float>(Split, const std::filesystem::path&,
                                                         Standardize);

extern template void save_parameters<examples::LeNet300100<>>(const examples::LeNet300100<>&,
                                                              const std::filesystem::path&);
extern template void load_parameters<examples::LeNet300100<>>(examples::LeNet300100<>&,
                                                              const std::filesystem::path&);
extern template void save_parameters<examples::LeNet5<>>(const examples::LeNet5<>&,
                                                         const std::filesystem::path&);
extern template void load_parameters<examples::LeNet5<>>(examples::LeNet5<>&,
                                                         const std::filesystem::path&);

}  // namespace data
}  // namespace edgescale
