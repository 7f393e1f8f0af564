#!/usr/bin/env python3
"""Compares two embsr-train runs (the data-parallel test, tests/cli/mpi_training.sh): the loss of
every step, the parameters of a checkpoint, the test metrics. Exit 1 with what differs.

    compare_runs.py losses A.csv B.csv [--rtol R] [--min-steps N]   --loss-log files (step,loss); the
                                                                    steps both hold must agree
    compare_runs.py params A.ckpt B.ckpt [--rtol R] [--ignore RE]   the parameter values of two checkpoints
    compare_runs.py metrics A.json B.json [--atol A]                metrics.json: every test H@K, M@K

Relative tolerances: losses |a - b| <= R |a| step by step; parameters ||a - b||_2 <= R ||a||_2. Not a
per-coordinate test: the gradients of N ranks are summed in another order than one process's, and
AMSGrad divides each coordinate's step by the root of its own squared-gradient history, so a coordinate
whose gradient is at rounding level moves by up to the learning rate either way (seen: 13 of 57,680
coordinates differ by 5e-6 after 22 steps while the whole vector agrees to 4e-7). The largest
coordinate difference is printed too. --ignore leaves out entries whose exact gradient is zero (a
multi-head attention's key bias b_K: q.(k_j + b_K) shifts every score of a query by the same q.b_K,
which the softmax removes), so that their value is only rounding noise amplified by AMSGrad, in one
process as in N, and does not change any score.
"""
import argparse
import os
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from craft_checkpoint import read_string, skip_vocabularies_and_entries  # noqa: E402  (the format's reader)


def fail(message):
    sys.exit("compare_runs.py: " + message)


def read_losses(path):
    with open(path) as f:
        lines = f.read().split("\n")
    if not lines or lines[0] != "step,loss":
        fail(f"{path}: not a --loss-log file (header {lines[0]!r})")
    out = {}
    for line in lines[1:]:
        if line:
            step, loss = line.split(",")
            out[int(step)] = float(loss)
    return out


def read_parameters(path):
    """[(name, values)] of every parameter entry of a version-3 checkpoint (checkpoint_format.hpp)."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:8] != b"EMBSRCKP":
        fail(f"{path}: not an embsr checkpoint")
    (version,) = struct.unpack_from("<I", b, 8)
    if version != 3:
        fail(f"{path}: checkpoint version {version}, this reader knows 3")
    _, pos = read_string(b, 24)  # the model's name
    (count,) = struct.unpack_from("<Q", b, pos)
    pos += 8
    for _ in range(2 * count):  # option keys and values
        _, pos = read_string(b, pos)
    first_value = skip_vocabularies_and_entries(b, pos)
    for _ in range(2):  # the vocabularies again, to read the entries' names and offsets
        (n,) = struct.unpack_from("<Q", b, pos)
        pos += 8
        for _ in range(n):
            _, pos = read_string(b, pos)
    (n,) = struct.unpack_from("<Q", b, pos)
    pos += 8
    entries = []
    for _ in range(n):
        name, pos = read_string(b, pos)
        offset, rows, cols = struct.unpack_from("<3Q", b, pos)
        pos += 24
        entries.append((name.decode(), offset, rows * cols))
    (total,) = struct.unpack_from("<Q", b, first_value - 8)
    values = struct.unpack_from(f"<{total}f", b, first_value)
    return [(name, values[offset:offset + size]) for name, offset, size in entries]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["losses", "params", "metrics"])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--rtol", type=float, default=1e-5)
    p.add_argument("--atol", type=float, default=0.0)
    p.add_argument("--min-steps", type=int, default=1)
    p.add_argument("--ignore", default="", help="params: entries whose name matches this regex are not compared")
    args = p.parse_args()
    if args.what == "losses":
        a, b = read_losses(args.a), read_losses(args.b)
        common = sorted(set(a) & set(b))
        if len(common) < args.min_steps:
            fail(f"{len(common)} steps in both logs, expected at least {args.min_steps}")
        worst = max(abs(a[s] - b[s]) / abs(a[s]) for s in common)
        bad = [s for s in common if abs(a[s] - b[s]) > args.rtol * abs(a[s])]
        if bad:
            s = bad[0]
            fail(f"losses differ at step {s}: {a[s]!r} vs {b[s]!r} (rtol {args.rtol})")
        print(f"losses: {len(common)} steps (from {common[0]} to {common[-1]}) agree, largest relative difference {worst:.2e}")
    elif args.what == "params":
        ea, eb = read_parameters(args.a), read_parameters(args.b)
        if [(n, len(v)) for n, v in ea] != [(n, len(v)) for n, v in eb]:
            fail("the two checkpoints have different parameter entries")
        ignored = [n for n, _ in ea if args.ignore and re.fullmatch(args.ignore, n)]
        a = [x for n, v in ea if n not in ignored for x in v]
        b = [x for n, v in eb if n not in ignored for x in v]
        norm = sum(x * x for x in a) ** 0.5
        diff = sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5
        largest = max(abs(x - y) for x, y in zip(a, b))
        if not diff <= args.rtol * norm:
            fail(f"parameters differ: ||a - b|| = {diff:.3e} > {args.rtol} * ||a|| = {args.rtol * norm:.3e}"
                 f" (largest coordinate difference {largest:.3e})")
        print(f"parameters: {len(a)} values agree, ||a - b|| / ||a|| = {diff / norm:.2e}, "
              f"largest coordinate difference {largest:.2e}" + (f" (not compared: {', '.join(ignored)})" if ignored else ""))
    else:
        import json
        with open(args.a) as f:
            a = json.load(f)["test"]
        with open(args.b) as f:
            b = json.load(f)["test"]
        keys = sorted(k for k in a if k.startswith(("H@", "M@")))
        if not keys:
            fail(f"{args.a}: no test metrics")
        for k in keys:
            if abs(a[k] - b[k]) > args.atol:
                fail(f"test {k}: {a[k]} vs {b[k]} (atol {args.atol})")
        print(f"test metrics: {', '.join(keys)} agree to {args.atol}")


if __name__ == "__main__":
    main()
