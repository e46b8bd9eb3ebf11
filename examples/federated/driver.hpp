// The federated examples' driver (driver.cpp): flags, data, partition, the strategy's run and
// the JSON report, for one process (examples/federated.cpp) or MPI ranks
// (examples/federated_mpi.cpp). Only the transport differs.
#pragma once

#include <edgescale/fed/transport.hpp>

#include <functional>
#include <string>

namespace edgescale::examples::federated {

/// Parses the flags as `program`, makes the transport (fast: --reduction fast) and runs the
/// experiment; rank 0 alone shows progress and writes --out. Returns the exit status.
int run_federated(int argc, char** argv, const std::string& program,
                  const std::function<fed::AnyTransport(bool fast)>& make_transport);

}  // namespace edgescale::examples::federated
