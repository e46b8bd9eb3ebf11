// A gradient-based federation's trace — the model's bits, the accuracy curve, bytes, accepted and
// rejected updates — for the tests that compare one process with several ranks (thread ranks in
// tests/fed/test_reduce.cpp, MPI ranks in tests/mpi/test_mpi.cpp).
#pragma once

#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/simulate.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

namespace edgescale::test {

struct GradientRun {
  std::vector<float> global;
  std::vector<double> accuracy;
  std::vector<std::size_t> bytes_up;
  std::vector<Index> received;
  std::vector<std::size_t> rejected;
};

/// `rounds` rounds of `strategy` over `transport`; the trace and the final global model.
template <class Strategy, class Transport>
GradientRun run_gradient(Strategy& strategy, const data::Dataset<float>& pool,
                         const data::Dataset<float>& test, const fed::Partition& clients,
                         const fed::SimulationOptions& options, int rounds, Transport transport) {
  fed::Simulation sim(strategy, pool, clients, options, std::move(transport));
  GradientRun out;
  for (const fed::RoundReport& r : sim.run(rounds, test)) {
    out.accuracy.push_back(r.accuracy);
    out.bytes_up.push_back(r.total_bytes_up);
    out.received.push_back(r.received);
    out.rejected.push_back(r.rejected.size());
  }
  const auto& x = strategy.global().values();
  out.global.assign(x.data(), x.data() + x.size());
  return out;
}

/// Checks two traces are the same, the model bit for bit.
inline void check_same_run(const GradientRun& a, const GradientRun& b) {
  REQUIRE(a.global.size() == b.global.size());
  CHECK(std::memcmp(a.global.data(), b.global.data(), a.global.size() * sizeof(float)) == 0);
  CHECK(a.accuracy == b.accuracy);
  CHECK(a.bytes_up == b.bytes_up);
  CHECK(a.received == b.received);
  CHECK(a.rejected == b.rejected);
}

}  // namespace edgescale::test
