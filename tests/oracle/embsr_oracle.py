#!/usr/bin/env python3
"""Independent PyTorch autograd oracle for EMBSR (Yuan et al., ICDE 2022).

Written from docs/MODEL.md (and the conventions in tests/oracle/README.md), not from the C++
code; the repeat path of EMBSR-R (config key use_repeat) from docs/REPEAT.md, and its
repeat/explore mixture (config key repeat_mixture) from the formulas of docs/REPEAT.md ("The
mixture"; see mixture_log_probs below). It reads an
exchange directory written by a C++ test, runs forward + loss + backward in float64 with torch
autograd, and writes the scores, the loss and the gradient of every parameter.

    python3 tests/oracle/embsr_oracle.py DIR          # DIR/config.json, DIR/params, DIR/batch -> DIR/out
    python3 tests/oracle/embsr_oracle.py --selfcheck  # gradcheck + batch-independence checks; exit 0/1

Everything is a plain loop over the sessions of the batch; clarity over speed (batches of <= 64
sessions, small d). Exit status 0 on success, 2 with a message on any inconsistency in the input.
"""

import json
import math
import os
import sys

import numpy as np
import torch

DTYPE = torch.float64


class OracleError(Exception):
    """Inconsistent or malformed input; the message says what and where."""


# ---------------------------------------------------------------------------------------------
# Portable random numbers (include/embsr/core/random.hpp), bit-exact with 64-bit masking.
# ---------------------------------------------------------------------------------------------
MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
STREAM_MULTIPLIER = 0xD1B54A32D192ED03
MAX_DROPOUT_SITES = 16


def mix64(z):
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stream_key(seed, stream):
    return mix64(mix64((seed + GOLDEN_GAMMA) & MASK64) ^ ((stream * STREAM_MULTIPLIER) & MASK64))


def counter_random(seed, stream, counter):
    return mix64((stream_key(seed, stream) + GOLDEN_GAMMA * (counter + 1)) & MASK64)


def to_unit_double(bits):
    # (bits >> 11) < 2^53 converts exactly; the product with 2^-53 is exact as well.
    return float(bits >> 11) * (1.0 / 9007199254740992.0)


def dropout_multipliers(cfg, site, rows, cols):
    """[rows x cols] multipliers of dropout site `site`: 0 (dropped) or 1/(1-rate) (kept)."""
    rate = cfg["dropout"]
    if not (cfg["training"] and rate > 0.0):
        return None
    seed = cfg["dropout_seed"] & MASK64
    key = stream_key(seed, (cfg["dropout_step"] * MAX_DROPOUT_SITES + site) & MASK64)
    keep_scale = 1.0 / (1.0 - rate)
    out = np.zeros((rows, cols), dtype=np.float64)
    for r in range(rows):
        for c in range(cols):
            counter = r * cols + c
            u = to_unit_double(mix64((key + GOLDEN_GAMMA * (counter + 1)) & MASK64))
            out[r, c] = keep_scale if u >= rate else 0.0
    return torch.tensor(out, dtype=DTYPE)


# ---------------------------------------------------------------------------------------------
# Configuration, parameters, batch
# ---------------------------------------------------------------------------------------------
CONFIG_KEYS = {
    "d": int, "gnn_steps": int, "w_k": float, "num_items": int, "num_ops": int, "max_length": int,
    "next_op_mode": str, "dropout": float, "dropout_seed": int, "dropout_step": int, "training": bool,
    "use_relations": bool, "use_gnn": bool, "use_run_gru": bool, "use_attention": bool, "fusion": str,
    "fixed_beta": float,
}
# Keys added after the format was fixed (docs/REPEAT.md): optional, with these defaults, so that
# exchange directories written before them stay valid. check_config fills them in.
OPTIONAL_CONFIG_KEYS = {"use_repeat": (bool, False), "repeat_buckets": (int, 10), "repeat_mixture": (bool, False),
                        # the paper's Sec. V-D variants (docs/GRAPH_MODELS.md section 6)
                        "use_attention_ops": (bool, True), "encoder": (str, "gnn")}

BATCH_ARRAYS = [
    "micro_offsets", "macro_offsets", "node_offsets", "edge_offsets",
    "micro_items", "micro_ops", "micro_alias",
    "macro_items", "macro_alias", "run_begin", "run_end",
    "node_items", "node_session", "node_in_offsets", "node_in_edges", "node_out_offsets", "node_out_edges",
    "edge_src", "edge_dst", "edge_src_macro", "edge_dst_macro",
    "targets", "next_ops", "op0",
]


