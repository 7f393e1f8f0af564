#!/usr/bin/env python3
"""Self-check of the graph-baseline oracle (graph_oracle.py); run with

    /usr/bin/python3 tests/oracle/graph_oracle.py --selfcheck
    (or /usr/bin/python3 tests/oracle/test_graph_oracle_selfcheck.py)

It builds small random batches itself (from GRAPH_MODELS.md section 0, independently of the C++
BatchBuilder) and checks, for every model the oracle implements:
  1. the building blocks: the normalised adjacency against a literal transcription of SR-GNN's
     utils.py (Data.get_slice), the GRU cell against torch.nn.GRUCell (TORCH convention, and the
     GRAPH convention as GRUCell with the z rows negated), and model-specific pieces;
  2. torch.autograd.gradcheck of the loss with respect to every parameter;
  3. that a session's scores do not depend on the other sessions of the batch (alone, permuted),
     nor on the order of its nodes;
  4. invariants of the models (e.g. SR-GNN: dL/db1 = dL/db2);
  5. the exchange directory round trip and the rejection of broken inputs.
Exit status 0 when everything passes.
"""

import copy
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graph_oracle as oracle  # noqa: E402

DTYPE = torch.float64
FAILURES = []


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print(f"  FAIL: {what}")
    return ok


# ---------------------------------------------------------------------------------------------
# Batches from raw sessions
# ---------------------------------------------------------------------------------------------
def make_batch(sessions, node_order=None):
    """sessions: list of (items, ops, target, next_op). node_order: optional list (per session) of
    a permutation of the session's distinct items (default: first appearance)."""
    a = {name: [] for name in oracle.BATCH_ARRAYS + ["op0"]}
    for name in ("micro_offsets", "macro_offsets", "node_offsets", "edge_offsets", "node_in_offsets",
                 "node_out_offsets"):
        a[name].append(0)
    for b, (items, ops, target, next_op) in enumerate(sessions):
        m0, k0, c0, e0 = (a[n][-1] for n in ("micro_offsets", "macro_offsets", "node_offsets", "edge_offsets"))
        distinct = []
        for v in items:
            if v not in distinct:
                distinct.append(v)
        if node_order is not None and node_order[b] is not None:
            assert sorted(node_order[b]) == sorted(distinct)
            distinct = list(node_order[b])
        node_of = {v: c0 + i for i, v in enumerate(distinct)}
        runs = []
        for i, v in enumerate(items):
            if runs and runs[-1][0] == v:
                runs[-1][2] = m0 + i + 1
            else:
                runs.append([v, m0 + i, m0 + i + 1])
        a["micro_items"] += list(items)
        a["micro_ops"] += list(ops)
        a["micro_alias"] += [node_of[v] for v in items]
        for v, rb, re in runs:
            a["macro_items"].append(v)
            a["macro_alias"].append(node_of[v])
            a["run_begin"].append(rb)
            a["run_end"].append(re)
        a["node_items"] += distinct
        a["node_session"] += [b] * len(distinct)
        edges = []
        for k in range(len(runs) - 1):
            e = e0 + k
            edges.append((e, node_of[runs[k][0]], node_of[runs[k + 1][0]]))
            a["edge_src"].append(node_of[runs[k][0]])
            a["edge_dst"].append(node_of[runs[k + 1][0]])
            a["edge_src_macro"].append(k0 + k)
            a["edge_dst_macro"].append(k0 + k + 1)
        for v in range(c0, c0 + len(distinct)):
            ins = [e for e, s, t in edges if t == v]
            outs = [e for e, s, t in edges if s == v]
            a["node_in_edges"] += ins
            a["node_out_edges"] += outs
            a["node_in_offsets"].append(a["node_in_offsets"][-1] + len(ins))
            a["node_out_offsets"].append(a["node_out_offsets"][-1] + len(outs))
        a["micro_offsets"].append(m0 + len(items))
        a["macro_offsets"].append(k0 + len(runs))
        a["node_offsets"].append(c0 + len(distinct))
        a["edge_offsets"].append(e0 + len(runs) - 1)
        a["targets"].append(target)
        a["next_ops"].append(next_op)
        a["op0"].append(next_op)
    return {k: np.asarray(v, dtype=np.int64) for k, v in a.items()}


