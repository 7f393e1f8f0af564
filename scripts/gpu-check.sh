#!/usr/bin/env bash
# The GPU run of issue 5, as one script for a machine with an NVIDIA GPU: the CUDA build's whole
# test suite (gradient checks, oracle parity, batch and backend invariance, on Kokkos::Cuda), a
# short training run of embsr-train on the shipped JD sample, the training-step and inference
# benchmarks, and the same model in PyTorch on the same GPU for the ratio. Writes one report.
#
# Two halves, because GPU machines are lent for minutes and need not have a compiler or Kokkos:
#
#   scripts/gpu-check.sh --bundle      (here, with the CUDA toolkit, no GPU needed)
#       builds the CUDA configuration (setup.sh --cuda) and gathers the programs, the Kokkos
#       libraries and the test data into out/gpu-bundle/ (ignored by git, about 53 MB).
#   scripts/gpu-check.sh --run         (on the GPU machine, from the repository root)
#       runs everything from out/gpu-bundle/ and writes $OUT/gpu-report.md (or out/gpu-report.md)
#       plus the raw logs next to it. Needs python3 with torch (CUDA) and numpy for the oracle
#       and the PyTorch side; finds cuBLAS in the CUDA toolkit or in torch's nvidia wheels.
#
#   --quick   smaller benchmarks (CI-style smoke run)
# EMBSR_GPU_CHECK_SECONDS (default 480) caps the whole run: each step gets at most what is left,
# and steps that no longer fit are skipped (and reported as such).
# On a machine that has both a GPU and the toolkit, `--bundle --run` does both.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="$root/out/gpu-bundle"
do_bundle=0
do_run=0
quick=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bundle) do_bundle=1; shift ;;
    --run) do_run=1; shift ;;
    --quick) quick=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[[ $do_bundle -eq 1 || $do_run -eq 1 ]] || { echo "gpu-check.sh: say --bundle, --run or both (try --help)" >&2; exit 2; }

if [[ $do_bundle -eq 1 ]]; then
  programs=(tests/embsr_tests examples/embsr-train examples/embsr-recommend benchmarks/bench_train_step
            benchmarks/bench_inference)
  targets=()
  for p in "${programs[@]}"; do targets+=(--target "$(basename "$p")"); done
  "$root/scripts/setup.sh" --cuda --build-dir "$root/build-cuda" "${targets[@]}"
  rm -rf "$bundle"
  mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/data"
  for p in "${programs[@]}"; do cp "$root/build-cuda/$p" "$bundle/bin/"; done
  # (not stripped: a crash report names functions, and addr2line can map its offsets)
  kokkos_root="$(grep '^Kokkos_ROOT:' "$root/build-cuda/CMakeCache.txt" | cut -d= -f2)"
  cp -L "$kokkos_root"/lib*/libkokkos*.so* "$bundle/lib/"  # real files: the bundle may travel without links
  # The CUDA runtime is small enough to ship; cuBLAS (hundreds of MB) must be on the GPU machine.
  cuda_home="${CUDA_HOME:-/usr/local/cuda}"
  cp -L "$cuda_home"/lib64/libcudart.so.[0-9]* "$bundle/lib/" 2>/dev/null || true
  shared="$root/../shared/data"
  if [[ -d "$shared" ]]; then
    cp -r "$shared/jd_micro_behavior_hup" "$bundle/data/"
    mkdir -p "$bundle/data/trivago_recsys2019"
    cp "$shared/trivago_recsys2019/trivago_val_100k.csv" "$bundle/data/trivago_recsys2019/"
    cp "$shared/README.md" "$bundle/data/"
  else
    echo "[gpu-check] no ../shared/data: tests tagged [shared-data] will be left out of the GPU run" >&2
  fi
  git -C "$root" rev-parse HEAD >"$bundle/commit" 2>/dev/null || echo unknown >"$bundle/commit"
  echo "[gpu-check] bundle ready: $(du -sh "$bundle" | cut -f1) in $bundle"
fi