def check_config(cfg):
    for key, typ in CONFIG_KEYS.items():
        if key not in cfg:
            raise OracleError(f"config.json: missing key '{key}'")
        value = cfg[key]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            cfg[key] = value = float(value)
        if typ is int and isinstance(value, bool) or not isinstance(value, typ):
            raise OracleError(f"config.json: key '{key}' = {value!r} is not a {typ.__name__}")
    for key, (typ, default) in OPTIONAL_CONFIG_KEYS.items():
        value = cfg.setdefault(key, default)
        if typ is int and isinstance(value, bool) or not isinstance(value, typ):
            raise OracleError(f"config.json: key '{key}' = {value!r} is not a {typ.__name__}")
    unknown = sorted(set(cfg) - set(CONFIG_KEYS) - set(OPTIONAL_CONFIG_KEYS))
    if unknown:
        raise OracleError(f"config.json: unknown keys {unknown}")
    if cfg["d"] < 1 or cfg["gnn_steps"] < 0 or cfg["num_items"] < 1 or cfg["num_ops"] < 1 or cfg["max_length"] < 1:
        raise OracleError(f"config.json: bad sizes {cfg}")
    if cfg["next_op_mode"] not in ("given", "learned"):
        raise OracleError(f"config.json: next_op_mode '{cfg['next_op_mode']}' is not 'given' or 'learned'")
    if cfg["fusion"] not in ("gate", "mlp", "fixed"):
        raise OracleError(f"config.json: fusion '{cfg['fusion']}' is not 'gate', 'mlp' or 'fixed'")
    if not 0.0 <= cfg["dropout"] < 1.0:
        raise OracleError(f"config.json: dropout {cfg['dropout']} outside [0, 1)")
    if cfg["dropout_seed"] < 0 or cfg["dropout_step"] < 0:
        raise OracleError("config.json: dropout_seed and dropout_step must be >= 0 (uint64)")
    if cfg["repeat_buckets"] < 1:
        raise OracleError(f"config.json: repeat_buckets {cfg['repeat_buckets']} < 1")
    if cfg["repeat_mixture"] and not cfg["use_repeat"]:
        raise OracleError("config.json: repeat_mixture needs use_repeat (the mixture scores the session's items with r)")
    if cfg["encoder"] not in ("gnn", "rnn"):
        raise OracleError(f"config.json: encoder '{cfg['encoder']}' is not 'gnn' or 'rnn'")
    if cfg["use_relations"] and not cfg["use_attention_ops"]:
        raise OracleError("config.json: use_relations needs use_attention_ops")
    if cfg["encoder"] == "rnn" and not (cfg["use_gnn"] and not cfg["use_run_gru"] and not cfg["use_repeat"]):
        raise OracleError("config.json: encoder 'rnn' needs use_gnn, and neither use_run_gru nor use_repeat")
    return cfg


def all_param_shapes(cfg):
    """Every parameter name the exchange format knows for this config, with its shape."""
    d, V, O, L = cfg["d"], cfg["num_items"], cfg["num_ops"], cfg["max_length"]
    shapes = {
        "item_embedding": (V, d),
        "op_embedding": (O + 1, d),
        "run_gru.W_ih": (3 * d, d), "run_gru.W_hh": (3 * d, d),
        "run_gru.b_ih": (1, 3 * d), "run_gru.b_hh": (1, 3 * d),
        # RNN-Self: a GRU over [item ; operation] rows
        "rnn.W_ih": (3 * d, 2 * d), "rnn.W_hh": (3 * d, d), "rnn.b_ih": (1, 3 * d), "rnn.b_hh": (1, 3 * d),
    }
    for s in range(cfg["gnn_steps"]):
        shapes.update({
            f"ggnn{s}.W_in": (d, 2 * d), f"ggnn{s}.b_in": (1, d),
            f"ggnn{s}.W_out": (d, 2 * d), f"ggnn{s}.b_out": (1, d),
            f"ggnn{s}.W_ih": (3 * d, 2 * d), f"ggnn{s}.W_hh": (3 * d, d),
            f"ggnn{s}.b_ih": (1, 3 * d), f"ggnn{s}.b_hh": (1, 3 * d),
        })
        for w in ("q1", "k1", "k2", "q2"):
            shapes[f"star{s}.W_{w}"] = (d, d)
            shapes[f"star{s}.b_{w}"] = (1, d)
    shapes.update({
        "highway.W_g": (d, 2 * d), "highway.b_g": (1, d),
        "attention.W_Q": (d, d), "attention.b_Q": (1, d),
        "attention.W_1": (d, d), "attention.b_1": (1, d),
        "attention.W_2": (d, d), "attention.b_2": (1, d),
        "attention.ln_gamma": (1, d), "attention.ln_beta": (1, d),
        "attention.positions": (L + 1, d),
        "attention.relations": ((O + 1) ** 2, d),
        "fusion.W_f": (d, 2 * d), "fusion.b_f": (1, d),
        "nf.W": (d, 2 * d), "nf.b": (1, d),
    })
    if cfg.get("use_repeat", False):  # docs/REPEAT.md; these are columns [n x 1], as the doc names them
        shapes.update({
            "repeat.op_count": (O, 1), "repeat.next_op": (O + 1, O),
            "repeat.recency": (cfg.get("repeat_buckets", 10), 1), "repeat.state": (d, 1), "repeat.bias": (1, 1),
        })
        if cfg.get("repeat_mixture", False):  # the gate: u [d x 1], w [(O+1) x 1] (one per o_0, [NEXT] = O)
            shapes.update({"repeat.gate": (d, 1), "repeat.gate_op": (O + 1, 1)})
    return shapes


