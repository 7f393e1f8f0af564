#!/usr/bin/env bash
# expect_failure.sh REGEX COMMAND...: passes when COMMAND exits non-zero (not by a signal) and its
# output (stdout + stderr) matches REGEX (grep -E).
set -u
regex="$1"; shift
out="$("$@" 2>&1)"; rc=$?
printf '%s\n' "$out"
if [[ $rc -eq 0 ]]; then echo "expect_failure: exit code 0, expected a failure" >&2; exit 1; fi
if [[ $rc -ge 128 ]]; then echo "expect_failure: killed by signal $((rc - 128)) (a crash, not an error)" >&2; exit 1; fi
if ! grep -Eq -- "$regex" <<<"$out"; then echo "expect_failure: output does not match /$regex/" >&2; exit 1; fi
echo "expect_failure: exit $rc with the expected message"
