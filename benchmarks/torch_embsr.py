#!/usr/bin/env python3
"""Batched PyTorch EMBSR: the model our C++ library computes, vectorised over the batch, to time a
PyTorch training step (and inference) side by side with ours on CPU and CUDA.

The model is the one of docs/MODEL.md as tests/oracle/embsr_oracle.py computes it (that oracle is
a per-session loop, exact but slow; it matches our C++ to about 1e-9). This file computes the same
function with no per-session Python loop in the forward pass:

  - operation-run GRU: all N operation runs of the batch at once, packed like a PackedSequence
    (runs sorted by length, one time step per iteration), through PyTorch's own GRU kernel
    (torch._VF.gru, i.e. nn.GRU's kernel: cuDNN on CUDA); `--run-gru loop` uses an explicit GRU
    cell loop over the packed time steps instead (at most max-run-length iterations);
  - GGNN messages: per-node / per-macro projections gathered over the flat edge arrays and summed
    into their nodes with index_add;
  - star node: segment means with index_add over node_session, segment softmax through a padded
    [B x c_max] view with -inf fill;
  - attention: only the star's query (position 0, as in the oracle) over padded
    [B x (t_max+1) x d] keys with a mask; relations gathered from the (|O|+1)^2 table;
  - fusion (gate / mlp / fixed), cosine scoring against all items, cross entropy.

Every switch of the oracle is supported: use_gnn, use_run_gru, use_attention, use_relations,
fusion gate|mlp|fixed, gnn_steps >= 0, next_op_mode given|learned, dropout in training mode.

Run with Debian's interpreter (torch + numpy): /usr/bin/python3.

  Check mode (proves that this file computes the same function as the oracle):
    /usr/bin/python3 benchmarks/torch_embsr.py --check DIR [DIR ...] [--threads 1] [--device cuda]
  For each exchange directory (config.json, params/*.npy, batch/*.npy written by a C++ test), it
  loads the directory with the oracle's loader, runs the oracle's forward + backward and ours
  (both GRU implementations; on --device, default cpu) in float64, and prints the max relative error of the scores, the
  loss and every parameter gradient (max|ours - oracle| / max(1, max|oracle|) per tensor). It also
  rebuilds the batch arrays from the directory's raw sessions with this file's port of
  BatchBuilder and checks that they are identical. Exit 1 if any error exceeds 1e-8 (or a batch
  array differs). Dropout in training mode uses the oracle's counter-based multipliers here, so
  the masks are the same as the C++ ones. Nothing is written to the directories.

  Training-step benchmark (float32, forward + backward + Adam(amsgrad=True, lr 1e-3) step):
    /usr/bin/python3 benchmarks/torch_embsr.py --bench --device cpu|cuda [--threads N]
        [--batch 512 --items 183562 --ops 6 --max-length 50 --d 100 --steps 5 --warmup 2
         --seed 2024] [--run-gru packed|loop]
  The synthetic batch follows bench_train_step.cpp (benchmarks/synthetic_sessions.hpp) draw for
  draw (the same SplitMix64 generator, Rng(seed, 0): the same sessions, the same T; see
  synthetic_sessions()), packed on the host into the flat CSR arrays exactly as
  embsr::BatchBuilder does, outside the timed region, and moved to the device once. Config: the C++ defaults (gnn_steps 1, w_k 12, gate fusion, all
  switches on, next_op_mode given so op0 = the next operation), training mode with dropout 0.5
  (PyTorch's native dropout here: same distribution, not the same masks). Parameters ~ N(0, 0.1).
  Each step is timed with torch.cuda.synchronize() on CUDA. Prints one line per step, a summary
  and a final JSON line {"impl": "pytorch", "device", "gpu", "torch", "threads", "batch",
  "items", "d", "max_length", "step_seconds_median", "step_seconds_all", "sessions_per_second",
  "peak_memory_mib" (torch.cuda.max_memory_allocated on CUDA, else the process's ru_maxrss)}.

  Inference benchmark (no grad, no dropout, float32): for a batch of 1 session (a different
  session each call, as benchmarks/bench_inference.cpp) and a batch of --batch sessions, the
  scores of all items + torch.topk(20) with the 20 ids and scores copied to the host:
    /usr/bin/python3 benchmarks/torch_embsr.py --infer --device cpu|cuda [same options; --seed
        defaults to 7 here, bench_inference.cpp's sessions]
  Prints one JSON line per batch size with impl "pytorch-infer": "step_seconds_median" /
  "step_seconds_p99" over --steps calls after --warmup ones, timing the model on a batch already
  on the device, and "end_to_end_seconds_median" / "_p99" that also include packing the batch on
  the host and uploading it (the region bench_inference.cpp times). Percentiles use
  bench_inference.cpp's rule (sorted value at index round(p (n - 1))).
"""