def used_param_names(cfg):
    """The parameters the forward pass reads under this config (the rest get zero gradients)."""
    names = ["item_embedding", "op_embedding"]
    if cfg["encoder"] == "rnn":
        names += ["rnn.W_ih", "rnn.W_hh", "rnn.b_ih", "rnn.b_hh"]
    elif cfg["use_gnn"]:
        if cfg["use_run_gru"] and cfg["gnn_steps"] > 0:  # h~ only feeds the GGNN messages
            names += ["run_gru.W_ih", "run_gru.W_hh", "run_gru.b_ih", "run_gru.b_hh"]
        for s in range(cfg["gnn_steps"]):
            names += [f"ggnn{s}.{w}" for w in ("W_in", "b_in", "W_out", "b_out", "W_ih", "W_hh", "b_ih", "b_hh")]
            names += [f"star{s}.{w}_{k}" for k in ("q1", "k1", "k2", "q2") for w in ("W", "b")]
        names += ["highway.W_g", "highway.b_g"]
    if cfg["use_attention"]:
        names += ["attention." + w for w in ("W_Q", "b_Q", "W_1", "b_1", "W_2", "b_2", "ln_gamma", "ln_beta",
                                             "positions")]
        if cfg["use_relations"]:
            names.append("attention.relations")
    if cfg["fusion"] == "gate":
        names += ["fusion.W_f", "fusion.b_f"]
    elif cfg["fusion"] == "mlp":
        names += ["nf.W", "nf.b"]
    if cfg.get("use_repeat", False):
        names += ["repeat.op_count", "repeat.next_op", "repeat.recency", "repeat.state", "repeat.bias"]
        if cfg.get("repeat_mixture", False):
            names += ["repeat.gate", "repeat.gate_op"]  # repeat.bias is read, but its gradient is 0 here
    return names


def check_params(cfg, params):
    shapes = all_param_shapes(cfg)
    for name, p in params.items():
        if name not in shapes:
            raise OracleError(f"params/{name}.npy: unknown parameter name (gnn_steps = {cfg['gnn_steps']}, "
                              f"use_repeat = {cfg.get('use_repeat', False)}, "
                              f"repeat_mixture = {cfg.get('repeat_mixture', False)})")
        if tuple(p.shape) != shapes[name]:
            raise OracleError(f"params/{name}.npy: shape {tuple(p.shape)}, expected {shapes[name]}")
        if not torch.isfinite(p).all():
            raise OracleError(f"params/{name}.npy: non-finite values")
    for name in used_param_names(cfg):
        if name not in params:
            raise OracleError(f"params/{name}.npy: missing, but the config uses it")


