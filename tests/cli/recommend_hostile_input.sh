#!/usr/bin/env bash
# embsr-recommend never loses the rest of its input to one bad line (issue 11): with --lenient every
# non-blank line gets exactly one line of valid JSON back, whatever its bytes; strict mode stops at
# the first bad line after answering the lines before it; a directory as input and an unwritable
# standard output are errors that say so.
#   recommend_hostile_input.sh BUILD_EXAMPLES_DIR REPO_DATA_DIR SCRATCH_DIR
set -euo pipefail
bin="$1"; data="$2"; work="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repro="$(cd "$here/../serve/data" && pwd)/recommend_invalid_utf8.jd"  # 201 JD lines, line 101 has the byte 0xff
rm -rf "$work"; mkdir -p "$work"
export OMP_PROC_BIND=false OMP_NUM_THREADS=2
fail() { echo "recommend_hostile_input: $*" >&2; exit 1; }
# Every line of standard input is JSON (and the whole of it UTF-8: Python's strict decoding).
valid_json_lines() { python3 -c 'import json, sys; [json.loads(l) for l in sys.stdin]'; }

files=("$data/jd_appliances/HUP_Data/JD_Applicances_sample" "$data/jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample")
"$bin/embsr-train" --format jd "${files[@]}" --min-support 5 --max-length 40 --d 16 --epochs 1 --batch 256 \
  --no-progress --output "$work/run" > "$work/train.log"
model="$work/run/best.ckpt"
test -s "$model" || fail "training wrote no $model"

# 1. Lenient: one valid JSON line per non-blank input line, in order; line 101 is an error object.
rc=0
"$bin/embsr-recommend" --model "$model" --format jd --lenient --input "$repro" > "$work/lenient.out" 2> "$work/lenient.err" || rc=$?
[[ $rc -eq 0 ]] || { cat "$work/lenient.err"; fail "--lenient exited $rc"; }
expected=$(grep -c '[^[:space:]]' "$repro")
actual=$(wc -l < "$work/lenient.out")
[[ $actual -eq $expected ]] || fail "--lenient wrote $actual lines for $expected non-blank input lines"
valid_json_lines < "$work/lenient.out" || fail "--lenient wrote a line that is not valid JSON"
sed -n 101p "$work/lenient.out" | grep -q '^{"error":"token 2 .*sku .*is not an unsigned integer","line":101}$' ||
  fail "line 101 is not answered with its error object: $(sed -n 101p "$work/lenient.out")"
grep -q 'unexpected error' "$work/lenient.err" && fail "--lenient reported an unexpected error"

# 2. Strict: the first bad line N stops the run (exit 1, "INPUT:N:"), after the N-1 answers before it.
first_bad=$(grep -n '"error"' "$work/lenient.out" | head -1 | cut -d: -f1)
rc=0
"$bin/embsr-recommend" --model "$model" --format jd --input "$repro" > "$work/strict.out" 2> "$work/strict.err" || rc=$?
[[ $rc -eq 1 ]] || fail "strict mode exited $rc on a bad line, expected 1"
grep -q "recommend_invalid_utf8.jd:$first_bad: " "$work/strict.err" || fail "strict mode does not name line $first_bad: $(cat "$work/strict.err")"
# The same answers as in lenient mode (the scores only up to float rounding: the batches differ).
python3 - "$work/lenient.out" "$work/strict.out" "$first_bad" <<'PY' || fail "strict mode did not write the $((first_bad - 1)) answers before line $first_bad"
import json, sys
lenient = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")][: int(sys.argv[3]) - 1]
strict = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert len(strict) == len(lenient), (len(strict), len(lenient))
for a, b in zip(lenient, strict):
    assert "error" not in b and a["items"] == b["items"], (a, b)
    assert all(abs(x - y) <= 1e-3 * max(1.0, abs(x)) for x, y in zip(a["scores"], b["scores"])), (a, b)
PY

# 3. The JD reader has the loader's rules: "123+5" has 2 fields, not 5.
printf '123+5\n' > "$work/two_fields.jd"
"$here/expect_failure.sh" "two_fields.jd:1: token 1 '123\+5' has 2 fields, expected 5" \
  "$bin/embsr-recommend" --model "$model" --format jd --input "$work/two_fields.jd"

# 4. JSON lines that are not UTF-8, or hold a number beyond double: error objects, never "unexpected error".
printf '%s\n' '{"items": [1e400], "operations": ["Cart"]}' '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]' > "$work/hostile.jsonl"
printf '{"items": ["\xff\xfe"], "operations": ["Cart"]}\n\xc3\x28\n' >> "$work/hostile.jsonl"
rc=0
"$bin/embsr-recommend" --model "$model" --lenient --input "$work/hostile.jsonl" > "$work/hostile.out" 2> "$work/hostile.err" || rc=$?
[[ $rc -eq 0 ]] || { cat "$work/hostile.err"; fail "--lenient exited $rc on hostile JSON lines"; }
[[ $(wc -l < "$work/hostile.out") -eq 4 ]] || fail "hostile JSON lines: expected 4 answers, got $(wc -l < "$work/hostile.out")"
valid_json_lines < "$work/hostile.out" || fail "hostile JSON lines: an answer is not valid JSON"
[[ $(grep -c '"error":"invalid ' "$work/hostile.out") -eq 4 ]] || fail "hostile JSON lines: expected 4 error objects"
grep -q 'unexpected error' "$work/hostile.err" && fail "hostile JSON lines: unexpected error"

# 5. A directory as input is named as such.
"$here/expect_failure.sh" "$work: .*is a directory" "$bin/embsr-recommend" --model "$model" --input "$work"

# 6. Answers that cannot be written are an error, not exit 0.
if [[ -w /dev/full ]]; then
  "$here/expect_failure.sh" "cannot write standard output: No space left on device" \
    bash -c '"$1" --model "$2" --format jd --lenient --input "$3" > /dev/full' _ "$bin/embsr-recommend" "$model" "$repro"
fi
echo "recommend hostile input OK"
