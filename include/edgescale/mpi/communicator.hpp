// edgescale/mpi/communicator.hpp — the few MPI calls edgescale needs, with errors as exceptions
// and buffers of any length.
//
//   mpi::Environment env(argc, argv);          // MPI_Init_thread (funneled) ... MPI_Finalize
//   mpi::Communicator world;                   // a duplicate of MPI_COMM_WORLD, errors returned
//   world.allreduce_sum(std::span<double>(g)); // chunked: counts beyond 2^31 elements work
//
// Optional: this header needs MPI (Open MPI from Debian: libopenmpi-dev) and is never included by
// edgescale.hpp; CMake's edgescale::mpi target links MPI::MPI_CXX. MPI 3.1 counts are int, so
// every call is split into chunks of at most chunk() elements (2^30 by default; tests set it
// small), which lets a FED3R reduction of D = 10^5 features (5·10^9 doubles packed) travel.
//
// The communicator is a duplicate of the one given, with MPI_ERRORS_RETURN: an MPI failure
// becomes mpi::error naming the call, instead of the default abort, and the user's communicator
// keeps its own handler. Only the thread that constructed the Environment calls MPI (the
// federated simulation's client threads never do), so MPI_THREAD_FUNNELED suffices.
//
// bytes_sent() counts the payload this rank hands to MPI: a point-to-point message once, a
// collective's buffer once (how often it then travels is the MPI implementation's algorithm).
#pragma once

