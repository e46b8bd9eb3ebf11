// edgescale/fed/client.hpp — what a federated round hands a client and what the server receives.
//
// A client is a set of row indices into the federation's dataset (data::Dataset: one sample per
// column; its columns may be images or features ψ(x) computed once). Clients hold no copy of
// their data until a round runs them, so 10 000 simulated clients cost one index each per sample.
//
//   fed::ClientData<float> client{.id = 7, .data = &pool, .indices = partition[7]};
//   data::Dataset<float> local = client.materialize();      // the client's samples, in order
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgescale::fed {

/// The client index sets of a federation: clients[k] lists the dataset columns client k holds.
using Partition = std::vector<std::vector<Index>>;

/// One client's view of the federation's dataset.
template <class T>
struct ClientData {
  Index id = 0;                            ///< client number in [0, K)
  const data::Dataset<T>* data = nullptr;  ///< the federation's pool of samples
  std::span<const Index> indices;          ///< the client's columns of *data

  [[nodiscard]] Index size() const { return static_cast<Index>(indices.size()); }
  /// The client's dataset, after checking what a strategy that reads it in place relies on:
  /// there is one, it has one label per sample and samples of `features` values, and every index
  /// of the client is inside it. Throws argument_error for a missing dataset or an index outside
  /// it, shape_error for samples of another size or missing labels; `who` starts the message.
  [[nodiscard]] const data::Dataset<T>& checked_data(Index features, std::string_view who) const {
    const std::string client = std::string(who) + ": client " + std::to_string(id);
    if (data == nullptr) {
      throw argument_error(client + " has no dataset");
    }
    if (data->sample_size() != features) {
      throw shape_error(client + "'s samples have " + std::to_string(data->sample_size()) +
                        " values, expected " + std::to_string(features) + " features");
    }
    if (static_cast<Index>(data->labels.size()) != data->size()) {
      throw shape_error(client + ": its dataset has " + std::to_string(data->size()) +
                        " samples but " + std::to_string(data->labels.size()) + " labels");
    }
    for (const Index i : indices) {
      if (i < 0 || i >= data->size()) {
        throw argument_error(client + ": sample " + std::to_string(i) +
                             " is outside its dataset of " + std::to_string(data->size()) +
                             " samples");
      }
    }
    return *data;
  }

  /// The client's samples copied into a dataset of their own (in index order).
  [[nodiscard]] data::Dataset<T> materialize() const {
    data::Dataset<T> local = data::subset(*data, indices);
    local.name = data->name + " client " + std::to_string(id);
    return local;
  }
};

/// What the server knows about the round it aggregates.
struct RoundInfo {
  int round = 0;       ///< from 0
  Index clients = 0;   ///< K, all clients of the federation
  Index sampled = 0;   ///< m, clients asked this round (including those that dropped out)
  Index received = 0;  ///< updates accepted this round
};

/// One accepted client update, as the server receives it.
template <class Update>
struct Received {
  Index client = 0;   ///< the client's number
  Index samples = 0;  ///< n_k, the client's sample count (FedAvg's weight)
  const Update* update = nullptr;
};

/// The generator of client `client` in round `round` of an experiment seeded `seed`: a function
/// of these three numbers only, so the result does not depend on which thread runs the client.
inline Rng client_stream(std::uint64_t seed, int round, Index client) {
  std::uint64_t key = edgescale::detail::splitmix64(seed ^ 0x6665645F636C6965ULL);  // "fed_clie"
  key = edgescale::detail::splitmix64(key ^ static_cast<std::uint64_t>(round));
  key = edgescale::detail::splitmix64(key ^ static_cast<std::uint64_t>(client));
  return Rng{key};
}

/// Per-client state for strategies without any (the simulation then stores nothing per client).
struct Stateless {};

}  // namespace edgescale::fed