def check_batch(cfg, bt):
    """Checks the batch arrays against each other and against MODEL.md sections 1-2."""
    V, O, L = cfg["num_items"], cfg["num_ops"], cfg["max_length"]
    for name in BATCH_ARRAYS:
        if name not in bt:
            raise OracleError(f"batch/{name}.npy: missing")
        if bt[name].ndim != 1:
            raise OracleError(f"batch/{name}.npy: expected a 1-D array, got shape {bt[name].shape}")
    B = len(bt["targets"])
    if B < 1:
        raise OracleError("batch: no sessions")

    def fail(what):
        raise OracleError("batch: " + what)

    for name in ("micro_offsets", "macro_offsets", "node_offsets", "edge_offsets"):
        off = bt[name]
        if len(off) != B + 1 or off[0] != 0 or np.any(np.diff(off) < 0):
            fail(f"{name} must have B+1 = {B + 1} non-decreasing entries starting at 0, got {off.tolist()}")
    T, N, C, E = (int(bt[n][-1]) for n in ("micro_offsets", "macro_offsets", "node_offsets", "edge_offsets"))
    sizes = {"micro_items": T, "micro_ops": T, "micro_alias": T, "macro_items": N, "macro_alias": N,
             "run_begin": N, "run_end": N, "node_items": C, "node_session": C, "node_in_offsets": C + 1,
             "node_out_offsets": C + 1, "node_in_edges": E, "node_out_edges": E, "edge_src": E, "edge_dst": E,
             "edge_src_macro": E, "edge_dst_macro": E, "targets": B, "next_ops": B, "op0": B}
    for name, n in sizes.items():
        if len(bt[name]) != n:
            fail(f"{name} has {len(bt[name])} entries, expected {n}")

    for b in range(B):
        m0, m1 = bt["micro_offsets"][b:b + 2]
        k0, k1 = bt["macro_offsets"][b:b + 2]
        c0, c1 = bt["node_offsets"][b:b + 2]
        e0, e1 = bt["edge_offsets"][b:b + 2]
        where = f"session {b}: "
        items = bt["micro_items"][m0:m1].tolist()
        ops = bt["micro_ops"][m0:m1].tolist()
        if not items:
            fail(where + "no micro-behaviors")
        if len(items) > L:
            fail(where + f"{len(items)} micro-behaviors > max_length {L} (positions table has L+1 rows)")
        if not all(0 <= v < V for v in items):
            fail(where + f"micro_items {items} outside [0, {V})")
        if not all(0 <= o < O for o in ops):
            fail(where + f"micro_ops {ops} outside [0, {O})")
        if not 0 <= bt["targets"][b] < V:
            fail(where + f"target {bt['targets'][b]} outside [0, {V})")
        if not 0 <= bt["next_ops"][b] < O:
            fail(where + f"next_op {bt['next_ops'][b]} outside [0, {O})")
        expected_op0 = bt["next_ops"][b] if cfg["next_op_mode"] == "given" else O
        if bt["op0"][b] != expected_op0:
            fail(where + f"op0 = {bt['op0'][b]}, expected {expected_op0} (next_op_mode '{cfg['next_op_mode']}')")

        # Macro items and operation runs, recomputed from the micro-behaviors.
        runs = []  # (item, begin, end), global micro indices
        for i, v in enumerate(items):
            if runs and runs[-1][0] == v:
                runs[-1][2] = m0 + i + 1
            else:
                runs.append([v, m0 + i, m0 + i + 1])
        if k1 - k0 != len(runs):
            fail(where + f"{k1 - k0} macro items, the micro items {items} merge to {len(runs)}")
        for k, (v, rb, re) in enumerate(runs):
            g = k0 + k
            if (bt["macro_items"][g], bt["run_begin"][g], bt["run_end"][g]) != (v, rb, re):
                fail(where + f"macro {g}: (item, run_begin, run_end) = ({bt['macro_items'][g]}, "
                     f"{bt['run_begin'][g]}, {bt['run_end'][g]}), expected ({v}, {rb}, {re})")

        # Nodes: the session's distinct items, each node used.
        node_items = bt["node_items"][c0:c1].tolist()
        if sorted(node_items) != sorted(set(items)):
            fail(where + f"node_items {node_items} are not the distinct items of {items}")
        if np.any(bt["node_session"][c0:c1] != b):
            fail(where + "node_session does not name this session")
        for name, family, lo in (("micro_alias", "micro_items", m0), ("macro_alias", "macro_items", k0)):
            hi = lo + (m1 - m0 if name == "micro_alias" else k1 - k0)
            for g in range(lo, hi):
                a = bt[name][g]
                if not c0 <= a < c1 or bt["node_items"][a] != bt[family][g]:
                    fail(where + f"{name}[{g}] = {a} is not the node of item {bt[family][g]}")

        # Edges e_k: macro k -> macro k+1, in time order.
        if e1 - e0 != (k1 - k0) - 1:
            fail(where + f"{e1 - e0} edges for {k1 - k0} macro items")
        for j, e in enumerate(range(e0, e1)):
            k = k0 + j
            got = (bt["edge_src_macro"][e], bt["edge_dst_macro"][e], bt["edge_src"][e], bt["edge_dst"][e])
            want = (k, k + 1, bt["macro_alias"][k], bt["macro_alias"][k + 1])
            if got != want:
                fail(where + f"edge {e}: (src_macro, dst_macro, src, dst) = {got}, expected {want}")
        # Incidence lists: in-edges of v = edges with dst v, ascending; out-edges likewise with src.
        for kind, endpoint in (("in", "edge_dst"), ("out", "edge_src")):
            off, lst = bt[f"node_{kind}_offsets"], bt[f"node_{kind}_edges"]
            if off[c0] != e0 or off[c1] != e1:
                fail(where + f"node_{kind}_offsets[{c0}], [{c1}] = {off[c0]}, {off[c1]}, expected {e0}, {e1}")
            for v in range(c0, c1):
                got = lst[off[v]:off[v + 1]].tolist() if off[v] <= off[v + 1] else None
                want = [e for e in range(e0, e1) if bt[endpoint][e] == v]
                if got != want:
                    fail(where + f"node_{kind}_edges of node {v} = {got}, expected {want}")