import argparse
import json
import math
import os
import resource
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "tests", "oracle"))
import embsr_oracle as oracle  # noqa: E402  (tests/oracle/embsr_oracle.py)

MASK64 = oracle.MASK64
GOLDEN_GAMMA = oracle.GOLDEN_GAMMA
TOLERANCE = 1e-8


# ---------------------------------------------------------------------------------------------
# Host side: synthetic sessions (bench_train_step.cpp) and the BatchBuilder port
# ---------------------------------------------------------------------------------------------
class SplitMixRng:
    """embsr::Rng (include/embsr/core/random.hpp): sequential SplitMix64 + Lemire's below()."""

    def __init__(self, seed, stream):
        self.state = oracle.stream_key(seed & MASK64, stream & MASK64)

    def next(self):
        self.state = (self.state + GOLDEN_GAMMA) & MASK64
        return oracle.mix64(self.state)

    def below(self, n):
        if n == 0:
            return 0
        m = self.next() * n
        hi, lo = m >> 64, m & MASK64
        if lo < n:
            threshold = ((1 << 64) - n) % n  # 2^64 mod n
            while lo < threshold:
                m = self.next() * n
                hi, lo = m >> 64, m & MASK64
        return hi


def synthetic_sessions(batch, items, ops, max_length, seed):
    """The sessions of benchmarks/synthetic_sessions.hpp (bench_train_step, bench_inference): lengths uniform in 1..max_length; each micro-behavior
    stays on the previous item with probability 1/2, else a uniform item; operations uniform;
    next operation and target uniform. Same generator and draw order as the C++ (the two label
    draws are arguments of one call, whose evaluation order C++ leaves unspecified: GCC, which
    builds our benchmark, evaluates them right to left, so the next operation is drawn first)."""
    rng = SplitMixRng(seed, 0)
    sessions = []
    for _ in range(batch):
        t = 1 + rng.below(max_length)
        in_items, in_ops = [], []
        for i in range(t):
            repeat = i > 0 and rng.below(2) == 0
            in_items.append(in_items[-1] if repeat else rng.below(items))
            in_ops.append(rng.below(ops))
        next_op = rng.below(ops)
        target = rng.below(items)
        sessions.append((in_items, in_ops, target, next_op))
    return sessions


def read_sessions(path):
    """The exchange file of bench_train_step --write-sessions (synthetic_sessions.hpp: write_sessions):
    a header "# items V ops O", then per line input items, input operations, target, next
    operation, tab-separated (lists space-separated). Returns (sessions, V, O)."""
    sessions, items, ops = [], None, None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if n == 1 and line.startswith("#"):
                head = line[1:].split()
                items, ops = int(head[head.index("items") + 1]), int(head[head.index("ops") + 1])
                continue
            cols = line.split("\t")
            if len(cols) != 4:
                raise SystemExit(f"torch_embsr: {path}:{n}: expected 4 tab-separated columns, got {len(cols)}")
            in_items, in_ops = [int(x) for x in cols[0].split()], [int(x) for x in cols[1].split()]
            if not in_items or len(in_items) != len(in_ops):
                raise SystemExit(f"torch_embsr: {path}:{n}: items and operations must be non-empty and equally long")
            sessions.append((in_items, in_ops, int(cols[2]), int(cols[3])))
    if items is None:
        raise SystemExit(f"torch_embsr: {path}:1: missing header '# items V ops O'")
    return sessions, items, ops


