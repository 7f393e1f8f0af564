#!/usr/bin/env python3
"""Independent PyTorch float64 autograd oracle for the graph baselines of docs/GRAPH_MODELS.md:
SR-GNN, SGNN-HN, GC-SAN and MKM-SR (without its knowledge-graph task).

Written from docs/GRAPH_MODELS.md and the papers, not from the C++ code. It reads an exchange
directory (the batch arrays of tests/oracle/README.md, a config and the parameters), runs forward,
loss and backward with torch autograd, and writes the scores, the loss and every gradient.

    /usr/bin/python3 tests/oracle/graph_oracle.py DIR          # DIR/config.json, params/, batch/ -> DIR/out/
    /usr/bin/python3 tests/oracle/graph_oracle.py --selfcheck  # < 1 minute; exit 0 pass, 1 fail

Exit status 0 on success, 2 with a one-line message on stderr for inconsistent input (missing or
unknown file or key, wrong dtype or shape, batch arrays that disagree with each other).

Everything is a plain loop over the sessions of the batch, with dense per-session matrices (the
C++ works on the batch's edge lists): clarity over speed.
"""

import json
import math
import os
import sys

import numpy as np
import torch

DTYPE = torch.float64
MODELS = ("sr-gnn", "sgnn-hn", "gc-san", "mkm-sr")


class OracleError(Exception):
    """Inconsistent or malformed input; the message says what and where."""


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
COMMON_KEYS = {"model": str, "d": int, "num_items": int, "num_ops": int, "max_length": int, "gnn_steps": int}
MODEL_KEYS = {
    "sr-gnn": {},
    "sgnn-hn": {"w_k": float},
    "gc-san": {"num_blocks": int, "omega": float},
    "mkm-sr": {},
}


def _check_type(key, value, typ):
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if (typ is int and isinstance(value, bool)) or not isinstance(value, typ):
        raise OracleError(f"config.json: key '{key}' = {value!r} is not a {typ.__name__}")
    return value


def check_config(cfg):
    if not isinstance(cfg, dict):
        raise OracleError("config.json: not a JSON object")
    if "model" not in cfg:
        raise OracleError("config.json: missing key 'model'")
    if cfg["model"] not in MODELS:
        raise OracleError(f"config.json: model {cfg['model']!r} is not one of {list(MODELS)}")
    keys = dict(COMMON_KEYS)
    keys.update(MODEL_KEYS[cfg["model"]])
    for key, typ in keys.items():
        if key not in cfg:
            raise OracleError(f"config.json: missing key '{key}' (model {cfg['model']})")
        cfg[key] = _check_type(key, cfg[key], typ)
    unknown = sorted(set(cfg) - set(keys))
    if unknown:
        raise OracleError(f"config.json: unknown keys {unknown} for model {cfg['model']}")
    if cfg["d"] < 1 or cfg["num_items"] < 1 or cfg["num_ops"] < 1 or cfg["max_length"] < 1:
        raise OracleError(f"config.json: bad sizes {cfg}")
    if cfg["gnn_steps"] < 1:
        raise OracleError(f"config.json: gnn_steps {cfg['gnn_steps']} < 1")
    if cfg["model"] == "gc-san":
        if cfg["num_blocks"] < 1:
            raise OracleError(f"config.json: num_blocks {cfg['num_blocks']} < 1")
        if not 0.0 <= cfg["omega"] <= 1.0:
            raise OracleError(f"config.json: omega {cfg['omega']} outside [0, 1]")
    return cfg


# ---------------------------------------------------------------------------------------------
# Parameters: name -> shape, in the C++ layout order
# ---------------------------------------------------------------------------------------------
def _ggnn_shapes(prefix, d):
    return [(f"{prefix}.W_in", (d, d)), (f"{prefix}.b_in", (1, d)), (f"{prefix}.W_out", (d, d)),
            (f"{prefix}.b_out", (1, d)), (f"{prefix}.W_ih", (3 * d, 2 * d)), (f"{prefix}.W_hh", (3 * d, d)),
            (f"{prefix}.b_ih", (1, 3 * d)), (f"{prefix}.b_hh", (1, 3 * d))]


