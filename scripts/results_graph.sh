#!/usr/bin/env bash
# The graph family of issue 15 (SR-GNN, SGNN-HN, GC-SAN, MKM-SR) on the three samples: embsr-train
# --model NAME with each paper's settings (d 100, Adam lr 0.001, L2 1e-5 as weight decay: SR-GNN's,
# which SGNN-HN, GC-SAN and MKM-SR keep), the batch size (the papers' 100, or 32, which EMBSR needed on
# these small samples) chosen per model and sample on the validation split with seed 1, then seeds
# 1-3 at that batch size; up to 30 epochs with early stopping on validation H@20 + M@20 (patience 5),
# next operation given (only MKM-SR reads operations), --baselines (S-POP and the repeat/explore
# split). Prints a Markdown table of test metrics (mean ± std over the seeds).
# Any registered gradient model runs under the same protocol: docs/RESULTS.md's table of the
# paper's Section V variants is --models "embsr sgnn-dyadic sgnn-abs-self sgnn-self sgnn-seq-self rnn-self".
#
#   scripts/results_graph.sh [--jobs N] [--seeds "1 2 3"] [--models "sr-gnn sgnn-hn gc-san mkm-sr"]
#                            [--datasets "jd_appliances jd_computers trivago"] [--build DIR]
#
# Needs ../shared/data beside the repository. Finished runs are not redone.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs=2; seeds="1 2 3"; models="sr-gnn sgnn-hn gc-san mkm-sr"; datasets="jd_appliances jd_computers trivago"; build="$root/build"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --datasets) datasets="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    *) echo "results_graph.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -x "$build/examples/embsr-train" ]] || "$root/scripts/setup.sh" --build-dir "$build" --target embsr-train >/dev/null
export shared="$root/../shared/data" out="$root/out/results-graph" build
mkdir -p "$out"
source "$root/scripts/sample_args.sh"
run_one() {
  local model="$1" ds="$2" batch="$3" seed="$4" dir="$out/$1/$2/batch$3-seed$4"
  [[ -s "$dir/metrics.json" ]] && return 0
  mkdir -p "$dir"
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=1 OMP_PROC_BIND=false "$build/examples/embsr-train" $(sample_args "$ds") --model "$model" \
    --batch "$batch" --lr 0.001 --weight-decay 1e-5 --d 100 --epochs 30 --patience 5 --seed "$seed" --threads 1 \
    --baselines --no-progress --output "$dir" > "$dir/log.txt" 2>&1 || { echo "FAILED: $model $ds $batch $seed" >&2; return 1; }
  echo "done: $model $ds batch $batch seed $seed"
}
export -f run_one sample_args
# 1. The batch size on validation (seed 1).
for m in $models; do for ds in $datasets; do for b in 32 100; do echo "$m $ds $b 1"; done; done; done |
  xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1" "$2" "$3"'
chosen() {  # the batch size with the better best validation H@20 + M@20 (seed 1)
  python3 - "$out/$1/$2" <<'PY'
import json, sys, pathlib
d = pathlib.Path(sys.argv[1])
def score(b):
    m = json.load(open(d / f"batch{b}-seed1" / "metrics.json"))["best_valid"]
    return m["H@20"] + m["M@20"]
print(max((32, 100), key=score))
PY
}
# 2. Every seed at the chosen batch size.
for m in $models; do for ds in $datasets; do
  b=$(chosen "$m" "$ds"); echo "$b" > "$out/$m/$ds/chosen_batch"
  for seed in $seeds; do echo "$m $ds $b $seed"; done
done; done | xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1" "$2" "$3"'
python3 - "$out" "$datasets" "$models" <<'PY'
import json, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
def fmt(xs):
    xs = [100 * x for x in xs]
    return f"{xs[0]:.2f}" if len(xs) == 1 else f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs):.2f}"
print("| data | model | batch | seeds | H@10 | H@20 | M@10 | M@20 | NDCG@20 | repeat H@20 | explore H@20 | best epoch |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for ds in sys.argv[2].split():
    for model in sys.argv[3].split():
        d = out / model / ds
        if not (d / "chosen_batch").exists(): continue
        b = (d / "chosen_batch").read_text().strip()
        runs = [json.load(open(p)) for p in sorted(d.glob(f"batch{b}-seed*/metrics.json"))]
        t = lambda k, part="test": fmt([r[part][k] for r in runs])
        print(f"| {ds} | {model} | {b} | {len(runs)} | {t('H@10')} | {t('H@20')} | {t('M@10')} | {t('M@20')} | {t('NDCG@20')} | "
              f"{t('H@20', 'test_repeat')} | {t('H@20', 'test_explore')} | {statistics.median(r['best_epoch'] for r in runs)} |")
PY