def build_batch(sessions, num_ops, next_op_mode="given"):
    """embsr::BatchBuilder in numpy: flat, batch-global CSR arrays (the oracle's BATCH_ARRAYS).
    sessions: list of (items, ops, target, next_op). Per session: macro items merge consecutive
    equal items (run_begin / run_end = their micro range); nodes = distinct items in order of
    first occurrence; one edge per consecutive macro pair, in time order; a node's in- / out-edge
    list = the edges ending / starting at it, ascending."""
    out = {name: [] for name in oracle.BATCH_ARRAYS}
    for name in ("micro_offsets", "macro_offsets", "node_offsets", "edge_offsets", "node_in_offsets",
                 "node_out_offsets"):
        out[name].append(0)
    for b, (items, ops, target, next_op) in enumerate(sessions):
        m0, k0, c0, e0 = (out[n][-1] for n in ("micro_offsets", "macro_offsets", "node_offsets", "edge_offsets"))
        node_of = {}
        for v in items:
            if v not in node_of:
                node_of[v] = len(node_of)
        out["micro_items"] += list(items)
        out["micro_ops"] += list(ops)
        out["micro_alias"] += [c0 + node_of[v] for v in items]
        macro = []  # [item, begin, end] with global micro indices
        for i, v in enumerate(items):
            if macro and macro[-1][0] == v:
                macro[-1][2] = m0 + i + 1
            else:
                macro.append([v, m0 + i, m0 + i + 1])
        for v, rb, re in macro:
            out["macro_items"].append(v)
            out["macro_alias"].append(c0 + node_of[v])
            out["run_begin"].append(rb)
            out["run_end"].append(re)
        c = len(node_of)
        out["node_items"] += list(node_of)  # dict order = first occurrence
        out["node_session"] += [b] * c
        n = len(macro)
        src = [node_of[macro[k][0]] for k in range(n - 1)]
        dst = [node_of[macro[k + 1][0]] for k in range(n - 1)]
        for k in range(n - 1):
            out["edge_src"].append(c0 + src[k])
            out["edge_dst"].append(c0 + dst[k])
            out["edge_src_macro"].append(k0 + k)
            out["edge_dst_macro"].append(k0 + k + 1)
        for kind, ends in (("in", dst), ("out", src)):
            lists = [[] for _ in range(c)]
            for k, v in enumerate(ends):
                lists[v].append(e0 + k)
            for v in range(c):
                out[f"node_{kind}_edges"] += lists[v]
                out[f"node_{kind}_offsets"].append(out[f"node_{kind}_offsets"][-1] + len(lists[v]))
        out["targets"].append(target)
        out["next_ops"].append(next_op)
        out["op0"].append(next_op if next_op_mode == "given" else num_ops)
        out["micro_offsets"].append(m0 + len(items))
        out["macro_offsets"].append(k0 + n)
        out["node_offsets"].append(c0 + c)
        out["edge_offsets"].append(e0 + n - 1)
    return {name: np.asarray(v, dtype=np.int64) for name, v in out.items()}


def sessions_of_batch(bt):
    """The raw sessions (items, ops, target, next_op) of a flat batch."""
    mo = bt["micro_offsets"]
    return [(bt["micro_items"][mo[b]:mo[b + 1]].tolist(), bt["micro_ops"][mo[b]:mo[b + 1]].tolist(),
             int(bt["targets"][b]), int(bt["next_ops"][b])) for b in range(len(bt["targets"]))]


def prepare_batch(cfg, bt, device):
    """Moves a flat batch (numpy int arrays) to `device` once, with the derived index tensors the
    batched forward needs (padding maps, packing of the operation runs). Host-side work only."""
    O = cfg["num_ops"]
    B = len(bt["targets"])
    mo, no = bt["micro_offsets"].astype(np.int64), bt["node_offsets"].astype(np.int64)
    t_len, c_len = np.diff(mo), np.diff(no)
    T, C = int(mo[-1]), int(no[-1])
    t_max, c_max = int(t_len.max()), int(c_len.max())
    micro_session = np.repeat(np.arange(B), t_len)
    micro_pos = np.arange(T) - mo[micro_session]
    node_session = np.repeat(np.arange(B), c_len)
    node_slot = np.arange(C) - no[node_session]

    # Attention: padded [B x t_max] gather map into the flat micro rows (T = an extra zero row),
    # validity mask and relation rows over positions 0..t_max (o_0 = op0).
    att_gather = np.full((B, t_max), T, dtype=np.int64)
    att_gather[micro_session, micro_pos] = np.arange(T)
    att_mask = np.zeros((B, t_max + 1), dtype=bool)
    att_mask[:, 0] = True
    att_mask[micro_session, micro_pos + 1] = True
    op0 = bt["op0"].astype(np.int64)
    pair_ops = np.zeros((B, t_max + 1), dtype=np.int64)
    pair_ops[:, 0] = op0
    pair_ops[micro_session, micro_pos + 1] = bt["micro_ops"]
    pair_rel = op0[:, None] * (O + 1) + pair_ops

    # Operation runs packed as a PackedSequence: runs sorted by length (descending, stable), step s
    # holds the first batch_sizes[s] sorted runs' s-th operation.
    run_len = (bt["run_end"] - bt["run_begin"]).astype(np.int64)
    order = np.argsort(-run_len, kind="stable")
    r_max = int(run_len.max())
    batch_sizes = np.array([(run_len > s).sum() for s in range(r_max)], dtype=np.int64)
    packed_micro = np.concatenate([bt["run_begin"][order[:batch_sizes[s]]] + s for s in range(r_max)])
    unsorted = np.empty_like(order)
    unsorted[order] = np.arange(len(order))

    def dev(a):
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.int64), device=device)

    out = {name: dev(bt[name]) for name in ("micro_items", "micro_ops", "micro_alias", "node_items", "edge_src",
                                            "edge_dst", "edge_src_macro", "edge_dst_macro", "targets", "op0")}
    out.update({
        "B": B, "T": T, "N": len(run_len), "C": C, "t_max": t_max, "c_max": c_max,
        "node_session": dev(node_session), "node_slot": dev(node_slot), "node_counts": dev(c_len),
        "last_micro": dev(mo[1:] - 1),
        "att_gather": dev(att_gather), "att_mask": torch.as_tensor(att_mask, device=device),
        "pair_rel": dev(pair_rel),
        "packed_ops": dev(bt["micro_ops"][packed_micro]),
        "packed_batch_sizes": torch.as_tensor(batch_sizes, dtype=torch.int64),  # stays on the CPU (as nn.GRU wants)
        "packed_batch_sizes_list": batch_sizes.tolist(),
        "packed_unsorted": dev(unsorted),
    })
    return out


