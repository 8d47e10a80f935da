#!/usr/bin/env bash
# Times ONNX Runtime (CPU EP, onnxruntime-node) on FP32 and QDQ int8 versions of the same networks.
#   bench_ort.sh [--threads 1,2] [--batches 1,8] [--reps R] [--warmup W] [--no-resnet50] [--out FILE.jsonl]
# Models (made once into ${FGQ_ORT_BENCH_DIR:-<repo>/models/.cache/ort-bench}):
#   big56_{fp32,qdq}  256x56x56 input, ResNet stage-2 shaped convs (1x1 256->64, 3x3 64->64, 1x1 64->256) x2
#   big28_{fp32,qdq}  128x28x28 input, four 3x3 128->128 convs
#   resnet50_{fp32,qdq}  models/resnet50.onnx (if present) and its QDQ version (make_test_qdq.py qdqify,
#                     calibrated on 64 images of ${FGQ_DATA:-<repo>/../shared}/data/imagenet/calib)
# Each (model, threads, batch): W warm-ups + R timed runs of one batch (seeded random input), one JSON
# line from ort_run.js --bench, then a Markdown table: img/s and GMAC/s from the median and the best
# run, and GMAC per CPU-second (process CPU time; with 1 thread this is the single-core rate and hardly
# changes when other processes compete for the cores, unlike wall-clock figures; with 2 threads it
# includes ORT's spin-waiting). The 1-minute load average is recorded with each line.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${FGQ_ORT_BENCH_DIR:-$root/models/.cache/ort-bench}"
data="${FGQ_DATA:-$root/../shared}"
py=/usr/bin/python3
threads="1,2" batches="1,8" reps=20 warmup=5 resnet=1 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --no-resnet50) resnet=0; shift ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "bench_ort.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

"$here/install_ort.sh" >/dev/null
mkdir -p "$dir"
[ -f "$dir/big28_qdq.onnx" ] || "$py" "$here/make_test_qdq.py" bigconv "$dir"
models=(big56_fp32 big56_qdq big28_fp32 big28_qdq)
if [ "$resnet" = 1 ] && [ -f "$root/models/resnet50.onnx" ]; then
  ln -sf "$root/models/resnet50.onnx" "$dir/resnet50_fp32.onnx"
  if [ ! -f "$dir/resnet50_qdq.onnx" ]; then
    calib="$data/data/imagenet/calib"
    if [ -d "$calib" ]; then
      "$py" "$here/imagenet_input.py" prep "$root/models/resnet50.onnx" "$calib" "$dir/calib64.f32" --limit 64 --plain-resize
    else
      echo "bench_ort.sh: no $calib, calibrating on seeded noise (fine for timing only)" >&2
      "$py" -c "import numpy as np; (np.random.default_rng(0).standard_normal((16,3,224,224))*60).astype('<f4').tofile('$dir/calib64.f32')"
    fi
    "$py" "$here/make_test_qdq.py" qdqify "$root/models/resnet50.onnx" "$dir/resnet50_qdq.onnx" --calib "$dir/calib64.f32"
  fi
  models+=(resnet50_fp32 resnet50_qdq)
fi

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
echo "bench_ort.sh: $(nproc) cores, threads $threads, batches $batches, $warmup warm-up + $reps timed runs" >&2
for m in "${models[@]}"; do
  macs="$("$py" "$here/make_test_qdq.py" macs "$dir/$m.onnx" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["macs_per_image"])')"
  for b in ${batches//,/ }; do
    for t in ${threads//,/ }; do
      line="$(node "$here/ort_run.js" --model "$dir/$m.onnx" --bench --batch "$b" --threads "$t" \
              --warmup "$warmup" --reps "$reps")"
      echo "${line%\}},\"macs_per_image\":$macs}" | tee -a "$results"
    done
  done
done
[ -z "$out" ] || cp "$results" "$out"
"$py" - "$results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print('\n| model | batch | threads | median ms | best ms | img/s (median) | img/s (best) | GMAC/s (median) | GMAC/s (best) | GMAC/CPU-s | load |')
print('|---|---|---|---|---|---|---|---|---|---|---|')
for r in rows:
    g = r['macs_per_image'] * r['batch'] / 1e9
    print(f"| {r['model'].replace('.onnx', '')} | {r['batch']} | {r['threads']} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | "
          f"{r['img_s']:.1f} | {r['img_s_best']:.1f} | {g / r['median_ms'] * 1e3:.0f} | {g / r['min_ms'] * 1e3:.0f} | "
          f"{g / r['cpu_ms_median'] * 1e3:.0f} | {r['load_avg_1min']:.1f} |")
EOF
