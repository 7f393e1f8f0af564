#!/usr/bin/env bash
# EMBSR-R (issue 14) on the three samples: embsr-train --model embsr-r (the repeat/explore mixture)
# with the small-data settings chosen on each sample's validation split (settings_for below: d 100,
# dropout 0.5, up to 40 epochs, early stopping on validation H@20 + M@20 with patience 10; batch,
# lr and weight decay per sample), next operation given and learned, seeds 1-3, with --baselines
# (S-POP and the repeat/explore split). Prints a Markdown table.
#
#   scripts/results_repeat.sh [--jobs N] [--seeds "1 2 3"] [--modes "given learned"]
#                             [--datasets "jd_appliances jd_computers trivago"] [--build DIR]
#
# Needs ../shared/data beside the repository. Finished runs are not redone.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs=2; seeds="1 2 3"; modes="given learned"; datasets="jd_appliances jd_computers trivago"; build="$root/build"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --modes) modes="$2"; shift 2 ;;
    --datasets) datasets="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    *) echo "results_repeat.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -x "$build/examples/embsr-train" ]] || "$root/scripts/setup.sh" --build-dir "$build" --target embsr-train >/dev/null
export shared="$root/../shared/data" out="$root/out/results-repeat" build
mkdir -p "$out"
source "$root/scripts/sample_args.sh"
# The settings that measured best on each sample's validation split (seed 1, next operation given;
# docs/RESULTS.md, "EMBSR-R").
settings_for() {
  case "$1" in
    jd_appliances) echo "--batch 32 --lr 0.001" ;;
    jd_computers) echo "--batch 32 --lr 0.001 --weight-decay 1e-4" ;;
    trivago) echo "--batch 64 --lr 0.001" ;;
  esac
}
run_one() {
  local ds="$1" mode="$2" seed="$3" dir="$out/$1/$2-seed$3"
  [[ -s "$dir/metrics.json" ]] && return 0
  mkdir -p "$dir"
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=1 OMP_PROC_BIND=false "$build/examples/embsr-train" $(sample_args "$ds") --model embsr-r --next-op "$mode" \
    $(settings_for "$ds") --d 100 --dropout 0.5 --epochs 40 --patience 10 --seed "$seed" --threads 1 --baselines \
    --no-progress --output "$dir" > "$dir/log.txt" 2>&1 || { echo "FAILED: $ds $mode $seed" >&2; return 1; }
  echo "done: $ds $mode seed $seed"
}
export -f run_one sample_args settings_for
for ds in $datasets; do for mode in $modes; do for seed in $seeds; do echo "$ds $mode $seed"; done; done; done |
  xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1" "$2"'
python3 - "$out" $datasets <<'PY'
import json, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
def fmt(xs):
    xs = [100 * x for x in xs]
    return f"{xs[0]:.2f}" if len(xs) == 1 else f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs):.2f}"
print("| data | next op | seeds | H@5 | H@10 | H@20 | M@5 | M@10 | M@20 | NDCG@20 | repeat H@20 | explore H@20 | best epoch |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for ds in sys.argv[2:]:
    for mode in ("given", "learned"):
        runs = [json.load(open(p)) for p in sorted((out / ds).glob(f"{mode}-seed*/metrics.json"))]
        if not runs: continue
        t = lambda k, part="test": fmt([r[part][k] for r in runs])
        print(f"| {ds} | {mode} | {len(runs)} | {t('H@5')} | {t('H@10')} | {t('H@20')} | {t('M@5')} | {t('M@10')} | {t('M@20')} | "
              f"{t('NDCG@20')} | {t('H@20', 'test_repeat')} | {t('H@20', 'test_explore')} | "
              f"{statistics.median(r['best_epoch'] for r in runs)} |")
PY
