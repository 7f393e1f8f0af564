#!/usr/bin/env bash
# How training and inference cost grows with the item table |V|, the session length and the batch
# size, and what OpenMP's threads buy over Kokkos::Serial. Prints Markdown tables, writes the raw
# JSON lines and a PNG plot of throughput against |V|.
#
#   scripts/bench_scaling.sh [--threads 2] [--steps 4] [--out out/bench-scaling] [--portable]
#
# Grid: |V| in {6,000, 75,160, 183,562} x session length t <= {10, 25, 50} x batch {64, 512}, d 100,
# synthetic sessions (benchmarks/synthetic_sessions.hpp: lengths uniform in 1..t).
#   training:  bench_train_step, median step over --steps steps after the first;
#   inference: bench_inference, end to end with top-20 (batch-1 p50 and batch-B throughput), all on
#              --threads threads (the headline 1-thread batch-1 numbers come from scripts/bench_cpu.sh).
# Speedup: B 512, t <= 40, |V| 75,160 on Kokkos::Serial (BLAS on 1 thread too), OpenMP on 1 thread
# and OpenMP on --threads threads.
# Builds in build-native/ (-march=native), or in build/ with --portable.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
threads=2
steps=4
out="$root/out/bench-scaling"
build="$root/build-native"
native=(-- -DEMBSR_NATIVE=ON)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --portable) build="$root/build"; native=(); shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench_scaling.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
"$root/scripts/setup.sh" --build-dir "$build" --target bench_train_step --target bench_inference "${native[@]}" >/dev/null
mkdir -p "$out"
bench="$build/benchmarks"
# OpenMP's default waiting (spin, then sleep): passive waiting would add a thread wake-up to every
# kernel of a batch-1 request.
export OMP_PROC_BIND=false
unset OMP_WAIT_POLICY
json() { grep -E '^\{"impl"' || true; }

: >"$out/train.jsonl"
: >"$out/infer.jsonl"
for items in 6000 75160 183562; do
  for length in 10 25 50; do
    for batch in 64 512; do
      echo "[bench_scaling] |V| $items, t <= $length, B $batch"
      OMP_NUM_THREADS=$threads "$bench/bench_train_step" --batch "$batch" --items "$items" --max-length "$length" \
        --d 100 --steps $((steps + 1)) | json >>"$out/train.jsonl"
      OMP_NUM_THREADS=$threads "$bench/bench_inference" --items "$items" --max-length "$length" --d 100 \
        --calls 100 --batch "$batch" --batches 3 | json >>"$out/infer.jsonl"
    done
  done
done

echo "[bench_scaling] speedup: Serial, OpenMP 1 thread, OpenMP $threads threads"
: >"$out/speedup.jsonl"
common=(--batch 512 --items 75160 --max-length 40 --d 100 --steps $((steps + 1)))
OMP_NUM_THREADS=1 "$bench/bench_train_step" "${common[@]}" --space serial | json >>"$out/speedup.jsonl"
OMP_NUM_THREADS=1 "$bench/bench_train_step" "${common[@]}" | json >>"$out/speedup.jsonl"
OMP_NUM_THREADS=$threads "$bench/bench_train_step" "${common[@]}" | json >>"$out/speedup.jsonl"

/usr/bin/python3 - "$out" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
load = lambda name: [json.loads(l) for l in (out / name).read_text().splitlines() if l.strip()]
train, infer, speed = load("train.jsonl"), load("infer.jsonl"), load("speedup.jsonl")
key = lambda r: (r["items"], r["max_length"], r["batch"])
inf = {key(r): r for r in infer}
lines = []
p = lines.append
p(f"Training step and inference, d 100, {train[0]['threads']} threads, host GEMM {train[0].get('gemm', '?')}, "
  "synthetic sessions (lengths uniform in 1..t)\n")
p("| \\|V\\| | t <= | batch | train step | train sessions/s | scoring GFLOP/s | train peak RSS | "
  "inference batch-1 p50 | inference sessions/s | inference peak RSS |")
p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in sorted(train, key=key):
    i = inf.get(key(r), {})
    p(f"| {r['items']:,} | {r['max_length']} | {r['batch']} | {1e3 * r['step_seconds_median']:.1f} ms | "
      f"{r['sessions_per_second']:,.0f} | {r['scoring_gflops']:.1f} | {r['peak_rss_mib']:.0f} MiB | "
      f"{i.get('batch1_p50_ms', float('nan')):.2f} ms | {i.get('batch_sessions_per_second', float('nan')):,.0f} | "
      f"{i.get('peak_rss_mib', float('nan')):.0f} MiB |")
p("")
p("Training step, B 512, t <= 40, |V| 75,160, d 100:\n")
p("| backend | threads | step | sessions/s | speedup over Serial |")
p("|---|---:|---:|---:|---:|")
base = speed[0]["step_seconds_median"]
for r in speed:
    p(f"| {r['backend']} | {r['threads']} | {1e3 * r['step_seconds_median']:.1f} ms | {r['sessions_per_second']:,.0f} | "
      f"{base / r['step_seconds_median']:.2f}x |")
text = "\n".join(lines)
(out / "scaling.md").write_text(text + "\n")
print(text)
# Plot data: throughput against |V| at t <= 25, one column per series.
with open(out / "throughput.dat", "w") as f:
    f.write("# items train_B64 train_B512 infer_B64 infer_B512 (sessions/s, t <= 25)\n")
    for items in sorted({r["items"] for r in train}):
        row = [items]
        for kind, data in (("train", {key(r): r["sessions_per_second"] for r in train}),
                           ("infer", {key(r): r.get("batch_sessions_per_second", 0) for r in infer})):
            for b in (64, 512):
                row.append(data.get((items, 25, b), 0))
        f.write(" ".join(str(x) for x in row) + "\n")
EOF

if command -v gnuplot >/dev/null; then
  gnuplot <<EOF
set terminal pngcairo size 900,480 noenhanced
set output "$out/throughput-vs-items.png"
set title "embsr on $(nproc) CPU threads ($threads used): throughput against the item table size (d 100, t <= 25)"
set logscale xy
set xlabel "items |V|"
set ylabel "sessions per second"
set grid
set key outside right
set xtics ("6k" 6000, "75k" 75160, "184k" 183562)
plot "$out/throughput.dat" using 1:2 with linespoints title "train, B 64", \
     "" using 1:3 with linespoints title "train, B 512", \
     "" using 1:4 with linespoints title "inference, B 64", \
     "" using 1:5 with linespoints title "inference, B 512"
EOF
  echo "[bench_scaling] plot: $out/throughput-vs-items.png"
fi