def random_sessions(rng, count, V, O, max_len):
    """Sessions with repeated items (parallel edges, revisits), operation runs and length 1."""
    out = []
    for i in range(count):
        t = 1 if i == 0 else int(rng.integers(2, max_len + 1))
        pool = rng.choice(V, size=min(V, 4), replace=False)
        items = [int(rng.choice(pool)) for _ in range(t)]
        ops = [int(rng.integers(0, O)) for _ in range(t)]
        out.append((items, ops, int(rng.integers(0, V)), int(rng.integers(0, O))))
    return out


def base_config(model, **overrides):
    cfg = {"model": model, "d": 4, "num_items": 7, "num_ops": 3, "max_length": 8, "gnn_steps": 2}
    cfg.update({"sgnn-hn": {"w_k": 12.0}, "gc-san": {"num_blocks": 2, "omega": 0.4}}.get(model, {}))
    cfg.update(overrides)
    return oracle.check_config(cfg)


def random_params(cfg, seed, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    return {name: (torch.rand(shape, generator=g, dtype=DTYPE) * 2 - 1) * scale
            for name, shape in oracle.param_shapes(cfg)}


# ---------------------------------------------------------------------------------------------
# 1. Building blocks
# ---------------------------------------------------------------------------------------------
def authors_adjacency(u_input):
    """Literal transcription of SR-GNN utils.py Data.get_slice for one session (item ids >= 1,
    no padding): returns (node, A) with A = [A_in | A_out] of shape [n x 2n], node sorted."""
    node = np.unique(u_input)
    u_A = np.zeros((len(node), len(node)))
    for i in np.arange(len(u_input) - 1):
        u = np.where(node == u_input[i])[0][0]
        v = np.where(node == u_input[i + 1])[0][0]
        u_A[u][v] = 1
    u_sum_in = np.sum(u_A, 0)
    u_sum_in[np.where(u_sum_in == 0)] = 1
    u_A_in = np.divide(u_A, u_sum_in)
    u_sum_out = np.sum(u_A, 1)
    u_sum_out[np.where(u_sum_out == 0)] = 1
    u_A_out = np.divide(u_A.transpose(), u_sum_out)
    return node, np.concatenate([u_A_in, u_A_out]).transpose()


def check_blocks():
    rng = np.random.default_rng(5)
    for trial in range(30):
        t = int(rng.integers(1, 12))
        items = [int(rng.integers(1, 6)) for _ in range(t)]
        macro = [v for i, v in enumerate(items) if i == 0 or items[i - 1] != v]
        node, A = authors_adjacency(np.array(macro))
        idx = {v: i for i, v in enumerate(node.tolist())}
        src = [idx[macro[k]] for k in range(len(macro) - 1)]
        dst = [idx[macro[k + 1]] for k in range(len(macro) - 1)]
        Ain, Aout = oracle.normalised_adjacency(src, dst, len(node))
        n = len(node)
        if not check(np.allclose(A[:, :n], Ain.numpy(), atol=0, rtol=0) and
                     np.allclose(A[:, n:], Aout.numpy(), atol=0, rtol=0),
                     f"normalised adjacency differs from SR-GNN utils.py on {macro}"):
            break

    torch.manual_seed(3)
    d = 5
    cell = torch.nn.GRUCell(2 * d, d).double()
    x, h = torch.randn(4, 2 * d, dtype=DTYPE), torch.randn(4, d, dtype=DTYPE)
    W_ih, W_hh = cell.weight_ih.detach(), cell.weight_hh.detach()
    b_ih, b_hh = cell.bias_ih.detach()[None, :], cell.bias_hh.detach()[None, :]
    got = oracle.gru_cell(x, h, W_ih, W_hh, b_ih, b_hh, "torch")
    check(torch.allclose(got, cell(x, h).detach(), atol=1e-13), "TORCH-convention GRU cell != torch.nn.GRUCell")
    neg = torch.ones(3 * d, dtype=DTYPE)
    neg[d:2 * d] = -1
    cell2 = torch.nn.GRUCell(2 * d, d).double()
    with torch.no_grad():
        cell2.weight_ih.copy_(W_ih * neg[:, None])
        cell2.weight_hh.copy_(W_hh * neg[:, None])
        cell2.bias_ih.copy_(b_ih[0] * neg)
        cell2.bias_hh.copy_(b_hh[0] * neg)
    got = oracle.gru_cell(x, h, W_ih, W_hh, b_ih, b_hh, "graph")
    check(torch.allclose(got, cell2(x, h).detach(), atol=1e-13),
          "GRAPH-convention GRU cell != torch.nn.GRUCell with the z rows negated")


def check_srgnn_by_hand():
    """SR-GNN on one session, written a second time with the authors' code's layout: dense
    [A_in | A_out] from utils.py, b_iah = b_oah = 0, TORCH convention with the z rows negated,
    linear_transform on [s_g ; s_l] with W3's column blocks swapped, item ids shifted by one."""
    cfg = base_config("sr-gnn", gnn_steps=3)
    P = random_params(cfg, 11)
    items = [2, 5, 2, 3, 5, 2, 6]
    sessions = [(items, [0] * len(items), 4, 1)]
    bt = make_batch(sessions)
    scores, _ = oracle.forward(cfg, P, bt)
    d = cfg["d"]
    node, A = authors_adjacency(np.array(items) + 1)
    A = torch.tensor(A, dtype=DTYPE)
    n = len(node)
    E = P["item_embedding"]
    hidden = E[torch.as_tensor(node - 1)]
    neg = torch.ones(3 * d, dtype=DTYPE)
    neg[d:2 * d] = -1
    for _ in range(cfg["gnn_steps"]):
        input_in = A[:, :n] @ (hidden @ P["ggnn.W_in"].t() + P["ggnn.b_in"][0])
        input_out = A[:, n:] @ (hidden @ P["ggnn.W_out"].t() + P["ggnn.b_out"][0])
        inputs = torch.cat([input_in, input_out], 1)
        gi = inputs @ (P["ggnn.W_ih"] * neg[:, None]).t() + P["ggnn.b_ih"][0] * neg
        gh = hidden @ (P["ggnn.W_hh"] * neg[:, None]).t() + P["ggnn.b_hh"][0] * neg
        i_r, i_i, i_n = gi.chunk(3, 1)
        h_r, h_i, h_n = gh.chunk(3, 1)
        resetgate = torch.sigmoid(i_r + h_r)
        inputgate = torch.sigmoid(i_i + h_i)
        newgate = torch.tanh(i_n + resetgate * h_n)
        hidden = newgate + inputgate * (hidden - newgate)
    alias = [int(np.where(node == v + 1)[0][0]) for v in items]
    seq_hidden = hidden[alias]
    ht = seq_hidden[-1]
    q1 = ht @ P["readout.W1"].t() + P["readout.b1"][0]
    q2 = seq_hidden @ P["readout.W2"].t() + P["readout.b2"][0]
    alpha = torch.sigmoid(q1 + q2) @ P["readout.q"][0]
    a = (alpha[:, None] * seq_hidden).sum(0)
    W3 = P["readout.W3"]
    W3_code = torch.cat([W3[:, d:], W3[:, :d]], 1)
    a = torch.cat([a, ht]) @ W3_code.t() + P["readout.b3"][0]
    want = a @ E.t()
    check(torch.allclose(scores[0], want, atol=1e-12, rtol=1e-12),
          "SR-GNN differs from the transcription of the authors' model.py")


def check_sgnnhn_pieces():
    """The star step against the EMBSR oracle's (written independently from MODEL.md 3.4, the same
    equations), the centred normalisation against F.layer_norm / sqrt(d) with eps 0, and the
    reversed positions by hand."""
    import embsr_oracle
    cfg = base_config("sgnn-hn")
    P = random_params(cfg, 31)
    d = cfg["d"]
    torch.manual_seed(4)
    H_hat, x = torch.randn(5, d, dtype=DTYPE), torch.randn(d, dtype=DTYPE)
    H, x_new = oracle.star_step(P, H_hat, x)
    P_embsr = {name.replace("star.", "star0."): p for name, p in P.items() if name.startswith("star.")}
    H_ref, x_ref = embsr_oracle.star_step(P_embsr, 0, H_hat, x)
    check(torch.allclose(H, H_ref, atol=1e-14) and torch.allclose(x_new, x_ref, atol=1e-14),
          "sgnn-hn: star step differs from embsr_oracle.star_step")
    X = torch.randn(6, d, dtype=DTYPE)
    ref = torch.nn.functional.layer_norm(X, (d,), eps=0.0) / d ** 0.5
    check(torch.allclose(oracle.centred_unit_rows(X), ref, atol=1e-13), "sgnn-hn: centred normalisation")
    # Reversed positions: with q = 0 only z_r = u_n enters the scores, so a change of positions
    # row 0 (the last position's row) moves them and a change of row n - 1 (the first position's)
    # does not; rows >= n are never read.
    items = [1, 2, 1, 3]
    bt = make_batch([(items, [0] * 4, 2, 0)])
    n = 4
    Pq = dict(P)
    Pq["readout.q"] = torch.zeros_like(P["readout.q"])
    base, _ = oracle.forward(cfg, Pq, bt)
    for r, should_change in ((0, True), (n - 1, False), (n, False)):
        P2 = dict(Pq)
        P2["positions"] = Pq["positions"].clone()
        P2["positions"][r] += 0.7
        moved, _ = oracle.forward(cfg, P2, bt)
        check(bool((moved - base).abs().max() > 1e-9) == should_change,
              f"sgnn-hn: positions row {r} {'not ' if should_change else ''}read by z_r (n = {n}, q = 0)")


def check_gcsan_pieces():
    """The attention block against torch.nn.MultiheadAttention (one head, no biases, the output
    projection set to the identity), omega = 0 reducing to h_n, and the blocks not sharing weights."""
    cfg = base_config("gc-san", num_blocks=2)
    P = random_params(cfg, 41, scale=1.5)  # peaky attention: rows of X^K differ
    d = cfg["d"]
    torch.manual_seed(6)
    X = torch.randn(5, d, dtype=DTYPE)
    mha = torch.nn.MultiheadAttention(d, 1, bias=False).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([P["sa0.W_Q"], P["sa0.W_K"], P["sa0.W_V"]]))
        mha.out_proj.weight.copy_(torch.eye(d, dtype=DTYPE))
        F = mha(X[:, None, :], X[:, None, :], X[:, None, :], need_weights=False)[0][:, 0, :]
    want = oracle.linear(torch.relu(oracle.linear(F, P["sa0.W_1"], P["sa0.b_1"])), P["sa0.W_2"], P["sa0.b_2"]) + F
    check(torch.allclose(oracle.sa_block(P, 0, X), want, atol=1e-13), "gc-san: block != nn.MultiheadAttention + FFN")
    items = [3, 1, 3, 5, 2]
    bt = make_batch([(items, [0] * 5, 4, 1)])
    got, _ = oracle.forward(dict(cfg, omega=0.0), P, bt)
    s = oracle.Session(bt, 0)
    H = P["item_embedding"][s.node_items]
    for _ in range(cfg["gnn_steps"]):
        H = oracle.ggnn(P, "ggnn", H, s.Ain, s.Aout)
    check(torch.allclose(got[0], H[s.alias[-1]] @ P["item_embedding"].t(), atol=1e-13),
          "gc-san: omega = 0 is not SR-GNN's h_n . E")
    # The whole model with omega = 0.6: both blocks through nn.MultiheadAttention, the last row.
    X = H[s.alias]
    h_n = X[-1]
    for k in range(cfg["num_blocks"]):
        with torch.no_grad():
            mha.in_proj_weight.copy_(torch.cat([P[f"sa{k}.W_Q"], P[f"sa{k}.W_K"], P[f"sa{k}.W_V"]]))
            F = mha(X[:, None, :], X[:, None, :], X[:, None, :], need_weights=False)[0][:, 0, :]
        X = torch.relu(F @ P[f"sa{k}.W_1"].t() + P[f"sa{k}.b_1"][0]) @ P[f"sa{k}.W_2"].t() + P[f"sa{k}.b_2"][0] + F
    got, _ = oracle.forward(dict(cfg, omega=0.6), P, bt)
    check(torch.allclose(got[0], (0.6 * X[-1] + 0.4 * h_n) @ P["item_embedding"].t(), atol=1e-12),
          "gc-san: the whole model differs from the by-hand stack")
    leaves = {k: v.clone().requires_grad_(True) for k, v in P.items()}
    _, loss = oracle.forward(dict(cfg, omega=0.6), leaves, bt)
    loss.backward()
    check(not torch.allclose(leaves["sa0.W_V"].grad, leaves["sa1.W_V"].grad), "gc-san: blocks share gradients")