def param_shapes(cfg):
    """The exact list [(name, shape)] of the model's parameters, in the C++ layout order."""
    d, V, O, L = cfg["d"], cfg["num_items"], cfg["num_ops"], cfg["max_length"]
    model = cfg["model"]
    if model == "sr-gnn":
        return ([("item_embedding", (V, d))] + _ggnn_shapes("ggnn", d) +
                [("readout.W1", (d, d)), ("readout.b1", (1, d)), ("readout.W2", (d, d)), ("readout.b2", (1, d)),
                 ("readout.q", (1, d)), ("readout.W3", (d, 2 * d)), ("readout.b3", (1, d))])
    if model == "sgnn-hn":
        star = []
        for w in ("q1", "k1", "k2", "q2"):
            star += [(f"star.W_{w}", (d, d)), (f"star.b_{w}", (1, d))]
        return ([("item_embedding", (V, d))] + _ggnn_shapes("ggnn", d) + star +
                [("highway.W_g", (d, 2 * d)), ("highway.b_g", (1, d)), ("positions", (L, d)),
                 ("readout.W1", (d, d)), ("readout.b1", (1, d)), ("readout.W2", (d, d)), ("readout.b2", (1, d)),
                 ("readout.W_s", (d, d)), ("readout.b_s", (1, d)), ("readout.q", (1, d)),
                 ("readout.W3", (d, 2 * d)), ("readout.b3", (1, d))])
    if model == "gc-san":
        blocks = []
        for k in range(cfg["num_blocks"]):
            blocks += [(f"sa{k}.W_Q", (d, d)), (f"sa{k}.W_K", (d, d)), (f"sa{k}.W_V", (d, d)),
                       (f"sa{k}.W_1", (d, d)), (f"sa{k}.b_1", (1, d)), (f"sa{k}.W_2", (d, d)), (f"sa{k}.b_2", (1, d))]
        return [("item_embedding", (V, d))] + _ggnn_shapes("ggnn", d) + blocks
    if model == "mkm-sr":
        return ([("item_embedding", (V, d)), ("op_embedding", (O, d))] + _ggnn_shapes("ggnn", d) +
                [("op_gru.W_ih", (3 * d, d)), ("op_gru.W_hh", (3 * d, d)), ("op_gru.b_ih", (1, 3 * d)),
                 ("op_gru.b_hh", (1, 3 * d)),
                 ("readout.W1", (2 * d, 2 * d)), ("readout.b1", (1, 2 * d)), ("readout.W2", (2 * d, 2 * d)),
                 ("readout.b2", (1, 2 * d)), ("readout.q", (1, 2 * d)), ("readout.W3", (d, 4 * d)),
                 ("readout.b3", (1, d))])
    raise OracleError(f"model {model}: not implemented in this oracle yet")


def check_params(cfg, params):
    shapes = dict(param_shapes(cfg))
    for name, p in params.items():
        if name not in shapes:
            raise OracleError(f"params/{name}.npy: unknown parameter for model {cfg['model']} "
                              f"(gnn_steps = {cfg['gnn_steps']})")
        if tuple(p.shape) != shapes[name]:
            raise OracleError(f"params/{name}.npy: shape {tuple(p.shape)}, expected {shapes[name]}")
        if not torch.isfinite(p).all():
            raise OracleError(f"params/{name}.npy: non-finite values")
    for name in shapes:
        if name not in params:
            raise OracleError(f"params/{name}.npy: missing (model {cfg['model']})")


