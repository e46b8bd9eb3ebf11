// edgescale/nn.hpp — the network core: layers, Sequential, layer visits and hooks, spec
// transforms, gates, losses, initialisers, optimizers, schedules, callbacks, the overwriting
// backward and the training loop.
#pragma once

#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/batchnorm.hpp>
#include <edgescale/nn/callbacks.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/gates.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/optim/adam.hpp>
#include <edgescale/nn/optim/optimizer.hpp>
#include <edgescale/nn/optim/schedule.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/options.hpp>
#include <edgescale/nn/overwrite.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/residual.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/train.hpp>
#include <edgescale/nn/transform.hpp>
