#!/usr/bin/env bash
# Builds and runs every test edgescale has, the way CI does (.ci/run):
#   1. g++     Debug (-O1), warnings as errors, tests + examples, ctest    build/test-gcc
#      for the compiler's default target (x86-64: SSE2); the header-alone objects are left to
#      stage 3's x86-64-v2 build, which compiles them with the same compiler at -O3 (where g++
#      warns most), so g++ compiles them once
#   2. clang++ Debug (-O1), warnings as errors, AddressSanitizer + UBSan, tests (the examples
#      are g++'s: this stage is the dearest), ctest                          build/test-clang
#   With Open MPI installed (install-deps.sh installs it), stage 2 builds and runs the MPI tests
#   under mpirun -np 1, 2 and 4 (ctest label mpi), sanitized, with LeakSanitizer off for them only
#   (Open MPI keeps its allocations until exit); stage 1 builds federated_mpi and runs it against
#   federated (and compiles no MPI test: one compile of them per run).
#      for x86-64-v3 (AVX2, FMA) when this CPU has it, else the default target; without clang's
#      sanitizer runtimes (libclang-rt-14-dev) unsanitized, and a g++ ASan+UBSan stage of the unit
#      tests follows when the budget allows
#   3. compile only, other instruction sets: g++ Release (-O3, what the demo builds), warnings
#      as errors, never run (this CPU may lack them):
#        x86-64-v4 (AVX-512): the kernels' test files of nn, prune, fed, quant build/isa-x86-64-v4
#        x86-64-v2 (SSE4.2):  every header alone + the train example       build/isa-x86-64-v2
#      (about 1.5 minutes each on two cores with a cold ccache; the whole run about 18: 1087 s
#      measured on a fresh clone with the MPI, quantization and AMX tests, 2026-12-02, on a 2-vCPU
#      Intel Xeon: g++ 314 + 60, clang ASan 523 + 36, v4 81, v2 73; an earlier 1082 s without
#      quantization took 1316 s on a run while the VM compiled 10-20 % slower: the 20-minute budget
#      has little margin under load; CI's own machine ran the sources with quantization in 1141 s,
#      the ones before in 470 s)
# Debug info is line tables only (-g1): enough for sanitizer reports and backtraces, and a good
# part less compile time than -g.
# The instruction sets are named (-march=x86-64-v3, never native), so a ccache shared between
# machines stays correct, and the first lines and the summary say which CPU ran the tests and
# which instruction sets were compiled only.
# A failing stage does not stop the next one (so one run shows every failure); the script exits
# non-zero when any stage failed, and prints the time of each.
#
# Environment knobs:
#   EDGESCALE_JOBS=N               parallel compile and test jobs (default: nproc)
#   EDGESCALE_TEST_BUDGET=SECONDS  the whole run should fit in this (default 1200: CI's 20
#                                  minutes); the g++ sanitizer stage is skipped, with a message,
#                                  when it would not fit
#   EDGESCALE_SANITIZE_STAGE=0     skip the g++ sanitizer stage (run only without clang's runtimes)
#   EDGESCALE_ISA_STAGE=0          skip the compile-only instruction-set stages
#   EDGESCALE_SKIP_DEPS=1          do not run scripts/install-deps.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs=${EDGESCALE_JOBS:-$(nproc)}
budget=${EDGESCALE_TEST_BUDGET:-1200}
# ccache hits across checkouts (CI builds a fresh clone in another folder): paths relative to the
# repository, and the working directory kept out of the hash of -g compilations.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}

# Which CPU runs the tests, and which instruction sets it has.
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2-) "
has_flag() { [[ $cpu_flags == *" $1 "* ]]; }
yes_no() { if has_flag "$1"; then echo "$1 yes"; else echo "$1 no"; fi; }
cpu_line="${cpu_model:-$(uname -m)} ($(nproc) cores): $(yes_no avx2), $(yes_no fma), $(yes_no avx512f), $(yes_no avx512_vnni), $(yes_no amx_int8)"
# x86-64-v3 is AVX2, FMA, BMI1/2, F16C, LZCNT and MOVBE (x86-64 psABI).
clang_arch=""
if [[ $(uname -m) == x86_64 ]]; then
  clang_arch=x86-64-v3
  for f in avx2 fma bmi1 bmi2 f16c abm movbe; do
    has_flag "$f" || clang_arch=""
  done
fi
ran_isas=()
compiled_only_isas=()
echo "test.sh: CPU $cpu_line"

run_start=$SECONDS
stage_lines=()
failed_stages=()
passed_total=0
failed_total=0

report() {
  echo
  echo "==== test.sh timings ($jobs jobs) ===="
  local line
  for line in "${stage_lines[@]}"; do
    echo "  $line"
  done
  printf '  %-40s %5d s\n' "total" $((SECONDS - run_start))
  echo "tests: $passed_total passed, $failed_total failed"
  echo "CPU that ran the tests: $cpu_line"
  echo "instruction sets run: $(join "${ran_isas[@]}")"
  echo "instruction sets compiled only: $(join "${compiled_only_isas[@]}")"
}