# ---------------------------------------------------------------------------------------------
# Batch
# ---------------------------------------------------------------------------------------------
BATCH_ARRAYS = [
    "micro_offsets", "macro_offsets", "node_offsets", "edge_offsets",
    "micro_items", "micro_ops", "micro_alias",
    "macro_items", "macro_alias", "run_begin", "run_end",
    "node_items", "node_session", "node_in_offsets", "node_in_edges", "node_out_offsets", "node_out_edges",
    "edge_src", "edge_dst", "edge_src_macro", "edge_dst_macro",
    "targets", "next_ops",
]
OPTIONAL_BATCH_ARRAYS = ["op0", "example_ids"]  # op0: EMBSR's; example_ids: BERT4Rec's cloze masks (sequence_oracle.py)


def check_batch(cfg, bt):
    """The batch arrays against each other and against GRAPH_MODELS.md section 0."""
    V, O, L = cfg["num_items"], cfg["num_ops"], cfg["max_length"]
    for name in BATCH_ARRAYS:
        if name not in bt:
            raise OracleError(f"batch/{name}.npy: missing")
    for name, a in bt.items():
        if a.ndim != 1:
            raise OracleError(f"batch/{name}.npy: expected a 1-D array, got shape {a.shape}")
    B = len(bt["targets"])
    if B < 1:
        raise OracleError("batch: no sessions")

    def fail(what):
        raise OracleError("batch: " + what)

    for name in ("micro_offsets", "macro_offsets", "node_offsets", "edge_offsets"):
        off = bt[name]
        if len(off) != B + 1 or off[0] != 0 or np.any(np.diff(off) < 0):
            fail(f"{name} must have B+1 = {B + 1} non-decreasing entries starting at 0")
    T, N, C, E = (int(bt[n][-1]) for n in ("micro_offsets", "macro_offsets", "node_offsets", "edge_offsets"))
    sizes = {"micro_items": T, "micro_ops": T, "micro_alias": T, "macro_items": N, "macro_alias": N,
             "run_begin": N, "run_end": N, "node_items": C, "node_session": C, "node_in_offsets": C + 1,
             "node_out_offsets": C + 1, "node_in_edges": E, "node_out_edges": E, "edge_src": E, "edge_dst": E,
             "edge_src_macro": E, "edge_dst_macro": E, "targets": B, "next_ops": B}
    for name in OPTIONAL_BATCH_ARRAYS:
        if name in bt:
            sizes[name] = B
    for name, n in sizes.items():
        if len(bt[name]) != n:
            fail(f"{name} has {len(bt[name])} entries, expected {n}")

    for b in range(B):
        m0, m1 = (int(x) for x in bt["micro_offsets"][b:b + 2])
        k0, k1 = (int(x) for x in bt["macro_offsets"][b:b + 2])
        c0, c1 = (int(x) for x in bt["node_offsets"][b:b + 2])
        e0, e1 = (int(x) for x in bt["edge_offsets"][b:b + 2])
        where = f"session {b}: "
        items = bt["micro_items"][m0:m1].tolist()
        ops = bt["micro_ops"][m0:m1].tolist()
        if not items:
            fail(where + "no micro-behaviors")
        if len(items) > L:
            fail(where + f"{len(items)} micro-behaviors > max_length {L}")
        if not all(0 <= v < V for v in items):
            fail(where + f"micro_items {items} outside [0, {V})")
        if not all(0 <= o < O for o in ops):
            fail(where + f"micro_ops {ops} outside [0, {O})")
        if not 0 <= bt["targets"][b] < V:
            fail(where + f"target {bt['targets'][b]} outside [0, {V})")
        if not 0 <= bt["next_ops"][b] < O:
            fail(where + f"next_op {bt['next_ops'][b]} outside [0, {O})")
        runs = []
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
        node_items = bt["node_items"][c0:c1].tolist()
        if sorted(node_items) != sorted(set(items)):
            fail(where + f"node_items {node_items} are not the distinct items of {items}")
        if np.any(bt["node_session"][c0:c1] != b):
            fail(where + "node_session does not name this session")
        for name, family, lo, hi in (("micro_alias", "micro_items", m0, m1), ("macro_alias", "macro_items", k0, k1)):
            for g in range(lo, hi):
                a = bt[name][g]
                if not c0 <= a < c1 or bt["node_items"][a] != bt[family][g]:
                    fail(where + f"{name}[{g}] = {a} is not the node of item {bt[family][g]}")
        if e1 - e0 != (k1 - k0) - 1:
            fail(where + f"{e1 - e0} edges for {k1 - k0} macro items")
        for j, e in enumerate(range(e0, e1)):
            k = k0 + j
            got = (bt["edge_src_macro"][e], bt["edge_dst_macro"][e], bt["edge_src"][e], bt["edge_dst"][e])
            want = (k, k + 1, bt["macro_alias"][k], bt["macro_alias"][k + 1])
            if tuple(int(x) for x in got) != tuple(int(x) for x in want):
                fail(where + f"edge {e}: (src_macro, dst_macro, src, dst) = {got}, expected {want}")
        for kind, endpoint in (("in", "edge_dst"), ("out", "edge_src")):
            off, lst = bt[f"node_{kind}_offsets"], bt[f"node_{kind}_edges"]
            if off[c0] != e0 or off[c1] != e1:
                fail(where + f"node_{kind}_offsets[{c0}], [{c1}] = {off[c0]}, {off[c1]}, expected {e0}, {e1}")
            for v in range(c0, c1):
                got = lst[off[v]:off[v + 1]].tolist() if off[v] <= off[v + 1] else None
                want = [e for e in range(e0, e1) if bt[endpoint][e] == v]
                if got != want:
                    fail(where + f"node_{kind}_edges of node {v} = {got}, expected {want}")


