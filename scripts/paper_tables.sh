#!/usr/bin/env bash
# The EMBSR paper's Table III (every model of the library) and Table IV (EMBSR's ablations and the
# Section V variants) on your logs: every model tuned by embsr-tune on the validation split with the
# SAME budget (--trials random configurations of its search space, learning rate and L2 included for
# gradient models, each trained up to --epochs epochs at batch --batch, stopping after --patience
# epochs without validation gain; objective H@20 + M@20), the best
# configuration trained again and tested once; that for each seed (the search's and the model's
# own), giving mean +- std. Then scripts/paper_tables.py prints both tables (H@K and M@K for K = 5,
# 10, 20, the repeat/explore split, minutes per tuning) and draws OUT/paper_tables.png.
#
#   scripts/paper_tables.sh [--jobs N] [--trials N] [--epochs N] [--patience N] [--batch N] [--seeds "1 2 3"]
#                           [--table3 "MODELS"] [--table4 "MODELS"] [--datasets "NAMES"]
#                           [--data NAME "LOADER ARGUMENTS"]... [--build DIR] [--out DIR]
#
# Datasets: the three samples under ../shared/data by name (jd_appliances, jd_computers, trivago;
# scripts/sample_args.sh), or your own logs with --data, which takes embsr-train's loader arguments:
#   scripts/paper_tables.sh --datasets "" --data shop "--format csv shop.csv --session-column sid --min-support 5"
# Runs are independent (one thread each, --jobs at a time) and finished runs are not redone, so an
# interrupted run resumes. docs/RESULTS.md says how long the defaults take on the 2-core machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs=2 trials=6 epochs=10 patience=3 batch=32 seeds="1 2 3"
table3="s-pop sknn v-sknn stan vstan narm stamp sr-gnn gc-san bert4rec sgnn-hn rib hup mkm-sr embsr embsr-r"
table4="embsr embsr-ns embsr-ng embsr-nf sgnn-dyadic sgnn-abs-self sgnn-self sgnn-seq-self rnn-self"
datasets="jd_appliances jd_computers trivago"
build="$root/build" out="$root/out/paper-tables"
declare -A custom=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    --trials) trials="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --patience) patience="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --table3) table3="$2"; shift 2 ;;
    --table4) table4="$2"; shift 2 ;;
    --datasets) datasets="$2"; shift 2 ;;
    --data) [[ $# -ge 3 ]] || { echo "paper_tables.sh: --data needs NAME and \"LOADER ARGUMENTS\"" >&2; exit 2; }
            [[ "$2" =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "paper_tables.sh: --data name '$2' must be letters, digits, _ . -" >&2; exit 2; }
            custom["$2"]="$3"; datasets="$datasets $2"; shift 3 ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "paper_tables.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
for n in "$jobs" "$trials" "$epochs" "$patience" "$batch"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "paper_tables.sh: '$n' is not a positive integer" >&2; exit 2; }
done
[[ -n "${datasets// /}" ]] || { echo "paper_tables.sh: no dataset (--datasets or --data)" >&2; exit 2; }
if [[ ! -x "$build/examples/embsr-tune" || ! -x "$build/examples/embsr-train" ]]; then
  "$root/scripts/setup.sh" --build-dir "$build" --target embsr-tune --target embsr-train >/dev/null
fi
shared="$root/../shared/data"
source "$root/scripts/sample_args.sh"
mkdir -p "$out"

# Each dataset's loader arguments, written once (the runs read them back).
for ds in $datasets; do
  if [[ -n "${custom[$ds]+set}" ]]; then
    printf '%s\n' "${custom[$ds]}" > "$out/$ds.args"
  else
    sample_args "$ds" > "$out/$ds.args"
  fi
done
# Every model once, in table order; those with a "seed" option get the run's seed as theirs too.
models=$(printf '%s\n' $table3 $table4 | awk '!seen[$0]++' | tr '\n' ' ')
"$build/examples/embsr-train" --list-models > "$out/models.txt"
for m in $models; do
  grep -qE "^$m +(gradients|counting) " "$out/models.txt" || { echo "paper_tables.sh: unknown model '$m'" >&2; exit 2; }
done

run_one() {
  local ds="$1" model="$2" seed="$3" dir="$out/$1/$2-seed$3"
  [[ -s "$dir/best.json" ]] && return 0
  mkdir -p "$dir"
  local extra=()
  # --list-models: "NAME  gradients|counting  ...", its options on the next line
  if [[ "$(awk -v m="$model" '$1 == m {print $2; exit}' "$out/models.txt")" == gradients ]]; then
    extra+=(--epochs "$epochs" --patience "$patience" --batch "$batch")
  fi
  if awk -v m="$model" '$1 == m {getline; print; exit}' "$out/models.txt" | grep -q ' seed='; then
    extra+=(--option "seed=$seed")
  fi
  local start=$SECONDS
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=1 OMP_PROC_BIND=false "$build/examples/embsr-tune" $(cat "$out/$ds.args") --model "$model" \
    --trials "$trials" --seed "$seed" "${extra[@]}" \
    --threads 1 --out "$dir" > "$dir/log.txt" 2>&1 ||
    { echo "FAILED: $ds $model seed $seed (see $dir/log.txt)" >&2; return 1; }
  echo $((SECONDS - start)) > "$dir/wall_seconds"
  echo "done: $ds $model seed $seed ($((SECONDS - start)) s)"
}
export -f run_one
export out build trials epochs patience batch
start=$SECONDS
for ds in $datasets; do for m in $models; do for s in $seeds; do echo "$ds $m $s"; done; done; done |
  xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1" "$2"'
echo "all runs: $((SECONDS - start)) s with $jobs jobs" | tee "$out/wall.txt"
python3 "$root/scripts/paper_tables.py" "$out" --datasets "$datasets" --table3 "$table3" --table4 "$table4" \
  --budget "trials $trials, up to $epochs epochs (patience $patience), batch $batch, seeds $seeds"
