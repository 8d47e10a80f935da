#!/usr/bin/python3
"""Unit test of make_tables.py on fgq-run-style reports written on the fly: both tables, the
drop against FP32, the ablation order, the compute time added up from the reports, CSV and plot."""
import csv
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def report(top1, top5, quant=None, quantize_s=0.0, eval_s=10.0):
    return {"top1": top1, "top5": top5, "counts": {"scored": 100},
            "timing": {"load_s": 30.0, "quantize_s": quantize_s, "eval_s": eval_s},
            "quantization": quant}


def fgq(n, bits, thr, **kw):
    q = {"group": n, "act_bits": bits, "threshold": thr, "stats_correction": True,
         "correction": "fp32", "gptq": True, "ternarize_first": False,
         "mults_removed": 1 - 1 / n, "weight_sparsity": 0.4, "pipeline": {"pipeline": "integer"}}
    q.update(kw)
    return q


class MakeTablesTest(unittest.TestCase):
    def test_tables(self):
        with tempfile.TemporaryDirectory() as tmp:
            runs, out = os.path.join(tmp, "runs"), os.path.join(tmp, "out")
            os.mkdir(runs)
            reports = {
                "fp32": report(0.80, 0.95),
                "n4_a8_exact": report(0.79, 0.95, fgq(4, 8, "exact"), 20, 30),
                "n8_a4_twn": report(0.70, 0.90, fgq(8, 4, "twn"), 20, 30),
                "n4_a8_exact_plain": report(0.01, 0.05, fgq(4, 8, "exact", gptq=False,
                                                             stats_correction=False), 5, 30),
                "n4_a0_exact": report(0.795, 0.95, fgq(4, 0, "exact"), 5, 30),
                "n4_a8_exact_fold0": report(0.80, 0.95, fgq(4, 8, "exact", fold_levels=0,
                                                             pipeline={"pipeline": "fake-quant"}), 5, 30),
            }
            for name, r in reports.items():
                with open(os.path.join(runs, name + ".json"), "w") as f:
                    json.dump(r, f)
            subprocess.run([sys.executable, os.path.join(HERE, "make_tables.py"), "--runs", runs,
                            "--out", out, "--model", "tiny", "--seconds", "125"], check=True,
                           capture_output=True)
            with open(os.path.join(out, "tiny_sweep.md")) as f:
                md = f.read()
            grid, steps = md.split("## What each step buys")
            steps, folds = steps.split("## Folding the group scales")
            self.assertIn("| n4_a8_exact_fold0 | 4 | 0 | fake-quant | 80.0 |", folds)
            self.assertNotIn("fold0", steps)
            self.assertIn("| n4_a8_exact | 4 | 8 | exact | integer | 79.0 | 95.0 | 1.0 |", grid)
            self.assertIn("| n8_a4_twn | 8 | 4 | twn | integer | 70.0 |", grid)
            self.assertNotIn("n4_a0_exact", grid)  # FP32 activations: an ablation, not the grid
            # Steps in the order they build on each other, plain first.
            self.assertLess(steps.index("n4_a8_exact_plain"), steps.index("| n4_a8_exact |"))
            self.assertLess(steps.index("| n4_a8_exact |"), steps.index("n4_a0_exact"))
            self.assertIn("79.0 |", steps)
            # Grid: 30 s set-up + (0 + 10) + (20 + 30) * 2 = 140 s; the rest (5 + 30) * 3 = 105 s.
            self.assertIn("2 min 20 s including 30 s of shared set-up", md)
            self.assertIn("the ablations 1 min 45 s", md)
            self.assertIn("completed an earlier", md)  # 125 s < the 245 s the reports add up to
            subprocess.run([sys.executable, os.path.join(HERE, "make_tables.py"), "--runs", runs,
                            "--out", out, "--model", "tiny", "--seconds", "250"], check=True,
                           capture_output=True)
            with open(os.path.join(out, "tiny_sweep.md")) as f:
                self.assertIn("Wall time of the sweep 4 min 10 s.", f.read())
            with open(os.path.join(out, "tiny_sweep.csv")) as f:
                rows = list(csv.DictReader(f))
            self.assertEqual(len(rows), 6)
            self.assertEqual({r["table"] for r in rows}, {"grid", "ablation", "folding"})
            self.assertGreater(os.path.getsize(os.path.join(out, "tiny_sweep.png")), 1000)


if __name__ == "__main__":
    unittest.main()