# ---------------------------------------------------------------------------------------------
# The batched model
# ---------------------------------------------------------------------------------------------
def _linear(x, W, b):
    return F.linear(x, W, b.reshape(-1))


def _run_gru(P, bt, x, impl):
    """MODEL.md 3.1 for all runs at once: x = packed op embeddings [T x d]; returns the last
    state of every run, [N x d] in macro order (PyTorch GRU convention, h0 = 0)."""
    W_ih, W_hh, b_ih, b_hh = P["run_gru.W_ih"], P["run_gru.W_hh"], P["run_gru.b_ih"], P["run_gru.b_hh"]
    N, d = bt["N"], x.shape[1]
    if impl == "packed":
        hx = x.new_zeros(1, N, d)
        _, h_n = torch._VF.gru(x, bt["packed_batch_sizes"], hx, [W_ih, W_hh, b_ih.reshape(-1), b_hh.reshape(-1)],
                               True, 1, 0.0, torch.is_grad_enabled(), False)
        h = h_n[0]
    elif impl == "loop":
        gi_all = _linear(x, W_ih, b_ih)  # input projections of every step at once
        h = x.new_zeros(N, d)
        offset = 0
        for n in bt["packed_batch_sizes_list"]:
            gi, gh = gi_all[offset:offset + n], _linear(h[:n], W_hh, b_hh)
            offset += n
            r = torch.sigmoid(gi[:, :d] + gh[:, :d])
            z = torch.sigmoid(gi[:, d:2 * d] + gh[:, d:2 * d])
            nn_ = torch.tanh(gi[:, 2 * d:] + r * gh[:, 2 * d:])
            h = torch.cat([(1 - z) * nn_ + z * h[:n], h[n:]], dim=0)
    else:
        raise ValueError(f"run GRU implementation '{impl}' is not 'packed' or 'loop'")
    return h[bt["packed_unsorted"]]


def _ggnn_step(P, s, h, hrun, bt):
    """MODEL.md 3.2-3.3 over all nodes / edges of the batch. W [h_nb ; hrun] is split into the
    node part (projected per node, gathered per edge) and the run part (per macro position)."""
    d = h.shape[1]
    W_in, W_out = P[f"ggnn{s}.W_in"], P[f"ggnn{s}.W_out"]
    msg_in = (h @ W_in[:, :d].t())[bt["edge_src"]] + P[f"ggnn{s}.b_in"].reshape(-1)
    msg_out = (h @ W_out[:, :d].t())[bt["edge_dst"]] + P[f"ggnn{s}.b_out"].reshape(-1)
    if hrun is not None:
        msg_in = msg_in + (hrun @ W_in[:, d:].t())[bt["edge_src_macro"]]
        msg_out = msg_out + (hrun @ W_out[:, d:].t())[bt["edge_dst_macro"]]
    a_in = h.new_zeros(h.shape).index_add(0, bt["edge_dst"], msg_in)
    a_out = h.new_zeros(h.shape).index_add(0, bt["edge_src"], msg_out)
    gi = _linear(torch.cat([a_in, a_out], dim=1), P[f"ggnn{s}.W_ih"], P[f"ggnn{s}.b_ih"])
    gh = _linear(h, P[f"ggnn{s}.W_hh"], P[f"ggnn{s}.b_hh"])
    r = torch.sigmoid(gi[:, :d] + gh[:, :d])
    z = torch.sigmoid(gi[:, d:2 * d] + gh[:, d:2 * d])
    n = torch.tanh(gi[:, 2 * d:] + r * gh[:, 2 * d:])
    return (1 - z) * h + z * n  # eq. 8