def load_exchange(directory):
    cfg_path = os.path.join(directory, "config.json")
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as exc:
        raise OracleError(f"{cfg_path}: {exc}") from exc
    if not isinstance(cfg, dict):
        raise OracleError(f"{cfg_path}: not a JSON object")
    cfg = check_config(cfg)

    def load(path, dtype):
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise OracleError(f"{path}: {exc}") from exc
        if a.dtype != dtype:
            raise OracleError(f"{path}: dtype {a.dtype}, expected {np.dtype(dtype)}")
        return a

    params = {}
    pdir = os.path.join(directory, "params")
    if not os.path.isdir(pdir):
        raise OracleError(f"{pdir}: missing directory")
    for fname in sorted(os.listdir(pdir)):
        if not fname.endswith(".npy"):
            raise OracleError(f"{pdir}/{fname}: not a .npy file")
        a = load(os.path.join(pdir, fname), np.float64)
        params[fname[:-4]] = torch.tensor(a, dtype=DTYPE)
    check_params(cfg, params)

    batch = {}
    for name in BATCH_ARRAYS:
        path = os.path.join(directory, "batch", name + ".npy")
        if not os.path.exists(path):
            raise OracleError(f"{path}: missing")
        batch[name] = load(path, np.int32).astype(np.int64)
    check_batch(cfg, batch)
    return cfg, params, batch


# ---------------------------------------------------------------------------------------------
# The model (MODEL.md sections 3-5)
# ---------------------------------------------------------------------------------------------
def linear(x, W, b):
    """y = x W^T + b (PyTorch layout); b is stored as [1 x out]."""
    return x @ W.t() + b.reshape(-1)


def gru_states(P, prefix, rows):
    """Every hidden state of a PyTorch-convention GRU (parameters prefix.W_ih ...) over rows, h0 = 0."""
    W_ih, W_hh, b_ih, b_hh = P[prefix + ".W_ih"], P[prefix + ".W_hh"], P[prefix + ".b_ih"], P[prefix + ".b_hh"]
    d = W_hh.shape[1]
    h = torch.zeros(d, dtype=DTYPE)
    states = []
    for x in rows:
        gi, gh = linear(x, W_ih, b_ih), linear(h, W_hh, b_hh)
        r = torch.sigmoid(gi[:d] + gh[:d])
        z = torch.sigmoid(gi[d:2 * d] + gh[d:2 * d])
        n = torch.tanh(gi[2 * d:] + r * gh[2 * d:])
        h = (1 - z) * n + z * h
        states.append(h)
    return torch.stack(states)


def run_gru_last_state(P, op_rows):
    """MODEL.md 3.1: last hidden state of a PyTorch-convention GRU over op embeddings, h0 = 0."""
    return gru_states(P, "run_gru", op_rows)[-1]


def ggnn_step(P, s, h, hrun, src, dst, src_macro, dst_macro, in_lists, out_lists):
    """MODEL.md 3.2-3.3 for one session. h [c x d] node states, hrun [n x d] run states; edge
    arrays are local (0-based in the session); in_lists[i] / out_lists[i] are the local edge ids
    ending / starting at node i."""
    c, d = h.shape
    msg_in = linear(torch.cat([h[src], hrun[src_macro]], dim=1), P[f"ggnn{s}.W_in"], P[f"ggnn{s}.b_in"])
    msg_out = linear(torch.cat([h[dst], hrun[dst_macro]], dim=1), P[f"ggnn{s}.W_out"], P[f"ggnn{s}.b_out"])
    zero = torch.zeros(d, dtype=DTYPE)
    a = []
    for i in range(c):
        a_in = sum((msg_in[e] for e in in_lists[i]), zero)
        a_out = sum((msg_out[e] for e in out_lists[i]), zero)
        a.append(torch.cat([a_in, a_out]))
    a = torch.stack(a)  # [c x 2d]
    gi = linear(a, P[f"ggnn{s}.W_ih"], P[f"ggnn{s}.b_ih"])
    gh = linear(h, P[f"ggnn{s}.W_hh"], P[f"ggnn{s}.b_hh"])
    r = torch.sigmoid(gi[:, :d] + gh[:, :d])
    z = torch.sigmoid(gi[:, d:2 * d] + gh[:, d:2 * d])
    n = torch.tanh(gi[:, 2 * d:] + r * gh[:, 2 * d:])
    return (1 - z) * h + z * n  # eq. 8: note the reverse of the run GRU's convention


