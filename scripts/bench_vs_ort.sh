#!/usr/bin/env bash
# fgq's integer pipeline against ONNX Runtime int8 on the same quantized network, side by side:
#   bench_vs_ort.sh [--model resnet50] [--batches 1,8] [--threads 2] [--rounds 5] [--reps 20]
#                   [fgq-run quantization options, e.g. --group 4 --act-bits 8]
# 1. fgq-run quantizes the model once (FGQ, calibrated on calib/), saves the integer network
#    (--save-quant) and exports the same network as standard ONNX QDQ in both forms (--qdq-form
#    fusable: what ORT fuses into QLinearConv/QLinearAdd, its fastest int8; exact: bit-faithful).
# 2. Rounds, interleaved so that a noisy machine slows every engine alike: per batch size,
#    fgq-int (fgq-bench on the saved integer model), fgq-fp32 (fgq-bench on the FP32 model),
#    ORT int8 on both QDQ forms and ORT FP32 on the FP32 model (scripts/ort/ort_run.js --bench),
#    each W warm-ups + R timed runs of the same real validation images, all on --threads threads.
# 3. Prints, per batch size, the median over rounds of each engine's median time, img/s, the
#    ratios to fgq-int and fgq-int's % of the machine's int8 peak (fgq-bench measures it each
#    round; the best is used). Results: out/bench_vs_ort/<model>_{rounds.jsonl,summary.{md,json}}.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
model=resnet50 batches=1,8 threads=2 rounds=5 reps=20 warmup=3 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done
for b in ${batches//,/ }; do max_batch=$b; done
data="${FGQ_DATA:-$root/../shared}/data/imagenet"
out="$root/out/bench_vs_ort"
mkdir -p "$out"
for exe in fgq-run fgq-bench; do
  [ -x "build/apps/$exe" ] || { echo "bench_vs_ort: build fgq first (scripts/setup.sh)" >&2; exit 2; }
done
scripts/ort/install_ort.sh >/dev/null
case "$model" in
  */*|*.onnx) fp32="$model"; model="$(basename "$model" .onnx)" ;;
  *) fp32="models/$model.onnx" ;;
esac
[ -f "$fp32" ] || { echo "bench_vs_ort: $fp32 not found (scripts/fetch_models.sh)" >&2; exit 2; }
base="$out/$model"

# 1. Quantize once; the same network three ways. The dumped inputs feed ORT the images fgq-bench uses.
build/apps/fgq-run --model "$fp32" --imagenet "$data/val" --limit "$max_batch" --plain-resize --quant fgq \
  "${extra[@]}" --quiet --save-quant "${base}_int.onnx" --export-qdq "${base}_qdq_fusable.onnx" \
  --qdq-form fusable --dump-inputs "${base}_inputs.f32" --json "${base}_quant.json"
build/apps/fgq-run --model "${base}_int.onnx" --imagenet "$data/val" --limit 1 --plain-resize --quiet \
  --export-qdq "${base}_qdq_exact.onnx" --qdq-form exact --json "${base}_export.json"
side=$(/usr/bin/python3 -c "import json; print(json.load(open('${base}_quant.json'))['options']['crop'])")

# 2. Interleaved rounds.
rows="${base}_rounds.jsonl"
: > "$rows"
bench_fgq() {  # engine-name model batch round
  build/apps/fgq-bench --model "$2" --batch "$3" --threads "$threads" --reps "$reps" --warmup "$warmup" \
    --no-opencv --no-layers --images "$data/val" --json "$out/fgq.json" >/dev/null 2>"$out/fgq.err" ||
    { cat "$out/fgq.err" >&2; exit 1; }
  /usr/bin/python3 - "$out/fgq.json" "$1" "$4" >> "$rows" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
r = j["benchmarks"][0]
print(json.dumps({"engine": sys.argv[2], "round": int(sys.argv[3]), "batch": r["batch"],
                  "median_ms": r["real_time"], "macs": r["macs"] / r["batch"],
                  "peak_int8": r["peak_int8_gmacs_per_second"], "percent_of_peak": r["percent_of_peak"]}))
PY
}
bench_ort() {  # engine-name model batch round
  node scripts/ort/ort_run.js --model "$2" --bench --batch "$3" --threads "$threads" --warmup "$warmup" \
    --reps "$reps" --input "${base}_inputs.f32" --shape "-1,3,$side,$side" |
    /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({"engine": sys.argv[1], "round": int(sys.argv[2]), "batch": r["batch"], "median_ms": r["median_ms"]}))' "$1" "$4" >> "$rows"
}
echo "bench_vs_ort: $model, batches $batches, $threads threads, $rounds rounds x ($warmup warm-up + $reps timed runs)" >&2
for r in $(seq 1 "$rounds"); do
  for b in ${batches//,/ }; do
    bench_fgq fgq-int "${base}_int.onnx" "$b" "$r"
    bench_ort ort-int8 "${base}_qdq_fusable.onnx" "$b" "$r"
    bench_fgq fgq-fp32 "$fp32" "$b" "$r"
    bench_ort ort-int8-exact "${base}_qdq_exact.onnx" "$b" "$r"
    bench_ort ort-fp32 "$fp32" "$b" "$r"
  done
  echo "bench_vs_ort: round $r of $rounds done" >&2
done
rm -f "$out/fgq.json" "$out/fgq.err"

# 3. Summary.
/usr/bin/python3 - "$rows" "$base" "$model" "$threads" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base, model, threads = sys.argv[2], sys.argv[3], sys.argv[4]
engines = ["fgq-int", "ort-int8", "ort-int8-exact", "fgq-fp32", "ort-fp32"]
what = {"fgq-int": "fgq integer pipeline (saved FGQ model)",
        "ort-int8": "ONNX Runtime int8, QDQ fusable form (QLinearConv/QLinearAdd)",
        "ort-int8-exact": "ONNX Runtime int8, QDQ exact form",
        "fgq-fp32": "fgq FP32", "ort-fp32": "ONNX Runtime FP32"}
peak = max(r["peak_int8"] or 0 for r in rows if r["engine"] == "fgq-int")
macs = next(r["macs"] for r in rows if r["engine"] == "fgq-int")
summary = {"model": model, "threads": int(threads), "rounds": max(r["round"] for r in rows),
           "peak_int8_gmacs_per_second": peak, "macs_per_image": macs, "batches": {}}
lines = [f"{model}, {threads} threads, median over {summary['rounds']} interleaved rounds; "
         f"int8 peak measured {peak:.0f} GMAC/s; {macs / 1e9:.2f} GMAC per image", ""]
for b in sorted({r["batch"] for r in rows}):
    med = {e: statistics.median(r["median_ms"] for r in rows if r["engine"] == e and r["batch"] == b)
           for e in engines}
    pct = 100 * macs * b / (med["fgq-int"] * 1e-3) / (peak * 1e9) if peak else None
    summary["batches"][b] = {"median_ms": med, "fgq_int_percent_of_peak": pct,
                             "fgq_int_speedup": {e: med[e] / med["fgq-int"] for e in engines}}
    lines += [f"batch {b}: fgq-int at {pct:.1f} % of the int8 peak" if pct else f"batch {b}", "",
              "| engine | ms | img/s | fgq-int is ... x faster | what |", "|---|---|---|---|---|"]
    for e in engines:
        lines.append(f"| {e} | {med[e]:.2f} | {1e3 * b / med[e]:.1f} | {med[e] / med['fgq-int']:.2f} | {what[e]} |")
    lines.append("")
open(base + "_summary.md", "w").write("\n".join(lines))
json.dump(summary, open(base + "_summary.json", "w"), indent=2)
print("\n".join(lines))
PY
