// examples/common/instances.cpp — the definitions of what common/instances.hpp declares.
#define EDGESCALE_INSTANTIATE_KERNELS  // the layers' matrix products (nn/extern_kernels.hpp)
#include "instances.hpp"

namespace edgescale {
namespace data {

template Dataset<float> load_fashion_mnist<float>(Split, const std::filesystem::path&, Standardize);

template void save_parameters<examples::LeNet300100<>>(const examples::LeNet300100<>&,
                                                       const std::filesystem::path&);
template void load_parameters<examples::LeNet300100<>>(examples::LeNet300100<>&,
                                                       const std::filesystem::path&);
template void save_parameters<examples::LeNet5<>>(const examples::LeNet5<>&,
                                                  const std::filesystem::path&);
template void load_parameters<examples::LeNet5<>>(examples::LeNet5<>&,
                                                  const std::filesystem::path&);

}  // namespace data
}  // namespace edgescale
