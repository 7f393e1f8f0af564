#!/usr/bin/env bash
# Faults around embsr-train's outputs and embsr-recommend's model (issue 11):
#  1. a crash (SIGKILL, injected by strace) at every rename and every fsync of a training run; the
#     resumed run must end where the uninterrupted one ends: same test metrics, byte-identical
#     best.ckpt, and no temporary file left behind;
#  2. a full disk (writes past `ulimit -f` fail with EFBIG once SIGXFSZ is ignored), an output
#     path that is a file, a metrics.json that cannot be replaced, standard output on /dev/full:
#     each a non-zero exit naming the path and the reason;
#  3. checkpoints with hostile contents behind a valid checksum: refused at once, in bounded memory
#     (under `ulimit -v`), by embsr-recommend and by embsr-train --resume.
#   checkpoint_faults.sh BUILD_EXAMPLES_DIR REPO_DATA_DIR SCRATCH_DIR
set -euo pipefail
bin="$1"; data="$2"; work="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rm -rf "$work"; mkdir -p "$work"
# One thread: the resumed run must be bit-identical to the uninterrupted one.
export OMP_PROC_BIND=false OMP_NUM_THREADS=1
file="$data/jd_appliances/HUP_Data/JD_Applicances_sample"
train=("$bin/embsr-train" --format jd "$file" --min-support 20 --max-length 10 --d 4 --epochs 3 --batch 256
       --no-progress)
fail() { echo "checkpoint_faults: $*" >&2; exit 1; }
test_metrics() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["test"], sort_keys=True))' "$1"; }

command -v strace >/dev/null || fail "strace is not installed (scripts/setup.sh installs it)"

# ---- 1. crash at every rename and fsync, then resume ---------------------------------------------
"${train[@]}" --output "$work/reference" > "$work/reference.log"
reference_metrics="$(test_metrics "$work/reference/metrics.json")"
strace -f -qq -o "$work/calls.txt" -e trace=rename,renameat,renameat2,fsync,fdatasync "${train[@]}" --output "$work/count" >/dev/null
renames=$(grep -cE '^[0-9]+ +rename' "$work/calls.txt" || true)
fsyncs=$(grep -cE '^[0-9]+ +f(data)?sync' "$work/calls.txt" || true)
[[ $renames -ge 6 && $fsyncs -ge 6 ]] || fail "expected the run to rename and fsync its outputs (renames $renames, fsyncs $fsyncs)"
echo "an uninterrupted run renames $renames times and fsyncs $fsyncs times; crashing at each"
crash_and_resume() {  # $1: syscall class, $2: which call (1-based)
  local out="$work/crash-$1-$2"
  local calls="rename,renameat,renameat2"; [[ $1 == fsync ]] && calls="fsync,fdatasync"
  set +e
  strace -f -qq -o /dev/null -e trace="$calls" -e inject="$calls:signal=KILL:when=$2" \
    "${train[@]}" --output "$out" > "$out.log" 2>&1
  local rc=$?
  set -e
  [[ $rc -ne 0 ]] || fail "$1 #$2: the injected SIGKILL did not stop the run"
  if [[ -f "$out/last.ckpt" ]]; then
    "${train[@]}" --output "$out" --resume "$out/last.ckpt" >> "$out.log" 2>&1 || { cat "$out.log"; fail "$1 #$2: resume failed"; }
  else
    "${train[@]}" --output "$out" >> "$out.log" 2>&1 || { cat "$out.log"; fail "$1 #$2: restart failed"; }
  fi
  [[ "$(test_metrics "$out/metrics.json")" == "$reference_metrics" ]] || fail "$1 #$2: test metrics differ from the uninterrupted run"
  cmp -s "$out/best.ckpt" "$work/reference/best.ckpt" || fail "$1 #$2: best.ckpt differs from the uninterrupted run's"
  if compgen -G "$out/*.tmp.*" > /dev/null; then fail "$1 #$2: temporary files left: $(ls "$out")"; fi
  rm -rf "$out" "$out.log"
}
for ((n = 1; n <= renames; ++n)); do crash_and_resume rename "$n"; done
for ((n = 1; n <= fsyncs; ++n)); do crash_and_resume fsync "$n"; done
echo "crash at each of $renames renames and $fsyncs fsyncs: resumed runs match the uninterrupted one"