def authors_counted_adjacency(u_input):
    """Literal transcription of MKM-SR utils.py get_slice for one unpadded micro item sequence
    (ids >= 1): u_A[u][v] += 1, then SR-GNN's normalisation. Returns (node, [A_in | A_out])."""
    node = np.unique(u_input)
    u_A = np.zeros((len(node), len(node)))
    for i in range(len(u_input) - 1):
        u = np.where(node == u_input[i])[0][0]
        v = np.where(node == u_input[i + 1])[0][0]
        u_A[u][v] += 1
    u_sum_in = np.sum(u_A, 0)
    u_sum_in[np.where(u_sum_in == 0)] = 1
    u_A_in = np.divide(u_A, u_sum_in)
    u_sum_out = np.sum(u_A, 1)
    u_sum_out[np.where(u_sum_out == 0)] = 1
    u_A_out = np.divide(u_A.T, u_sum_out)
    return node, np.concatenate([u_A_in, u_A_out]).T


def check_mkmsr_pieces():
    """MKM-SR's graph against utils.py and against the batch description of the spec (macro-edge
    multiplicities + self-loops from the run lengths); the operation GRU against torch.nn.GRU;
    the whole model against a transcription of MKM_SR.forward / predict."""
    rng = np.random.default_rng(8)
    for trial in range(30):
        t = int(rng.integers(1, 12))
        items = [int(rng.integers(1, 5)) for _ in range(t)]
        node, A = authors_counted_adjacency(np.array(items))
        idx = {v: i for i, v in enumerate(node.tolist())}
        m = len(node)
        Ain, Aout = oracle.counted_micro_adjacency([idx[v] for v in items], m)
        ok = np.array_equal(A[:, :m], Ain.numpy()) and np.array_equal(A[:, m:], Aout.numpy())
        # From the batch arrays, as the C++ derives it.
        bt = make_batch([(items, [0] * t, 1, 0)], node_order=[node.tolist()])
        C = np.zeros((m, m))
        for u, v in zip(bt["edge_src"], bt["edge_dst"]):
            C[u, v] += 1
        for k in range(len(bt["macro_items"])):
            c = bt["macro_alias"][k]
            C[c, c] += bt["run_end"][k] - bt["run_begin"][k] - 1
        indeg, outdeg = np.maximum(C.sum(0), 1), np.maximum(C.sum(1), 1)
        ok = ok and np.allclose(C.T / indeg[:, None], Ain.numpy(), rtol=0, atol=1e-15) \
            and np.allclose(C / outdeg[:, None], Aout.numpy(), rtol=0, atol=1e-15)
        if not check(ok, f"mkm-sr: counted adjacency differs (utils.py or batch derivation) on {items}"):
            break

    cfg = base_config("mkm-sr", gnn_steps=2)
    P = random_params(cfg, 51)
    d = cfg["d"]
    gru = torch.nn.GRU(d, d, batch_first=True).double()
    with torch.no_grad():
        gru.weight_ih_l0.copy_(P["op_gru.W_ih"])
        gru.weight_hh_l0.copy_(P["op_gru.W_hh"])
        gru.bias_ih_l0.copy_(P["op_gru.b_ih"][0])
        gru.bias_hh_l0.copy_(P["op_gru.b_hh"][0])
    items, ops = [2, 2, 5, 1, 5, 5, 5, 2], [0, 1, 2, 0, 1, 1, 0, 2]
    bt = make_batch([(items, ops, 3, 1)])
    got, _ = oracle.forward(cfg, P, bt)
    with torch.no_grad():
        relation_output, _ = gru(P["op_embedding"][torch.tensor(ops)][None], None)
    node, A = authors_counted_adjacency(np.array(items))
    A = torch.tensor(A, dtype=DTYPE)
    m = len(node)
    hidden = P["item_embedding"][torch.as_tensor(node)]
    neg = torch.ones(3 * d, dtype=DTYPE)
    neg[d:2 * d] = -1
    for _ in range(cfg["gnn_steps"]):
        inputs = torch.cat([A[:, :m] @ (hidden @ P["ggnn.W_in"].t() + P["ggnn.b_in"][0]),
                            A[:, m:] @ (hidden @ P["ggnn.W_out"].t() + P["ggnn.b_out"][0])], 1)
        g_i = inputs @ (P["ggnn.W_ih"] * neg[:, None]).t() + P["ggnn.b_ih"][0] * neg
        g_h = hidden @ (P["ggnn.W_hh"] * neg[:, None]).t() + P["ggnn.b_hh"][0] * neg
        i_r, i_i, i_n = g_i.chunk(3, 1)
        h_r, h_i, h_n = g_h.chunk(3, 1)
        resetgate, inputgate = torch.sigmoid(i_r + h_r), torch.sigmoid(i_i + h_i)
        newgate = torch.tanh(i_n + resetgate * h_n)
        hidden = newgate + inputgate * (hidden - newgate)
    alias = [int(np.where(node == v)[0][0]) for v in items]
    seq_hiddens = torch.cat([hidden[alias], relation_output[0]], dim=1)
    ht = seq_hiddens[-1]
    q1 = ht @ P["readout.W1"].t() + P["readout.b1"][0]
    q2 = seq_hiddens @ P["readout.W2"].t() + P["readout.b2"][0]
    alpha = torch.sigmoid(q1 + q2) @ P["readout.q"][0]          # linear_three with its bias = 0
    a = (alpha[:, None] * seq_hiddens).sum(0)
    W3 = P["readout.W3"]
    W3_code = torch.cat([W3[:, 2 * d:], W3[:, :2 * d]], 1)       # the code's cat([a, ht])
    a = torch.cat([a, ht]) @ W3_code.t() + P["readout.b3"][0]
    check(torch.allclose(got[0], a @ P["item_embedding"].t(), atol=1e-12, rtol=1e-12),
          "mkm-sr: differs from the transcription of the authors' MKM_SR.py / utils.py")


