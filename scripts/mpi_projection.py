#!/usr/bin/env python3
"""Projected step time and parallel efficiency of data-parallel training on 2 to 64 nodes, from a
measured step and the ring-allreduce cost model (docs/RESULTS.md, issue 17). A projection, not a
measurement: it says what the network costs, given what one node computes.

    mpi_projection.py --step-seconds T --parameters P [--batch B] [--links 25,100,400]
                      [--latency-us 5] [--nodes 2,4,8,16,32,64] [--markdown]

Model (Patarasuk and Yuan's bandwidth-optimal ring allreduce, as in Horovod and NCCL): N nodes sum
a buffer of S = 4 P bytes in 2 (N - 1) steps, each sending S / N bytes over each node's link:
    t_allreduce(N) = 2 (N - 1) / N * S / bandwidth + 2 (N - 1) * latency
Strong scaling (what embsr-train does: the global batch B is split over the nodes, the same
training as one process): t_step(N) = T / N + t_allreduce(N), efficiency = T / (N t_step(N)).
Weak scaling (each node keeps B sessions, the global batch grows to N B, another training):
t_step(N) = T + t_allreduce(N), efficiency = T / t_step(N).
Assumed, and said in RESULTS: compute divides perfectly over the nodes (T / N: optimistic at small
per-node batches, where the kernels run less efficiently), no overlap of the allreduce with the
backward pass (embsr sums the whole store after the backward: pessimistic), full link bandwidth.
"""
import argparse


def allreduce_seconds(nodes, size_bytes, gbit_per_s, latency_s):
    if nodes == 1:
        return 0.0
    bandwidth = gbit_per_s * 1e9 / 8
    return 2 * (nodes - 1) / nodes * size_bytes / bandwidth + 2 * (nodes - 1) * latency_s


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--step-seconds", type=float, required=True, help="measured step time of one node at batch B")
    p.add_argument("--parameters", type=int, required=True, help="floats in the gradient store")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--links", default="25,100,400", help="link speeds in Gb/s")
    p.add_argument("--latency-us", type=float, default=5.0, help="per-message latency in microseconds")
    p.add_argument("--nodes", default="2,4,8,16,32,64")
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args()
    if a.step_seconds <= 0 or a.parameters <= 0:
        p.error("--step-seconds and --parameters must be positive")
    links = [float(x) for x in a.links.split(",")]
    nodes = [int(x) for x in a.nodes.split(",")]
    size = 4 * a.parameters
    latency = a.latency_us * 1e-6
    print(f"one node: {a.step_seconds:.3f} s per step of {a.batch} sessions; gradient store {a.parameters:,} floats "
          f"= {size / 1e6:.1f} MB; latency {a.latency_us:g} us per message")
    header = ["nodes"] + [f"{g:g} Gb/s: allreduce, strong step (eff.), weak eff." for g in links]
    rows = []
    for n in nodes:
        row = [str(n)]
        for g in links:
            t_ar = allreduce_seconds(n, size, g, latency)
            strong = a.step_seconds / n + t_ar
            strong_eff = a.step_seconds / (n * strong)
            weak_eff = a.step_seconds / (a.step_seconds + t_ar)
            row.append(f"{1e3 * t_ar:.1f} ms, {1e3 * strong:.1f} ms ({100 * strong_eff:.0f}%), {100 * weak_eff:.0f}%")
        rows.append(row)
    if a.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in [header] + rows:
            print("  ".join(r))


if __name__ == "__main__":
    main()