# join ITEMS...: "a; b; c", or "none".
join() {
  if [[ $# -eq 0 ]]; then
    echo none
    return
  fi
  local out=$1
  shift
  local item
  for item in "$@"; do
    out+="; $item"
  done
  echo "$out"
}
trap report EXIT

# stage NAME COMMAND...: runs COMMAND, timed; a failure is recorded and the run goes on.
stage() {
  local name=$1
  shift
  echo
  echo "==== $name ===="
  local start=$SECONDS status=ok
  "$@" || status=FAILED
  last_stage_secs=$((SECONDS - start))
  stage_lines+=("$(printf '%-40s %5d s  %s' "$name" "$last_stage_secs" "$status")")
  if [[ $status != ok ]]; then
    failed_stages+=("$name")
    return 1
  fi
}

# build DIR CXX [CMAKE ARGS...]: configures (Debug unless the arguments say otherwise, warnings
# as errors) and builds; BUILD_TARGETS="a b" builds only those targets.
build() {
  local dir=$1 cxx=$2
  shift 2
  local cxx_path
  cxx_path=$(command -v "$cxx") || { echo "test.sh: $cxx not found" >&2; return 1; }
  # A build directory configured for another compiler cannot be switched in place.
  if [[ -f "$dir/CMakeCache.txt" ]] &&
    ! grep -qx "CMAKE_CXX_COMPILER:[A-Z]*=$cxx_path" "$dir/CMakeCache.txt"; then
    echo "test.sh: $dir was configured with another compiler; configuring it afresh"
    rm -rf "$dir"
  fi
  local targets=()
  if [[ -n ${BUILD_TARGETS:-} ]]; then
    read -r -a targets <<<"$BUILD_TARGETS"
    targets=(--target "${targets[@]}")
  fi
  cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER="$cxx_path" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DEDGESCALE_WERROR=ON "$@" &&
    cmake --build "$dir" -j "$jobs" "${targets[@]}"
}

# describe_isa ARCH: how the summary names it.
describe_isa() {
  case "$1" in
    "") echo "x86-64 (SSE2, the default target)" ;;
    x86-64-v2) echo "x86-64-v2 (SSE4.2)" ;;
    x86-64-v3) echo "x86-64-v3 (AVX2, FMA)" ;;
    x86-64-v4) echo "x86-64-v4 (AVX-512)" ;;
    *) echo "$1" ;;
  esac
}

# ctest, its summary counted into the totals; fails when a test fails or none ran.
run_ctest() {
  local dir=$1
  shift
  local log="$dir/ctest.log" rc=0
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$jobs" "$@" 2>&1 | tee "$log" ||
    rc=$?
  local line
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    failed_total=$((failed_total + BASH_REMATCH[1]))
    passed_total=$((passed_total + BASH_REMATCH[2] - BASH_REMATCH[1]))
  fi
  return "$rc"
}

if [[ "${EDGESCALE_SKIP_DEPS:-0}" != 1 ]]; then
  # Without the dependencies nothing else can run.
  stage "dependencies (install-deps.sh)" scripts/install-deps.sh || exit 1
fi

# The tests and examples CI runs are built for named targets, not for native: see the top.
gcc_secs=0
if stage "g++: configure + build" build build/test-gcc g++ \
  -DEDGESCALE_ARCH= -DEDGESCALE_TEST_ARCH= -DEDGESCALE_BUILD_TESTS=ON -DEDGESCALE_BUILD_EXAMPLES=ON \
  -DEDGESCALE_TEST_HEADERS=OFF -DEDGESCALE_MPI_TESTS=OFF
then
  gcc_secs=$last_stage_secs
  if stage "g++: ctest" run_ctest build/test-gcc; then
    ran_isas+=("g++: $(describe_isa "")")
  fi
  gcc_secs=$((gcc_secs + last_stage_secs))
fi

# The clang stage is also the sanitizer stage: every test built with ASan+UBSan, so the x86-64-v3
# kernels run under the sanitizers, at the cost of one build instead of two.
clang_sanitize=ON
if [[ ! -f "$(clang++ -print-file-name=libclang_rt.asan-x86_64.a)" ]]; then
  echo "test.sh: clang's sanitizer runtimes are missing (libclang-rt-14-dev): the clang stage" \
    "runs unsanitized, a g++ ASan+UBSan stage follows"
  clang_sanitize=OFF
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_init_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
clang_name="clang++${clang_arch:+ $clang_arch}"
if [[ $clang_sanitize == ON ]]; then
  clang_name+=" ASan+UBSan"
fi
if stage "$clang_name: configure + build" build build/test-clang clang++ \
  -DEDGESCALE_ARCH="$clang_arch" -DEDGESCALE_TEST_ARCH="$clang_arch" \
  -DEDGESCALE_SANITIZE="$clang_sanitize" -DEDGESCALE_BUILD_TESTS=ON -DEDGESCALE_BUILD_EXAMPLES=OFF
