#!/usr/bin/env bash
# scripts/paper_tables.sh end to end on a log given with --data (the repository's JD Appliances
# sample), on a tiny budget: both tables print a row per model and seed count, summary.csv has every
# model, the plot is a PNG (when gnuplot is there), an interrupted run resumes without redoing
# finished runs, and bad arguments are errors that say so.
#   paper_tables_workflow.sh BUILD_DIR REPO_DATA_DIR SCRATCH_DIR MODELS...
set -euo pipefail
build="$1"; data="$2"; work="$3"; shift 3
models="$*"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rm -rf "$work"; mkdir -p "$work"
fail() { echo "paper tables workflow: $*" >&2; exit 1; }
args="--format jd $data/jd_appliances/HUP_Data/JD_Applicances_sample $data/jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample --min-support 5 --max-length 40"
run() {
  "$root/scripts/paper_tables.sh" --build "$build" --out "$work/out" --datasets "" --data jd "$args" \
    --jobs 2 --trials 1 --epochs 1 --batch 256 --seeds "1 2" --table3 "s-pop $models" --table4 "embsr-ns" "$@"
}
run > "$work/tables.md" 2> "$work/err.txt" || fail "failed: $(tail -5 "$work/err.txt")"
grep -q "### Table III" "$work/tables.md" || fail "no Table III"
grep -q "### Table IV" "$work/tables.md" || fail "no Table IV"
for m in s-pop $models embsr-ns; do
  grep -qE "^\| $m \| 2 \| [0-9]" "$work/tables.md" || fail "no row with 2 seeds for $m: $(cat "$work/tables.md")"
  grep -q "^jd,$m,2,H@20," "$work/out/summary.csv" || fail "summary.csv lacks $m"
done
if command -v gnuplot >/dev/null; then
  head -c 8 "$work/out/paper_tables.png" | od -An -c | grep -q "P   N   G" || fail "paper_tables.png is not a PNG"
fi
# Finished runs are kept: a second run redoes nothing.
run > "$work/again.md" 2>/dev/null || fail "the second run failed"
grep -q "^done:" "$work/again.md" && fail "the second run redid finished runs"
# Errors that say what is wrong.
"$root/scripts/paper_tables.sh" --build "$build" --out "$work/bad" --datasets "" --data jd "$args" --table3 "no-such-model" \
  --table4 "" > /dev/null 2> "$work/bad.txt" && fail "an unknown model was accepted"
grep -q "unknown model 'no-such-model'" "$work/bad.txt" || fail "unclear error: $(cat "$work/bad.txt")"
"$root/scripts/paper_tables.sh" --build "$build" --trials 0 > /dev/null 2> "$work/bad.txt" && fail "--trials 0 was accepted"
grep -q "not a positive integer" "$work/bad.txt" || fail "unclear error: $(cat "$work/bad.txt")"
echo "paper tables workflow: OK"
