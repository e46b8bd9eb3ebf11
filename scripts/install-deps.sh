#!/usr/bin/env bash
# Installs the Debian packages edgescale's build, tests, examples and plots need; only the missing
# ones, so a second run does nothing. Debian 12 (bookworm); run as root, or as a user with sudo.
#
#   scripts/install-deps.sh          # compilers, CMake, Eigen, doctest, zlib, Fashion-MNIST, ...
#   scripts/install-deps.sh --bench  # also the benchmark peer: libtorch with OpenBLAS (large)
set -euo pipefail

packages=(
  g++ clang cmake ninja-build ccache         # toolchains (g++ 12, clang 14 on Debian 12)
  libclang-rt-14-dev                         # clang's sanitizer runtimes (only recommended by clang)
  libeigen3-dev                              # the only run-time dependency
  libxtensor-dev zlib1g-dev                  # optional headers: interop/xtensor.hpp, data/gz.hpp
  doctest-dev libbenchmark-dev               # tests and benches
  dataset-fashion-mnist                      # the real dataset of every example
  libopenmpi-dev openmpi-bin                 # optional: the distributed (MPI) tests and examples
  python3-numpy                              # fixture generators and result scripts
  python3-matplotlib                         # the sweeps' plots (scripts/prune_sweep.py, fed_sweep.py)
  gnuplot-nox                                # plots in docs/results
  time                                       # GNU /usr/bin/time for compile-cost measurements
)

for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(libtorch-dev libopenblas0-pthread) ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$arg' (known: --bench)" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps.sh: this script needs Debian's dpkg and apt-get; install by hand:" >&2
  echo "  ${packages[*]}" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != "installed" ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps.sh: all ${#packages[@]} packages present"
  exit 0
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "install-deps.sh: missing packages: ${missing[*]}" >&2
    echo "install-deps.sh: installing them needs root, and sudo is not available." >&2
    echo "  Run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A bare machine has no package lists yet, and old lists may name files the mirror no longer has.
"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "${missing[@]}" </dev/null