def load_exchange(directory, config_check=None, params_check=None):
    """The exchange directory's (config, params, batch), each checked; config_check(cfg) and
    params_check(cfg, params) default to this oracle's (another family's oracle passes its own)."""
    config_check = config_check or check_config
    params_check = params_check or check_params
    cfg_path = os.path.join(directory, "config.json")
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as exc:
        raise OracleError(f"{cfg_path}: {exc}") from exc
    cfg = config_check(cfg)

    def load(path, dtype):
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise OracleError(f"{path}: {exc}") from exc
        if a.dtype != dtype:
            raise OracleError(f"{path}: dtype {a.dtype}, expected {np.dtype(dtype)}")
        return a

    pdir = os.path.join(directory, "params")
    if not os.path.isdir(pdir):
        raise OracleError(f"{pdir}: missing directory")
    params = {}
    for fname in sorted(os.listdir(pdir)):
        if not fname.endswith(".npy"):
            raise OracleError(f"{pdir}/{fname}: not a .npy file")
        params[fname[:-4]] = torch.tensor(load(os.path.join(pdir, fname), np.float64), dtype=DTYPE)
    params_check(cfg, params)

    bdir = os.path.join(directory, "batch")
    if not os.path.isdir(bdir):
        raise OracleError(f"{bdir}: missing directory")
    batch = {}
    for name in BATCH_ARRAYS + OPTIONAL_BATCH_ARRAYS:
        path = os.path.join(bdir, name + ".npy")
        if not os.path.exists(path):
            if name in OPTIONAL_BATCH_ARRAYS:
                continue
            raise OracleError(f"{path}: missing")
        batch[name] = load(path, np.int32).astype(np.int64)
    check_batch(cfg, batch)
    return cfg, params, batch


# ---------------------------------------------------------------------------------------------
# Building blocks (GRAPH_MODELS.md section 0)
# ---------------------------------------------------------------------------------------------
def linear(x, W, b=None):
    """y = x W^T + b (PyTorch layout); b stored [1 x out]."""
    y = x @ W.t()
    return y if b is None else y + b.reshape(-1)