# ---------------------------------------------------------------------------------------------
# 2-4. Gradients, batch independence, invariants
# ---------------------------------------------------------------------------------------------
def check_gradcheck(cfg, sessions, what):
    bt = make_batch(sessions)
    P0 = random_params(cfg, 7)
    names = [n for n, _ in oracle.param_shapes(cfg)]

    def f(*tensors):
        return oracle.forward(cfg, dict(zip(names, tensors)), bt)[1]

    inputs = tuple(P0[n].clone().requires_grad_(True) for n in names)
    try:
        ok = torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)
    except RuntimeError as exc:
        ok = False
        print(f"    {str(exc)[:400]}")
    check(ok, f"gradcheck {what}")


def check_independence(cfg, sessions, what):
    P = random_params(cfg, 9)
    full, _ = oracle.forward(cfg, P, make_batch(sessions))
    perm = list(reversed(range(len(sessions))))
    permuted, _ = oracle.forward(cfg, P, make_batch([sessions[i] for i in perm]))
    for b in range(len(sessions)):
        alone, _ = oracle.forward(cfg, P, make_batch([sessions[b]]))
        check(torch.allclose(alone[0], full[b], atol=1e-12, rtol=1e-12), f"{what}: session {b} alone != in batch")
        check(torch.allclose(permuted[perm.index(b)], full[b], atol=1e-12, rtol=1e-12),
              f"{what}: session {b} in permuted batch")
    rng = np.random.default_rng(1)
    orders = []
    for items, _, _, _ in sessions:
        distinct = list(dict.fromkeys(items))
        orders.append([distinct[i] for i in rng.permutation(len(distinct))])
    reordered, _ = oracle.forward(cfg, P, make_batch(sessions, node_order=orders))
    check(torch.allclose(reordered, full, atol=1e-12, rtol=1e-12), f"{what}: scores depend on the node order")


