#!/usr/bin/env bash
# embsr-tune: a counting model with nothing to tune runs one trial; EMBSR's random search writes one
# row per trial, reproduces its trials from the seed, never samples what the user fixed (and draws
# the same values for the rest), tests the best configuration once and saves it for
# embsr-recommend; bad input fails with a message.
#   tune_workflow.sh BUILD_EXAMPLES_DIR REPO_DATA_DIR SCRATCH_DIR
set -euo pipefail
bin="$1"; data="$2"; work="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rm -rf "$work"; mkdir -p "$work"
export OMP_PROC_BIND=false OMP_NUM_THREADS=2
fail() { echo "tune workflow: $*" >&2; exit 1; }
files=("$data/jd_appliances/HUP_Data/JD_Applicances_sample" "$data/jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample")
common=(--format jd "${files[@]}" --min-support 5 --max-length 40)
rows() { echo $(( $(wc -l < "$1") - 1 )); }   # data rows of a CSV
without_seconds() { sed 's/,[^,]*$//' "$1"; }  # seconds is the last column

# S-POP: nothing to tune, one trial whatever --trials says; --epochs does not apply (no error).
"$bin/embsr-tune" "${common[@]}" --model s-pop --trials 2 --epochs 1 --out "$work/s-pop" > "$work/s-pop.log"
grep -q "nothing to tune: one trial instead of 2" "$work/s-pop.log" || fail "s-pop: no note on the single trial"
grep -q "^trial 1/1 " "$work/s-pop.log" || fail "s-pop: no progress line"
for f in trials.csv trials.json best.json; do test -s "$work/s-pop/$f" || fail "s-pop: missing $f"; done
test "$(rows "$work/s-pop/trials.csv")" -eq 1 || fail "s-pop: $(rows "$work/s-pop/trials.csv") trials, expected 1"
head -1 "$work/s-pop/trials.csv" | grep -q '^trial,status,valid_H@5,.*,objective,seconds$' || fail "s-pop: header $(head -1 "$work/s-pop/trials.csv")"
grep -q '"test_explore"' "$work/s-pop/best.json" || fail "s-pop: best.json has no repeat/explore split"

# EMBSR: 2 trials of 1 epoch, twice with the same seed, then with d and lr fixed.
tune_embsr() {  # NAME EXTRA...
  local name="$1"; shift
  "$bin/embsr-tune" "${common[@]}" --model embsr --trials 2 --epochs 1 --seed 7 --out "$work/$name" "$@" > "$work/$name.log"
  for f in trials.csv trials.json best.json; do test -s "$work/$name/$f" || fail "$name: missing $f"; done
  test "$(rows "$work/$name/trials.csv")" -eq 2 || fail "$name: $(rows "$work/$name/trials.csv") trials, expected 2"
  grep -q "^trial 2/2 .* valid h20+m20 .* best .* s$" "$work/$name.log" || fail "$name: no progress line for trial 2"
  grep -q '"H@20"' "$work/$name/best.json" || fail "$name: best.json has no metrics"
  grep -q '"test_repeat"' "$work/$name/best.json" || fail "$name: best.json has no repeat/explore split"
}
tune_embsr a --checkpoint "$work/a/best.ckpt"
tune_embsr b
head -1 "$work/a/trials.csv" | grep -q '^trial,d,gnn_steps,dropout,w_k,lr,weight_decay,status,' ||
  fail "embsr: header $(head -1 "$work/a/trials.csv")"
grep -qE '^  lr +number +0.0001 \.\. 0.01 \(log-uniform\).*\[training\]' "$work/a.log" ||
  fail "embsr: the training search space is not shown"
diff <(without_seconds "$work/a/trials.csv") <(without_seconds "$work/b/trials.csv") > "$work/seed.diff" ||
  fail "the same seed gave other trials: $(cat "$work/seed.diff")"

