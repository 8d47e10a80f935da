#!/usr/bin/env python3
"""Builds the FGQ sweep table (Markdown + CSV) and the Top-1-vs-N plot from fgq-run JSON reports
written by scripts/reproduce_tables.sh."""
import argparse
import csv
import json
import pathlib


def load(runs):
    out = {}
    for p in sorted(pathlib.Path(runs).glob("*.json")):
        j = json.loads(p.read_text())
        out[p.stem] = j
    return out


def row(name, j, fp32_top1):
    q = j.get("quantization") or {}
    n = q.get("group")
    top1, top5 = 100 * j["top1"], 100 * j["top5"]
    steps = []
    if q:
        steps.append("first+last " + ("ternary" if q.get("ternarize_first") else "8-bit"))
        steps.append("correction " + (q.get("correction", "fp32") if q.get("stats_correction") else "off"))
        steps.append("GPTQ " + ("on" if q.get("gptq") else "off"))
    return {
        "config": name,
        "N": n if n else "-",
        "act_bits": q.get("act_bits", 32) if q else 32,
        "threshold": q.get("threshold", "-") if q else "-",
        "method": "; ".join(steps) if steps else "FP32",
        "top1": round(top1, 2),
        "top5": round(top5, 2),
        "drop_top1": round(fp32_top1 - top1, 2),
        "mults_removed_pct": round(100 * q.get("mults_removed", 0), 1) if q else 0.0,
        "weight_sparsity_pct": round(100 * q.get("weight_sparsity", 0), 1) if q else 0.0,
        "images": j["counts"]["scored"],
        "quantize_s": round(j["timing"]["quantize_s"], 1),
        "pipeline": (q.get("pipeline") or {}).get("pipeline", "fake-quant") if q else "fp32",
        "fold_levels": q.get("fold_levels", "-") if q else "-",
        "zero_level_groups": q.get("zero_levels", "-") if q else "-",
    }


# What each step of the method buys at N=4, 8-bit activations, exact thresholds (the ablation
# configurations of reproduce_tables.sh), in the order the steps build on each other.
STEPS = [
    ("n4_a8_exact_plain", "plain FGQ ternarization (no correction, no GPTQ)"),
    ("n4_a8_exact_mean", "+ bias correction (per-channel mean matched to FP32)"),
    ("n4_a8_exact_bn", "+ BatchNorm re-estimation on the calibration images (instead)"),
    ("n4_a8_exact_corr", "+ per-channel mean and variance matched to FP32"),
    ("n4_a8_exact", "+ GPTQ error compensation (the default)"),
    ("n4_a0_exact", "the default with FP32 activations"),
    ("n4_a8_exact_all_ternary", "the default with the first conv and the classifier ternary too"),
]


def is_fold(name):
    return "_fold" in name


def is_grid(name):
    parts = name.split("_")
    return name == "fp32" or (len(parts) == 3 and parts[0][:1] == "n" and parts[1][:1] == "a"
                              and parts[2] in ("exact", "twn") and parts[1] != "a0")


def minutes(s):
    return f"{int(s) // 60} min {int(s) % 60:02d} s"