def _segment_softmax(logits, bt):
    """Softmax of per-node logits [C] within each session, via a padded [B x c_max] view."""
    ns, slot = bt["node_session"], bt["node_slot"]
    dense = logits.new_full((bt["B"], bt["c_max"]), float("-inf")).index_put((ns, slot), logits)
    return torch.softmax(dense, dim=1)[ns, slot]


def _star_step(P, s, h_hat, star, bt):
    """MODEL.md 3.4 for all sessions: star [B x d], h_hat [C x d]."""
    d = h_hat.shape[1]
    ns = bt["node_session"]
    q1 = _linear(h_hat, P[f"star{s}.W_q1"], P[f"star{s}.b_q1"])
    k1 = _linear(star, P[f"star{s}.W_k1"], P[f"star{s}.b_k1"])
    alpha = (q1 * k1[ns]).sum(dim=1, keepdim=True) / math.sqrt(d)
    h_new = (1 - alpha) * h_hat + alpha * star[ns]
    k2 = _linear(h_new, P[f"star{s}.W_k2"], P[f"star{s}.b_k2"])
    q2 = _linear(star, P[f"star{s}.W_q2"], P[f"star{s}.b_q2"])
    beta = _segment_softmax((k2 * q2[ns]).sum(dim=1) / math.sqrt(d), bt)
    star_new = star.new_zeros(star.shape).index_add(0, ns, beta[:, None] * h_new)
    return h_new, star_new


def _dropout(cfg, x, site, mode):
    if not (cfg["training"] and cfg["dropout"] > 0.0):
        return x
    if mode == "oracle":  # the counter-based masks of the C++ / oracle (host-side, for --check)
        mult = oracle.dropout_multipliers(cfg, site, x.shape[0], x.shape[1])
        return x * mult.to(device=x.device, dtype=x.dtype)
    if mode == "native":
        return F.dropout(x, p=cfg["dropout"], training=True)
    raise ValueError(f"dropout mode '{mode}' is not 'oracle' or 'native'")


def model_scores(cfg, P, bt, dropout="oracle", run_gru="packed"):
    """Scores [B x V] of the batch (MODEL.md 3-5). P: name -> tensor; bt: prepare_batch()."""
    d = cfg["d"]
    E, Op = P["item_embedding"], P["op_embedding"]
    B, ns = bt["B"], bt["node_session"]

    # Section 3: sequential-pattern encoder, all sessions' nodes at once.
    h0 = E[bt["node_items"]]  # [C x d]
    star = h0.new_zeros(B, d).index_add(0, ns, h0) / bt["node_counts"].to(h0.dtype)[:, None]
    if cfg["use_gnn"]:
        hrun = None  # None = zero run states (use_run_gru off)
        if cfg["use_run_gru"] and cfg["gnn_steps"] > 0:
            hrun = _run_gru(P, bt, Op[bt["packed_ops"]], run_gru)
        h = h0
        for s in range(cfg["gnn_steps"]):
            h_hat = _ggnn_step(P, s, h, hrun, bt)
            h, star = _star_step(P, s, h_hat, star, bt)
        g = torch.sigmoid(_linear(torch.cat([h0, h], dim=1), P["highway.W_g"], P["highway.b_g"]))
        hf = g * h0 + (1 - g) * h
    else:  # EMBSR-NG
        hf = h0

    # Section 4: dyadic relational encoder, query position 0 only, padded keys.
    x0 = star + Op[bt["op0"]]                                # [B x d]
    xs = hf[bt["micro_alias"]] + Op[bt["micro_ops"]]         # [T x d]
    x_t = xs[bt["last_micro"]]
    if cfg["use_attention"]:
        t1 = bt["t_max"] + 1
        xs_pad = torch.cat([xs, xs.new_zeros(1, d)], dim=0)[bt["att_gather"]]  # [B x t_max x d]
        keys = torch.cat([x0[:, None, :], xs_pad], dim=1) + P["attention.positions"][:t1]
        if cfg["use_relations"]:
            keys = keys + P["attention.relations"][bt["pair_rel"]]
        q = _dropout(cfg, torch.relu(_linear(x0, P["attention.W_Q"], P["attention.b_Q"])), 0, dropout)
        logits = torch.bmm(keys, q[:, :, None])[:, :, 0] / math.sqrt(d)
        att = torch.softmax(logits.masked_fill(~bt["att_mask"], float("-inf")), dim=1)
        z = torch.bmm(att[:, None, :], keys)[:, 0, :]
        ffn = _linear(torch.relu(_linear(z, P["attention.W_1"], P["attention.b_1"])), P["attention.W_2"],
                      P["attention.b_2"])
        ffn = _dropout(cfg, ffn, 1, dropout)
        z_s = F.layer_norm(z + ffn, (d,), P["attention.ln_gamma"].reshape(-1), P["attention.ln_beta"].reshape(-1),
                           1e-5)
    else:  # EMBSR-NS
        z_s = star

    # Section 5: fusion and normalised scoring.
    if cfg["fusion"] == "gate":
        beta = torch.sigmoid(_linear(torch.cat([z_s, x_t], dim=1), P["fusion.W_f"], P["fusion.b_f"]))
        m = beta * z_s + (1 - beta) * x_t
    elif cfg["fusion"] == "fixed":
        beta = cfg["fixed_beta"]
        m = beta * z_s + (1 - beta) * x_t
    elif cfg["fusion"] == "mlp":
        m = _linear(torch.cat([z_s, x_t], dim=1), P["nf.W"], P["nf.b"])
    else:
        raise ValueError(f"fusion '{cfg['fusion']}' is not 'gate', 'mlp' or 'fixed'")
    m_hat = F.normalize(m, dim=1, eps=1e-12)
    e_hat = F.normalize(E, dim=1, eps=1e-12)
    return cfg["w_k"] * (m_hat @ e_hat.t())


