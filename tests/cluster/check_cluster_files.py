#!/usr/bin/env python3
"""Checks the shipped cluster files (scripts/cluster/) as far as is possible without a cluster.
    check_cluster_files.py SCRIPTS_CLUSTER_DIR FGQ_SWEEP
  - *.sbatch: `bash -n` (syntax);
  - *-job.yaml: valid YAML; Indexed Jobs whose spec.completions match FGQ_SHARD_COUNT (eval) or
    configurations x FGQ_SHARD_COUNT (sweep, the list in its ConfigMap, read by fgq-sweep --list);
    the commands pass `sh -n`, use --shard auto, and hold no $(...) (Kubernetes would expand it
    itself); both Jobs of a file write to the same FGQ_OUT on the same volume claim.
Exit 77 (skipped) without PyYAML or bash. Kubernetes itself is not involved: no cluster here."""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def main():
    folder, sweep = pathlib.Path(sys.argv[1]), sys.argv[2]
    try:
        import yaml
    except ImportError:
        print("SKIPPED: PyYAML is not installed (python3-yaml; scripts/install_deps.sh --cluster)")
        return SKIP
    if not shutil.which("bash") or not shutil.which("sh"):
        print("SKIPPED: no bash or sh")
        return SKIP
    errors = []

    def check(ok, what):
        if not ok:
            errors.append(what)

    for script in sorted(folder.glob("*.sbatch")):
        r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        check(r.returncode == 0, f"{script.name}: bash -n: {r.stderr.strip()}")
        check(os.access(script, os.X_OK), f"{script.name}: not executable")
    check(len(list(folder.glob("*.sbatch"))) == 2, "expected eval.sbatch and sweep.sbatch")

    def env_of(container):
        return {e["name"]: e.get("value") for e in container.get("env", [])}

    def command_of(container):
        cmd = container.get("command", []) + container.get("args", [])
        check(cmd[:2] == ["/bin/sh", "-c"] and len(cmd) == 3, f"{container['name']}: expected sh -c SCRIPT")
        return cmd[-1]

    def out_claim(pod):
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                  for v in pod.get("volumes", []) if "persistentVolumeClaim" in v}
        mounts = {m["mountPath"]: m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
        return claims.get(mounts.get("/out"))

    for name, kind in (("eval-job.yaml", "eval"), ("sweep-job.yaml", "sweep")):
        path = folder / name
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as e:
            errors.append(f"{name}: not valid YAML: {e}")
            continue
        jobs = [d for d in docs if d.get("kind") == "Job"]
        check(all(d.get("apiVersion") == "batch/v1" for d in jobs), f"{name}: Jobs are batch/v1")
        indexed = [j for j in jobs if j["spec"].get("completionMode") == "Indexed"]
        merge = [j for j in jobs if j["spec"].get("completionMode") != "Indexed"]
        check(len(indexed) == 1 and len(merge) == 1, f"{name}: one Indexed Job and one merge Job")
        if len(indexed) != 1 or len(merge) != 1:
            continue
        job, mjob = indexed[0], merge[0]
        spec = job["spec"]
        pod, mpod = spec["template"]["spec"], mjob["spec"]["template"]["spec"]
        for p, j in ((pod, job), (mpod, mjob)):
            check(p.get("restartPolicy") in ("Never", "OnFailure"), f"{name}: {j['metadata']['name']}: restartPolicy")
            check(len(p["containers"]) == 1, f"{name}: {j['metadata']['name']}: one container")
        c, mc = pod["containers"][0], mpod["containers"][0]
        env, menv = env_of(c), env_of(mc)
        shards = int(env.get("FGQ_SHARD_COUNT", "0"))
        check(shards >= 1, f"{name}: FGQ_SHARD_COUNT must be set in the Indexed Job's container")
        check(env.get("FGQ_OUT") == menv.get("FGQ_OUT"), f"{name}: FGQ_OUT differs between the two Jobs")
        check(out_claim(pod) is not None and out_claim(pod) == out_claim(mpod),
              f"{name}: /out is not the same volume claim in both Jobs")
        script, mscript = command_of(c), command_of(mc)
        for s, who in ((script, job), (mscript, mjob)):
            r = subprocess.run(["sh", "-n", "-c", s], capture_output=True, text=True)
            check(r.returncode == 0, f"{name}: {who['metadata']['name']}: sh -n: {r.stderr.strip()}")
            check("$(" not in s, f"{name}: {who['metadata']['name']}: $(...) in args is Kubernetes' to expand")
        check("--shard auto" in script, f"{name}: the task must run --shard auto")
        check(spec.get("parallelism", 1) <= spec["completions"], f"{name}: parallelism > completions")
        if kind == "eval":
            check(spec["completions"] == shards, f"{name}: completions {spec['completions']} != FGQ_SHARD_COUNT {shards}")
            check("fgq-merge" in mscript, f"{name}: the merge Job runs fgq-merge")
        else:
            check("--config-index auto" in script, f"{name}: the task must run --config-index auto")
            check("--merge" in mscript, f"{name}: the merge Job runs fgq-sweep --merge")
            maps = [d for d in docs if d.get("kind") == "ConfigMap"]
            check(len(maps) == 1, f"{name}: one ConfigMap with the configuration list")
            if len(maps) != 1:
                continue
            (key, text), = maps[0]["data"].items()
            with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
                f.write(text)
                f.flush()
                r = subprocess.run([sweep, "--configs", f.name, "--list"], capture_output=True, text=True)
            check(r.returncode == 0, f"{name}: fgq-sweep --list: {r.stderr.strip()}")
            n_configs = len(r.stdout.split())
            check(spec["completions"] == n_configs * shards,
                  f"{name}: completions {spec['completions']} != {n_configs} configurations x {shards} shards")
            check(re.search(r"--configs /etc/fgq/" + re.escape(key), script) is not None,
                  f"{name}: the task reads the ConfigMap's {key}")
    for e in errors:
        print("FAILED:", e)
    if not errors:
        print(f"cluster files OK: {', '.join(sorted(p.name for p in folder.iterdir()))}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
