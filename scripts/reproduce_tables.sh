#!/usr/bin/env bash
# Reproduces the FGQ paper's sweep on one model: FP32, then FGQ for every group size N,
# activation width and threshold rule, plus the ablation of the corrections at N=4 / 8-bit.
# Runs them all in one fgq-sweep process (one fgq-run JSON report per configuration), then writes
# the table (Markdown + CSV) and the plot.
#
#   scripts/reproduce_tables.sh [--model resnet50] [--val DIR] [--limit N] [--out docs/results]
#                               [--groups "1 2 4 8 16 32 64"] [--bits "8 4"] [--thresholds "exact twn"]
# Calibration images come from ${FGQ_DATA:-../shared}/data/imagenet/calib (never from --val).
set -euo pipefail
cd "$(dirname "$0")/.."

model=resnet50
data=${FGQ_DATA:-../shared}
val=$data/data/imagenet/val
calib=$data/data/imagenet/calib
limit=""
out=docs/results
groups="1 2 4 8 16 32 64"
bits="8 4"
thresholds="exact twn"
while [ $# -gt 0 ]; do
  case $1 in
    --model) model=$2; shift 2 ;;
    --val) val=$2; shift 2 ;;
    --calib) calib=$2; shift 2 ;;
    --limit) limit="--limit $2"; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --groups) groups=$2; shift 2 ;;
    --bits) bits=$2; shift 2 ;;
    --thresholds) thresholds=$2; shift 2 ;;
    *) echo "reproduce_tables.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done

sweep=build/apps/fgq-sweep
[ -x "$sweep" ] || { echo "reproduce_tables.sh: $sweep not built (run scripts/setup.sh first)" >&2; exit 1; }
[ -d "$val" ] || { echo "reproduce_tables.sh: $val: no such folder" >&2; exit 1; }
runs=out/sweep/$model  # per-run JSON reports (per-image records): not committed
mkdir -p "$runs"
start=$(date +%s)

# One fgq-run-style configuration per line (fgq-sweep shares the model load, the decoded
# images and the FP32 reference statistics between them).
configs=$runs/configs.txt
{
  echo "fp32"
  for b in $bits; do
    for t in $thresholds; do
      for n in $groups; do
        echo "n${n}_a${b}_${t} --quant fgq --group $n --act-bits $b --threshold $t"
      done
    done
  done
  # What each step of the method buys at N=4, 8-bit, exact thresholds.
  echo "n4_a8_exact_plain --quant fgq --group 4 --act-bits 8 --no-stats-correction --no-gptq"
  echo "n4_a8_exact_mean --quant fgq --group 4 --act-bits 8 --correction mean --no-gptq"
  echo "n4_a8_exact_corr --quant fgq --group 4 --act-bits 8 --no-gptq"
  echo "n4_a8_exact_bn --quant fgq --group 4 --act-bits 8 --correction bn --no-gptq"
  echo "n4_a0_exact --quant fgq --group 4 --act-bits 0"
  echo "n4_a8_exact_all_ternary --quant fgq --group 4 --act-bits 8 --ternarize-first --ternarize-last"
  # What folding the group scales into A int8 levels per channel costs: the calibration graph
  # (fake-quant) with exact float scales against the same with A = 127, and smaller A on the
  # integer pipeline.
  for n in 4 8 16 64; do
    echo "n${n}_a8_exact_fold0 --quant fgq --group $n --act-bits 8 --fold-levels 0 --fake-quant"
    echo "n${n}_a8_exact_fold127 --quant fgq --group $n --act-bits 8 --fake-quant"
  done
  for a in 15 31 63; do
    echo "n4_a8_exact_fold$a --quant fgq --group 4 --act-bits 8 --fold-levels $a"
  done
} > "$configs"

# The 227x227 validation images are resized straight to 224 (what the reference does).
"$sweep" --model "$model" --imagenet "$val" --plain-resize --batch 16 $limit \
  --calib "$calib" --calib-count 200 --configs "$configs" --out "$runs"

/usr/bin/python3 scripts/make_tables.py --runs "$runs" --out "$out" --model "$model" \
  --seconds $(( $(date +%s) - start )) --command "scripts/reproduce_tables.sh${*:+ $*}"
