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
