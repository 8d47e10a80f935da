#!/usr/bin/env bash
# Runs fgq's quantized network in ONNX Runtime and compares Top-1/Top-5 image by image:
#   compare_ort.sh [--model resnet50] [--limit N] [--tolerance 0.3] [fgq-run quantization options]
# 1. fgq-run quantizes (default FGQ N=4, 8-bit), evaluates the integer pipeline on the validation
#    images, and writes the same network as a standard ONNX QDQ model (--export-qdq) plus the very
#    tensors it ran (--dump-inputs: no second decoder, no 1-LSB resize differences);
# 2. ONNX Runtime (npm onnxruntime-node, scripts/ort/install_ort.sh) runs the QDQ model on them;
# 3. both are scored against the labels. Exit 1 if Top-1 differs by more than the tolerance
#    (points). Everything lands in out/ort/<model>_*.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
model=resnet50 limit=0 tol=0.3 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --tolerance) tol="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done
data="${FGQ_DATA:-$root/../shared}/data/imagenet/val"
out="$root/out/ort"
mkdir -p "$out"
[ -x build/apps/fgq-run ] || { echo "compare_ort: build fgq first (scripts/setup.sh)" >&2; exit 2; }
scripts/ort/install_ort.sh >/dev/null

limit_args=()
[ "$limit" -gt 0 ] && limit_args=(--limit "$limit")
build/apps/fgq-run --model "$model" --imagenet "$data" --plain-resize --quant fgq "${extra[@]}" \
  "${limit_args[@]}" --quiet --json "$out/${model}_fgq.json" \
  --export-qdq "$out/${model}_qdq.onnx" --dump-inputs "$out/${model}_inputs.f32"
size=$(/usr/bin/python3 -c "import json; print(json.load(open('$out/${model}_fgq.json'))['options']['crop'])")
node scripts/ort/ort_run.js --model "$out/${model}_qdq.onnx" --input "$out/${model}_inputs.f32" \
  --shape "-1,3,$size,$size" --batch 8 --threads "$(nproc)" --output "$out/${model}_ort.f32" >&2

/usr/bin/python3 - "$out/${model}" "$tol" <<'PY'
import json, sys
import numpy as np
base, tol = sys.argv[1], float(sys.argv[2])
fgq = json.load(open(base + "_fgq.json"))
names = [line.split() for line in open(base + "_inputs.f32.txt")]
labels = np.array([int(label) for _, label in names])
logits = np.fromfile(base + "_ort.f32", dtype=np.float32).reshape(len(names), -1)
order = np.argsort(-logits, axis=1, kind="stable")[:, :5]
ort1 = order[:, 0] == labels
ort5 = (order == labels[:, None]).any(axis=1)
ours = {img["file"]: img for img in fgq["images"]}
fgq1 = np.array([ours[n]["correct1"] for n, _ in names])
fgq5 = np.array([ours[n]["correct5"] for n, _ in names])
same_class = np.mean([ours[n]["top5"][0] == order[i, 0] for i, (n, _) in enumerate(names)])
n = len(names)
res = {"images": n, "fgq_top1": 100 * fgq1.mean(), "fgq_top5": 100 * fgq5.mean(),
       "ort_top1": 100 * ort1.mean(), "ort_top5": 100 * ort5.mean(),
       "same_top1_class": 100 * same_class, "tolerance_points": tol}
res["top1_diff_points"] = res["ort_top1"] - res["fgq_top1"]
json.dump(res, open(base + "_compare.json", "w"), indent=2)
print(f"{n} images: fgq integer Top-1 {res['fgq_top1']:.2f} % Top-5 {res['fgq_top5']:.2f} %  |  "
      f"ONNX Runtime (QDQ export) Top-1 {res['ort_top1']:.2f} % Top-5 {res['ort_top5']:.2f} %  |  "
      f"same top-1 class on {res['same_top1_class']:.1f} % of images")
if abs(res["top1_diff_points"]) > tol:
    print(f"compare_ort: Top-1 differs by {res['top1_diff_points']:+.2f} points (tolerance {tol})", file=sys.stderr)
    sys.exit(1)
PY
