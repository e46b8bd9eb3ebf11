// edgescale/fed.hpp — federated learning: the Partitioner, Strategy and Aggregator concepts,
// partitioners, aggregators, the simulation, FED3R (and FED3R-RF, recursive statistics, the
// FED3R+FT head), FedNCM, and the gradient-based strategies FedAvg (FedAvgM, FedProx), SCAFFOLD
// and FedAdagrad/FedAdam/FedYogi.
#pragma once

#include <edgescale/fed/aggregate.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/concepts.hpp>
#include <edgescale/fed/fed3r.hpp>
#include <edgescale/fed/fedavg.hpp>
#include <edgescale/fed/fedncm.hpp>
#include <edgescale/fed/features.hpp>
#include <edgescale/fed/fedopt.hpp>
#include <edgescale/fed/partition.hpp>
#include <edgescale/fed/random_features.hpp>
#include <edgescale/fed/reduce.hpp>
#include <edgescale/fed/scaffold.hpp>
#include <edgescale/fed/simulate.hpp>
#include <edgescale/fed/transport.hpp>
