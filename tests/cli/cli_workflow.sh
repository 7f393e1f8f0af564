#!/usr/bin/env bash
# End-to-end check of the command-line tools on the shipped JD sample: a short training run writes
# its outputs, embsr-recommend answers from the saved model, --resume continues, and damaged or
# foreign checkpoints are refused with a reason.
#   cli_workflow.sh BUILD_EXAMPLES_DIR REPO_DATA_DIR SCRATCH_DIR
set -euo pipefail
bin="$1"; data="$2"; work="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rm -rf "$work"; mkdir -p "$work"
export OMP_PROC_BIND=false OMP_NUM_THREADS=2
files=("$data/jd_appliances/HUP_Data/JD_Applicances_sample" "$data/jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample")
"$bin/embsr-train" --format jd "${files[@]}" --min-support 5 --max-length 40 --d 16 --epochs 2 --batch 256 \
  --no-progress --baselines --output "$work/run"
for f in best.ckpt last.ckpt metrics.json curve.csv; do test -s "$work/run/$f" || { echo "missing $f"; exit 1; }; done
grep -q '"test"' "$work/run/metrics.json"
test "$(wc -l < "$work/run/curve.csv")" -eq 3   # header + 2 epochs

# Resume: one more epoch from last.ckpt.
"$bin/embsr-train" --format jd "${files[@]}" --min-support 5 --max-length 40 --d 16 --epochs 3 --batch 256 \
  --no-progress --output "$work/run" --resume "$work/run/last.ckpt" | tee "$work/resume.log"
grep -q "resumed from" "$work/resume.log"
grep -q "^epoch   3" "$work/resume.log"

# Recommendations from the saved model: JSON lines in, JSON lines out.
printf '%s\n' '{"session": [{"item": "1169504", "operation": "SearchList2Product"}, {"item": "3170510", "operation": "Cart"}]}' \
  '{"items": ["no-such-item", "435168"], "operations": ["SearchList2Product", "Detail_comments"]}' |
  "$bin/embsr-recommend" --model "$work/run/best.ckpt" --k 3 > "$work/recs.jsonl"
test "$(wc -l < "$work/recs.jsonl")" -eq 2
grep -q '"unknown_items":\["no-such-item"\]' "$work/recs.jsonl"

# Damaged and foreign checkpoints are refused with a reason.
cp "$work/run/best.ckpt" "$work/flipped.ckpt"
size=$(stat -c %s "$work/flipped.ckpt")
printf '\x5a' | dd of="$work/flipped.ckpt" bs=1 seek=$((size / 2)) conv=notrunc status=none
"$here/expect_failure.sh" "checksum|corrupt" "$bin/embsr-recommend" --model "$work/flipped.ckpt" --input /dev/null
head -c $((size / 3)) "$work/run/best.ckpt" > "$work/truncated.ckpt"
"$here/expect_failure.sh" "truncated" "$bin/embsr-recommend" --model "$work/truncated.ckpt" --input /dev/null
cp "$work/run/best.ckpt" "$work/version.ckpt"
printf '\x63' | dd of="$work/version.ckpt" bs=1 seek=8 conv=notrunc status=none
"$here/expect_failure.sh" "version" "$bin/embsr-recommend" --model "$work/version.ckpt" --input /dev/null
# A checkpoint of another vocabulary (different item set) cannot be resumed into this data's model.
"$bin/embsr-train" --format jd "${files[@]}" --min-support 20 --max-length 40 --d 16 --epochs 1 --batch 256 \
  --no-progress --output "$work/other"
"$here/expect_failure.sh" "item_embedding|num_items|vocabular" "$bin/embsr-train" --format jd "${files[@]}" \
  --min-support 5 --max-length 40 --d 16 --epochs 2 --no-progress --output "$work/x" --resume "$work/other/last.ckpt"
echo "cli workflow OK"
