#!/usr/bin/env bash
# The neighbourhood models' costs (benchmarks/bench_knn.cpp): index build time and memory, batch-1
# top-20 latency on one core, and batch throughput Kokkos::Serial vs Kokkos::OpenMP, for sknn, v-sknn,
# stan, vstan and vstan-ops with their default options (k 100, sample_size 500), on synthetic
# sessions (Zipf item popularity over 10^5 items, mean 8 macro items, 2.5 micro-behaviors each;
# bench_knn --help describes the recipe) with 10^5 and 10^6 indexed sessions.
#
#   scripts/bench_knn.sh [--reps 3] [--sessions 1e5,1e6] [--requests 2000] [--threads N]
#                        [--out out/bench-knn] [--portable] [--no-build] [--build-dir DIR] [-- bench_knn args]
#
# Each repetition runs bench_knn twice: build + latency with OMP_NUM_THREADS=1 (the latency runs on
# Kokkos::Serial: one core), then build + throughput with OMP_NUM_THREADS=--threads (default: all
# cores), OMP_PROC_BIND=false, OMP_WAIT_POLICY unset. The tables give the median of the repetitions
# for every cell (and the worst repetition's p99; "p99 CPU time" is the calling thread's CPU time,
# which leaves out time the thread spent preempted by other processes). Builds in build-native/
# (-march=native) or build/ with --portable, as scripts/bench_cpu.sh; --no-build uses the binary
# already in the build folder. Raw logs and JSON in --out.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps=3
sessions=1e5,1e6
requests=2000
threads=$(nproc)
out="$root/out/bench-knn"
build="$root/build-native"
native=(-- -DEMBSR_NATIVE=ON)
do_build=1
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --sessions) sessions="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --portable) build="$root/build"; native=(); shift ;;
    --build-dir) build="$2"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench_knn.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
if [[ $do_build -eq 1 ]]; then
  "$root/scripts/setup.sh" --build-dir "$build" --target bench_knn "${native[@]}" >/dev/null
fi
bench="$build/benchmarks/bench_knn"
[[ -x "$bench" ]] || { echo "bench_knn.sh: no $bench (build it, or drop --no-build)" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/latency_*.json "$out"/throughput_*.json
export OMP_PROC_BIND=false
unset OMP_WAIT_POLICY
for r in $(seq 1 "$reps"); do
  echo "[bench_knn] repetition $r of $reps: index build + batch-1 latency (1 thread)"
  OMP_NUM_THREADS=1 "$bench" --sessions "$sessions" --requests "$requests" --no-throughput \
    --json "$out/latency_$r.json" "${extra[@]}" >"$out/latency_$r.log" 2>&1
  echo "[bench_knn] repetition $r of $reps: batch throughput, Serial vs OpenMP ($threads threads)"
  OMP_NUM_THREADS=$threads "$bench" --sessions "$sessions" --no-latency \
    --json "$out/throughput_$r.json" "${extra[@]}" >"$out/throughput_$r.log" 2>&1
done

/usr/bin/python3 - "$out" "$reps" <<'EOF'
import json, pathlib, statistics, sys
out, reps = pathlib.Path(sys.argv[1]), int(sys.argv[2])
lat = [json.loads((out / f"latency_{r}.json").read_text()) for r in range(1, reps + 1)]
thr = [json.loads((out / f"throughput_{r}.json").read_text()) for r in range(1, reps + 1)]
med = statistics.median
head = lat[0]
print(f"\nSynthetic sessions: |V| {head['items']:,}, {head['ops']} operations, Zipf {head['zipf']}, mean {head['mean_length']} "
      f"macro items x {head['micro_mean']} micro-behaviors, revisit {head['revisit']}, max_length {head['max_length']}, "
      f"seed {head['seed']}; {head['requests']} timed requests (+{head['warmup']} warm-up); medians of {reps} repetitions.\n")
print("| indexed sessions | entries / session | micro-behaviors indexed | build_knn_index | index arrays | bytes / micro-behavior | bytes / entry | allocated bytes / entry |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for i, run in enumerate(head["runs"]):
    rs = [l["runs"][i] for l in lat]
    print(f"| {run['sessions']:,} | {run['entries'] / run['sessions']:.2f} | {run['events']:,} | "
          f"{med(r['index_build_s'] for r in rs):.2f} s | {run['index_bytes'] / 2**20:.1f} MiB | {run['bytes_per_event']:.2f} | "
          f"{run['bytes_per_entry']:.2f} | {run['index_allocated_bytes'] / run['entries']:.2f} |")
print("\n| model | sessions | fit | p50 | p90 | p99 | mean | p99 worst rep | p99 CPU time | calls preempted > 0.1 ms | RSS growth of fit |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for i, run in enumerate(head["runs"]):
    for j, m in enumerate(run["models"]):
        ms = [l["runs"][i]["models"][j] for l in lat]
        print(f"| {m['model']} | {run['sessions']:,} | {med(x['fit_s'] for x in ms):.2f} s | {med(x['p50_ms'] for x in ms):.3f} ms | "
              f"{med(x['p90_ms'] for x in ms):.3f} ms | {med(x['p99_ms'] for x in ms):.3f} ms | {med(x['mean_ms'] for x in ms):.3f} ms | "
              f"{max(x['p99_ms'] for x in ms):.3f} ms | {med(x['cpu_p99_ms'] for x in ms):.3f} ms | "
              f"{med(x['preempted_pct'] for x in ms):.1f}% | {med(x['rss_growth_mib'] for x in ms):.0f} MiB |")
    if "e2e" in run:
        es = [l["runs"][i]["e2e"] for l in lat]
        print(f"| {run['e2e']['model']} end to end (batch build + top_k) | {run['sessions']:,} | | {med(x['p50_ms'] for x in es):.3f} ms | "
              f"{med(x['p90_ms'] for x in es):.3f} ms | {med(x['p99_ms'] for x in es):.3f} ms | {med(x['mean_ms'] for x in es):.3f} ms | "
              f"{max(x['p99_ms'] for x in es):.3f} ms | {med(x['cpu_p99_ms'] for x in es):.3f} ms | | |")
t0 = thr[0]
print(f"\n| model | sessions | batch {t0['runs'][0]['models'][0]['batch']}, Serial | OpenMP, {t0['openmp_threads']} threads | speed-up |")
print("|---|---:|---:|---:|---:|")
for i, run in enumerate(t0["runs"]):
    for j, m in enumerate(run["models"]):
        ms = [t["runs"][i]["models"][j] for t in thr]
        s, o = med(x["serial_sessions_per_s"] for x in ms), med(x["openmp_sessions_per_s"] for x in ms)
        print(f"| {m['model']} | {run['sessions']:,} | {s:,.0f} sessions/s | {o:,.0f} sessions/s | {o / s:.2f}x |")
print(f"\npeak resident memory: {max(l['peak_rss_mib'] for l in lat):.0f} MiB (latency runs), "
      f"{max(t['peak_rss_mib'] for t in thr):.0f} MiB (throughput runs)")
EOF
