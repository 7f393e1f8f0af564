#!/usr/bin/env python3
"""Mean and standard deviation of the runs of scripts/results.sh as a Markdown table."""
import json
import pathlib
import statistics
import sys

root = pathlib.Path(sys.argv[1])
runs = {}
for f in sorted(root.glob("*/metrics.json")):
    ds, mode, _ = f.parent.name.rsplit("-", 2)
    runs.setdefault((ds, mode), []).append(json.loads(f.read_text()))
keys = ["H@5", "H@10", "H@20", "M@5", "M@10", "M@20"]


def cell(values):
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


print("| dataset | model | runs | " + " | ".join(keys) + " | s/epoch |")
print("|---|---|---:|" + "---:|" * len(keys) + "---:|")
for (ds, mode), rs in sorted(runs.items()):
    per_epoch = [statistics.mean(e["train_seconds"] + e["eval_seconds"] for e in r["epochs"]) for r in rs]
    row = [cell([r["test"][k] for r in rs]) for k in keys]
    print(f"| {ds} | EMBSR, next op {mode} | {len(rs)} | " + " | ".join(row) + f" | {statistics.mean(per_epoch):.1f} |")
    if mode == "given":
        for b in ("POP", "S-POP"):
            print(f"| {ds} | {b} | 1 | " + " | ".join(cell([rs[0]['baselines'][b][k]]) for k in keys) + " | |")

# Where EMBSR wins or loses against S-POP: targets already in the session (repeat) vs new ones
# (explore). Only runs that recorded the split (embsr-train with --baselines) are listed.
split_rows = [(ds, mode, r) for (ds, mode), rs in sorted(runs.items()) for r in rs
              if "test_repeat" in r and "S-POP_repeat" in r.get("baselines", {})]
if split_rows:
    print()
    print("| dataset | run | repeat share | EMBSR H@20 repeat | S-POP H@20 repeat "
          "| EMBSR H@20 explore | S-POP H@20 explore | POP H@20 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for ds, mode, r in split_rows:
        rep, exp = r["test_repeat"], r["test_explore"]
        b = r["baselines"]
        share = rep["sessions"] / (rep["sessions"] + exp["sessions"])
        print(f"| {ds} | next op {mode}, seed {r['config']['seed']} | {100 * share:.1f}% | "
              f"{100 * rep['H@20']:.2f} | {100 * b['S-POP_repeat']['H@20']:.2f} | "
              f"{100 * exp['H@20']:.2f} | {100 * b['S-POP_explore']['H@20']:.2f} | {100 * b['POP']['H@20']:.2f} |")