def star_step(P, s, h_hat, star):
    """MODEL.md 3.4: satellites mix with the star (raw scalar alpha), then the star attends."""
    d = h_hat.shape[1]
    q1 = linear(h_hat, P[f"star{s}.W_q1"], P[f"star{s}.b_q1"])  # [c x d]
    k1 = linear(star, P[f"star{s}.W_k1"], P[f"star{s}.b_k1"])   # [d]
    alpha = (q1 @ k1) / math.sqrt(d)                              # [c]
    h_new = (1 - alpha)[:, None] * h_hat + alpha[:, None] * star[None, :]
    k2 = linear(h_new, P[f"star{s}.W_k2"], P[f"star{s}.b_k2"])
    q2 = linear(star, P[f"star{s}.W_q2"], P[f"star{s}.b_q2"])
    beta = torch.softmax((k2 @ q2) / math.sqrt(d), dim=0)
    return h_new, beta @ h_new


def layer_norm(x, gamma, beta, eps=1e-5):
    mu = x.mean()
    var = ((x - mu) ** 2).mean()  # biased, as torch.nn.LayerNorm
    return (x - mu) / torch.sqrt(var + eps) * gamma.reshape(-1) + beta.reshape(-1)


def repeat_features(bt, b, num_ops):
    """docs/REPEAT.md, the data features of session b's nodes (local order c = 0..c_b-1):
    n [c_b x O] float64 counts of the input micro-behaviors on node c with operation o, and
    D [c_b] int64, the micro-behaviors since the node's last one (t - 1 - last 0-based index)."""
    m0, m1 = int(bt["micro_offsets"][b]), int(bt["micro_offsets"][b + 1])
    c0, c1 = int(bt["node_offsets"][b]), int(bt["node_offsets"][b + 1])
    t = m1 - m0
    n = np.zeros((c1 - c0, num_ops), dtype=np.float64)
    last = np.full(c1 - c0, -1, dtype=np.int64)
    for j in range(t):
        c = int(bt["micro_alias"][m0 + j]) - c0
        n[c, int(bt["micro_ops"][m0 + j])] += 1.0
        last[c] = j
    assert np.all(last >= 0), "every node has a micro-behavior (checked by check_batch)"
    return torch.tensor(n, dtype=DTYPE), torch.as_tensor(t - 1 - last)


def repeat_bonus(cfg, P, n, D, op0, hf):
    """docs/REPEAT.md Forward: r_c for the nodes of one session ([c_b]).
    r_c = gamma + sum_o a_o log(1 + n_co) + sum_o N[o_0, o] [n_co > 0] + rho_bucket(D_c) + q . hf_c."""
    R = cfg["repeat_buckets"]
    a = P["repeat.op_count"].reshape(-1)      # [O]
    N = P["repeat.next_op"]                   # [O+1 x O]
    rho = P["repeat.recency"].reshape(-1)     # [R]
    q = P["repeat.state"].reshape(-1)         # [d]
    gamma = P["repeat.bias"].reshape(())
    bucket = torch.clamp(D, max=R - 1)
    return (gamma + torch.log1p(n) @ a + (n > 0).to(DTYPE) @ N[op0] + rho[bucket] + hf @ q)


def mixture_log_probs(cfg, P, m, op0, r, node_items, logits):
    """The repeat/explore mixture of one session (docs/REPEAT.md, "The mixture"; RepeatNet's shape):
    m [d] the fused session vector, op0 its o_0, r [c_b] the repeat scores of its nodes (the
    bonus's formula), node_items [c_b] their items, logits [V] = w_k cos(m, E_v). Returns log P [V]:
        gamma = u . m + w[o_0],  g = sigmoid(gamma)
        P(node_items[c]) = g softmax_c(r)                         (the session's items)
        P(v)             = (1 - g) softmax_{v not in session}(logits)_v   (every other item)."""
    V = cfg["num_items"]
    gamma = P["repeat.gate"].reshape(-1) @ m + P["repeat.gate_op"].reshape(-1)[op0]
    log_g = torch.nn.functional.logsigmoid(gamma)        # log g
    log_not_g = torch.nn.functional.logsigmoid(-gamma)   # log (1 - g)
    in_session = torch.zeros(V, dtype=torch.bool)
    in_session[node_items] = True
    # node_items are distinct: index_add places each node's log P at its item, 0 elsewhere.
    repeat_part = torch.zeros(V, dtype=DTYPE).index_add(0, node_items, log_g + torch.log_softmax(r, dim=0))
    if bool(in_session.all()):  # no item outside the session: the explore decoder has no support
        return repeat_part
    explore_part = log_not_g + logits - torch.logsumexp(logits[~in_session], dim=0)
    return torch.where(in_session, repeat_part, explore_part)