def gru_cell(x, h, W_ih, W_hh, b_ih, b_hh, convention):
    """Gates [r, z, n]; 'graph': h' = (1-z) h + z n (SR-GNN eq. 5); 'torch': h' = (1-z) n + z h."""
    d = h.shape[-1]
    gi, gh = linear(x, W_ih, b_ih), linear(h, W_hh, b_hh)
    r = torch.sigmoid(gi[..., :d] + gh[..., :d])
    z = torch.sigmoid(gi[..., d:2 * d] + gh[..., d:2 * d])
    n = torch.tanh(gi[..., 2 * d:] + r * gh[..., 2 * d:])
    if convention == "graph":
        return (1 - z) * h + z * n
    return (1 - z) * n + z * h


def normalised_adjacency(src, dst, m):
    """SR-GNN's session graph: A[u][v] = 1 per DISTINCT transition u -> v; returns
    Ain [m x m] (Ain[v][u] = A[u][v] / indeg(v)) and Aout [m x m] (Aout[u][v] = A[u][v] / outdeg(u)),
    rows of zero degree all 0."""
    A = torch.zeros(m, m, dtype=DTYPE)
    for u, v in zip(src, dst):
        A[u, v] = 1.0
    indeg = A.sum(dim=0)
    outdeg = A.sum(dim=1)
    Ain = A.t() / torch.clamp(indeg, min=1.0)[:, None]
    Aout = A / torch.clamp(outdeg, min=1.0)[:, None]
    return Ain, Aout


def ggnn(P, prefix, H, Ain, Aout):
    """SR-GNN's gated layer (eq. 1-5, b_iah / b_oah dropped, GRAPH convention)."""
    a_in = Ain @ linear(H, P[f"{prefix}.W_in"], P[f"{prefix}.b_in"])
    a_out = Aout @ linear(H, P[f"{prefix}.W_out"], P[f"{prefix}.b_out"])
    a = torch.cat([a_in, a_out], dim=1)
    return gru_cell(a, H, P[f"{prefix}.W_ih"], P[f"{prefix}.W_hh"], P[f"{prefix}.b_ih"], P[f"{prefix}.b_hh"],
                    "graph")


class Session:
    """The local view of session b: macro items, nodes, graph, micro-behaviors."""

    def __init__(self, bt, b):
        m0, m1 = int(bt["micro_offsets"][b]), int(bt["micro_offsets"][b + 1])
        k0, k1 = int(bt["macro_offsets"][b]), int(bt["macro_offsets"][b + 1])
        c0, c1 = int(bt["node_offsets"][b]), int(bt["node_offsets"][b + 1])
        e0, e1 = int(bt["edge_offsets"][b]), int(bt["edge_offsets"][b + 1])
        self.t, self.n, self.m = m1 - m0, k1 - k0, c1 - c0
        self.node_items = torch.as_tensor(bt["node_items"][c0:c1])
        self.alias = torch.as_tensor(bt["macro_alias"][k0:k1] - c0)          # macro position -> node
        self.micro_alias = torch.as_tensor(bt["micro_alias"][m0:m1] - c0)    # micro position -> node
        self.micro_items = torch.as_tensor(bt["micro_items"][m0:m1])
        self.micro_ops = torch.as_tensor(bt["micro_ops"][m0:m1])
        self.src = (bt["edge_src"][e0:e1] - c0).tolist()
        self.dst = (bt["edge_dst"][e0:e1] - c0).tolist()
        self.target = int(bt["targets"][b])
        self.next_op = int(bt["next_ops"][b])
        self.Ain, self.Aout = normalised_adjacency(self.src, self.dst, self.m)


