// edgescale/prune.hpp — pruning: the scorer concept, scorers, masks, the pruning schedule, and
// sparse (CSR) inference of a pruned network.
#pragma once

#include <edgescale/prune/csr.hpp>
#include <edgescale/prune/magnitude.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/random.hpp>
#include <edgescale/prune/schedule.hpp>
#include <edgescale/prune/scorer.hpp>
#include <edgescale/prune/snip.hpp>
#include <edgescale/prune/sparse.hpp>
#include <edgescale/prune/synflow.hpp>