def forward(cfg, P, bt):
    """Returns (scores [B x V], loss scalar). P: name -> tensor (leaf or not); bt: int64 arrays."""
    d, O = cfg["d"], cfg["num_ops"]
    B = len(bt["targets"])
    E, Op = P["item_embedding"], P["op_embedding"]
    drop0 = dropout_multipliers(cfg, 0, B, d) if cfg["use_attention"] else None
    drop1 = dropout_multipliers(cfg, 1, B, d) if cfg["use_attention"] else None

    session_vectors = []
    bonus_rows = []  # use_repeat: [V] per session, sum of r_c over the session's nodes of item v
    mixture_inputs = []  # repeat_mixture instead: (op0, r [c_b], node_items [c_b]) per session
    for b in range(B):
        m0, m1 = int(bt["micro_offsets"][b]), int(bt["micro_offsets"][b + 1])
        k0, k1 = int(bt["macro_offsets"][b]), int(bt["macro_offsets"][b + 1])
        c0, c1 = int(bt["node_offsets"][b]), int(bt["node_offsets"][b + 1])
        e0, e1 = int(bt["edge_offsets"][b]), int(bt["edge_offsets"][b + 1])
        t = m1 - m0
        micro_ops = torch.as_tensor(bt["micro_ops"][m0:m1])
        micro_node = torch.as_tensor(bt["micro_alias"][m0:m1] - c0)
        op0 = int(bt["op0"][b])

        # Section 3: sequential-pattern encoder.
        h0 = E[torch.as_tensor(bt["node_items"][c0:c1])]  # [c x d]
        if cfg["encoder"] == "rnn":  # RNN-Self (Sec. V-D): a GRU over [item ; operation] of the micro-behaviors
            rows = torch.cat([E[torch.as_tensor(bt["micro_items"][m0:m1])], Op[micro_ops]], dim=1)  # [t x 2d]
            hf, star = gru_states(P, "rnn", rows), h0.mean(dim=0)  # hf: one state per micro-behavior
        elif cfg["use_gnn"]:
            if cfg["use_run_gru"] and cfg["gnn_steps"] > 0:
                hrun = torch.stack([run_gru_last_state(P, Op[torch.as_tensor(bt["micro_ops"][bt["run_begin"][k]:
                                                                                              bt["run_end"][k]])])
                                    for k in range(k0, k1)])
            else:
                hrun = torch.zeros(k1 - k0, d, dtype=DTYPE)
            src = torch.as_tensor(bt["edge_src"][e0:e1] - c0)
            dst = torch.as_tensor(bt["edge_dst"][e0:e1] - c0)
            src_macro = torch.as_tensor(bt["edge_src_macro"][e0:e1] - k0)
            dst_macro = torch.as_tensor(bt["edge_dst_macro"][e0:e1] - k0)
            in_lists = [(bt["node_in_edges"][bt["node_in_offsets"][v]:bt["node_in_offsets"][v + 1]] - e0).tolist()
                        for v in range(c0, c1)]
            out_lists = [(bt["node_out_edges"][bt["node_out_offsets"][v]:bt["node_out_offsets"][v + 1]] - e0).tolist()
                         for v in range(c0, c1)]
            h, star = h0, h0.mean(dim=0)
            for s in range(cfg["gnn_steps"]):
                h_hat = ggnn_step(P, s, h, hrun, src, dst, src_macro, dst_macro, in_lists, out_lists)
                h, star = star_step(P, s, h_hat, star)
            g = torch.sigmoid(linear(torch.cat([h0, h], dim=1), P["highway.W_g"], P["highway.b_g"]))
            hf = g * h0 + (1 - g) * h
        else:  # EMBSR-NG
            hf, star = h0, h0.mean(dim=0)

        # Section 4: dyadic relational encoder (only query position 0 is needed).
        if cfg["use_attention_ops"]:
            x0 = star + Op[op0]
            states = hf if cfg["encoder"] == "rnn" else hf[micro_node]
            xs = states + Op[micro_ops]  # [t x d], positions 1..t
        elif cfg["encoder"] == "rnn":  # RNN-Self: the GRU's states, no operation embedding
            x0, xs = star, hf
        else:  # SGNN-Self / SGNN-Seq-Self: one position per macro item, no operation embedding
            x0 = star
            xs = hf[torch.as_tensor(bt["macro_alias"][k0:k1] - c0)]  # [n x d], positions 1..n
        t = xs.shape[0]
        x_t = xs[-1]
        if cfg["use_attention"]:
            X = torch.cat([x0[None, :], xs], dim=0)             # [t+1 x d]
            keys = X + P["attention.positions"][: t + 1]
            if cfg["use_relations"]:
                pair_ops = torch.cat([torch.tensor([op0]), micro_ops])  # o_0 = op0
                keys = keys + P["attention.relations"][op0 * (O + 1) + pair_ops]
            q = torch.relu(linear(x0, P["attention.W_Q"], P["attention.b_Q"]))
            if drop0 is not None:
                q = q * drop0[b]
            att = torch.softmax((keys @ q) / math.sqrt(d), dim=0)  # [t+1]
            z = att @ keys
            ffn = linear(torch.relu(linear(z, P["attention.W_1"], P["attention.b_1"])),
                         P["attention.W_2"], P["attention.b_2"])
            if drop1 is not None:
                ffn = ffn * drop1[b]
            z_s = layer_norm(z + ffn, P["attention.ln_gamma"], P["attention.ln_beta"])
        else:  # EMBSR-NS
            z_s = star

        # Section 5: fusion.
        if cfg["fusion"] == "gate":
            beta = torch.sigmoid(linear(torch.cat([z_s, x_t]), P["fusion.W_f"], P["fusion.b_f"]))
            m = beta * z_s + (1 - beta) * x_t
        elif cfg["fusion"] == "fixed":
            beta = cfg["fixed_beta"]
            m = beta * z_s + (1 - beta) * x_t
        else:  # "mlp" (EMBSR-NF)
            m = linear(torch.cat([z_s, x_t]), P["nf.W"], P["nf.b"])
        session_vectors.append(m)

        # docs/REPEAT.md: the repeat bonus of the session's nodes, added to their items' logits.
        if cfg.get("use_repeat", False):
            n, D = repeat_features(bt, b, O)
            r = repeat_bonus(cfg, P, n, D, op0, hf)  # [c_b]
            node_items = torch.as_tensor(bt["node_items"][c0:c1])
            if cfg.get("repeat_mixture", False):
                mixture_inputs.append((op0, r, node_items))
            else:
                bonus_rows.append(torch.zeros(cfg["num_items"], dtype=DTYPE).index_add(0, node_items, r))

    M = torch.stack(session_vectors)  # [B x d]
    m_hat = M / torch.clamp_min(M.norm(dim=1, keepdim=True), 1e-12)
    e_hat = E / torch.clamp_min(E.norm(dim=1, keepdim=True), 1e-12)
    scores = cfg["w_k"] * (m_hat @ e_hat.t())  # [B x V]
    targets = torch.as_tensor(bt["targets"])
    if cfg.get("repeat_mixture", False):  # scores = log P of the mixture, loss = mean -log P(target)
        scores = torch.stack([mixture_log_probs(cfg, P, M[b], op0, r, node_items, scores[b])
                              for b, (op0, r, node_items) in enumerate(mixture_inputs)])
        return scores, -scores[torch.arange(B), targets].mean()
    if cfg.get("use_repeat", False):
        scores = scores + torch.stack(bonus_rows)
    losses = torch.logsumexp(scores, dim=1) - scores[torch.arange(B), targets]
    return scores, losses.mean()