[[ $do_run -eq 1 ]] || exit 0
[[ -x "$bundle/bin/embsr_tests" ]] || { echo "gpu-check.sh: no bundle in $bundle (run --bundle first)" >&2; exit 1; }
nvidia-smi -L >/dev/null 2>&1 || { echo "gpu-check.sh: no GPU (nvidia-smi -L failed)" >&2; exit 1; }
out_dir="${OUT:-$root/out}"
mkdir -p "$out_dir"
report="$out_dir/gpu-report.md"
logs="$out_dir/gpu-logs"
mkdir -p "$logs"
python="${EMBSR_PYTHON:-python3}"

# Libraries: our Kokkos, then cuBLAS/cudart from the toolkit or from torch's nvidia wheels.
libdirs="$bundle/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [[ -d "$d" ]] && libdirs="$libdirs:$d"; done
site="$("$python" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))' 2>/dev/null || true)"
if [[ -n "$site" && -d "$site/nvidia" ]]; then
  while IFS= read -r lib; do libdirs="$libdirs:$(dirname "$lib")"; done < <(find "$site/nvidia" -name 'libcublas.so*' -o -name 'libcudart.so*' | sort -u)
fi
export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The build carries sm_80 code and its PTX; newer GPUs compile the PTX once at first use: keep it.
export CUDA_CACHE_MAXSIZE=4294967296
export OMP_PROC_BIND=false
export EMBSR_PYTHON="$python" EMBSR_SOURCE_DIR="$root" EMBSR_REPO_DATA_DIR="$root/data"
if [[ -f "$bundle/data/README.md" ]]; then export EMBSR_SHARED_DATA_DIR="$bundle/data"; test_spec=""; else test_spec="~[shared-data]"; fi

status=0
SECONDS=0
section() { printf '\n## %s\n\n' "$1" >>"$report"; echo "[gpu-check] $1 (${SECONDS} s)"; }
# run NAME TIMEOUT CMD...: log to $logs/NAME.log, record the exit code and the wall time.
budget="${EMBSR_GPU_CHECK_SECONDS:-480}"
run() {
  local name="$1" limit="$2"; shift 2
  local t0=$SECONDS rc=0 left=$((budget - SECONDS))
  if [[ $left -lt 20 ]]; then
    printf -- '- `%s`: skipped, the %d s budget is spent\n' "$*" "$budget" >>"$report"
    status=1
    return 0
  fi
  [[ $limit -le $left ]] || limit=$left
  timeout "$limit" "$@" >"$logs/$name.log" 2>&1 || rc=$?
  printf -- '- `%s`: exit %d, %d s (log: gpu-logs/%s.log)\n' "$*" "$rc" $((SECONDS - t0)) "$name" >>"$report"
  [[ $rc -eq 0 ]] || status=1
  return 0
}

{
  echo "# embsr GPU check"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- commit: $(cat "$bundle/commit")"
  echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n1)"
  echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "- torch: $("$python" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>&1 | tail -n1)"
} >"$report"

missing="$(ldd "$bundle/bin/embsr_tests" | grep 'not found' || true)"
if [[ -n "$missing" ]]; then
  echo "gpu-check.sh: libraries not found (searched $LD_LIBRARY_PATH):" >&2
  echo "$missing" >&2
  { echo; echo "libraries not found:"; echo "$missing" | sed 's/^/    /'; } >>"$report"
  exit 1
fi

section "Test suite on Kokkos::Cuda (and Serial, the host reference)"
# One process for the whole suite (a CUDA context per test case would cost more than the tests).
run tests 300 "$bundle/bin/embsr_tests" --durations yes $test_spec
grep -E "^(All tests passed|test cases:)" "$logs/tests.log" | sed 's/^/    /' >>"$report" || true
if grep -q "FAILED" "$logs/tests.log"; then
  echo '    failures:' >>"$report"
  grep -B2 -A12 "FAILED" "$logs/tests.log" | head -n 80 | sed 's/^/    /' >>"$report"
fi