def check_invariants(cfg, sessions):
    P = {k: v.requires_grad_(True) for k, v in random_params(cfg, 21).items()}
    _, loss = oracle.forward(cfg, P, make_batch(sessions))
    loss.backward()
    model = cfg["model"]
    if model in ("sr-gnn", "mkm-sr"):
        check(torch.allclose(P["readout.b1"].grad, P["readout.b2"].grad, atol=1e-14, rtol=1e-12),
              f"{model}: dL/db1 != dL/db2 (the readout has one bias inside the sigmoid)")
    if model == "sgnn-hn":
        for other in ("readout.b2", "readout.b_s"):
            check(torch.allclose(P["readout.b1"].grad, P[other].grad, atol=1e-14, rtol=1e-12),
                  f"sgnn-hn: dL/db1 != dL/d{other}")
        check(float(P["star.b_k2"].grad.abs().max()) < 1e-12, "sgnn-hn: dL/db_k2 not 0 (softmax shift)")
        # The scores are w_k times cosines of centred vectors: |score| <= w_k; the centred
        # normalisation ignores a shift of a row along (1, ..., 1).
        with torch.no_grad():
            scores, _ = oracle.forward(cfg, P, make_batch(sessions))
            check(float(scores.abs().max()) <= cfg["w_k"] * (1 + 1e-12), "sgnn-hn: |score| > w_k")
            E = P["item_embedding"]
            check(torch.allclose(oracle.centred_unit_rows(E), oracle.centred_unit_rows(E + 0.3), atol=1e-12),
                  "sgnn-hn: centred normalisation not shift-invariant")


