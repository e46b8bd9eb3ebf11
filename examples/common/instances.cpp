// examples/common/instances.cpp — the definitions of what common/instances.hpp declares.
#include "instances.hpp"

namespace edgescale {

template void gemm_nn<float>(const ConstBatchView<float>&, const ConstBatchView<float>&,
                             BatchView<float>);
template void gemm_tn<float>(const ConstBatchView<float>&, const ConstBatchView<float>&,
                             BatchView<float>);
template void gemm_nt<float>(const ConstBatchView<float>&, const ConstBatchView<float>&,
                             BatchView<float>);

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