section "embsr-train on the shipped JD Appliances sample (CUDA)"
epochs=5; [[ $quick -eq 1 ]] && epochs=2
run train 90 "$bundle/bin/embsr-train" --format jd "$root/data/jd_appliances/HUP_Data/JD_Applicances_sample" \
  "$root/data/jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample" --epochs "$epochs" \
  --no-progress --output "$out_dir/gpu-train"
grep -E "^epoch|best epoch|^H@K|^M@K" "$logs/train.log" | sed 's/^/    /' >>"$report" || true

section "Training step: embsr (CUDA) and PyTorch (CUDA), same sizes and synthetic-session recipe"
steps=6; [[ $quick -eq 1 ]] && steps=3
for items in 183562; do
  run "train_step_embsr_$items" 60 "$bundle/bin/bench_train_step" --batch 512 --items "$items" --max-length 50 --d 100 --steps "$steps"
  run "train_step_torch_$items" 120 "$python" "$root/benchmarks/torch_embsr.py" --bench --device cuda --batch 512 \
    --items "$items" --max-length 50 --d 100 --steps "$steps" --warmup 2
done

section "Inference: batch 1 (p50 / p99) and batch 512"
calls=200; [[ $quick -eq 1 ]] && calls=50
run infer_embsr 60 "$bundle/bin/bench_inference" --items 183562 --max-length 50 --d 100 --calls "$calls" --batch 512
run infer_torch 120 "$python" "$root/benchmarks/torch_embsr.py" --infer --device cuda --items 183562 --max-length 50 \
  --d 100 --steps "$calls" --warmup 20 --batch 512

section "Results (JSON lines of the benchmarks)"
echo '```' >>"$report"
for f in "$logs"/train_step_*.log "$logs"/infer_*.log; do grep -E '^\{"impl"' "$f" | sed -E 's/, "step_seconds_all": \[[^]]*\]//' >>"$report" || true; done
echo '```' >>"$report"
"$python" - "$logs" >>"$report" <<'EOF' || true
import json, pathlib, sys
logs = pathlib.Path(sys.argv[1])
def last_json(name):
    p = logs / f"{name}.log"
    if not p.exists():
        return None
    lines = [l for l in p.read_text().splitlines() if l.startswith('{"impl"')]
    return json.loads(lines[-1]) if lines else None
print("\n| measure | embsr (Kokkos CUDA) | PyTorch (CUDA) | ratio |\n|---|---:|---:|---:|")
for items in (183562,):
    e, t = last_json(f"train_step_embsr_{items}"), last_json(f"train_step_torch_{items}")
    if e and t:
        print(f"| training step, B 512, |V| {items}: s | {e['step_seconds_median']:.4f} | {t['step_seconds_median']:.4f} | "
              f"{t['step_seconds_median'] / e['step_seconds_median']:.2f}x |")
e = last_json("infer_embsr")
p = logs / "infer_torch.log"
torch_infer = {}
if p.exists():
    for l in p.read_text().splitlines():
        if l.startswith('{"impl"'):
            j = json.loads(l)
            torch_infer[j["batch"]] = j
t1, tb = torch_infer.get(1), torch_infer.get(512)
# Both sides timed end to end: session in, batch packed and uploaded, scores, top-20, ids back.
if e and t1:
    for q, key in (("p50", "median"), ("p99", "p99")):
        mine, theirs = e[f"batch1_{q}_ms"], 1e3 * t1[f"end_to_end_seconds_{key}"]
        print(f"| batch-1 top-20 {q}: ms | {mine:.3f} | {theirs:.3f} | {theirs / mine:.2f}x |")
if e and tb:
    mine, theirs = e["batch_sessions_per_second"], tb["end_to_end_sessions_per_second"]
    print(f"| batch 512 top-20: sessions/s | {mine:.0f} | {theirs:.0f} | {mine / theirs:.2f}x |")
EOF
echo >>"$report"
echo "total ${SECONDS} s, status $status" >>"$report"
echo "[gpu-check] report: $report (status $status)"
exit "$status"
