#!/usr/bin/env python3
"""The tables and the plot of scripts/paper_tables.sh from its output directory.

    scripts/paper_tables.py OUT --datasets "jd_appliances ..." --table3 "MODELS" --table4 "MODELS"
                            [--budget TEXT] [--no-plot]

Reads OUT/DATASET/MODEL-seedS/best.json (embsr-tune's: the best configuration's test metrics) and
wall_seconds; prints Table III and Table IV as Markdown (per data set: H@K and M@K for K = 5, 10,
20 in %, mean +- std over the seeds, the repeat/explore split of H@20, minutes per tuning run);
writes OUT/summary.csv and, with gnuplot, OUT/paper_tables.png (H@20 and M@20 of every Table III
model per data set, and the repeat/explore H@20, mean with the seeds' std as error bars).
A model or data set without finished runs is reported as missing, never silently dropped.
"""

import argparse
import json
import pathlib
import shutil
import statistics
import subprocess
import sys

NAMES = {"jd_appliances": "JD Appliances", "jd_computers": "JD Computers", "trivago": "trivago"}
METRICS = ["H@5", "H@10", "H@20", "M@5", "M@10", "M@20"]


def load(out, ds, model):
    runs = []
    for p in sorted((out / ds).glob(f"{model}-seed*/best.json")):
        best = json.loads(p.read_text())
        wall = p.parent / "wall_seconds"
        best["_wall"] = float(wall.read_text()) if wall.exists() else float("nan")
        runs.append(best)
    return runs


def mean_std(xs):
    xs = [100 * x for x in xs]
    if len(xs) == 1:
        return xs[0], 0.0
    return statistics.mean(xs), statistics.stdev(xs)


def cell(xs):
    m, s = mean_std(xs)
    return f"{m:.2f}" if len(xs) == 1 else f"{m:.2f} ± {s:.2f}"


def table(out, title, datasets, models):
    lines = [f"### {title}", ""]
    missing = []
    for ds in datasets:
        lines += [f"**{NAMES.get(ds, ds)}**", "",
                  "| model | seeds | " + " | ".join(METRICS) + " | repeat H@20 | explore H@20 | min per run |",
                  "|---|---:|" + "---:|" * (len(METRICS) + 3)]
        best = {}
        for model in models:
            runs = load(out, ds, model)
            if runs:
                best[model] = statistics.mean(r["test"]["H@20"] for r in runs)
        top = max(best, key=best.get) if best else None
        for model in models:
            runs = load(out, ds, model)
            if not runs:
                missing.append(f"{ds}/{model}")
                lines.append(f"| {model} | 0 | " + " | ".join("—" for _ in METRICS) + " | — | — | — |")
                continue
            row = [cell([r["test"][k] for r in runs]) for k in METRICS]
            if model == top:
                row[2] = f"**{row[2]}**"
            rep = cell([r["test_repeat"]["H@20"] for r in runs])
            exp = cell([r["test_explore"]["H@20"] for r in runs])
            minutes = statistics.median(r["_wall"] for r in runs) / 60
            lines.append(f"| {model} | {len(runs)} | " + " | ".join(row) + f" | {rep} | {exp} | {minutes:.1f} |")
        lines.append("")
    return lines, missing


def write_summary(out, datasets, models):
    rows = ["dataset,model,seeds,metric,mean,std"]
    for ds in datasets:
        for model in models:
            runs = load(out, ds, model)
            if not runs:
                continue
            for part, key in [("test", k) for k in METRICS] + [("test_repeat", "H@20"), ("test_explore", "H@20")]:
                m, s = mean_std([r[part][key] for r in runs])
                name = key if part == "test" else f"{part[5:]} {key}"
                rows.append(f"{ds},{model},{len(runs)},{name},{m:.4f},{s:.4f}")
    (out / "summary.csv").write_text("\n".join(rows) + "\n")


def plot(out, datasets, models):
    """One row per data set: H@20 / M@20 (left) and repeat / explore H@20 (right) per model."""
    if shutil.which("gnuplot") is None:
        print("paper_tables.py: gnuplot not found, no plot", file=sys.stderr)
        return None
    panels = []
    for ds in datasets:
        data = out / f"plot_{ds}.dat"
        lines = ["# model H20 H20sd M20 M20sd repeatH20 repeatsd exploreH20 exploresd"]
        for model in models:
            runs = load(out, ds, model)
            if not runs:
                continue
            vals = []
            for part, key in (("test", "H@20"), ("test", "M@20"), ("test_repeat", "H@20"), ("test_explore", "H@20")):
                vals += mean_std([r[part][key] for r in runs])
            lines.append(f"{model} " + " ".join(f"{v:.4f}" for v in vals))
        if len(lines) > 1:
            data.write_text("\n".join(lines) + "\n")
            panels.append((ds, data))
    if not panels:
        return None
    png = out / "paper_tables.png"
    script = [f"set terminal pngcairo noenhanced size 1800,{420 * len(panels)} font 'DejaVu Sans,10'",
              f"set output '{png}'",
              f"set multiplot layout {len(panels)},2",
              "set style data histogram", "set style histogram errorbars gap 1 lw 1",
              "set style fill solid 0.8 border -1", "set boxwidth 0.9", "set grid ytics",
              "set xtics rotate by -40 nomirror", "set key top left", "set ylabel '%'", "set yrange [0:*]"]
    for ds, data in panels:
        name = NAMES.get(ds, ds)
        script += [f"set title '{name}: test H@20 and M@20 (mean, std over seeds)'",
                   f"plot '{data}' using 2:3:xtic(1) title 'H@20' lc rgb '#1f77b4', "
                   f"'' using 4:5 title 'M@20' lc rgb '#ff7f0e'",
                   f"set title '{name}: H@20 when the next item is in the session (repeat) or not (explore)'",
                   f"plot '{data}' using 6:7:xtic(1) title 'repeat H@20' lc rgb '#2ca02c', "
                   f"'' using 8:9 title 'explore H@20' lc rgb '#d62728'"]
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, check=True)
    return png


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--datasets", required=True)
    ap.add_argument("--table3", required=True)
    ap.add_argument("--table4", required=True)
    ap.add_argument("--budget", default="")
    ap.add_argument("--no-plot", action="store_true")
    a = ap.parse_args()
    datasets, t3, t4 = a.datasets.split(), a.table3.split(), a.table4.split()
    lines = []
    if a.budget:
        lines += [f"Budget per model and seed: {a.budget} (embsr-tune, objective H@20 + M@20 on validation).", ""]
    l3, m3 = table(a.out, "Table III: every model", datasets, t3)
    l4, m4 = table(a.out, "Table IV: EMBSR's ablations and the Section V variants", datasets, t4)
    print("\n".join(lines + l3 + l4))
    write_summary(a.out, datasets, list(dict.fromkeys(t3 + t4)))
    if not a.no_plot:
        png = plot(a.out, datasets, t3)
        if png:
            print(f"plot: {png}")
    missing = sorted(set(m3 + m4))
    if missing:
        print(f"paper_tables.py: no finished runs for {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
