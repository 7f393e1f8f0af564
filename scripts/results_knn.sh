#!/usr/bin/env bash
# Reproduces the neighbourhood-model table of docs/RESULTS.md (issue 13): SKNN, V-SKNN, STAN, VSTAN
# and vstan-ops, each tuned by embsr-tune on the validation split with the same budget (--trials
# random configurations, objective H@20 + M@20), the best configuration tested once; three search
# seeds give mean +- std. S-POP (nothing to tune) is run beside them. Then prints a Markdown table.
#
#   scripts/results_knn.sh [--jobs N] [--trials N] [--seeds "1 2 3"] [--models "sknn ..."]
#                          [--datasets "jd_appliances jd_computers trivago"] [--build DIR]
#
# Needs ../shared/data beside the repository (JD Computers and trivago are not shipped).
# Runs are independent (one thread each, --jobs at a time); finished runs are not redone.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs=2
trials=50
seeds="1 2 3"
models="sknn v-sknn stan vstan vstan-ops"
datasets="jd_appliances jd_computers trivago"
build="$root/build"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    --trials) trials="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --datasets) datasets="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    *) echo "results_knn.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [[ ! -x "$build/examples/embsr-tune" ]]; then
  "$root/scripts/setup.sh" --build-dir "$build" --target embsr-tune >/dev/null
fi
shared="$root/../shared/data"
out="$root/out/results-knn"
mkdir -p "$out"

# The loader arguments of every sample (the paper's preprocessing, support 5).
source "$root/scripts/sample_args.sh"

runs=()
for ds in $datasets; do
  runs+=("$ds s-pop 1")
  for model in $models; do
    for seed in $seeds; do runs+=("$ds $model $seed"); done
  done
done

run_one() {
  local ds="$1" model="$2" seed="$3"
  local dir="$out/$ds/$model-seed$seed"
  [[ -s "$dir/best.json" ]] && return 0
  mkdir -p "$dir"
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=1 OMP_PROC_BIND=false "$build/examples/embsr-tune" $(sample_args "$ds") --model "$model" \
    --trials "$trials" --seed "$seed" --threads 1 --out "$dir" > "$dir/log.txt" 2>&1 ||
    { echo "FAILED: $ds $model seed $seed (see $dir/log.txt)" >&2; return 1; }
  echo "done: $ds $model seed $seed"
}
export -f run_one sample_args
export out build shared trials
printf '%s\n' "${runs[@]}" | xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1" "$2"'

# The operations alone: vstan-ops with every VSTAN option fixed to VSTAN's best of the same search
# seed, only op_power searched ("vstan+ops" in the table). op_power = 0 is VSTAN exactly, so this
# isolates what the operation weights add.
ops_only() {
  local ds="$1" seed="$2"
  local best="$out/$ds/vstan-seed$seed/best.json" dir="$out/$ds/vstan+ops-seed$seed"
  [[ -s "$best" && ! -s "$dir/best.json" ]] || return 0
  mkdir -p "$dir"
  local fixed
  fixed=$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["values"]; print(" ".join("--option %s=%s" % (k, str(x).lower() if isinstance(x, bool) else x) for k, x in v.items()))' "$best")
  # shellcheck disable=SC2046,SC2086
  OMP_NUM_THREADS=1 OMP_PROC_BIND=false "$build/examples/embsr-tune" $(sample_args "$ds") --model vstan-ops \
    --trials 20 --seed "$seed" --threads 1 $fixed --out "$dir" > "$dir/log.txt" 2>&1 ||
    { echo "FAILED: $ds vstan+ops seed $seed (see $dir/log.txt)" >&2; return 1; }
  echo "done: $ds vstan+ops seed $seed"
}
if [[ " $models " == *" vstan "* ]]; then
  for ds in $datasets; do for seed in $seeds; do ops_only "$ds" "$seed"; done; done
fi

python3 - "$out" $datasets <<'PY'
import json, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
names = {"jd_appliances": "JD Appliances", "jd_computers": "JD Computers", "trivago": "trivago"}
def fmt(xs):
    xs = [100 * x for x in xs]
    return f"{xs[0]:.2f}" if len(xs) == 1 else f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs):.2f}"
print("| data | model | seeds | H@5 | H@10 | H@20 | M@5 | M@10 | M@20 | repeat H@20 | explore H@20 | s per trial |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for ds in sys.argv[2:]:
    for model_dir in sorted({p.parent.name.rsplit("-seed", 1)[0] for p in (out / ds).glob("*/best.json")},
                            key=lambda m: ["s-pop", "sknn", "v-sknn", "stan", "vstan", "vstan-ops", "vstan+ops"].index(m)
                            if m in ["s-pop", "sknn", "v-sknn", "stan", "vstan", "vstan-ops", "vstan+ops"] else 99):
        bests = [json.load(open(p)) for p in sorted((out / ds).glob(f"{model_dir}-seed*/best.json"))]
        t = lambda key, part="test": fmt([b[part][key] for b in bests])
        # seconds per trial (fit on train + evaluation on validation), median over every trial
        secs = [float(line.rsplit(",", 1)[1]) for p in sorted((out / ds).glob(f"{model_dir}-seed*/trials.csv"))
                for line in open(p).read().splitlines()[1:]]
        print(f"| {names.get(ds, ds)} | {model_dir} | {len(bests)} | {t('H@5')} | {t('H@10')} | {t('H@20')} | "
              f"{t('M@5')} | {t('M@10')} | {t('M@20')} | {t('H@20', 'test_repeat')} | {t('H@20', 'test_explore')} | "
              f"{statistics.median(secs):.2f} |")
PY