then
  if stage "$clang_name: ctest" run_ctest build/test-clang; then
    sanitized=""
    [[ $clang_sanitize == ON ]] && sanitized=", under ASan+UBSan"
    ran_isas+=("clang++: $(describe_isa "$clang_arch")$sanitized")
  fi
fi

# Instruction sets this CPU may not run, compiled only: a Release build (the demo's -O3, where
# g++ warns most) with warnings as errors. x86-64-v4 stands for -march=native on an AVX-512
# machine, whose g++ 12 warnings inside Eigen's AVX-512 code once broke such builds
# (core/eigen.hpp); x86-64-v2 for the oldest CPUs still common.
# The x86-64-v4 build leaves out the header-alone objects and the examples: the headers instantiate
# next to nothing, so an instruction set's warnings (which come from instantiated code) show in the
# tests that instantiate the kernels. It compiles the kernels' test files of each area
# (tests/CMakeLists.txt, KERNELS): test_nn_kernels (the layers' forward and backward: products,
# convolutions, pooling, batch norm; the optimizers), test_prune_kernels (sparse products, PX's
# scores), test_fed_kernels (FED3R's rank update, Cholesky, random features) and
# test_quant_kernels (the int8 GEMM and requantization, every path; x86-64-v4 has no VNNI, so its
# default path is avx2), and not the files that test composition,
# training loops, simulation and bookkeeping over the same kernels, whose own code has no
# instruction-set dependence. The x86-64-v2 build compiles every header
# alone (g++'s only header-alone build) and the train example (the layers' kernels at -O3).
# isa_stage ARCH WHAT [CMAKE ARGS...]: configures build/isa-ARCH and builds it (BUILD_TARGETS).
isa_stage() {
  local arch=$1 what=$2
  shift 2
  if stage "g++ $arch: build only (Release)" build "build/isa-$arch" g++ \
    -DCMAKE_BUILD_TYPE=Release -DEDGESCALE_ARCH="$arch" -DEDGESCALE_TEST_ARCH="$arch" \
    -DEDGESCALE_BUILD_TESTS=ON -DEDGESCALE_BUILD_EXAMPLES=ON "$@"; then
    compiled_only_isas+=("g++ Release, $what: $(describe_isa "$arch")")
  fi
}
if [[ "${EDGESCALE_ISA_STAGE:-1}" == 0 ]]; then
  echo
  echo "==== instruction sets: skipped (EDGESCALE_ISA_STAGE=0) ===="
  stage_lines+=("instruction sets: skipped (EDGESCALE_ISA_STAGE=0)")
elif [[ $(uname -m) != x86_64 ]]; then
  echo
  echo "==== instruction sets: skipped (not an x86-64 machine) ===="
  stage_lines+=("instruction sets: skipped (not x86-64)")
else
  BUILD_TARGETS="test_nn_kernels test_prune_kernels test_fed_kernels test_quant_kernels" \
    isa_stage x86-64-v4 "tests" -DEDGESCALE_TEST_HEADERS=OFF -DEDGESCALE_BUILD_EXAMPLES=OFF
  BUILD_TARGETS="edgescale_headers_alone train" isa_stage x86-64-v2 "every header alone + train"
fi

# Without clang's sanitizer runtimes, a g++ ASan+UBSan stage rebuilds the unit tests only (no
# examples, no header objects) and runs them without the package, failtest, header and slow tests,
# which sanitizers add nothing to. It costs about one and a half times what the g++ stage did; it
# is skipped when that would break the budget.
elapsed=$((SECONDS - run_start))
estimate=$((gcc_secs * 3 / 2))
if [[ $clang_sanitize == ON ]]; then
  :  # the clang stage ran sanitized
elif [[ "${EDGESCALE_SANITIZE_STAGE:-1}" == 0 ]]; then
  echo
  echo "==== sanitizers: skipped (EDGESCALE_SANITIZE_STAGE=0) ===="
  stage_lines+=("sanitizers: skipped (EDGESCALE_SANITIZE_STAGE=0)")
elif ((elapsed + estimate > budget)); then
  why="${elapsed} s spent, the stage would take about ${estimate} s, budget ${budget} s"
  echo
  echo "==== sanitizers: SKIPPED: $why (EDGESCALE_TEST_BUDGET) ===="
  stage_lines+=("sanitizers: SKIPPED ($why)")
else
  if stage "g++ ASan+UBSan: configure + build" build build/test-asan g++ \
    -DEDGESCALE_SANITIZE=ON -DEDGESCALE_BUILD_TESTS=ON -DEDGESCALE_BUILD_EXAMPLES=OFF \
    -DEDGESCALE_TEST_HEADERS=OFF; then
    stage "g++ ASan+UBSan: ctest (unit tests)" \
      run_ctest build/test-asan -LE 'package|failtest|static|slow' || true
  fi
fi

if [[ ${#failed_stages[@]} -gt 0 ]]; then
  echo
  echo "test.sh: FAILED: ${failed_stages[*]}" >&2
  exit 1
fi
echo
echo "test.sh: all stages passed"
