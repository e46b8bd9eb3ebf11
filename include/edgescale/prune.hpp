// edgescale/prune.hpp — pruning: the scorer concept, scorers, masks, the pruning schedule, the
// pruning batch, post-training and gradual magnitude pruning, layer-collapse detection, the exact
// empirical NTK oracle, and sparse (CSR) inference of a pruned network.
#pragma once

#include <edgescale/prune/collapse.hpp>
#include <edgescale/prune/csr.hpp>
#include <edgescale/prune/grasp.hpp>
#include <edgescale/prune/itersnip.hpp>
#include <edgescale/prune/magnitude.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/ntk.hpp>
#include <edgescale/prune/post_training.hpp>
#include <edgescale/prune/pruning_batch.hpp>
#include <edgescale/prune/px.hpp>
#include <edgescale/prune/random.hpp>
#include <edgescale/prune/schedule.hpp>
#include <edgescale/prune/scorer.hpp>
#include <edgescale/prune/snip.hpp>
#include <edgescale/prune/sparse.hpp>
#include <edgescale/prune/synflow.hpp>