#include <edgescale/core/error.hpp>

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgescale::mpi {

/// An MPI call failed; what() names the call and MPI's own message.
class error : public edgescale::error {
 public:
  using edgescale::error::error;
};

/// Throws mpi::error unless `code` is MPI_SUCCESS.
inline void check(int code, const char* call) {
  if (code == MPI_SUCCESS) {
    return;
  }
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw error(std::string("MPI: ") + call +
              " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

/// MPI_Init_thread at construction (MPI_THREAD_FUNNELED), MPI_Finalize at destruction; does
/// neither when MPI was already initialised by someone else.
class Environment {
 public:
  Environment(int& argc, char**& argv) {
    int initialized = 0;
    check(MPI_Initialized(&initialized), "MPI_Initialized");
    if (initialized != 0) {
      return;
    }
    int provided = 0;
    check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owner_ = true;
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      throw error("MPI: the library does not provide MPI_THREAD_FUNNELED");
    }
  }
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  ~Environment() {
    if (owner_) {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (finalized == 0) {
        MPI_Finalize();
      }
    }
  }

 private:
  bool owner_ = false;
};

/// A duplicate of an MPI communicator (freed with its last copy) and the operations edgescale
/// uses on it, each chunked and checked.
class Communicator {
 public:
  /// Elements per MPI call at most (MPI 3.1 counts are int).
  static constexpr std::size_t default_chunk = std::size_t{1} << 30;

  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD) {
    auto* dup = new MPI_Comm(MPI_COMM_NULL);
    const int code = MPI_Comm_dup(comm, dup);
    if (code != MPI_SUCCESS) {
      delete dup;
      check(code, "MPI_Comm_dup");
    }
    comm_ = std::shared_ptr<MPI_Comm>(dup, [](MPI_Comm* c) {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (finalized == 0 && *c != MPI_COMM_NULL) {
        MPI_Comm_free(c);
      }
      delete c;
    });
    check(MPI_Comm_set_errhandler(*comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(*comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(*comm_, &size_), "MPI_Comm_size");
  }

  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int size() const { return size_; }
  [[nodiscard]] MPI_Comm native() const { return *comm_; }

  /// Elements per MPI call; tests make it small to exercise the chunking.
  [[nodiscard]] std::size_t chunk() const { return chunk_; }
  void set_chunk(std::size_t elements) {
    if (elements < 1 || elements > static_cast<std::size_t>(INT_MAX)) {
      throw argument_error("mpi::Communicator: chunk must be in [1, INT_MAX], got " +
                           std::to_string(elements));
    }
    chunk_ = elements;
  }

  /// Payload bytes this rank has handed to MPI (see the top of this file).
  [[nodiscard]] std::size_t bytes_sent() const { return *sent_; }

  void send(int to, std::span<const double> values) {
    for_chunks(values.size(), [&](std::size_t at, int n) {
      check(MPI_Send(values.data() + at, n, MPI_DOUBLE, to, tag_doubles, *comm_), "MPI_Send");
    });
    *sent_ += values.size_bytes();
  }
  void receive(int from, std::span<double> values) {
    for_chunks(values.size(), [&](std::size_t at, int n) {
      check(
          MPI_Recv(values.data() + at, n, MPI_DOUBLE, from, tag_doubles, *comm_, MPI_STATUS_IGNORE),
          "MPI_Recv");
    });
  }
  /// Bytes of any length: their count first, then the bytes.
  void send(int to, std::string_view bytes) {
    const auto length = static_cast<std::uint64_t>(bytes.size());
    check(MPI_Send(&length, 1, MPI_UINT64_T, to, tag_bytes, *comm_), "MPI_Send");
    for_chunks(bytes.size(), [&](std::size_t at, int n) {
      check(MPI_Send(bytes.data() + at, n, MPI_CHAR, to, tag_bytes, *comm_), "MPI_Send");
    });
    *sent_ += sizeof length + bytes.size();
  }
  [[nodiscard]] std::string receive(int from) {
    std::uint64_t length = 0;
    check(MPI_Recv(&length, 1, MPI_UINT64_T, from, tag_bytes, *comm_, MPI_STATUS_IGNORE),
          "MPI_Recv");
    std::string bytes(static_cast<std::size_t>(length), '\0');
    for_chunks(bytes.size(), [&](std::size_t at, int n) {
      check(MPI_Recv(bytes.data() + at, n, MPI_CHAR, from, tag_bytes, *comm_, MPI_STATUS_IGNORE),
            "MPI_Recv");
    });
    return bytes;
  }

  /// Every rank's bytes, in rank order, on every rank.
  [[nodiscard]] std::vector<std::string> allgather(std::string_view bytes) {
    const auto mine = static_cast<std::uint64_t>(bytes.size());
    std::vector<std::uint64_t> lengths(static_cast<std::size_t>(size_));
    check(MPI_Allgather(&mine, 1, MPI_UINT64_T, lengths.data(), 1, MPI_UINT64_T, *comm_),
          "MPI_Allgather");
    std::vector<std::string> out(static_cast<std::size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      std::string& s = out[static_cast<std::size_t>(r)];
      s.assign(static_cast<std::size_t>(lengths[static_cast<std::size_t>(r)]), '\0');
      if (r == rank_) {
        std::copy(bytes.begin(), bytes.end(), s.begin());
      }
      for_chunks(s.size(), [&](std::size_t at, int n) {
        check(MPI_Bcast(s.data() + at, n, MPI_CHAR, r, *comm_), "MPI_Bcast");
      });
    }
    *sent_ += sizeof mine + bytes.size();
    return out;
  }

  /// values ← Σ over ranks, on every rank (MPI_SUM in MPI's own order).
  void allreduce_sum(std::span<double> values) {
    for_chunks(values.size(), [&](std::size_t at, int n) {
      check(MPI_Allreduce(MPI_IN_PLACE, values.data() + at, n, MPI_DOUBLE, MPI_SUM, *comm_),
            "MPI_Allreduce");
    });
    *sent_ += values.size_bytes();
  }
  /// values ← rank `root`'s values, on every rank.
  void broadcast(std::span<double> values, int root = 0) {
    for_chunks(values.size(), [&](std::size_t at, int n) {
      check(MPI_Bcast(values.data() + at, n, MPI_DOUBLE, root, *comm_), "MPI_Bcast");
    });
    if (rank_ == root) {
      *sent_ += values.size_bytes();
    }
  }
  /// float values ← rank `root`'s (model parameters).
  void broadcast(std::span<float> values, int root = 0) {
    for_chunks(values.size(), [&](std::size_t at, int n) {
      check(MPI_Bcast(values.data() + at, n, MPI_FLOAT, root, *comm_), "MPI_Bcast");
    });
    if (rank_ == root) {
      *sent_ += values.size_bytes();
    }
  }
  void barrier() { check(MPI_Barrier(*comm_), "MPI_Barrier"); }

 private:
  static constexpr int tag_doubles = 17;
  static constexpr int tag_bytes = 18;

  template <class F>
  void for_chunks(std::size_t count, F&& f) const {
    for (std::size_t at = 0; at < count; at += chunk_) {
      f(at, static_cast<int>(std::min(chunk_, count - at)));
    }
  }

  std::shared_ptr<MPI_Comm> comm_;
  std::shared_ptr<std::size_t> sent_ = std::make_shared<std::size_t>(0);
  int rank_ = 0;
  int size_ = 1;
  std::size_t chunk_ = default_chunk;
};

}  // namespace edgescale::mpi