# ---- 2. write failures ---------------------------------------------------------------------------
# A full disk: past 8 KiB every write fails with EFBIG (SIGXFSZ ignored), as with ENOSPC.
set +e
(ulimit -f 8; trap '' XFSZ; exec "${train[@]}" --output "$work/full") > "$work/full.log" 2>&1
rc=$?
set -e
[[ $rc -ne 0 && $rc -lt 128 ]] || { cat "$work/full.log"; fail "disk full: exit $rc, expected an error exit"; }
grep -Eq "cannot write '.*/full/(last|best)\.ckpt'.*File too large" "$work/full.log" || { cat "$work/full.log"; fail "disk full: no message naming the checkpoint"; }
[[ ! -f "$work/full/last.ckpt" ]] || fail "disk full: a last.ckpt was left"
echo "disk full: $(grep -o "cannot write.*" "$work/full.log" | head -1)"

touch "$work/a-file"
"$here/expect_failure.sh" "output directory '.*a-file'" "${train[@]}" --output "$work/a-file"
"$here/expect_failure.sh" "output directory '.*a-file/sub'" "${train[@]}" --output "$work/a-file/sub"
mkdir -p "$work/blocked/metrics.json/keep"   # a directory where metrics.json must go: the rename fails
"$here/expect_failure.sh" "cannot write '.*blocked/metrics.json'" "${train[@]}" --output "$work/blocked"
"$here/expect_failure.sh" "standard output" bash -c '"$@" > /dev/full' _ "${train[@]}" --output "$work/stdout"
"$here/expect_failure.sh" "threads.*-4|-4.*threads|not in range" "${train[@]}" --output "$work/x" --threads -4
"$here/expect_failure.sh" "standard output" bash -c '"$@" > /dev/full' _ "$bin/embsr-data" stats --format jd "$file"
"$here/expect_failure.sh" "standard output" bash -c '"$@" > /dev/full' _ "$bin/embsr-data" stats --format jd "$file" --json

# ---- 3. hostile checkpoints behind a valid checksum ----------------------------------------------
good="$work/reference/best.ckpt"
refuse() {  # $1: edit, $2: expected message (grep -E)
  python3 "$here/craft_checkpoint.py" "$good" "$work/hostile.ckpt" "$1"
  local start=$SECONDS
  # 4 GiB of address space: enough for Kokkos and the tool, far from what the edits would claim.
  "$here/expect_failure.sh" "hostile.ckpt: .*($2)" bash -c 'ulimit -v 4000000; exec "$@"' _ \
    "$bin/embsr-recommend" --model "$work/hostile.ckpt" --input /dev/null
  [[ $((SECONDS - start)) -le 10 ]] || fail "$1: refusal took $((SECONDS - start)) s"
}
refuse gnn_steps=1000000 "implies"
refuse d=3000 "implies"
refuse d=100000 "implies"
refuse max_length=10000000 "implies"
refuse num_items=2147483647 "tokens, the config has|implies"
refuse w_k=inf "w_k must be finite"
refuse w_k=-1 "w_k must be finite"
refuse value0=nan "non-finite value"
refuse model=no-such-model "model 'no-such-model', which this build does not know"
refuse model=s-pop "model 's-pop' does not take option 'd'"   # an EMBSR under a counting model's name
python3 "$here/craft_checkpoint.py" "$work/reference/last.ckpt" "$work/hostile-last.ckpt" gnn_steps=1000000
"$here/expect_failure.sh" "hostile-last.ckpt: .*implies" bash -c 'ulimit -v 4000000; exec "$@"' _ \
  "${train[@]}" --output "$work/resume-hostile" --resume "$work/hostile-last.ckpt"
"$here/expect_failure.sh" "memory limit" "$bin/embsr-recommend" --model "$good" --input /dev/null --memory-limit 4K
"$here/expect_failure.sh" "memory limit" "${train[@]}" --output "$work/small" --memory-limit 64K
echo "checkpoint faults OK"
