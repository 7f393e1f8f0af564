#!/usr/bin/env bash
# Reproduces the accuracy table of docs/RESULTS.md: EMBSR on the JD Appliances, JD Computers and
# trivago samples, next operation given (the paper's protocol) and learned, seeds 1..3, plus the
# POP and S-POP baselines; then prints mean and standard deviation as a Markdown table.
#
#   scripts/results.sh [--jobs N] [--seeds "1 2 3"] [--datasets "jd_appliances jd_computers trivago"]
#
# Needs ../shared/data beside the repository (JD Computers and trivago are not shipped).
# Runs are independent (one thread each, --jobs at a time); finished runs are not redone.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs=2
seeds="1 2 3"
datasets="jd_appliances jd_computers trivago"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --datasets) datasets="$2"; shift 2 ;;
    *) echo "results.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
"$root/scripts/setup.sh" --build-dir "$root/build" --target embsr-train >/dev/null
shared="$root/../shared/data"
out="$root/out/results"
mkdir -p "$out"

# dataset -> loader arguments (scripts/sample_args.sh) and the paper's per-dataset training settings
source "$root/scripts/sample_args.sh"
args_for() {
  local sample
  sample="$(sample_args "$1")" || exit 2
  case "$1" in
    jd_appliances) echo "$sample --lr 0.001 --dropout 0.2" ;;
    jd_computers) echo "$sample --lr 0.003 --dropout 0.1" ;;
    trivago) echo "$sample --lr 0.001 --dropout 0.5" ;;
  esac
}

runs=()
for ds in $datasets; do
  for mode in given learned; do
    for seed in $seeds; do
      dir="$out/$ds-$mode-seed$seed"
      [[ -f "$dir/metrics.json" ]] && continue
      runs+=("$root/build/examples/embsr-train $(args_for "$ds") --next-op $mode --seed $seed --batch 512 --epochs 50 --patience 10 --threads 1 --no-progress --baselines --output $dir > $dir.log 2>&1")
    done
  done
done
if [[ ${#runs[@]} -gt 0 ]]; then
  printf '%s\n' "${runs[@]}" | OMP_PROC_BIND=false xargs -P "$jobs" -I{} bash -c '{}'
fi
/usr/bin/python3 "$root/scripts/summarize_results.py" "$out"
