#!/usr/bin/python3
"""FED3R's client and server computations in numpy/scipy (OpenBLAS), beside bench/bench_fed.cpp.

    /usr/bin/python3 scripts/bench_fed3r_numpy.py              # one BLAS thread, as bench_fed
    /usr/bin/python3 scripts/bench_fed3r_numpy.py --threads 2

Same workload as bench_fed: one client of n = 600 samples, C = 100 classes, D in {257, 1281,
5001} (d = D - 1 features in [-1, 1), a column of ones appended), in double. Rows:
  client_statistics  widening the float features, A = Phi^T Phi by the symmetric rank-k update
                     (scipy.linalg.blas.dsyrk, lower triangle, then mirrored) and b = Phi^T Y with
                     one-hot Y; GFLOP/s counts n*D*(D+1), the rank update's FLOPs, as bench_fed
  scipy_dsyrk        the rank update alone (OpenBLAS's DSYRK kernel), n*D*(D+1) FLOPs
  numpy_gemm         Phi.T @ Phi2 as a general product (Phi2 a copy of Phi: numpy computes
                     x.T @ x by SYRK), 2*n*D^2 FLOPs: the machine's GEMM
  server_aggregate   ten clients' A and b added into a running sum (in place)
  server_solve       W = (A + lambda I)^-1 b by scipy.linalg.cho_factor + cho_solve;
                     GFLOP/s counts D^3/3 + 2*D^2*C
Each row is the best (minimum) of --repeats timings with time.perf_counter (the machine is
shared, and the minimum is the least disturbed), in milliseconds.
"""
import argparse
import os
import sys


def parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dims", type=int, nargs="*", default=[257, 1281, 5001])
    return parser.parse_args()


ARGS = parse()
# The thread count must be set before numpy loads OpenBLAS.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import time  # noqa: E402

import numpy as np  # noqa: E402

try:
    import scipy.linalg  # noqa: E402
    from scipy.linalg.blas import dsyrk  # noqa: E402
except ImportError:  # numpy alone: a GEMM for the statistics, numpy's Cholesky for the solve
    scipy = None
    dsyrk = None

SAMPLES, CLASSES, CLIENTS, LAMBDA = 600, 100, 10, 0.01


def best_ms(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def client_statistics(phi, labels):
    """A (lower triangle by SYRK, mirrored) and b of one client, in double."""
    if dsyrk is not None:
        # phi is (n, D) C-ordered, so phi.T is Fortran-ordered (D, n): SYRK computes phi.T phi.T^T
        # without a copy, into the lower triangle.
        a = dsyrk(1.0, phi.T, trans=0, lower=1)
        a += np.tril(a, -1).T  # the upper triangle SYRK left at zero
    else:
        a = phi.T @ phi
    b = phi.T @ one_hot(labels)  # numpy's fastest route; bench_fed scatters instead
    return a, b


def one_hot(labels):
    y = np.zeros((labels.size, CLASSES))
    y[np.arange(labels.size), labels] = 1.0
    return y


def solve(a, b):
    m = a + LAMBDA * np.eye(a.shape[0])
    if scipy is not None:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(m, lower=True), b)
    l = np.linalg.cholesky(m)
    return np.linalg.solve(l.T, np.linalg.solve(l, b))


def main():
    rng = np.random.default_rng(2024)
    rows = []
    for D in ARGS.dims:
        features = rng.uniform(-1.0, 1.0, size=(SAMPLES, D - 1)).astype(np.float32)
        phi = np.hstack([features.astype(np.float64), np.ones((SAMPLES, 1))])
        labels = np.arange(SAMPLES) % CLASSES
        reps = ARGS.repeats if D < 5001 else max(1, ARGS.repeats // 2)

        def stats():
            # The float features are widened as the C++ client widens them.
            p = np.hstack([features.astype(np.float64), np.ones((SAMPLES, 1))])
            return client_statistics(p, labels)

        ms = best_ms(stats, reps)
        rows.append(("client_statistics", D, ms, SAMPLES * D * (D + 1) / ms * 1e-6))
        if dsyrk is not None:
            ms = best_ms(lambda: dsyrk(1.0, phi.T, trans=0, lower=1), reps)
            rows.append(("scipy_dsyrk", D, ms, SAMPLES * D * (D + 1) / ms * 1e-6))
        # numpy turns `x.T @ x` into a SYRK: a copy makes the operands distinct, so this is a GEMM.
        other = phi.copy()
        ms = best_ms(lambda: phi.T @ other, reps)
        rows.append(("numpy_gemm", D, ms, 2.0 * SAMPLES * D * D / ms * 1e-6))

        a, b = client_statistics(phi, labels)
        server_a = np.zeros_like(a)
        server_b = np.zeros_like(b)

        def aggregate():
            for _ in range(CLIENTS):
                np.add(server_a, a, out=server_a)
                np.add(server_b, b, out=server_b)

        rows.append(("server_aggregate", D, best_ms(aggregate, reps), float("nan")))
        ms = best_ms(lambda: solve(a, b), reps)
        rows.append(("server_solve", D, ms, (D**3 / 3 + 2.0 * D * D * CLASSES) / ms * 1e-6))
        del a, b, server_a, server_b

    blas = "scipy dsyrk + cho_solve" if scipy is not None else "numpy only (no scipy)"
    print(f"numpy {np.__version__}, {blas}, {ARGS.threads} BLAS thread(s), "
          f"n = {SAMPLES}, C = {CLASSES}, best of {ARGS.repeats}")
    print(f"{'benchmark':<20} {'D':>6} {'ms':>10} {'GFLOP/s':>9}")
    for name, D, ms, gflops in rows:
        rate = "" if gflops != gflops else f"{gflops:9.2f}"
        print(f"{name:<20} {D:>6} {ms:>10.3f} {rate:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