# ---------------------------------------------------------------------------------------------
# SR-GNN (GRAPH_MODELS.md section 1)
# ---------------------------------------------------------------------------------------------
def srgnn_readout(P, prefix, V_seq):
    """eq. 6-7 over the macro positions' states V_seq [n x d]: returns s_h [d]."""
    v_n = V_seq[-1]
    gate = torch.sigmoid(linear(v_n, P[f"{prefix}.W1"], P[f"{prefix}.b1"])[None, :] +
                         linear(V_seq, P[f"{prefix}.W2"], P[f"{prefix}.b2"]))
    alpha = gate @ P[f"{prefix}.q"].reshape(-1)               # [n], not normalised
    s_g = alpha @ V_seq
    return linear(torch.cat([v_n, s_g]), P[f"{prefix}.W3"], P[f"{prefix}.b3"])


def srgnn_session(cfg, P, s):
    E = P["item_embedding"]
    H = E[s.node_items]
    for _ in range(cfg["gnn_steps"]):
        H = ggnn(P, "ggnn", H, s.Ain, s.Aout)
    s_h = srgnn_readout(P, "readout", H[s.alias])
    return s_h @ E.t()                                          # eq. 8: [V]


# ---------------------------------------------------------------------------------------------
# SGNN-HN (GRAPH_MODELS.md section 2)
# ---------------------------------------------------------------------------------------------
def star_step(P, H_hat, x):
    """eq. 5-7: satellites take a raw share alpha of the star, then the star attends over them."""
    d = H_hat.shape[1]
    q1 = linear(H_hat, P["star.W_q1"], P["star.b_q1"])
    k1 = linear(x, P["star.W_k1"], P["star.b_k1"])
    alpha = (q1 @ k1) / math.sqrt(d)                                     # [m], no sigmoid
    H = (1 - alpha)[:, None] * H_hat + alpha[:, None] * x[None, :]
    k2 = linear(H, P["star.W_k2"], P["star.b_k2"])
    q2 = linear(x, P["star.W_q2"], P["star.b_q2"])
    beta = torch.softmax((k2 @ q2) / math.sqrt(d), dim=0)               # over the nodes
    return H, beta @ H


def centred_unit_rows(X):
    """(x - mean(x)) / max(|x - mean(x)|, 1e-12) per row (the code's layer_normalization + clamp)."""
    Xc = X - X.mean(dim=-1, keepdim=True)
    return Xc / torch.clamp_min(Xc.norm(dim=-1, keepdim=True), 1e-12)


def sgnnhn_session(cfg, P, s):
    E = P["item_embedding"]
    H0 = E[s.node_items]
    H, x = H0, H0.mean(dim=0)
    for _ in range(cfg["gnn_steps"]):
        H, x = star_step(P, ggnn(P, "ggnn", H, s.Ain, s.Aout), x)
    g = torch.sigmoid(linear(torch.cat([H0, H], dim=1), P["highway.W_g"], P["highway.b_g"]))
    Hf = g * H0 + (1 - g) * H
    n = s.n
    U = Hf[s.alias] + P["positions"][torch.arange(n - 1, -1, -1)]     # position i (1-based) -> row n - i
    z_r = U[-1]
    pre = (linear(z_r, P["readout.W1"], P["readout.b1"]) + linear(x, P["readout.W_s"], P["readout.b_s"]))[None, :] \
        + linear(U, P["readout.W2"], P["readout.b2"])
    gamma = torch.sigmoid(pre) @ P["readout.q"].reshape(-1)             # [n], not normalised
    z_g = gamma @ U
    z_h = linear(torch.cat([z_r, z_g]), P["readout.W3"], P["readout.b3"])
    return cfg["w_k"] * (centred_unit_rows(E) @ centred_unit_rows(z_h))  # [V]


# ---------------------------------------------------------------------------------------------
# GC-SAN (GRAPH_MODELS.md section 3)
# ---------------------------------------------------------------------------------------------
def sa_block(P, k, X):
    """One single-head self-attention block over all n positions (no mask), FFN with residual."""
    d = X.shape[1]
    Q, K, V = X @ P[f"sa{k}.W_Q"].t(), X @ P[f"sa{k}.W_K"].t(), X @ P[f"sa{k}.W_V"].t()
    F = torch.softmax((Q @ K.t()) / math.sqrt(d), dim=1) @ V
    return linear(torch.relu(linear(F, P[f"sa{k}.W_1"], P[f"sa{k}.b_1"])), P[f"sa{k}.W_2"], P[f"sa{k}.b_2"]) + F


