#!/usr/bin/env bash
# Data-parallel training on this machine (issue 17; docs/RESULTS.md): 1 rank x 2 threads against
# 2 ranks x 1 thread, alternated, medians; then the allreduce of the gradient store at the paper's
# item counts (75,160: JD Computers; 183,562: trivago), and the projection to 2-64 nodes.
#
#   scripts/bench_mpi.sh [--build DIR] [--rounds 3] [--steps 8] [--items 3758] [--out DIR]
#
# Needs bench_data_parallel (built where CMake finds an MPI, with -DEMBSR_ENABLE_BENCHMARKS=ON).
# Writes DIR/runs.jsonl (one JSON line per run) and prints a summary.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"; rounds=3; steps=8; items=3758; out="$root/out/bench-mpi"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --items) items="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "bench_mpi.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
bench="$build/benchmarks/bench_data_parallel"
[[ -x "$bench" ]] || { echo "bench_mpi.sh: $bench not built (needs MPI and -DEMBSR_ENABLE_BENCHMARKS=ON)" >&2; exit 1; }
mkdir -p "$out"; : > "$out/runs.jsonl"
export OMP_PROC_BIND=false OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun=(mpirun --oversubscribe --bind-to none)  # Open MPI binds each rank to one core by default (np <= 2): its threads would share it
run() {  # run RANKS THREADS ARGS...
  local ranks="$1" threads="$2"; shift 2
  OMP_NUM_THREADS="$threads" timeout 900 "${mpirun[@]}" -np "$ranks" "$bench" "$@" | tee /dev/stderr | tail -n 1 >> "$out/runs.jsonl"
}
for r in $(seq 1 "$rounds"); do
  run 1 2 --items "$items" --steps "$steps"
  run 2 1 --items "$items" --steps "$steps"
done
for v in 75160 183562; do
  run 2 1 --items "$v" --allreduce-only --allreduce-repeats 20
done
python3 - "$out/runs.jsonl" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
train = [r for r in runs if r["sessions_per_second"] > 0]
print("\n| ranks x threads | sessions/s (median) | step s | peak RSS per rank | peak RSS all ranks | allreduce of the store |")
print("|---|---|---|---|---|---|")
for ranks, threads in ((1, 2), (2, 1)):
    rs = [r for r in train if r["ranks"] == ranks and r["threads"] == threads]
    if not rs:
        continue
    med = lambda k: statistics.median(r[k] for r in rs)
    print(f"| {ranks} x {threads} | {med('sessions_per_second'):.0f} ({', '.join(str(round(r['sessions_per_second'])) for r in rs)}) "
          f"| {med('step_seconds'):.3f} | {med('peak_rss_mib_max'):.0f} MiB | {med('peak_rss_mib_total'):.0f} MiB "
          f"| {1e3 * med('allreduce_seconds'):.1f} ms |")
print("\n| |V| | parameters | bytes per step | allreduce, 2 ranks on this machine |")
print("|---|---|---|---|")
for r in runs:
    if r["sessions_per_second"] == 0:
        print(f"| {r['items']:,} | {r['parameters']:,} | {r['allreduce_bytes'] / 1e6:.1f} MB | {1e3 * r['allreduce_seconds']:.1f} ms |")
EOF
