#!/usr/bin/env bash
# Data-parallel training on MPI through embsr-train (issue 17): N ranks compute what one process does.
#   mpi_training.sh BUILD_EXAMPLES_DIR REPO_DATA_DIR SCRATCH_DIR MPIEXEC
#
#  1. EMBSR (dropout 0: its masks are drawn per row of the batch, so a share of the batch draws
#     others) and BERT4Rec (its loss is a mean over masked positions, not sessions: the weighting of
#     each rank's gradients) with a global batch of 63 (uneven shares) for 2 epochs (22 steps):
#     2 ranks and 3 ranks against 1 process. Every step's loss to 1e-5 relative, the parameters of
#     last.ckpt to 1e-5 (relative norm; compare_runs.py says why), the test metrics to 1 example in 200.
#  2. Resume with another N: 1 epoch on 2 ranks, the second on 1 process, equals 2 epochs on 1.
#  3. A counting model (s-pop) on 2 ranks: the sharded evaluation gives one process's metrics exactly.
#  4. Failure stops the job, never hangs: rank 0 alone fails (its output directory cannot be made)
#     while rank 1 goes on into the first collective; and a rank killed mid-training (SIGKILL).
# Every mpirun runs under `timeout`: a hang fails the test instead of blocking CI.
set -euo pipefail
bin="$1"; data="$2"; work="$3"; mpiexec="$4"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rm -rf "$work"; mkdir -p "$work"
export OMP_PROC_BIND=false OMP_NUM_THREADS=1
# Open MPI refuses root unless told (CI runs as root) and more ranks than cores unless oversubscribed.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
launch=("$mpiexec")
if "$mpiexec" --version 2>&1 | grep -q "Open MPI"; then launch+=(--oversubscribe); fi
python=/usr/bin/python3; [[ -x $python ]] || python=python3
compare() { "$python" "$here/compare_runs.py" "$@"; }
fail() { echo "mpi training: $*" >&2; exit 1; }

jd="$data/jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample"
common=(--format jd "$jd" --min-support 5 --max-length 40 --no-progress)
neural=(--batch 63 --patience 5)
train() {  # train NAME RANKS [embsr-train arguments...]
  local name="$1" ranks="$2"; shift 2
  local cmd=("$bin/embsr-train" "${common[@]}" --output "$work/$name" --loss-log "$work/$name.loss.csv" "$@")
  if [[ $ranks -gt 1 ]]; then cmd=("${launch[@]}" -np "$ranks" "${cmd[@]}"); fi
  local status=0
  timeout 300 "${cmd[@]}" > "$work/$name.log" 2> "$work/$name.err" || status=$?
  [[ $status -eq 0 ]] || { cat "$work/$name.err" >&2; fail "$name: exit $status"; }
}

# 1. equality with one process
for model in embsr bert4rec; do
  # BERT4Rec's key biases b_K have an exact gradient of 0 (compare_runs.py says why): not compared.
  case "$model" in embsr) options=(--model embsr --d 16 --dropout 0 "${neural[@]}"); ignore="" ;;
                   bert4rec) options=(--model bert4rec --d 16 --option num_heads=2 "${neural[@]}"); ignore='trm[0-9]+\.b_K' ;; esac
  train "$model-1" 1 "${options[@]}" --epochs 2
  for ranks in 2 3; do
    train "$model-$ranks" "$ranks" "${options[@]}" --epochs 2
    grep -q "data-parallel: MPI .*, $ranks ranks" "$work/$model-$ranks.log" || fail "$model-$ranks: no data-parallel start-up line"
    grep -q "summed every step in host memory" "$work/$model-$ranks.log" || fail "$model-$ranks: does not say how gradients travel"
    compare losses "$work/$model-1.loss.csv" "$work/$model-$ranks.loss.csv" --rtol 1e-5 --min-steps 20
    compare params "$work/$model-1/last.ckpt" "$work/$model-$ranks/last.ckpt" --rtol 1e-5 --ignore "$ignore"
    compare metrics "$work/$model-1/metrics.json" "$work/$model-$ranks/metrics.json" --atol 0.005
  done
