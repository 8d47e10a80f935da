#!/usr/bin/env bash
# Two (or more) fgq-bench builds side by side, in interleaved rounds, on one model: the way to
# tell whether a kernel change helps on a noisy shared machine, where only paired rounds mean
# anything.
#   ab_bench.sh [--rounds 12] [--reps 30] [--batch 1] [--threads 2]
#               [--model out/bench_vs_ort/resnet50_int.onnx] BENCH_A BENCH_B [BENCH_C ...]
# BENCH_*: fgq-bench executables (copy build/apps/fgq-bench aside before rebuilding) or wrapper
# scripts that set environment variables and exec one. Each round runs every bench once (whole
# network, --no-layers; the order reversed every other round) and takes its median; prints per
# bench the median and minimum over rounds and, against the first bench, in how many rounds it
# was faster.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds=12 reps=30 batch=1 threads=2 model="$root/out/bench_vs_ort/resnet50_int.onnx"
benches=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "ab_bench: unknown option $1" >&2; exit 2 ;;
    *) benches+=("$1"); shift ;;
  esac
done
[ "${#benches[@]}" -ge 2 ] || { echo "ab_bench: give at least two fgq-bench executables" >&2; exit 2; }
for b in "${benches[@]}"; do
  [ -x "$b" ] || { echo "ab_bench: $b is not executable" >&2; exit 2; }
done
[ -f "$model" ] || { echo "ab_bench: $model not found (scripts/bench_vs_ort.sh saves it)" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The order within a round alternates (forward, then backward): on a noisy machine the slot in a
# round can matter as much as the bench (the same binary twice, fixed order: 13 % apart).
order=("${!benches[@]}")
for r in $(seq 1 "$rounds"); do
  if (( r % 2 == 0 )); then
    mapfile -t order < <(printf '%s\n' "${!benches[@]}" | sort -rn)
  else
    order=("${!benches[@]}")
  fi
  for i in "${order[@]}"; do
    "${benches[$i]}" --model "$model" --batch "$batch" --threads "$threads" --reps "$reps" \
      --no-opencv --no-layers --json "$tmp/$i.json" > /dev/null 2> "$tmp/err" ||
      { echo "ab_bench: ${benches[$i]} failed:" >&2; cat "$tmp/err" >&2; exit 1; }
    /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
ms = [b["real_time"] for b in d["benchmarks"] if b.get("aggregate_name") == "median"]
print(sys.argv[2], ms[0])' "$tmp/$i.json" "$i" >> "$tmp/rows"
  done
  echo "ab_bench: round $r of $rounds done" >&2
done
/usr/bin/python3 - "$tmp/rows" "${benches[@]}" <<'PY'
import statistics, sys
rows, names = sys.argv[1], sys.argv[2:]
ms = {i: [] for i in range(len(names))}
for line in open(rows):
    i, v = line.split()
    ms[int(i)].append(float(v))
base = ms[0]
for i, name in enumerate(names):
    v = ms[i]
    line = f"{name}: median {statistics.median(v):.3f} ms, min {min(v):.3f} ms over {len(v)} rounds"
    if i:
        wins = sum(a < b for a, b in zip(v, base))
        ratio = statistics.median(v) / statistics.median(base)
        line += f"; {ratio:.3f}x the first's median, faster in {wins} of {len(v)} rounds"
    print(line)
PY