def forward_batched(cfg, P, bt, dropout="oracle", run_gru="packed"):
    """(scores [B x V], mean cross-entropy loss): the oracle's forward(cfg, P, bt), batched.
    bt is prepare_batch()'s output. dropout: 'oracle' (the C++ counter-based masks) or 'native'
    (F.dropout). run_gru: 'packed' (PyTorch's GRU kernel) or 'loop' (explicit cell loop)."""
    scores = model_scores(cfg, P, bt, dropout, run_gru)
    return scores, F.cross_entropy(scores, bt["targets"])


# ---------------------------------------------------------------------------------------------
# --check
# ---------------------------------------------------------------------------------------------
def check_directory(directory, device=torch.device("cpu"), impls=("packed", "loop")):
    """Returns (ok, lines): oracle vs batched forward + backward in float64, and the BatchBuilder port."""
    cfg, params, bt = oracle.load_exchange(directory)
    lines, ok = [], True
    flags = ",".join(k for k in ("use_gnn", "use_run_gru", "use_attention", "use_relations") if not cfg[k])
    lines.append(f"{directory}: B={len(bt['targets'])} d={cfg['d']} V={cfg['num_items']} gnn_steps={cfg['gnn_steps']} "
                 f"fusion={cfg['fusion']} training={cfg['training']} dropout={cfg['dropout']} "
                 f"next_op={cfg['next_op_mode']} off=[{flags}]")

    rebuilt = build_batch(sessions_of_batch(bt), cfg["num_ops"], cfg["next_op_mode"])
    bad = [name for name in oracle.BATCH_ARRAYS if not np.array_equal(rebuilt[name], bt[name])]
    lines.append("  batch builder port: " + ("all %d arrays identical" % len(oracle.BATCH_ARRAYS) if not bad
                                             else "DIFFERS in " + ", ".join(bad)))
    ok &= not bad

    ref_scores, ref_loss, ref_grads = oracle.run_oracle(cfg, params, bt)

    def rel(a, b):
        return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b))))) if b.size else 0.0

    prepared = prepare_batch(cfg, bt, device)
    for impl in impls:
        leaves = {name: p.detach().to(device=device, dtype=torch.float64).clone().requires_grad_(True)
                  for name, p in params.items()}
        scores, loss = forward_batched(cfg, leaves, prepared, dropout="oracle", run_gru=impl)
        loss.backward()
        errs = {"scores": rel(scores.detach().cpu().numpy(), ref_scores), "loss": rel(np.array([loss.item()]), ref_loss)}
        for name, p in leaves.items():
            g = p.grad.cpu().numpy() if p.grad is not None else np.zeros(tuple(p.shape))
            errs["grad " + name] = rel(g, ref_grads[name])
        worst = max(errs, key=errs.get)
        passed = all(e <= TOLERANCE for e in errs.values())
        ok &= passed
        lines.append(f"  {device.type} run_gru={impl}: {'PASS' if passed else 'FAIL'}  scores {errs['scores']:.2e}  "
                     f"loss {errs['loss']:.2e}  max grad {max(v for k, v in errs.items() if k.startswith('grad')):.2e}"
                     f" (worst overall: {worst} {errs[worst]:.2e})")
        if impl == impls[0]:
            lines.append("    per-gradient: " + "  ".join(f"{k[5:]} {v:.1e}" for k, v in errs.items()
                                                           if k.startswith("grad")))
    return ok, lines


