#!/usr/bin/env bash
# Installs build dependencies, builds (Release) and runs the whole test suite.
#   FGQ_SANITIZE=1 scripts/test.sh   the same in an ASan/UBSan build (build-asan/)
#   FGQ_BUILD_DIR=DIR scripts/test.sh   another build folder (default build/ or build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
if [ "${FGQ_SANITIZE:-0}" = 1 ]; then
  build=${FGQ_BUILD_DIR:-build-asan}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
  # -O1 -g1 (line tables for the reports): compiles much faster than -O2 -g, which is most of the
  # sanitizer build's time on CI's 2 cores.
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFGQ_SANITIZE=ON \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
else
  build=${FGQ_BUILD_DIR:-build}
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