def table(rows, cols):
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--seconds", type=int, default=0, help="wall time of the sweep invocation")
    ap.add_argument("--command", default="")
    a = ap.parse_args()
    runs = load(a.runs)
    if "fp32" not in runs:
        raise SystemExit(f"make_tables.py: {a.runs}/fp32.json missing")
    fp32 = 100 * runs["fp32"]["top1"]
    rows = [row(k, v, fp32) for k, v in runs.items()]
    rows.sort(key=lambda r: (r["config"] != "fp32", str(r["threshold"]), -r["act_bits"],
                             r["N"] if isinstance(r["N"], int) else 0, r["config"]))
    grid = [r for r in rows if is_grid(r["config"])]
    described = dict(STEPS)
    order = {name: i for i, (name, _) in enumerate(STEPS)}
    steps = sorted((r for r in rows if r["config"] in described or not (is_grid(r["config"]) or is_fold(r["config"]))),
                   key=lambda r: (order.get(r["config"], len(order)), r["config"]))
    folds = sorted((r for r in rows if is_fold(r["config"])),
                   key=lambda r: (r["N"] if isinstance(r["N"], int) else 0, r["pipeline"],
                                  r["fold_levels"] if isinstance(r["fold_levels"], int) else 0))
    for r in rows:
        r["table"] = "grid" if is_grid(r["config"]) else "folding" if is_fold(r["config"]) else "ablation"
        r["step"] = described.get(r["config"], r["method"])

    # Compute time from the reports: the shared set-up (model, images, FP32 reference) once, then
    # each configuration's quantization and evaluation (so a resumed sweep still adds up).
    setup = max(runs[r["config"]]["timing"]["load_s"] for r in rows)
    def cost(rs):
        return sum(runs[r["config"]]["timing"]["quantize_s"] + runs[r["config"]]["timing"]["eval_s"]
                   for r in rs)
    grid_s = setup + cost(grid)
    ablation_s = cost([r for r in rows if r["table"] != "grid"])

    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{a.model}_sweep"
    with open(f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    cols = ["config", "N", "act_bits", "threshold", "pipeline", "top1", "top5", "drop_top1",
            "mults_removed_pct", "weight_sparsity_pct", "quantize_s"]
    fold_cols = ["config", "N", "fold_levels", "pipeline", "top1", "top5", "drop_top1", "zero_level_groups"]
    step_cols = ["config", "step", "top1", "top5", "drop_top1", "weight_sparsity_pct", "quantize_s"]
    lines = [f"# {a.model}: FGQ sweep", "",
             f"Images: {rows[0]['images']} of the validation folder; FP32 Top-1 {fp32:.2f} %. "
             "Calibration on `calib/` (training images). Unless the step says otherwise: first conv "
             "and classifier 8-bit, per-channel correction to the FP32 statistics, GPTQ, group "
             "scales folded into 127 int8 levels per output channel, and the network evaluated on "
             "the integer pipeline (pipeline `integer`: what users run; `fake-quant` is the "
             "calibration graph on FP32 kernels).", "",
             f"Time on this machine (2 cores), from the reports: the paper grid (FP32 + "
             f"{len(grid) - 1} FGQ configurations) {minutes(grid_s)} including {setup:.0f} s of "
             f"shared set-up; the ablations {minutes(ablation_s)}. " +
             (f"Wall time of the sweep {minutes(a.seconds)}." if a.seconds >= grid_s + ablation_s
              else f"The last invocation ({minutes(a.seconds)}) completed an earlier, interrupted "
                   "or partly outdated sweep: reports already present were kept."), "",
             f"Command: `{a.command}`", "",
             "## Paper grid", ""]
    lines += table(grid, cols)
    if steps:
        lines += ["", "## What each step buys (N=4, 8-bit activations, exact thresholds)", ""]
        lines += table(steps, step_cols)
    if folds:
        lines += ["", "## Folding the group scales into int8 levels (8-bit activations, exact thresholds)", "",
                  "Levels A per output channel: alpha_g ~= s_o * a_g, a_g in 0..A; 0 = the exact float "
                  "alpha_g (fake-quant only: the integer pipeline needs int8 weights). fake-quant rows "
                  "isolate what folding costs; zero_level_groups counts groups whose scale rounds to "
                  "level 0 (of about 5.9 M non-zero groups at N=4).", ""]
        lines += table(folds, fold_cols)
    pathlib.Path(f"{stem}.md").write_text("\n".join(lines) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for thr in ("exact", "twn"):
        for bits in (8, 4):
            pts = sorted((r["N"], r["top1"]) for r in grid
                         if r["threshold"] == thr and r["act_bits"] == bits)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                        linestyle="-" if thr == "exact" else "--", label=f"{bits}-bit act, {thr}")
    ax.axhline(fp32, color="k", linewidth=1, label="FP32")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("group size N")
    ax.set_ylabel("Top-1 (%)")
    ax.set_title(f"{a.model}: FGQ ternary weights, Top-1 vs group size")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{stem}.png", dpi=120)
    print(f"wrote {stem}.md, {stem}.csv, {stem}.png")


if __name__ == "__main__":
    main()
