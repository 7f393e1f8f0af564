#!/usr/bin/env bash
# Fuzz every parser of embsr with libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/fuzz.sh [--seconds N] [--jobs J] [--out DIR] [NAME...]
#
#   NAME         harnesses to run, e.g. jd_loader (= tests/fuzz/fuzz_jd_loader.cpp); default: every
#                tests/fuzz/fuzz_*.cpp
#   --seconds N  fuzzing time per harness (default 60; 0 = only build and replay)
#   --jobs J     harnesses built and fuzzed at the same time (default 1)
#   --out DIR    where findings go (default build-fuzz/findings): DIR/NAME/ holds each crashing input
#                and REPRODUCE.txt with the commands that rebuild the harness and replay it
#
# For each harness: build it standalone into build-fuzz/ (clang++, no Kokkos, no CMake); replay every
# input of tests/fuzz/regressions/NAME/ (past findings) and tests/fuzz/corpus/NAME/ (seeds); then
# fuzz for N seconds on a scratch copy of the corpus in build-fuzz/work/NAME/, so the committed
# corpus does not grow. Prints a table of executions, coverage and findings per harness; exits 1 if
# any harness failed to build, crashed on a committed input, or produced a finding.
# Installs clang and the sanitizer/libFuzzer runtime (libclang-rt-dev) with apt-get when missing.
# Environment: FUZZ_CXX (default clang++). See tests/fuzz/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
seconds=60
jobs=1
out_dir="$root/build-fuzz/findings"
names=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --out) out_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seconds needs a whole number of seconds, got '$seconds'" >&2; exit 2; }
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --jobs needs a positive number, got '$jobs'" >&2; exit 2; }
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"

log() { printf '[fuzz] %s\n' "$*"; }
source "$root/scripts/debian_packages.sh"   # as_root, ensure_debian_packages

# ---- 1. Compiler and runtime ---------------------------------------------------------------------
# libclang-rt-dev is the runtime of Debian 12's default clang (14): libclang_rt.fuzzer, asan, ubsan.
ensure_debian_packages clang libclang-rt-dev
cxx="${FUZZ_CXX:-clang++}"
command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (set FUZZ_CXX)" >&2; exit 1; }
# -O1 as libFuzzer recommends: fast enough to fuzz, and the build stays short (-max_total_time does
# not bound it).
cxxflags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I "$root/include")