done
# Only rank 0 wrote: one process's files, no other rank's.
test "$(grep -c '^epoch' "$work/embsr-2.log")" -eq 2 || fail "rank 0's log should list 2 epochs once"

# 2. resume with another number of ranks
train resume-a 2 --model embsr --d 16 --dropout 0 "${neural[@]}" --epochs 1
train resume-b 1 --model embsr --d 16 --dropout 0 "${neural[@]}" --epochs 2 --resume "$work/resume-a/last.ckpt"
compare losses "$work/embsr-1.loss.csv" "$work/resume-b.loss.csv" --rtol 1e-5 --min-steps 10
compare params "$work/embsr-1/last.ckpt" "$work/resume-b/last.ckpt" --rtol 1e-5

# 3. a counting model: sharded evaluation, identical metrics
train spop-1 1 --model s-pop
train spop-2 2 --model s-pop
grep -q "every rank fits the model" "$work/spop-2.log" || fail "s-pop on 2 ranks: no start-up line"
compare metrics "$work/spop-1/metrics.json" "$work/spop-2/metrics.json" --atol 0

# 4a. rank 0 fails alone: the job stops with its message (MPI_Abort), rank 1 does not wait forever
touch "$work/not-a-directory"
set +e
timeout 120 "${launch[@]}" -np 2 "$bin/embsr-train" "${common[@]}" --model embsr --d 16 --epochs 50 \
  --output "$work/not-a-directory/run" > "$work/fail-root.log" 2> "$work/fail-root.err"
status=$?
set -e
[[ $status -ne 124 ]] || fail "rank 0 failed alone and the job hung (killed by timeout)"
[[ $status -ne 0 ]] || fail "rank 0 failed alone and the job exited 0"
grep -q "embsr-train: rank 0 of 2: cannot create output directory" "$work/fail-root.err" || { cat "$work/fail-root.err" >&2; fail "no message of the failing rank"; }
grep -q "stopping all 2 ranks" "$work/fail-root.err" || fail "the failing rank did not say it stops the job"

# 4b. a rank killed in the middle of training: mpirun stops the others and says so
timeout 120 "${launch[@]}" -np 2 "$bin/embsr-train" "${common[@]}" --model embsr --d 32 --batch 8 --epochs 1000 \
  --patience 1000 --output "$work/killed" --loss-log "$work/killed.loss.csv" > "$work/killed.log" 2> "$work/killed.err" &
job=$!
for _ in $(seq 1 300); do  # until the first epoch is done (the loss log, rewritten per epoch, has steps)
  [[ $({ wc -l < "$work/killed.loss.csv"; } 2>/dev/null || echo 0) -gt 2 ]] && break
  sleep 0.2
done
[[ $(wc -l < "$work/killed.loss.csv") -gt 2 ]] || { kill "$job" 2>/dev/null; fail "the job to kill did not finish an epoch in 60 s"; }
victim=""
for _ in $(seq 1 50); do
  victim=$(pgrep -f -- "--output $work/killed " | while read -r pid; do
             [[ "$(cat /proc/$pid/comm 2>/dev/null)" == embsr-train ]] && echo "$pid"; done | tail -n 1)
  [[ -n "$victim" ]] && break
  sleep 0.2
done
[[ -n "$victim" ]] || { kill "$job" 2>/dev/null; fail "no rank of the job found to kill"; }
kill -9 "$victim"
set +e
wait "$job"
status=$?
set -e
[[ $status -ne 124 ]] || fail "a rank was killed and the job hung (killed by timeout)"
[[ $status -ne 0 ]] || fail "a rank was killed and the job exited 0"
grep -qiE "signal 9|killed" "$work/killed.err" "$work/killed.log" || { cat "$work/killed.err" >&2; fail "mpirun did not say a rank was killed"; }
echo "mpi training: 2 and 3 ranks equal 1 process (EMBSR, BERT4Rec), resume across N, sharded evaluation, failures stop the job"
