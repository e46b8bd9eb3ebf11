// edgescale/prune.hpp — pruning: the scorer concept, scorers, masks, the pruning schedule and the
// exact empirical NTK oracle.
#pragma once

#include <edgescale/prune/grasp.hpp>
#include <edgescale/prune/itersnip.hpp>
#include <edgescale/prune/magnitude.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/ntk.hpp>
#include <edgescale/prune/px.hpp>
#include <edgescale/prune/random.hpp>
#include <edgescale/prune/schedule.hpp>
#include <edgescale/prune/scorer.hpp>
#include <edgescale/prune/snip.hpp>
#include <edgescale/prune/synflow.hpp>