# ---- 2. Harnesses ---------------------------------------------------------------------------------
if [[ ${#names[@]} -eq 0 ]]; then
  for f in "$root"/tests/fuzz/fuzz_*.cpp; do
    [[ -e "$f" ]] || continue
    n="$(basename "$f" .cpp)"
    names+=("${n#fuzz_}")
  done
fi
[[ ${#names[@]} -gt 0 ]] || { echo "fuzz.sh: no harness found (tests/fuzz/fuzz_*.cpp)" >&2; exit 1; }
for n in "${names[@]}"; do
  [[ -f "$root/tests/fuzz/fuzz_$n.cpp" ]] || { echo "fuzz.sh: no harness tests/fuzz/fuzz_$n.cpp" >&2; exit 2; }
done

bin_dir="$root/build-fuzz"
work_dir="$bin_dir/work"
mkdir -p "$bin_dir" "$work_dir"

# The inputs a harness must get through: past findings first, then the seeds.
committed_inputs() {
  local n="$1" d
  for d in "$root/tests/fuzz/regressions/$n" "$root/tests/fuzz/corpus/$n"; do
    [[ -d "$d" ]] && find "$d" -type f ! -name '*.md' ! -name '.*' | LC_ALL=C sort
  done
  return 0
}

# Writes DIR/NAME/REPRODUCE.txt for a failing input.
write_reproducer() {
  local n="$1" input="$2" why="$3"
  local dir="$out_dir/$n"
  mkdir -p "$dir"
  {
    echo "# $why"
    echo "# rebuild the harness:"
    echo "cd $root && $cxx ${cxxflags[*]:0:${#cxxflags[@]}-2} -I include tests/fuzz/fuzz_$n.cpp -o build-fuzz/fuzz_$n"
    echo "# replay the input (prints the sanitizer report or the escaped exception):"
    echo "build-fuzz/fuzz_$n $input"
    if [[ "$input" != "$root/tests/fuzz/"* ]]; then
      echo "# once fixed: commit it as a regression input (and add a unit test where it makes sense)"
      echo "cp $input tests/fuzz/regressions/$n/"
    fi
  } >>"$dir/REPRODUCE.txt"
}

# One harness from build to stats; its result line goes to work/NAME/result:
#   status|executions|cov|ft|findings|note
run_harness() {
  local n="$1"
  local src="$root/tests/fuzz/fuzz_$n.cpp" bin="$bin_dir/fuzz_$n" wd="$work_dir/$n"
  rm -rf "$wd" "$out_dir/$n"
  mkdir -p "$wd/corpus" "$out_dir/$n"
  local result="$wd/result"

  # Build when the harness or any header is newer than the binary.
  if [[ ! -x "$bin" ]] || [[ "$src" -nt "$bin" ]] || [[ -n "$(find "$root/include" -newer "$bin" -name '*.hpp' -print -quit)" ]]; then
    log "$n: building"
    if ! "$cxx" "${cxxflags[@]}" "$src" -o "$bin.tmp" >"$wd/build.log" 2>&1; then
      cat "$wd/build.log" >&2
      echo "BUILD FAILED|-|-|-|1|see $wd/build.log" >"$result"
      return 0
    fi
    mv "$bin.tmp" "$bin"
  fi

  # Replay every committed input, one process per file so that a failure names its input.
  local inputs=() f
  mapfile -t inputs < <(committed_inputs "$n")
  log "$n: replaying ${#inputs[@]} committed inputs"
  for f in "${inputs[@]}"; do
    if ! (cd "$wd" && "$bin" -timeout=10 -rss_limit_mb=2048 "$f") >"$wd/replay.log" 2>&1; then
      cp "$f" "$out_dir/$n/"
      cat "$wd/replay.log" >"$out_dir/$n/$(basename "$f").log"
      write_reproducer "$n" "$f" "a committed input fails: ${f#$root/}"
      tail -30 "$wd/replay.log" >&2
      echo "REPLAY FAILED|-|-|-|1|${f#$root/}" >"$result"
      return 0
    fi
  done
  if [[ "$seconds" -eq 0 ]]; then
    echo "replayed|-|-|-|0|${#inputs[@]} inputs" >"$result"
    return 0
  fi

  # Fuzz on a scratch copy: new inputs land in build-fuzz/work, never in tests/fuzz/corpus.
  [[ ${#inputs[@]} -gt 0 ]] && cp "${inputs[@]}" "$wd/corpus/" 2>/dev/null || true
  log "$n: fuzzing for ${seconds}s"
  local rc=0
  (cd "$wd" && "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out_dir/$n/" "$wd/corpus") >"$wd/fuzz.log" 2>&1 || rc=$?
  local execs cov ft findings=0 status=ok note="" last
  execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$wd/fuzz.log" | tail -1 | awk '{print $2}' || true)"
  last="$(grep -E '^#[0-9]+' "$wd/fuzz.log" | grep ' cov: ' | tail -1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last" || true)"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last" || true)"
  local artifacts=()
  mapfile -t artifacts < <(find "$out_dir/$n" -maxdepth 1 -type f \
                             \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  for f in "${artifacts[@]}"; do
    findings=$((findings + 1))
    write_reproducer "$n" "$f" "libFuzzer finding $(basename "$f") (log: $out_dir/$n/fuzz.log)"
  done
  if [[ $rc -ne 0 || $findings -gt 0 ]]; then
    cp "$wd/fuzz.log" "$out_dir/$n/fuzz.log"
    [[ $findings -gt 0 ]] || findings=1
    status="FINDING"
    note="$out_dir/$n/"
    grep -E 'ERROR: |SUMMARY: |runtime error|terminate called|uncaught' "$wd/fuzz.log" | head -5 >&2 || true
  fi
  echo "$status|${execs:--}|${cov:--}|${ft:--}|$findings|$note" >"$result"
}

# ---- 3. Run, J harnesses at a time ----------------------------------------------------------------
log "harnesses: ${names[*]} (${seconds}s each, $jobs at a time); findings go to $out_dir"
running=0
for n in "${names[@]}"; do
  run_harness "$n" &
  running=$((running + 1))
  if [[ $running -ge $jobs ]]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

# ---- 4. Summary -----------------------------------------------------------------------------------
failed=0
printf '\n%-22s %-14s %12s %8s %8s %9s  %s\n' harness status executions cov ft findings note
for n in "${names[@]}"; do
  line="BUILD FAILED|-|-|-|1|no result (the harness script died)"
  [[ -f "$work_dir/$n/result" ]] && line="$(cat "$work_dir/$n/result")"
  IFS='|' read -r status execs cov ft findings note <<<"$line"
  printf '%-22s %-14s %12s %8s %8s %9s  %s\n' "$n" "$status" "$execs" "$cov" "$ft" "$findings" "$note"
  [[ "$findings" == "0" ]] || failed=1
done
if [[ $failed -ne 0 ]]; then
  echo
  echo "fuzz.sh: findings; each input and the commands to reproduce it are under $out_dir/<harness>/:"
  cat "$out_dir"/*/REPRODUCE.txt 2>/dev/null || true
  exit 1
fi
log "no findings"