def main_check(dirs, device):
    all_ok = True
    for directory in dirs:
        try:
            ok, lines = check_directory(directory, device)
        except oracle.OracleError as exc:
            ok, lines = False, [f"{directory}: oracle loader: {exc}"]
        all_ok &= ok
        print("\n".join(lines), flush=True)
    print(f"check: {'PASS' if all_ok else 'FAIL'} ({len(dirs)} directories, tolerance {TOLERANCE:g} relative to "
          f"max(1, max|oracle|) per tensor)")
    return 0 if all_ok else 1


# ---------------------------------------------------------------------------------------------
# --bench / --infer
# ---------------------------------------------------------------------------------------------
def default_config(args, training):
    """embsr::Config defaults at the benchmark's sizes (bench_train_step.cpp sets dropout 0.5)."""
    return {"d": args.d, "gnn_steps": 1, "w_k": 12.0, "num_items": args.items, "num_ops": args.ops,
            "max_length": args.max_length, "next_op_mode": "given", "dropout": 0.5, "dropout_seed": 1,
            "dropout_step": 0, "training": training, "use_relations": True, "use_gnn": True, "use_run_gru": True,
            "use_attention": True, "fusion": "gate", "fixed_beta": 0.5}


def init_params(cfg, seed, device, dtype=torch.float32):
    """Every parameter the config uses (as the C++ model declares them) ~ N(0, 0.1), seeded."""
    gen = torch.Generator().manual_seed(seed)
    shapes = oracle.all_param_shapes(cfg)
    return {name: (torch.randn(shapes[name], generator=gen, dtype=dtype) * 0.1).to(device).requires_grad_(True)
            for name in oracle.used_param_names(cfg)}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mib(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2.0 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _common_json(args, device):
    return {"device": device.type, "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "torch": torch.__version__, "threads": torch.get_num_threads(), "items": args.items, "d": args.d,
            "max_length": args.max_length, "sessions": "file" if args.sessions else "synthetic"}


def _setup(args, training, num_sessions=None):
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch_embsr: --device cuda but CUDA is not available")
    if args.sessions:  # real sessions written by bench_train_step --write-sessions
        sessions, args.items, args.ops = read_sessions(args.sessions)
        if len(sessions) < (num_sessions or args.batch):
            raise SystemExit(f"torch_embsr: {args.sessions} has {len(sessions)} sessions, "
                             f"{num_sessions or args.batch} needed")
    cfg = default_config(args, training)
    t0 = time.perf_counter()
    if not args.sessions:
        sessions = synthetic_sessions(num_sessions or args.batch, args.items, args.ops, args.max_length, args.seed)
    host = build_batch(sessions[:args.batch], args.ops, cfg["next_op_mode"])
    oracle.check_batch(cfg, host)  # the oracle's structural checks: cheap insurance for the port
    setup_s = time.perf_counter() - t0
    return device, cfg, sessions, host, setup_s


def main_bench(args):
    device, cfg, _, host, setup_s = _setup(args, training=True)
    bt = prepare_batch(cfg, host, device)
    # The oracle computes in float64 (its own tensors are created so): time it as the tests run it.
    P = init_params(cfg, args.seed, device, dtype=torch.float64 if args.oracle else torch.float32)
    opt = torch.optim.Adam(list(P.values()), lr=1e-3, amsgrad=True, foreach=(device.type == "cuda"))
    n_par = sum(p.numel() for p in P.values())
    print(f"torch_embsr --bench: B={bt['B']}, t<={args.max_length} (T={bt['T']} micro-behaviors, N={bt['N']} macro, "
          f"C={bt['C']} nodes), |V|={args.items}, |O|={args.ops}, d={args.d}, {n_par} parameters, "
          f"{'float64 (the oracle)' if args.oracle else 'float32'}, "
          f"{device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, run_gru={args.run_gru} "
          f"(host batch build {setup_s:.2f} s)", flush=True)

    times = []
    for i in range(args.warmup + args.steps):
        _sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if args.oracle:  # the test oracle itself: a loop over sessions (tests/oracle/embsr_oracle.py)
            _, loss = oracle.forward(cfg, P, host)
        else:
            _, loss = forward_batched(cfg, P, bt, dropout="native", run_gru=args.run_gru)
        loss.backward()
        opt.step()
        _sync(device)
        sec = time.perf_counter() - t0
        tag = "warmup" if i < args.warmup else "step"
        print(f"  {tag} {i if i < args.warmup else i - args.warmup}: loss {loss.item():.4f}, {sec:.4f} s", flush=True)
        if i >= args.warmup:
            times.append(sec)
    med = float(np.median(times))
    result = {"impl": "pytorch-oracle" if args.oracle else "pytorch", **_common_json(args, device), "batch": bt["B"],
              "step_seconds_median": med,
              "step_seconds_all": times, "sessions_per_second": bt["B"] / med,
              "peak_memory_mib": _peak_memory_mib(device)}
    print(f"median {med:.4f} s/step, {bt['B'] / med:.1f} sessions/s, peak memory {result['peak_memory_mib']:.1f} MiB")
    print(json.dumps(result))
    return 0


def _percentile(values, p):
    """bench_inference.cpp's rule: the sorted value at index round(p (n - 1))."""
    v = sorted(values)
    return v[min(int(p * (len(v) - 1) + 0.5), len(v) - 1)]


def main_infer(args):
    """Batch 1 (one distinct session per call, as bench_inference.cpp) and batch --batch. Two
    timings per call: 'step' = forward + top-k + ids/scores to the host, on a batch already on the
    device; 'end_to_end' = that plus packing the batch on the host and uploading it (the region
    bench_inference.cpp times)."""
    device, cfg, sessions, _, _ = _setup(args, training=False, num_sessions=max(args.batch, args.steps))
    P = {k: v.detach() for k, v in init_params(cfg, args.seed, device).items()}
    k = min(20, args.items)
    results = []
    for size in sorted({1, args.batch}):
        times, e2e = [], []
        with torch.no_grad():
            for i in range(args.warmup + args.steps):
                first = 0 if size > 1 else (i - args.warmup if i >= args.warmup else i) % len(sessions)
                _sync(device)
                t0 = time.perf_counter()
                bt = prepare_batch(cfg, build_batch(sessions[first:first + size], args.ops, cfg["next_op_mode"]), device)
                _sync(device)
                t1 = time.perf_counter()
                values, ids = torch.topk(model_scores(cfg, P, bt, dropout="native", run_gru=args.run_gru), k, dim=1)
                ids, values = ids.cpu(), values.cpu()  # the recommendations reach the host
                _sync(device)
                t2 = time.perf_counter()
                if i >= args.warmup:
                    times.append(t2 - t1)
                    e2e.append(t2 - t0)
        med, p99 = _percentile(times, 0.5), _percentile(times, 0.99)
        e_med, e_p99 = _percentile(e2e, 0.5), _percentile(e2e, 0.99)
        print(f"torch_embsr --infer: batch {size}: median {med * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms, "
              f"{size / med:.1f} sessions/s; with host batch build + upload: median {e_med * 1e3:.3f} ms, "
              f"p99 {e_p99 * 1e3:.3f} ms ({device}, {torch.get_num_threads()} threads, {args.steps} calls)", flush=True)
        results.append({"impl": "pytorch-infer", **_common_json(args, device), "batch": size, "top_k": k,
                        "step_seconds_median": med, "step_seconds_p99": p99, "step_seconds_all": times,
                        "sessions_per_second": size / med, "end_to_end_seconds_median": e_med,
                        "end_to_end_seconds_p99": e_p99, "end_to_end_sessions_per_second": size / e_med,
                        "peak_memory_mib": _peak_memory_mib(device)})
    for r in results:
        print(json.dumps(r))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", nargs="+", metavar="DIR", help="compare with the oracle on exchange directories")
    mode.add_argument("--bench", action="store_true", help="time training steps")
    mode.add_argument("--infer", action="store_true", help="time inference (scores + top-20)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--items", type=int, default=183562)
    ap.add_argument("--ops", type=int, default=6)
    ap.add_argument("--max-length", type=int, default=50)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--sessions", default=None, metavar="FILE",
                    help="time these sessions (bench_train_step --write-sessions) instead of synthetic ones; "
                         "sets --items and --ops from the file's header")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None,
                    help="sessions and parameters (default 2024 for --bench as bench_train_step, 7 for --infer as "
                         "bench_inference)")
    ap.add_argument("--oracle", action="store_true",
                    help="--bench: time the test oracle's forward (tests/oracle/embsr_oracle.py, one session at a "
                         "time, float64 as the tests run it) instead of the batched float32 model")
    ap.add_argument("--run-gru", default="packed", choices=["packed", "loop"],
                    help="operation-run GRU: PyTorch's GRU kernel on packed runs, or an explicit cell loop")
    args = ap.parse_args(argv)
    # cuDNN copies our separately stored run-GRU weights into its flat buffer on every call (a few
    # 3d x d matrices, negligible next to the [B x V] scoring) and warns about it each time.
    warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous chunk")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.check:
        if args.device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("torch_embsr: --device cuda but CUDA is not available")
        return main_check(args.check, torch.device(args.device))
    if args.seed is None:
        args.seed = 2024 if args.bench else 7
    for name in ("batch", "items", "ops", "max_length", "d", "steps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        ap.error("--warmup must be >= 0")
    return main_bench(args) if args.bench else main_infer(args)


if __name__ == "__main__":
    sys.exit(main())
