#!/usr/bin/env bash
# Fuzzes the ONNX loader and the metadata parsing (tests/fuzz/fuzz_onnx_loader.cpp) with
# libFuzzer + ASan + UBSan, built by clang in build-fuzz/.
#   scripts/fuzz.sh [RUNS [LIBFUZZER_ARGS...]]    RUNS executions, default 1000000
# tests/fuzz/corpus only seeds the run; new inputs go to build-fuzz/corpus, crashes to
# build-fuzz/artifacts/. Add a crashing input to tests/fuzz/corpus (crash_<what>) once fixed:
# every build replays that folder (ctest fuzz.replay_corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --fuzz
build=${FGQ_FUZZ_BUILD:-build-fuzz}
runs=${1:-1000000}
shift || true
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFGQ_FUZZ=ON \
  -DFGQ_BUILD_APPS=OFF -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$build" -j "$(nproc)" --target fuzz_onnx_loader
mkdir -p "$build/corpus" "$build/artifacts"
# -close_fd_mask=2: the loader's metadata warnings would flood stderr; libFuzzer and the
# sanitizers keep reporting to a duplicate of it. -rss_limit_mb: a model that makes the loader
# allocate gigabytes is a bug too.
"$build/tests/fuzz/fuzz_onnx_loader" -runs="$runs" -max_len=4096 -rss_limit_mb=2048 \
  -close_fd_mask=2 -dict=tests/fuzz/onnx.dict -print_final_stats=1 -artifact_prefix="$build/artifacts/" "$@" \
  "$build/corpus" tests/fuzz/corpus
