#!/usr/bin/env bash
# CPU performance side by side: embsr (Kokkos OpenMP) and the same model in PyTorch
# (benchmarks/torch_embsr.py), measured alternately in one run, several repetitions, medians; plus
# the SGEMM peak of this machine through the library's gemm() (Eigen), for the achieved fraction.
#
#   scripts/bench_cpu.sh [--reps 3] [--items 75160] [--threads 2] [--out out/bench-cpu] [--portable] [--synthetic]
#
# Builds in build-native/ with -march=native (EMBSR_NATIVE=ON: Eigen's AVX2/AVX-512 GEMM), or in
# build/ (SSE2, the compiler's default for x86-64) with --portable.
#
# Training: B 512, t <= 40, d 100, |V| --items: the first 512 training sessions of the JD Appliances
# sample shipped in data/ (real micro-behavior sequences; item ids from its vocabulary, scored
# against the full table), the same file on both sides (bench_train_step --write-sessions, then
# torch_embsr.py --sessions); --synthetic uses benchmarks/synthetic_sessions.hpp's recipe instead.
# Inference: batch 1 on one thread and batch 512 on --threads, |V| 183,562, synthetic sessions.
# OpenMP waits in its default way (OMP_WAIT_POLICY unset). Prints Markdown tables; raw logs in --out.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps=3
items=75160
threads=2
out="$root/out/bench-cpu"
build="$root/build-native"
native=(-- -DEMBSR_NATIVE=ON)
sessions=(--jd "$root/data/jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample")
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --items) items="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --portable) build="$root/build"; native=(); shift ;;
    --synthetic) sessions=(); shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench_cpu.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
"$root/scripts/setup.sh" --build-dir "$build" --target bench_train_step --target bench_inference \
  --target bench_gemm "${native[@]}" >/dev/null
mkdir -p "$out"
python=/usr/bin/python3
bench="$build/benchmarks"
export OMP_PROC_BIND=false
unset OMP_WAIT_POLICY
json() { grep -E '^\{"impl"' "$1" || true; }

echo "[bench_cpu] SGEMM peak"
OMP_NUM_THREADS=$threads "$bench/bench_gemm" --n 4096 --repeats 3 --batch 512 --items "$items" --d 100 \
  >"$out/gemm.log" 2>&1
