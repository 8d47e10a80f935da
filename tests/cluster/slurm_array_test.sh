#!/usr/bin/env bash
# A real Slurm job array: starts a private single-node Slurm (munged + slurmctld + slurmd on
# localhost, as root; slurm_local.sh), submits the shipped scripts/cluster/eval.sbatch (4 shards,
# then its dependent merge job) and sweep.sbatch (2 configurations x 2 shards, then --merge),
# plus a plain `sbatch --array=10-13` of fgq-run --shard auto without a count (the array's own
# numbering), and checks that every merged report equals the single-process run: the same
# Top-1/Top-5, counts, per-image records and skipped files.
#   slurm_array_test.sh SOURCE_DIR APPS_DIR MAKE_CLUSTER_INPUTS
# Prints "SKIPPED: <reason>" and exits 77 (ctest's SKIP_RETURN_CODE) when it cannot run here:
# not root, Slurm or munge not installed (scripts/install_deps.sh --cluster), or slurmd/slurmctld
# cannot start. Every wait is bounded (the whole test gives up after 120 s) and the daemons
# are stopped on every exit (trap).
set -uo pipefail

src=$1
bin=$2
make_inputs=$3
SKIP=77
start=$SECONDS
deadline=$((SECONDS + 120))

skip() {
  echo "SKIPPED: $*"
  exit $SKIP
}

[ "$(id -u)" = 0 ] || skip "needs root: a private slurmctld, slurmd and munged run as root"
export PATH=$PATH:/usr/sbin:/sbin
for b in munged slurmctld slurmd sbatch sinfo squeue scontrol scancel; do
  command -v "$b" >/dev/null || skip "$b is not installed (scripts/install_deps.sh --cluster installs Slurm and munge)"
done
for b in python3 timeout; do
  command -v "$b" >/dev/null || skip "$b is not installed"
done