# ---------------------------------------------------------------------------------------------
# 5. Exchange directory
# ---------------------------------------------------------------------------------------------
def write_exchange(directory, cfg, params, bt):
    os.makedirs(os.path.join(directory, "params"), exist_ok=True)
    os.makedirs(os.path.join(directory, "batch"), exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f)
    for name, p in params.items():
        np.save(os.path.join(directory, "params", name + ".npy"), p.detach().numpy().astype(np.float64))
    for name, a in bt.items():
        np.save(os.path.join(directory, "batch", name + ".npy"), a.astype(np.int32))


def run_main_quiet(directory):
    import contextlib
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = oracle.main(["graph_oracle.py", directory])
    return rc, err.getvalue()


def check_exchange(cfg, sessions):
    model = cfg["model"]
    P = random_params(cfg, 13)
    bt = make_batch(sessions)
    scores, loss, grads = oracle.run_oracle(cfg, P, bt)
    with tempfile.TemporaryDirectory() as tmp:
        write_exchange(tmp, cfg, P, bt)
        rc, err = run_main_quiet(tmp)
        if check(rc == 0, f"{model}: exchange round trip rc {rc}: {err.strip()}"):
            out = os.path.join(tmp, "out")
            check(np.array_equal(np.load(os.path.join(out, "scores.npy")), scores), f"{model}: scores.npy")
            check(np.array_equal(np.load(os.path.join(out, "loss.npy")), loss), f"{model}: loss.npy")
            for name in P:
                check(np.array_equal(np.load(os.path.join(out, f"grad_{name}.npy")), grads[name]),
                      f"{model}: grad_{name}.npy")

    first_param = oracle.param_shapes(cfg)[1][0]

    def bad_cfg_key(c, p, b):
        c["bogus"] = 1

    def missing_key(c, p, b):
        del c["d"]

    def bad_model(c, p, b):
        c["model"] = "gru4rec"

    def missing_param(c, p, b):
        del p[first_param]

    def extra_param(c, p, b):
        p["unknown.W"] = torch.zeros(1, 1, dtype=DTYPE)

    def wrong_shape(c, p, b):
        p[first_param] = torch.zeros(p[first_param].shape[0] + 1, p[first_param].shape[1], dtype=DTYPE)

    def bad_alias(c, p, b):
        b["macro_alias"] = b["macro_alias"].copy()
        b["macro_alias"][-1] = (b["macro_alias"][-1] + 1) % len(b["node_items"])

    def bad_target(c, p, b):
        b["targets"] = b["targets"].copy()
        b["targets"][0] = c["num_items"]

    def too_long(c, p, b):
        c["max_length"] = 1

    def bad_edges(c, p, b):
        b["edge_dst"] = b["edge_dst"].copy()
        b["edge_dst"][0] = b["edge_src"][0]

    for mutate in (bad_cfg_key, missing_key, bad_model, missing_param, extra_param, wrong_shape, bad_alias,
                   bad_target, too_long, bad_edges):
        c, p, b = copy.deepcopy(cfg), dict(P), {k: v.copy() for k, v in bt.items()}
        mutate(c, p, b)
        with tempfile.TemporaryDirectory() as tmp:
            write_exchange(tmp, c, p, b)
            rc, err = run_main_quiet(tmp)
            check(rc == 2 and err.count("\n") == 1 and err.startswith("graph_oracle: "),
                  f"{model}: broken input '{mutate.__name__}' gave rc {rc}, stderr {err!r}")