torch_sessions=()
if [[ ${#sessions[@]} -gt 0 ]]; then
  sessions+=(--write-sessions "$out/sessions.tsv")
  torch_sessions=(--sessions "$out/sessions.tsv")
fi
for r in $(seq 1 "$reps"); do
  echo "[bench_cpu] repetition $r of $reps: training step, embsr then PyTorch"
  OMP_NUM_THREADS=$threads "$bench/bench_train_step" --batch 512 --items "$items" --max-length 40 --d 100 \
    --steps 4 "${sessions[@]}" >"$out/train_embsr_$r.log" 2>&1
  "$python" "$root/benchmarks/torch_embsr.py" --bench --device cpu --threads "$threads" --batch 512 --items "$items" \
    --max-length 40 --d 100 --steps 3 --warmup 1 "${torch_sessions[@]}" >"$out/train_torch_$r.log" 2>&1
done
echo "[bench_cpu] training step of the test oracle itself (one session at a time, float64), once"
"$python" "$root/benchmarks/torch_embsr.py" --bench --oracle --device cpu --threads "$threads" --batch 512 \
  --items "$items" --max-length 40 --d 100 --steps 2 --warmup 1 "${torch_sessions[@]}" >"$out/train_oracle.log" 2>&1
echo "[bench_cpu] inference: embsr (batch 1 on 1 thread, batch 512 on $threads), PyTorch"
OMP_NUM_THREADS=1 "$bench/bench_inference" --items 183562 --max-length 50 --d 100 --calls 300 --batch 512 \
  --batches 3 >"$out/infer_embsr_1thread.log" 2>&1
OMP_NUM_THREADS=$threads "$bench/bench_inference" --items 183562 --max-length 50 --d 100 --calls 300 --batch 512 \
  --batches 5 >"$out/infer_embsr_${threads}threads.log" 2>&1
for t in 1 "$threads"; do
  "$python" "$root/benchmarks/torch_embsr.py" --infer --device cpu --threads "$t" --items 183562 --max-length 50 \
    --d 100 --steps 20 --warmup 2 --batch 512 >"$out/infer_torch_${t}thread.log" 2>&1
done

"$python" - "$out" "$reps" "$threads" <<'EOF'
import json, pathlib, statistics, sys
out, reps, threads = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def lines(name):
    p = out / name
    return [json.loads(l) for l in p.read_text().splitlines() if l.startswith('{"impl"')] if p.exists() else []
gemm = lines("gemm.log")[0]
shapes = [l for l in lines("gemm.log") if l["impl"] == "embsr-gemm-shape"]
e = [lines(f"train_embsr_{r}.log")[-1] for r in range(1, reps + 1)]
t = [lines(f"train_torch_{r}.log")[-1] for r in range(1, reps + 1)]
es = statistics.median(x["step_seconds_median"] for x in e)
ts = statistics.median(x["step_seconds_median"] for x in t)
eg = statistics.median(x["scoring_gflops"] for x in e)
print(f"\nSGEMM 4096^3 through gemm() ({gemm.get('library', 'Eigen')}), {gemm['threads']} threads: "
      f"{gemm['gflops']:.1f} GFLOP/s")
for x in shapes:
    print(f"  {x['shape']}: {1e3 * x['seconds']:.1f} ms, {x['gflops']:.1f} GFLOP/s")
print()
print(f"| training step, B 512, t <= 40, |V| {e[0]['items']}, d 100, {threads} threads, "
      f"{e[0].get('sessions', 'synthetic')} sessions | embsr | PyTorch | ratio |")
print("|---|---:|---:|---:|")
print(f"| median step (median of {reps} runs) | {es:.3f} s | {ts:.3f} s | {ts / es:.2f}x |")
print(f"| sessions/s | {512 / es:.0f} | {512 / ts:.0f} | |")
print(f"| scoring GEMMs' GFLOP/s (6 B |V| d per step) | {eg:.1f} ({100 * eg / gemm['gflops']:.0f}% of SGEMM peak) | "
      f"{6 * 512 * e[0]['items'] * 100 / ts / 1e9:.1f} | |")
print(f"| peak resident memory | {e[0]['peak_rss_mib']:.0f} MiB | {t[0].get('peak_memory_mib', 0):.0f} MiB | |")
o = lines("train_oracle.log")
if o:
    os_ = o[-1]["step_seconds_median"]
    print(f"\nThe test oracle (tests/oracle/embsr_oracle.py: one session at a time, float64, autograd), same sessions, "
          f"{threads} threads: {os_:.2f} s per step, {512 / os_:.0f} sessions/s; embsr is {os_ / es:.1f}x faster.")
i1, i2 = lines("infer_embsr_1thread.log"), lines(f"infer_embsr_{threads}threads.log")
t1 = {x["batch"]: x for x in lines("infer_torch_1thread.log")}
t2 = {x["batch"]: x for x in lines(f"infer_torch_{threads}thread.log")}
def ms(d, b, key):
    return f"{1e3 * d[b][key]:.2f} ms" if b in d else ""
if i1 and i2:
    i1, i2 = i1[-1], i2[-1]
    print(f"\n| inference, |V| 183,562, top-20, end to end | embsr | PyTorch | ratio |")
    print("|---|---:|---:|---:|")
    def row(what, ours, d, b, key):
        theirs = d.get(b, {}).get(key)
        print(f"| {what} | {ours:.2f} ms | {ms(d, b, key)} | {1e3 * theirs / ours if theirs else 0:.1f}x |")
    row("batch 1, 1 thread, p50", i1["batch1_p50_ms"], t1, 1, "end_to_end_seconds_median")
    row("batch 1, 1 thread, p99", i1["batch1_p99_ms"], t1, 1, "end_to_end_seconds_p99")
    row(f"batch 1, {threads} threads, p50", i2["batch1_p50_ms"], t2, 1, "end_to_end_seconds_median")
    row(f"batch 1, {threads} threads, p99", i2["batch1_p99_ms"], t2, 1, "end_to_end_seconds_p99")
    for label, mine, d in (("1 thread", i1, t1), (f"{threads} threads", i2, t2)):
        theirs = d.get(512, {}).get("end_to_end_sessions_per_second")
        print(f"| batch 512, {label} | {mine['batch_sessions_per_second']:.0f} sessions/s | "
              + (f"{theirs:.0f} sessions/s | {mine['batch_sessions_per_second'] / theirs:.1f}x |" if theirs else " | |"))
    print(f"| peak resident memory ({threads} threads) | {i2['peak_rss_mib']:.0f} MiB | "
          f"{t2.get(512, {}).get('peak_memory_mib', 0):.0f} MiB | |")
EOF
