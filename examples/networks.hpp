// The networks the examples train, spelled once so that every example (and the bench) agrees.
#pragma once

#include <edgescale/nn.hpp>

namespace edgescale::examples {

/// LeNet-300-100 (LeCun et al. 1998): 784-300-100-10 with ReLU.
template <class T = float>
using LeNet300100 = nn::BasicSequential<T, nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 100>,
                                        nn::ReLU, nn::Dense<100, 10>>;

/// LeNet-5 with ReLU and max pooling, for 1x28x28 inputs (padding 2 keeps the first map 28x28).
template <class T = float>
using LeNet5 = nn::BasicSequential<T, nn::Input<1, 28, 28>, nn::Conv2D<1, 6, 5, nn::Pad<2>>,
                                   nn::ReLU, nn::MaxPool2D<2>, nn::Conv2D<6, 16, 5>, nn::ReLU,
                                   nn::MaxPool2D<2>, nn::Flatten, nn::Dense<400, 120>, nn::ReLU,
                                   nn::Dense<120, 84>, nn::ReLU, nn::Dense<84, 10>>;

}  // namespace edgescale::examples