def run_oracle(cfg, params, batch):
    """Forward + backward. Returns (scores, loss, {name: grad}) as numpy arrays."""
    leaves = {name: p.detach().clone().requires_grad_(True) for name, p in params.items()}
    scores, loss = forward(cfg, leaves, batch)
    loss.backward()
    grads = {name: (p.grad if p.grad is not None else torch.zeros_like(p)).numpy() for name, p in leaves.items()}
    return scores.detach().numpy(), np.array([loss.item()], dtype=np.float64), grads


def main_exchange(directory):
    cfg, params, batch = load_exchange(directory)
    scores, loss, grads = run_oracle(cfg, params, batch)
    if not (np.isfinite(scores).all() and np.isfinite(loss).all()):
        raise OracleError("non-finite scores or loss")
    out = os.path.join(directory, "out")
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "scores.npy"), np.ascontiguousarray(scores, dtype=np.float64))
    np.save(os.path.join(out, "loss.npy"), loss)
    for name, g in grads.items():
        np.save(os.path.join(out, f"grad_{name}.npy"), np.ascontiguousarray(g, dtype=np.float64))


def main(argv):
    torch.set_default_dtype(DTYPE)
    if len(argv) == 2 and argv[1] == "--selfcheck":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import test_oracle_selfcheck  # noqa: E402 (kept next to this file)
        return 0 if test_oracle_selfcheck.run_all() else 1
    if len(argv) != 2 or argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        main_exchange(argv[1])
    except OracleError as exc:
        print(f"embsr_oracle: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