work=$(mktemp -d /tmp/fgq_slurm_test.XXXXXX)
# shellcheck source=SCRIPTDIR/slurm_local.sh
source "$(dirname "$0")/slurm_local.sh"
keep=0
cleanup() {
  slurm_local_stop
  if [ $keep = 1 ]; then echo "slurm_array_test: kept $work for a look"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAILED: $*"
  keep=1
  for f in "$work"/slurm/log/slurmctld.log "$work"/slurm/log/slurmd.log "$work"/*/logs/*; do
    [ -f "$f" ] || continue
    echo "--- $f (last lines)"
    tail -n 15 "$f"
  done
  exit 1
}
say() { echo "slurm_array_test: $* ($((SECONDS - start)) s)"; }

if ! slurm_local_start "$work/slurm"; then
  echo "SKIPPED: a single-node Slurm cannot run here: $(head -n 1 <<<"$SLURM_LOCAL_ERROR")"
  tail -n +2 <<<"$SLURM_LOCAL_ERROR"
  exit $SKIP
fi
say "Slurm $(sinfo -V 2>/dev/null | awk '{print $2}') up, node idle"

"$make_inputs" "$work/in" || fail "make_cluster_inputs"
cd "$work" || fail "cd $work"
model=$work/in/colour.onnx
val=$work/in/val
calib_args="--calib $work/in/calib --calib-count 4"
printf '# two configurations\nfp32\nq2 --quant fgq --group 2 --act-bits 4\n' >"$work/configs.txt"

# All three arrays at once (2 CPUs: two tasks at a time).
export FGQ_BIN=$bin FGQ_MODEL=$model FGQ_IMAGENET=$val FGQ_CPUS=1 FGQ_SBATCH_ARGS="--time=5"
FGQ_OUT=$work/eval FGQ_SHARDS=4 timeout 30 bash "$src/scripts/cluster/eval.sbatch" ||
  fail "eval.sbatch did not submit"
FGQ_OUT=$work/sweep FGQ_SHARDS=2 FGQ_CONFIGS=$work/configs.txt FGQ_SWEEP_ARGS="$calib_args" \
  timeout 30 bash "$src/scripts/cluster/sweep.sbatch" || fail "sweep.sbatch did not submit"
mkdir -p "$work/offset/shards" "$work/offset/logs"
offset=$(env -u FGQ_SHARDS -u FGQ_SHARD_COUNT timeout 30 sbatch --parsable --time=5 --array=10-13 \
  --cpus-per-task=1 --job-name=fgq-offset --output="$work/offset/logs/%x-%A_%a.out" \
  --wrap="exec '$bin/fgq-run' --model '$model' --imagenet '$val' --threads 1 --shard auto \
          --json \"$work/offset/shards/task-\$SLURM_ARRAY_TASK_ID.json\"") || fail "sbatch --array=10-13"
offset=${offset%%;*}
read -r eval_array eval_merge <"$work/eval/jobs"
read -r sweep_array sweep_merge <"$work/sweep/jobs"
jobs="$eval_array,$eval_merge,$sweep_array,$sweep_merge,$offset"
say "submitted jobs $jobs"

# The single-process references meanwhile.
"$bin/fgq-run" --model "$model" --imagenet "$val" --threads 1 --quiet --json "$work/single.json" \
  >/dev/null 2>"$work/single.err" || fail "fgq-run (single process): $(cat "$work/single.err")"
# shellcheck disable=SC2086
"$bin/fgq-sweep" --model "$model" --imagenet "$val" --configs "$work/configs.txt" \
  --out "$work/sweep_single" --threads 1 $calib_args >/dev/null 2>"$work/sweep_single.err" ||
  fail "fgq-sweep (single process): $(cat "$work/sweep_single.err")"

while [ -n "$(timeout 10 squeue -h -j "$jobs" -o %i 2>/dev/null)" ]; do
  [ $SECONDS -lt $deadline ] || { timeout 5 squeue; fail "the jobs did not finish in time"; }
  sleep 0.5
done
say "all jobs done"
# Every task and both merges COMPLETED (scontrol lists finished jobs for MinJobAge, 300 s).
states=$(for j in ${jobs//,/ }; do timeout 10 scontrol show job "$j" 2>&1; done)
not_ok=$(grep -o 'JobState=[A-Z_]*' <<<"$states" | sort | uniq -c | grep -v 'JobState=COMPLETED')
total=$(grep -c 'JobState=' <<<"$states")
[ -z "$not_ok" ] || fail "jobs not COMPLETED: $not_ok"
[ "$total" = 14 ] || fail "expected 4 + 4 + 4 array tasks and 2 merge jobs, scontrol lists $total"
say "14 jobs COMPLETED (3 arrays of 4 tasks, 2 merge jobs)"

# What fgq-run printed about its shard, in the task logs.
grep -h -- "--shard auto:" "$work"/eval/logs/fgq-eval-*_*.out | sort
grep -q -- "--shard auto: 2/4 (Slurm array job $eval_array task 2 of 0-3, --shard-count 4)" \
  "$work"/eval/logs/fgq-eval-*_2.out || fail "task 2 did not report shard 2/4"
grep -q -- "--shard auto: 1/4 (Slurm array job $offset task 11 of 10-13)" \
  "$work"/offset/logs/fgq-offset-*_11.out || fail "task 11 of 10-13 did not report shard 1/4"

timeout 30 "$bin/fgq-merge" "$work"/offset/shards/*.json --json "$work/offset/merged.json" \
  >/dev/null 2>"$work/offset/merge.err" || fail "fgq-merge of the 10-13 array: $(cat "$work/offset/merge.err")"

# The merged reports against the single-process ones.
timeout 30 python3 - "$work" <<'EOF' || fail "merged and single-process reports differ"
import glob, json, os, sys

work = sys.argv[1]
def load(p):
    with open(p) as f:
        return json.load(f)

def same(merged, single, what):
    m, s = load(merged), load(single)
    for key in ("top1", "top5", "counts", "images", "skipped_files", "dataset", "model"):
        if m[key] != s[key]:
            sys.exit(f"{what}: {key} differs:\n  merged {m[key]}\n  single {s[key]}")
    drop = lambda o: {k: v for k, v in o.items() if k not in ("threads", "batch")}
    if drop(m["options"]) != drop(s["options"]):
        sys.exit(f"{what}: options differ: {m['options']} vs {s['options']}")
    q = lambda j: {k: v for k, v in (j.get("quantization") or {}).items() if k != "seconds"}
    if q(m) != q(s):
        sys.exit(f"{what}: quantization differs")
    c = m["counts"]
    print(f"  {what}: Top-1 {m['top1']:.4f} Top-5 {m['top5']:.4f}, {c['scored']} scored + "
          f"{c['skipped']} skipped, {len(m['images'])} per-image records: equal to the single run")

def shards(folder, n):
    got = sorted(load(p)["options"]["shard"] for p in glob.glob(os.path.join(folder, "*.json")))
    want = sorted(f"{i}/{n}" for i in range(n))
    if got != want:
        sys.exit(f"{folder}: shard reports record {got}, expected {want}")

shards(f"{work}/eval/shards", 4)
shards(f"{work}/offset/shards", 4)
for name in ("fp32", "q2"):
    shards(f"{work}/sweep/shards/{name}", 2)
same(f"{work}/eval/merged.json", f"{work}/single.json", "eval 4-task array + merge job")
same(f"{work}/offset/merged.json", f"{work}/single.json", "array 10-13, --shard auto without a count")
for name in ("fp32", "q2"):
    same(f"{work}/sweep/{name}.json", f"{work}/sweep_single/{name}.json", f"sweep {name} (2 shards)")
EOF
say "PASSED"
