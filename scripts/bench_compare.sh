#!/usr/bin/env bash
# Two builds side by side on the measured paths, alternating in one run, medians: the training step
# (benchmarks/bench_train_step on real JD sessions, the bench_cpu.sh shape) and the JD loader
# (benchmarks/bench_data on the shipped sample). For checking that a change made nothing slower.
#
#   scripts/bench_compare.sh BASE_BUILD_DIR NEW_BUILD_DIR [--reps 5] [--threads 2]
#
# Both build directories must hold benchmarks/bench_train_step and benchmarks/bench_data, built the
# same way (e.g. EMBSR_NATIVE=ON); a base build: `git worktree add /tmp/base REV` and build it there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base="$1"; new="$2"; shift 2
reps=5
threads=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    *) echo "bench_compare.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
jd="$root/data/jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample"
export OMP_PROC_BIND=false
declare -A step load
for r in $(seq 1 "$reps"); do
  for side in base new; do
    dir="$base"; [[ $side == new ]] && dir="$new"
    s=$(OMP_NUM_THREADS=$threads "$dir/benchmarks/bench_train_step" --batch 512 --items 75160 --max-length 40 --d 100 \
          --steps 4 --jd "$jd" | sed -n 's/^median step \([0-9.]*\) s.*/\1/p')
    l=$(OMP_NUM_THREADS=1 "$dir/benchmarks/bench_data" --repeats 5 --format jd "$jd" | sed -n 's/^  load .*median \([0-9.]*\) s/\1/p')
    step[$side]+="$s "; load[$side]+="$l "
    echo "repetition $r, $side: training step $s s, JD load $l s"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
printf '\n| path | base (median of %d) | new (median of %d) | new / base |\n|---|---:|---:|---:|\n' "$reps" "$reps"
for what in step load; do
  declare -n m="$what"
  b=$(median <<<"${m[base]}"); n=$(median <<<"${m[new]}")
  label="training step, B 512, t <= 40, |V| 75,160, d 100, $threads threads (s)"
  [[ $what == load ]] && label="JD loader, shipped Appliances sample, 1 thread (s)"
  printf '| %s | %s | %s | %.3f |\n' "$label" "$b" "$n" "$(awk -v b="$b" -v n="$n" 'BEGIN {print n / b}')"
done
