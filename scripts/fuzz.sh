#!/usr/bin/env bash
# Fuzzes with libFuzzer + ASan + UBSan, built by clang in build-fuzz/:
#   loader  the ONNX loader and the metadata parsing (tests/fuzz/fuzz_onnx_loader.cpp)
#   quantized  the same loader target seeded only with saved quantized models (integer pipeline
#           and fake-quant, tests/fuzz/corpus/seed_integer_* and seed_quantized_*): codes, levels,
#           scales and requantization constants read from the file, then run
#   merge   fgq-merge's reading and merging of shard reports (tests/fuzz/fuzz_report_merge.cpp)
#
#   scripts/fuzz.sh [loader|quantized|merge] [LENGTH [LIBFUZZER_ARGS...]]
#     LENGTH  N executions (default 1000000), or Ns for N seconds (e.g. 600s)
#   scripts/fuzz.sh 200000          the loader, as before: a number alone is RUNS
#
# tests/fuzz/corpus (loader) / tests/fuzz/corpus_merge (merge) only seed the run; new inputs go
# to build-fuzz/corpus[_merge], crashes to build-fuzz/artifacts/. Add a crashing input to the
# target's corpus folder (crash_<what>) once fixed: every build replays those folders (ctest
# fuzz.replay_corpus, fuzz.replay_corpus_merge).
set -euo pipefail
cd "$(dirname "$0")/.."
target=loader
case "${1:-}" in
  loader|quantized|merge) target=$1; shift ;;
esac
length=${1:-1000000}
shift || true
case "$length" in
  *s) limit=(-max_total_time="${length%s}" -runs=-1) ;;
  *[!0-9]*|"") echo "fuzz.sh: LENGTH must be N (executions) or Ns (seconds), got '$length'" >&2; exit 1 ;;
  *) limit=(-runs="$length") ;;
esac
scripts/install_deps.sh --fuzz
build=${FGQ_FUZZ_BUILD:-build-fuzz}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFGQ_FUZZ=ON \
  -DFGQ_BUILD_APPS=OFF -DCMAKE_CXX_COMPILER=clang++ >/dev/null
mkdir -p "$build/artifacts"
if [ "$target" != merge ]; then
  cmake --build "$build" -j "$(nproc)" --target fuzz_onnx_loader
  seeds=tests/fuzz/corpus corpus="$build/corpus" max_len=4096
  if [ "$target" = quantized ]; then
    # Saved quantized models are larger than the loader's usual inputs: room for the seeds.
    seeds="$build/seeds_quantized" corpus="$build/corpus_quantized" max_len=20000
    mkdir -p "$seeds" && cp tests/fuzz/corpus/seed_integer_* tests/fuzz/corpus/seed_quantized_* "$seeds/"
  fi
  mkdir -p "$corpus"
  # -close_fd_mask=2: the loader's metadata warnings would flood stderr; libFuzzer and the
  # sanitizers keep reporting to a duplicate of it. -rss_limit_mb: a model that makes the loader
  # allocate gigabytes is a bug too.
  "$build/tests/fuzz/fuzz_onnx_loader" "${limit[@]}" -max_len="$max_len" -rss_limit_mb=2048 \
    -close_fd_mask=2 -dict=tests/fuzz/onnx.dict -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$target-" "$@" "$corpus" "$seeds"
else
  cmake --build "$build" -j "$(nproc)" --target fuzz_report_merge
  mkdir -p "$build/corpus_merge"
  # Shard reports are text: several JSON documents separated by the byte 0x1E.
  "$build/tests/fuzz/fuzz_report_merge" "${limit[@]}" -max_len=16384 -rss_limit_mb=2048 \
    -dict=tests/fuzz/merge.dict -print_final_stats=1 -artifact_prefix="$build/artifacts/merge-" \
    "$@" "$build/corpus_merge" tests/fuzz/corpus_merge
fi