# ---------------------------------------------------------------------------------------------
def run_all(verbose=True):
    torch.set_default_dtype(DTYPE)
    start = time.time()
    print("graph oracle self-check")
    check_blocks()
    print(f"  building blocks: done ({time.time() - start:.1f} s)")
    rng = np.random.default_rng(2024)
    for model in oracle.MODELS:
        try:
            cfg = base_config(model)
            oracle.param_shapes(cfg)
        except oracle.OracleError:
            print(f"  {model}: not implemented yet, skipped")
            continue
        if model == "sr-gnn":
            check_srgnn_by_hand()
        if model == "sgnn-hn":
            check_sgnnhn_pieces()
        if model == "gc-san":
            check_gcsan_pieces()
        if model == "mkm-sr":
            check_mkmsr_pieces()
        sessions = random_sessions(rng, 3, cfg["num_items"], cfg["num_ops"], cfg["max_length"])
        check_gradcheck(base_config(model, gnn_steps=1), sessions[:2], f"{model} (1 step)")
        check_gradcheck(cfg, sessions, f"{model} ({cfg['gnn_steps']} steps)")
        check_independence(cfg, sessions, model)
        check_invariants(cfg, sessions)
        check_exchange(cfg, sessions)
        print(f"  {model}: done ({time.time() - start:.1f} s)")
    ok = not FAILURES
    print(f"graph oracle self-check: {'PASS' if ok else f'FAIL ({len(FAILURES)})'} in {time.time() - start:.1f} s")
    return ok


if __name__ == "__main__":
    sys.exit(0 if run_all() else 1)