tune_embsr fixed --option d=24 --lr 0.003
header="$(head -1 "$work/fixed/trials.csv")"
[[ "$header" == trial,gnn_steps,dropout,w_k,weight_decay,status,* ]] || fail "fixed d and lr are sampled: $header"
# The other dimensions draw the same values as in the unfixed search.
diff <(cut -d, -f1,3,4,5,7 "$work/a/trials.csv") <(cut -d, -f1-5 "$work/fixed/trials.csv") > "$work/fixed.diff" ||
  fail "fixing d and lr changed the other draws: $(cat "$work/fixed.diff")"
tr -d ' \n' < "$work/fixed/best.json" | grep -q '"d":24,' || fail "best.json does not hold the fixed d"
tr -d ' \n' < "$work/fixed/best.json" | grep -q '"lr":0.003,' || fail "best.json does not hold the fixed lr"
tr -d ' \n' < "$work/fixed/trials.json" | grep -q '"fixed":{"d":24,"lr":0.003}' || fail "trials.json does not list the fixed values"

# The best model serves.
session='{"session": [{"item": "1169504", "operation": "SearchList2Product"}, {"item": "3170510", "operation": "Cart"}]}'
if [[ -x "$bin/embsr-recommend" ]]; then
  printf '%s\n' "$session" | "$bin/embsr-recommend" --model "$work/a/best.ckpt" --k 3 > "$work/a.jsonl"
  grep -q '"items":\["' "$work/a.jsonl" || fail "the tuned checkpoint does not serve: $(cat "$work/a.jsonl")"
fi

# A neighbourhood model: its declared space is searched (k, sample_size, the lambdas, remind), the
# best index is rebuilt, tested once and served from the checkpoint.
"$bin/embsr-tune" "${common[@]}" --model vstan --trials 3 --seed 3 --out "$work/vstan" --checkpoint "$work/vstan/best.ckpt" > "$work/vstan.log"
test "$(rows "$work/vstan/trials.csv")" -eq 3 || fail "vstan: $(rows "$work/vstan/trials.csv") trials, expected 3"
head -1 "$work/vstan/trials.csv" | grep -q '^trial,k,sample_size,lambda_spw,lambda_snh,lambda_inh,lambda_ipw,lambda_idf,remind,status,' ||
  fail "vstan: header $(head -1 "$work/vstan/trials.csv")"
grep -q '"test_repeat"' "$work/vstan/best.json" || fail "vstan: best.json has no repeat/explore split"
if [[ -x "$bin/embsr-recommend" ]]; then
  printf '%s\n' "$session" | "$bin/embsr-recommend" --model "$work/vstan/best.ckpt" --k 3 > "$work/vstan.jsonl"
  grep -q '"items":\["' "$work/vstan.jsonl" || fail "the tuned vstan does not serve: $(cat "$work/vstan.jsonl")"
fi

# Bad input: a message and a non-zero exit, before any data is read where possible.
expect() { "$here/expect_failure.sh" "$@" > "$work/expect.log" 2>&1 || { cat "$work/expect.log"; fail "expected failure: $*"; }; }
expect "unknown model 'no-such-model'.*known: pop, s-pop, embsr" "$bin/embsr-tune" "${common[@]}" --model no-such-model
expect "trials must be >= 1" "$bin/embsr-tune" "${common[@]}" --trials 0
expect "metric 'h7'.*e.g. h20\+m20" "$bin/embsr-tune" "${common[@]}" --metric h7
expect "metric 'recall'" "$bin/embsr-tune" "${common[@]}" --metric recall
expect "does not take option 'neighbours'" "$bin/embsr-tune" "${common[@]}" --option neighbours=5
expect "option 'd': 'x' is not an integer" "$bin/embsr-tune" "${common[@]}" --option d=x --out "$work/bad"
expect "--option lr: a training hyper-parameter, fix it with --lr" "$bin/embsr-tune" "${common[@]}" --option lr=0.1
expect "model 's-pop' learns by counting.*--lr" "$bin/embsr-tune" "${common[@]}" --model s-pop --lr 0.1
expect "no-such-dir.*(No such file|cannot)" "$bin/embsr-tune" "${common[@]}" --checkpoint "$work/no-such-dir/best.ckpt" --out "$work/bad"
echo "tune workflow OK"