def gcsan_session(cfg, P, s):
    E = P["item_embedding"]
    H = E[s.node_items]
    for _ in range(cfg["gnn_steps"]):
        H = ggnn(P, "ggnn", H, s.Ain, s.Aout)
    X0 = H[s.alias]                                             # [n x d]
    X = X0
    for k in range(cfg["num_blocks"]):
        X = sa_block(P, k, X)
    S_f = cfg["omega"] * X[-1] + (1 - cfg["omega"]) * X0[-1]
    return S_f @ E.t()


# ---------------------------------------------------------------------------------------------
# MKM-SR (GRAPH_MODELS.md section 4)
# ---------------------------------------------------------------------------------------------
def counted_micro_adjacency(micro_nodes, m):
    """MKM-SR's graph: A[u][v] = number of micro transitions u -> v (self-loops included), then
    Ain[v][u] = A[u][v] / indeg(v), Aout[u][v] = A[u][v] / outdeg(u), zero rows 0."""
    A = torch.zeros(m, m, dtype=DTYPE)
    for u, v in zip(micro_nodes[:-1], micro_nodes[1:]):
        A[u, v] += 1.0
    Ain = A.t() / torch.clamp(A.sum(dim=0), min=1.0)[:, None]
    Aout = A / torch.clamp(A.sum(dim=1), min=1.0)[:, None]
    return Ain, Aout


def mkmsr_session(cfg, P, s):
    E, Op = P["item_embedding"], P["op_embedding"]
    d = cfg["d"]
    Ain, Aout = counted_micro_adjacency(s.micro_alias.tolist(), s.m)
    H = E[s.node_items]
    for _ in range(cfg["gnn_steps"]):
        H = ggnn(P, "ggnn", H, Ain, Aout)
    h = torch.zeros(d, dtype=DTYPE)
    states = []
    for x in Op[s.micro_ops]:
        h = gru_cell(x, h, P["op_gru.W_ih"], P["op_gru.W_hh"], P["op_gru.b_ih"], P["op_gru.b_hh"], "torch")
        states.append(h)
    M = torch.cat([H[s.micro_alias], torch.stack(states)], dim=1)   # [t x 2d]
    s_h = srgnn_readout(P, "readout", M)                               # width 2d in, d out
    return s_h @ E.t()


SESSION_FUNCTIONS = {"sr-gnn": srgnn_session, "sgnn-hn": sgnnhn_session, "gc-san": gcsan_session,
                     "mkm-sr": mkmsr_session}


def forward(cfg, P, bt):
    """Returns (scores [B x V], loss scalar). P: name -> tensor; bt: int64 arrays."""
    B = len(bt["targets"])
    fn = SESSION_FUNCTIONS.get(cfg["model"])
    if fn is None:
        raise OracleError(f"model {cfg['model']}: not implemented in this oracle yet")
    scores = torch.stack([fn(cfg, P, Session(bt, b)) for b in range(B)])
    targets = torch.as_tensor(bt["targets"])
    losses = torch.logsumexp(scores, dim=1) - scores[torch.arange(B), targets]
    return scores, losses.mean()


def run_oracle(cfg, params, batch):
    """Forward + backward. Returns (scores, loss [1], {name: grad}) as numpy arrays."""
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
        import test_graph_oracle_selfcheck  # noqa: E402 (kept next to this file)
        return 0 if test_graph_oracle_selfcheck.run_all() else 1
    if len(argv) != 2 or argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        main_exchange(argv[1])
    except OracleError as exc:
        print(f"graph_oracle: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
