#!/usr/bin/env bash
# Installs build dependencies, builds (Release) and runs the whole test suite.
#   FGQ_SANITIZE=1 scripts/test.sh   the same in an ASan/UBSan build (build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
if [ "${FGQ_SANITIZE:-0}" = 1 ]; then
  build=build-asan
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFGQ_SANITIZE=ON
else
  build=build
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
