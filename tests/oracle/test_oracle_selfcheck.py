#!/usr/bin/env python3
"""Self-check of the EMBSR oracle (embsr_oracle.py); run with

    python3 tests/oracle/embsr_oracle.py --selfcheck     (or python3 tests/oracle/test_oracle_selfcheck.py)

It builds small random batches itself (straight from MODEL.md sections 1-2, independently of the
C++ BatchBuilder) and checks:
  1. counter_random / to_unit_double against values printed by a C++ program that includes
     include/embsr/core/random.hpp (hard-coded below);
  2. the hand-written GRU / GGNN / LayerNorm pieces against torch.nn.GRU, torch.nn.GRUCell and
     torch.nn.functional.layer_norm;
  3. torch.autograd.gradcheck of the loss w.r.t. every parameter the config uses, for the full
     model and each ablation / mode (dropout active where training), and zero gradients for the
     parameters a config does not use;
  4. a session's scores do not depend on the other sessions of the batch (alone, permuted);
  5. the exchange directory round trip (files in, files out) and rejection of broken batches;
  6. the repeat path (docs/REPEAT.md): its features on a hand-worked session, the bonus against a
     scalar re-computation of the doc's formula, items outside the session untouched, exactly the
     old function with use_repeat false (keys absent or false) or with all repeat parameters zero,
     and a repeat exchange directory (round trip, rejected inputs);
  7. the repeat/explore mixture (repeat_mixture): log P against a scalar re-computation of its
     formulas (gate, the two softmaxes), P summing to 1, the loss, the gate's gradient against
     the binary cross-entropy's, a zero gradient for repeat.bias (shift invariance), exactly the
     old functions with the key absent or false, and a mixture exchange directory.
Exit status 0 when everything passes.
"""

import copy
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import embsr_oracle as oracle  # noqa: E402

DTYPE = torch.float64

# (seed, stream, counter, counter_random, to_unit_double) from a C++17 program compiled against
# include/embsr/core/random.hpp (g++ 12, -O1).
CPP_COUNTER_RANDOM = [
    (0, 0, 0, 6235967106033911276, 0.33805245419550545),
    (0, 17, 123456789, 454266526394640739, 0.024625837740225642),
    (1, 0, 1, 7851527857629710090, 0.4256321780286294),
    (1, 17, 18446744073709551614, 9958584409792276744, 0.53985594259885306),
    (42, 0, 99, 11201775461173161600, 0.60724946453493767),
    (42, 16001, 0, 4905409556184364373, 0.26592278488731202),
    (1234567, 0, 123456789, 8452237659794972991, 0.45819672165567527),
    (1234567, 16001, 1, 11521238522711408086, 0.62456759180236954),
    (18446744073709551615, 0, 18446744073709551614, 14078187158060996612, 0.76318005507136311),
    (18446744073709551615, 16001, 99, 7849185799378234357, 0.42550521479641257),
    (1311768467463790320, 1, 0, 17449551256488806158, 0.94594206905911626),
    (1311768467463790320, 16001, 123456789, 15055694204395430416, 0.81617081823414717),
    (1311768467463790320, 18364758544493064720, 123456789, 16449511207265206267, 0.89172978936207936),
    (1311768467463790320, 18364758544493064720, 18446744073709551614, 11497227252950911994, 0.62326593826044629),
]
# Plain SplitMix64 started at state 1234567 (published reference outputs; Rng(1234567) in C++).
SPLITMIX_REFERENCE = [6457827717110365317, 3203168211198807973, 9817491932198370423]


# ---------------------------------------------------------------------------------------------
# Building batches from raw sessions (MODEL.md 1-2)
# ---------------------------------------------------------------------------------------------
def make_batch(sessions, num_ops, next_op_mode):
    """sessions: list of (items, ops, target, next_op) with items/ops the input micro-behaviors."""
    a = {name: [] for name in oracle.BATCH_ARRAYS}
    for name in ("micro_offsets", "macro_offsets", "node_offsets", "edge_offsets", "node_in_offsets",
                 "node_out_offsets"):
        a[name].append(0)
    for b, (items, ops, target, next_op) in enumerate(sessions):
        m0, k0, c0, e0 = (a[n][-1] for n in ("micro_offsets", "macro_offsets", "node_offsets", "edge_offsets"))
        distinct = []
        for v in items:
            if v not in distinct:
                distinct.append(v)
        node = {v: c0 + i for i, v in enumerate(distinct)}
        a["micro_items"] += items
        a["micro_ops"] += ops
        a["micro_alias"] += [node[v] for v in items]
        runs = []
        for i, v in enumerate(items):
            if runs and runs[-1][0] == v:
                runs[-1][2] += 1
            else:
                runs.append([v, m0 + i, m0 + i + 1])
        for v, rb, re in runs:
            a["macro_items"].append(v)
            a["macro_alias"].append(node[v])
            a["run_begin"].append(rb)
            a["run_end"].append(re)
        edges = []
        for k in range(len(runs) - 1):
            e = e0 + k
            src, dst = node[runs[k][0]], node[runs[k + 1][0]]
            edges.append((e, src, dst))
            a["edge_src"].append(src)
            a["edge_dst"].append(dst)
            a["edge_src_macro"].append(k0 + k)
            a["edge_dst_macro"].append(k0 + k + 1)
        for v in distinct:
            a["node_items"].append(v)
            a["node_session"].append(b)
            a["node_in_edges"] += [e for e, _, dst in edges if dst == node[v]]
            a["node_in_offsets"].append(len(a["node_in_edges"]))
            a["node_out_edges"] += [e for e, src, _ in edges if src == node[v]]
            a["node_out_offsets"].append(len(a["node_out_edges"]))
        a["targets"].append(target)
        a["next_ops"].append(next_op)
        a["op0"].append(next_op if next_op_mode == "given" else num_ops)
        a["micro_offsets"].append(m0 + len(items))
        a["macro_offsets"].append(k0 + len(runs))
        a["node_offsets"].append(c0 + len(distinct))
        a["edge_offsets"].append(e0 + len(edges))
    return {name: np.array(v, dtype=np.int64) for name, v in a.items()}


def random_sessions(rng, count, V, O, max_len):
    sessions = []
    for i in range(count):
        t = 1 if i == 0 else int(rng.integers(2, max_len + 1))  # session 0: a single micro-behavior
        items = [int(rng.integers(V))]
        for _ in range(t - 1):  # repeats of the same item (runs) and returns (parallel edges)
            items.append(items[-1] if rng.random() < 0.35 else int(rng.integers(min(V, 4))))
        ops = [int(rng.integers(O)) for _ in range(t)]
        target = int(rng.integers(V))
        sessions.append((items, ops, target, int(rng.integers(O))))
    return sessions


def base_config(**overrides):
    cfg = {"d": 3, "gnn_steps": 2, "w_k": 12.0, "num_items": 7, "num_ops": 3, "max_length": 8,
           "next_op_mode": "given", "dropout": 0.3, "dropout_seed": 977, "dropout_step": 5, "training": True,
           "use_relations": True, "use_gnn": True, "use_run_gru": True, "use_attention": True, "fusion": "gate",
           "fixed_beta": 0.4}
    cfg.update(overrides)
    return oracle.check_config(cfg)


def random_params(cfg, seed):
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in oracle.all_param_shapes(cfg).items():
        std = 1.0 if name in ("item_embedding", "op_embedding") else 0.4
        params[name] = torch.randn(shape, generator=gen, dtype=DTYPE) * std
    params["attention.ln_gamma"] = 1.0 + params["attention.ln_gamma"]
    return params


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
def check_random():
    for seed, stream, counter, bits, u in CPP_COUNTER_RANDOM:
        got = oracle.counter_random(seed, stream, counter)
        assert got == bits, f"counter_random({seed}, {stream}, {counter}) = {got}, C++ gives {bits}"
        assert oracle.to_unit_double(got) == u, f"to_unit_double({bits}) = {oracle.to_unit_double(got)!r}, C++ {u!r}"
    state = 1234567
    for ref in SPLITMIX_REFERENCE:
        state = (state + oracle.GOLDEN_GAMMA) & oracle.MASK64
        assert oracle.mix64(state) == ref, "mix64 differs from SplitMix64's reference outputs"
    cfg = base_config(d=50, dropout=0.25)
    mask = oracle.dropout_multipliers(cfg, 1, 40, 50)
    kept = (mask != 0).double().mean().item()
    assert abs(kept - 0.75) < 0.03, f"dropout keeps {kept:.3f}, expected about 0.75"
    assert torch.all((mask == 0) | (mask == 1.0 / 0.75))
    key = oracle.stream_key(977, 5 * 16 + 1)
    assert oracle.mix64((key + oracle.GOLDEN_GAMMA * (7 * 50 + 3 + 1)) & oracle.MASK64) == \
        oracle.counter_random(977, 5 * 16 + 1, 7 * 50 + 3)
    u = oracle.to_unit_double(oracle.counter_random(cfg["dropout_seed"], cfg["dropout_step"] * 16 + 1, 7 * 50 + 3))
    assert (mask[7, 3] != 0).item() == (u >= 0.25), "dropout element (7, 3) uses the wrong counter"
    assert oracle.dropout_multipliers(base_config(training=False), 0, 2, 3) is None
    assert oracle.dropout_multipliers(base_config(dropout=0.0), 0, 2, 3) is None


def check_layers():
    d = 4
    gen = torch.Generator().manual_seed(3)
    params = {n: torch.randn(s, generator=gen, dtype=DTYPE) * 0.5
              for n, s in {"run_gru.W_ih": (3 * d, d), "run_gru.W_hh": (3 * d, d), "run_gru.b_ih": (1, 3 * d),
                           "run_gru.b_hh": (1, 3 * d)}.items()}
    xs = torch.randn(5, d, generator=gen, dtype=DTYPE)
    gru = torch.nn.GRU(d, d).double()
    with torch.no_grad():
        gru.weight_ih_l0.copy_(params["run_gru.W_ih"])
        gru.weight_hh_l0.copy_(params["run_gru.W_hh"])
        gru.bias_ih_l0.copy_(params["run_gru.b_ih"].reshape(-1))
        gru.bias_hh_l0.copy_(params["run_gru.b_hh"].reshape(-1))
        ref = gru(xs[:, None, :])[1].reshape(-1)
    got = oracle.run_gru_last_state(params, xs)
    assert torch.allclose(got, ref, rtol=1e-13, atol=1e-14), "run GRU differs from torch.nn.GRU"
    # RNN-Self's GRU: every state, over [item ; operation] rows of width 2d.
    rnn = {n: torch.randn(s, generator=gen, dtype=DTYPE) * 0.5
           for n, s in {"rnn.W_ih": (3 * d, 2 * d), "rnn.W_hh": (3 * d, d), "rnn.b_ih": (1, 3 * d),
                        "rnn.b_hh": (1, 3 * d)}.items()}
    rows = torch.randn(6, 2 * d, generator=gen, dtype=DTYPE)
    gru2 = torch.nn.GRU(2 * d, d).double()
    with torch.no_grad():
        gru2.weight_ih_l0.copy_(rnn["rnn.W_ih"])
        gru2.weight_hh_l0.copy_(rnn["rnn.W_hh"])
        gru2.bias_ih_l0.copy_(rnn["rnn.b_ih"].reshape(-1))
        gru2.bias_hh_l0.copy_(rnn["rnn.b_hh"].reshape(-1))
        ref_states = gru2(rows[:, None, :])[0][:, 0, :]
    assert torch.allclose(oracle.gru_states(rnn, "rnn", rows), ref_states, rtol=1e-13, atol=1e-14), \
        "RNN-Self's GRU states differ from torch.nn.GRU"

    # GGNN update (1-z) h + z n == GRUCell (convention (1-z') n + z' h) with the z gate negated
    # (sigmoid(-x) = 1 - sigmoid(x)). One node with one in-edge and one out-edge.
    s = 0
    P = {f"ggnn{s}.{n}": torch.randn(shape, generator=gen, dtype=DTYPE) * 0.5
         for n, shape in {"W_in": (d, 2 * d), "b_in": (1, d), "W_out": (d, 2 * d), "b_out": (1, d),
                          "W_ih": (3 * d, 2 * d), "W_hh": (3 * d, d), "b_ih": (1, 3 * d),
                          "b_hh": (1, 3 * d)}.items()}
    h = torch.randn(3, d, generator=gen, dtype=DTYPE)
    hrun = torch.randn(3, d, generator=gen, dtype=DTYPE)
    src, dst = torch.tensor([0, 1]), torch.tensor([1, 2])  # path 0 -> 1 -> 2 (macro positions 0, 1, 2)
    got = oracle.ggnn_step(P, s, h, hrun, src, dst, torch.tensor([0, 1]), torch.tensor([1, 2]),
                           [[], [0], [1]], [[0], [1], []])
    W_in, W_out = P["ggnn0.W_in"], P["ggnn0.W_out"]
    a = torch.zeros(3, 2 * d, dtype=DTYPE)
    a[1, :d] = W_in @ torch.cat([h[0], hrun[0]]) + P["ggnn0.b_in"][0]   # in-edge 0 -> 1, message from 0
    a[2, :d] = W_in @ torch.cat([h[1], hrun[1]]) + P["ggnn0.b_in"][0]
    a[0, d:] = W_out @ torch.cat([h[1], hrun[1]]) + P["ggnn0.b_out"][0]  # out-edge 0 -> 1, message from 1
    a[1, d:] = W_out @ torch.cat([h[2], hrun[2]]) + P["ggnn0.b_out"][0]
    flip = torch.ones(3 * d, dtype=DTYPE)
    flip[d:2 * d] = -1
    cell = torch.nn.GRUCell(2 * d, d).double()
    with torch.no_grad():
        cell.weight_ih.copy_(P["ggnn0.W_ih"] * flip[:, None])
        cell.weight_hh.copy_(P["ggnn0.W_hh"] * flip[:, None])
        cell.bias_ih.copy_(P["ggnn0.b_ih"].reshape(-1) * flip)
        cell.bias_hh.copy_(P["ggnn0.b_hh"].reshape(-1) * flip)
        ref = cell(a, h)
    assert torch.allclose(got, ref, rtol=1e-12, atol=1e-13), "GGNN update differs from the GRUCell reference"

    x = torch.randn(d, generator=gen, dtype=DTYPE)
    gamma, beta = torch.randn(1, d, generator=gen, dtype=DTYPE), torch.randn(1, d, generator=gen, dtype=DTYPE)
    ref = torch.nn.functional.layer_norm(x, (d,), gamma.reshape(-1), beta.reshape(-1), eps=1e-5)
    assert torch.allclose(oracle.layer_norm(x, gamma, beta), ref, rtol=1e-13, atol=1e-14), "layer_norm differs"


CONFIGS = {  # each option of the config is exercised by at least one entry
    "full (given op, dropout, 2 steps)": {},
    "learned [NEXT], mlp fusion, no relations, eval": {"next_op_mode": "learned", "fusion": "mlp",
                                                       "use_relations": False, "training": False, "gnn_steps": 1},
    "no run GRU, fixed beta": {"use_run_gru": False, "fusion": "fixed", "gnn_steps": 1},
    "EMBSR-NG (no GNN)": {"use_gnn": False},
    "EMBSR-NS (no attention)": {"use_attention": False, "gnn_steps": 1},
    "0 GNN steps (highway only)": {"gnn_steps": 0},
    # docs/REPEAT.md; 2-3 recency buckets so that bucket(D) = min(D, R - 1) clamps on these sessions.
    "EMBSR-R (repeat bonus, given op, 3 buckets)": {"use_repeat": True, "repeat_buckets": 3, "gnn_steps": 1},
    "EMBSR-R learned [NEXT], NG, 2 buckets": {"use_repeat": True, "repeat_buckets": 2, "next_op_mode": "learned",
                                              "use_gnn": False},
    # The repeat/explore mixture; check_gradients gives its batch both kinds of target.
    "EMBSR-R mixture (given op, 3 buckets)": {"use_repeat": True, "repeat_mixture": True, "repeat_buckets": 3,
                                              "gnn_steps": 1},
    "EMBSR-R mixture learned [NEXT], NG, eval": {"use_repeat": True, "repeat_mixture": True, "repeat_buckets": 2,
                                                 "next_op_mode": "learned", "use_gnn": False, "training": False},
    # The paper's Sec. V-D variants (docs/GRAPH_MODELS.md section 6).
    "SGNN-Self (attention over macro items, no operations)": {"use_run_gru": False, "use_relations": False,
                                                             "use_attention_ops": False, "gnn_steps": 1},
    "SGNN-Seq-Self": {"use_relations": False, "use_attention_ops": False, "gnn_steps": 1},
    "RNN-Self": {"encoder": "rnn", "use_run_gru": False, "use_relations": False, "use_attention_ops": False},
    "RNN encoder, dyadic attention, learned [NEXT]": {"encoder": "rnn", "use_run_gru": False,
                                                      "next_op_mode": "learned"},
}


def target_kinds(sessions):
    """(number of targets among their session's items, number outside)."""
    inside = sum(1 for items, _, target, _ in sessions if target in items)
    return inside, len(sessions) - inside


def with_both_target_kinds(sessions, V):
    """random_sessions with an explore target in session 0 (a single item) and a repeat target,
    the session's first item, in session 1; the others keep their random targets."""
    out = list(sessions)
    items, ops, _, next_op = out[0]
    out[0] = (items, ops, (items[0] + 1) % V, next_op)
    items, ops, _, next_op = out[1]
    out[1] = (items, ops, items[0], next_op)
    assert min(target_kinds(out)) > 0
    return out


def check_gradients(verbose):
    rng = np.random.default_rng(11)
    for i, (label, overrides) in enumerate(CONFIGS.items()):
        cfg = base_config(**overrides)
        sessions = random_sessions(rng, 4, cfg["num_items"], cfg["num_ops"], 6)
        if cfg["repeat_mixture"]:
            sessions = with_both_target_kinds(sessions, cfg["num_items"])
        batch = make_batch(sessions, cfg["num_ops"], cfg["next_op_mode"])
        oracle.check_batch(cfg, batch)
        params = random_params(cfg, seed=100 + i)
        used = oracle.used_param_names(cfg)
        names = [n for n in params if n in used]

        def loss_of(*tensors):
            P = dict(params)
            P.update(zip(names, tensors))
            return oracle.forward(cfg, P, batch)[1]

        inputs = tuple(params[n].clone().requires_grad_(True) for n in names)
        start = time.time()
        ok = torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-8, rtol=1e-6, raise_exception=False)
        assert ok, f"gradcheck failed for config '{label}'"
        _, _, grads = oracle.run_oracle(cfg, params, batch)
        for n, g in grads.items():
            if n not in used:
                assert not np.any(g), f"'{label}': unused parameter {n} has a non-zero gradient"
            assert g.shape == tuple(params[n].shape)
        if verbose:
            print(f"  gradcheck ok: {label} ({sum(p.numel() for p in inputs)} inputs, {time.time() - start:.1f} s)")


def check_batch_independence():
    check_batch_independence_of(base_config(training=False, num_items=9, max_length=10))
    check_batch_independence_of(base_config(training=False, num_items=9, max_length=10, use_repeat=True,
                                            repeat_buckets=4))
    check_batch_independence_of(base_config(training=False, num_items=9, max_length=10, use_repeat=True,
                                            repeat_buckets=4, repeat_mixture=True))
    check_batch_independence_of(base_config(training=False, num_items=9, max_length=10, use_run_gru=False,
                                            use_relations=False, use_attention_ops=False))
    check_batch_independence_of(base_config(training=False, num_items=9, max_length=10, encoder="rnn",
                                            use_run_gru=False, use_relations=False, use_attention_ops=False))


def check_batch_independence_of(cfg):
    rng = np.random.default_rng(5)
    sessions = random_sessions(rng, 6, cfg["num_items"], cfg["num_ops"], 10)
    params = random_params(cfg, seed=7)
    with torch.no_grad():
        together = oracle.forward(cfg, params, make_batch(sessions, cfg["num_ops"], "given"))[0]
        for b, session in enumerate(sessions):
            alone = oracle.forward(cfg, params, make_batch([session], cfg["num_ops"], "given"))[0]
            assert torch.allclose(alone[0], together[b], rtol=1e-14, atol=1e-13), \
                f"session {b}'s scores change with the rest of the batch"
        order = [3, 0, 5, 1, 4, 2]
        permuted = oracle.forward(cfg, params, make_batch([sessions[i] for i in order], cfg["num_ops"], "given"))[0]
        assert torch.allclose(permuted, together[order], rtol=1e-14, atol=1e-13), "scores depend on batch order"
        # With dropout in training, the mask rows follow the batch position (row = session index).
        cfg_t = dict(cfg, training=True, dropout=0.5)
        s_all = oracle.forward(cfg_t, params, make_batch(sessions, cfg["num_ops"], "given"))[0]
        s_first = oracle.forward(cfg_t, params, make_batch(sessions[:1], cfg["num_ops"], "given"))[0]
        assert torch.allclose(s_first[0], s_all[0], rtol=1e-14, atol=1e-13), "dropout row 0 differs"


def write_exchange(directory, cfg, params, batch):
    os.makedirs(os.path.join(directory, "params"), exist_ok=True)
    os.makedirs(os.path.join(directory, "batch"), exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f)
    for name, p in params.items():
        np.save(os.path.join(directory, "params", name + ".npy"), p.numpy())
    for name, a in batch.items():
        np.save(os.path.join(directory, "batch", name + ".npy"), a.astype(np.int32))


def check_exchange_round_trip(cfg, params, bt, expected, what):
    """The oracle's command line on an exchange directory gives exactly run_oracle's results."""
    scores, loss, grads = expected
    with tempfile.TemporaryDirectory() as tmp:
        write_exchange(tmp, cfg, params, bt)
        assert oracle.main([sys.argv[0], tmp]) == 0, f"oracle failed on a valid {what} exchange directory"
        out = os.path.join(tmp, "out")
        assert np.array_equal(np.load(os.path.join(out, "scores.npy")), scores)
        assert np.array_equal(np.load(os.path.join(out, "loss.npy")), loss)
        for name in params:
            assert np.array_equal(np.load(os.path.join(out, f"grad_{name}.npy")), grads[name]), name


def expect_exchange_rejected(cfg, params, bt, mutate, what):
    """The oracle refuses (exit 2) an exchange directory that mutate(config, params) broke."""
    import contextlib
    import io
    with tempfile.TemporaryDirectory() as bad:
        c, p = copy.deepcopy(cfg), dict(params)
        mutate(c, p)
        write_exchange(bad, c, p, bt)
        with contextlib.redirect_stderr(io.StringIO()):
            assert oracle.main([sys.argv[0], bad]) == 2, f"oracle accepted {what}"


def check_exchange():
    cfg = base_config(next_op_mode="learned", gnn_steps=1)
    rng = np.random.default_rng(8)
    sessions = random_sessions(rng, 5, cfg["num_items"], cfg["num_ops"], 7)
    batch = make_batch(sessions, cfg["num_ops"], "learned")
    params = random_params(cfg, seed=9)
    del params["nf.W"], params["nf.b"]  # the C++ side exports only the fusion it has
    scores, loss, grads = oracle.run_oracle(cfg, params, batch)
    with tempfile.TemporaryDirectory() as tmp:
        write_exchange(tmp, cfg, params, batch)
        assert oracle.main([sys.argv[0], tmp]) == 0, "oracle failed on a valid exchange directory"
        out = os.path.join(tmp, "out")
        assert np.array_equal(np.load(os.path.join(out, "scores.npy")), scores)
        assert np.load(os.path.join(out, "scores.npy")).shape == (len(sessions), cfg["num_items"])
        assert np.array_equal(np.load(os.path.join(out, "loss.npy")), loss) and loss.shape == (1,)
        for name in params:
            g = np.load(os.path.join(out, f"grad_{name}.npy"))
            assert g.dtype == np.float64 and np.array_equal(g, grads[name]), f"grad_{name}.npy differs"
        assert not os.path.exists(os.path.join(out, "grad_nf.W.npy"))

        # Broken inputs are rejected with exit status 2.
        def expect_rejected(mutate, what):
            with tempfile.TemporaryDirectory() as bad:
                c, p, bt = copy.deepcopy(cfg), dict(params), {k: v.copy() for k, v in batch.items()}
                mutate(c, p, bt)
                write_exchange(bad, c, p, bt)
                import contextlib
                import io
                with contextlib.redirect_stderr(io.StringIO()):
                    assert oracle.main([sys.argv[0], bad]) == 2, f"oracle accepted {what}"

        expect_rejected(lambda c, p, bt: bt["edge_src"].__setitem__(0, bt["edge_dst"][0]), "a wrong edge_src")
        expect_rejected(lambda c, p, bt: bt["op0"].__setitem__(1, 0), "op0 != [NEXT] in learned mode")
        expect_rejected(lambda c, p, bt: bt["run_end"].__setitem__(0, bt["run_end"][0] + 1), "a wrong run_end")
        expect_rejected(lambda c, p, bt: bt["node_in_edges"].__setitem__(
            slice(None), bt["node_in_edges"][::-1]), "scrambled in-edge lists")
        expect_rejected(lambda c, p, bt: p.pop("fusion.W_f"), "a missing used parameter")
        expect_rejected(lambda c, p, bt: p.__setitem__("ggnn1.W_in", p["ggnn0.W_in"]), "an unknown parameter")
        expect_rejected(lambda c, p, bt: p.__setitem__("highway.W_g", p["highway.W_g"].t()), "a transposed weight")
        expect_rejected(lambda c, p, bt: c.__setitem__("max_length", 2), "sessions longer than max_length")
        expect_rejected(lambda c, p, bt: c.pop("fusion"), "a config without 'fusion'")


def check_repeat():
    O = 3
    # Hand-worked features: items 5 2 5 5 3 with ops 0 1 2 0 1 (t = 5); nodes 5, 2, 3 in first-occurrence
    # order. n: item 5 has ops {0, 2, 0}, item 2 {1}, item 3 {1}. Last 0-based index: 5 at 3, 2 at 1,
    # 3 at 4, so D = t - 1 - last = 1, 3, 0. A second session (item 4 once) sits behind it in the batch.
    bt = make_batch([([5, 2, 5, 5, 3], [0, 1, 2, 0, 1], 2, 1), ([4], [2], 0, 0)], O, "given")
    n, D = oracle.repeat_features(bt, 0, O)
    assert n.tolist() == [[2, 0, 1], [0, 1, 0], [0, 1, 0]], f"counts n = {n.tolist()}"
    assert D.tolist() == [1, 3, 0], f"D = {D.tolist()}"
    n, D = oracle.repeat_features(bt, 1, O)
    assert n.tolist() == [[0, 0, 1]] and D.tolist() == [0], "features of a single micro-behavior"

    rng = np.random.default_rng(21)
    for label, overrides in (("NG, given", {"use_gnn": False}),
                             ("NG, learned", {"use_gnn": False, "next_op_mode": "learned"}),
                             ("GNN, given, q = 0", {"gnn_steps": 1})):
        cfg_r = base_config(training=False, use_repeat=True, repeat_buckets=3, **overrides)
        cfg_0 = base_config(training=False, **overrides)
        sessions = random_sessions(rng, 5, cfg_r["num_items"], O, 7)
        bt = make_batch(sessions, O, cfg_r["next_op_mode"])
        P = random_params(cfg_r, seed=31)
        if "q = 0" in label:  # hf is internal with the GNN: drop the q . hf term, keep the others
            P["repeat.state"] = torch.zeros_like(P["repeat.state"])
        P0 = {k: v for k, v in P.items() if not k.startswith("repeat.")}
        with torch.no_grad():
            s_r = oracle.forward(cfg_r, P, bt)[0]
            s_0 = oracle.forward(cfg_0, P0, bt)[0]
        a, N, rho = P["repeat.op_count"][:, 0], P["repeat.next_op"], P["repeat.recency"][:, 0]
        q, gamma = P["repeat.state"][:, 0], float(P["repeat.bias"][0, 0])
        E = P["item_embedding"]
        for b, (items, ops, _, next_op) in enumerate(sessions):
            o0 = next_op if cfg_r["next_op_mode"] == "given" else O
            for v in range(cfg_r["num_items"]):
                if v not in items:
                    assert s_r[b, v].item() == s_0[b, v].item(), f"{label}: item {v} outside session {b} changed"
                    continue
                counts = [sum(1 for i, o in zip(items, ops) if i == v and o == op) for op in range(O)]
                last = max(j for j, i in enumerate(items) if i == v)
                D = len(items) - 1 - last
                r = gamma + rho[min(D, 2)].item()
                for op in range(O):
                    r += a[op].item() * math.log(1 + counts[op]) + (N[o0, op].item() if counts[op] > 0 else 0.0)
                r += sum(q[k].item() * E[v, k].item() for k in range(cfg_r["d"]))  # hf = E_v without the GNN
                got = (s_r[b, v] - s_0[b, v]).item()
                assert abs(got - r) <= 1e-12 * max(1.0, abs(r)), f"{label}: session {b} item {v}: bonus {got}, doc {r}"

    # use_repeat false is the old function: keys absent == keys present and false (any R); and a
    # repeat model whose five parameters are zero gives bit for bit the old scores, loss and gradients.
    for overrides in ({}, {"use_gnn": False, "next_op_mode": "learned"}):
        cfg_old = base_config(**overrides)
        cfg_off = base_config(use_repeat=False, repeat_buckets=5, **overrides)
        cfg_zero = base_config(use_repeat=True, repeat_buckets=5, **overrides)
        bt = make_batch(random_sessions(rng, 4, cfg_old["num_items"], O, 6), O, cfg_old["next_op_mode"])
        P = random_params(cfg_old, seed=41)
        ref = oracle.run_oracle(cfg_old, P, bt)
        off = oracle.run_oracle(cfg_off, P, bt)
        Pz = dict(P)
        Pz.update({k: torch.zeros(shape, dtype=DTYPE) for k, shape in oracle.all_param_shapes(cfg_zero).items()
                   if k.startswith("repeat.")})
        zero = oracle.run_oracle(cfg_zero, Pz, bt)
        for got, what in ((off, "use_repeat false"), (zero, "zero repeat parameters")):
            assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1]), f"{what}: scores/loss differ"
            for k in P:
                assert np.array_equal(got[2][k], ref[2][k]), f"{what}: grad {k} differs"
        assert any(np.any(zero[2][k]) for k in zero[2] if k.startswith("repeat.")), "zero repeat grads"

    # A repeat exchange directory: round trip, and the repeat-specific broken inputs.
    cfg = base_config(use_repeat=True, repeat_buckets=3, gnn_steps=1)
    bt = make_batch(random_sessions(rng, 4, cfg["num_items"], O, 6), O, "given")
    params = random_params(cfg, seed=51)
    del params["nf.W"], params["nf.b"]
    scores, loss, grads = oracle.run_oracle(cfg, params, bt)
    check_exchange_round_trip(cfg, params, bt, (scores, loss, grads), "repeat")

    def expect_rejected(mutate, what):
        expect_exchange_rejected(cfg, params, bt, mutate, what)

    expect_rejected(lambda c, p: c.__setitem__("use_repeat", False), "repeat parameters with use_repeat false")
    expect_rejected(lambda c, p: c.__setitem__("repeat_buckets", 4), "repeat.recency with R rows != repeat_buckets")
    expect_rejected(lambda c, p: c.__setitem__("repeat_buckets", 0), "repeat_buckets 0")
    expect_rejected(lambda c, p: c.__setitem__("use_repeat", 1), "a non-boolean use_repeat")
    expect_rejected(lambda c, p: p.pop("repeat.bias"), "a missing repeat parameter")
    expect_rejected(lambda c, p: p.__setitem__("repeat.state", p["repeat.state"].t()), "a transposed repeat.state")


def check_mixture():
    O = 3
    rng = np.random.default_rng(61)
    logistic = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731

    # log P against plain floats. EMBSR-NG + NS + fixed fusion makes m computable by hand:
    # m = beta star + (1 - beta) x_t, star = mean of the nodes' E rows, x_t = E[v_t] + Op[o_t].
    for label, overrides in (("given", {}), ("learned", {"next_op_mode": "learned"})):
        cfg = base_config(training=False, use_gnn=False, use_attention=False, fusion="fixed", fixed_beta=0.4,
                          use_repeat=True, repeat_buckets=3, repeat_mixture=True, **overrides)
        sessions = with_both_target_kinds(random_sessions(rng, 6, cfg["num_items"], O, 7), cfg["num_items"])
        bt = make_batch(sessions, O, cfg["next_op_mode"])
        P = random_params(cfg, seed=71)
        with torch.no_grad():
            scores, loss = oracle.forward(cfg, P, bt)
        E, Op = P["item_embedding"].tolist(), P["op_embedding"].tolist()
        a, N, rho = P["repeat.op_count"][:, 0].tolist(), P["repeat.next_op"].tolist(), P["repeat.recency"][:, 0].tolist()
        q, bias = P["repeat.state"][:, 0].tolist(), float(P["repeat.bias"][0, 0])
        u, w = P["repeat.gate"][:, 0].tolist(), P["repeat.gate_op"][:, 0].tolist()
        d, V = cfg["d"], cfg["num_items"]
        dot = lambda x, y: sum(xi * yi for xi, yi in zip(x, y))  # noqa: E731
        want_loss = 0.0
        for b, (items, ops, target, next_op) in enumerate(sessions):
            o0 = next_op if cfg["next_op_mode"] == "given" else O
            distinct = sorted(set(items))
            star = [sum(E[v][k] for v in distinct) / len(distinct) for k in range(d)]
            x_t = [E[items[-1]][k] + Op[ops[-1]][k] for k in range(d)]
            m = [0.4 * star[k] + 0.6 * x_t[k] for k in range(d)]
            g = logistic(dot(u, m) + w[o0])
            r = {}
            for v in distinct:
                counts = [sum(1 for i, o in zip(items, ops) if i == v and o == op) for op in range(O)]
                D = len(items) - 1 - max(j for j, i in enumerate(items) if i == v)
                r[v] = bias + rho[min(D, 2)] + dot(q, E[v]) + sum(
                    a[op] * math.log(1 + counts[op]) + (N[o0][op] if counts[op] > 0 else 0.0) for op in range(O))
            s = [cfg["w_k"] * dot(m, E[v]) / math.sqrt(dot(m, m) * dot(E[v], E[v])) for v in range(V)]
            z_r = sum(math.exp(r[v]) for v in distinct)
            z_e = sum(math.exp(s[v]) for v in range(V) if v not in r)
            p = [g * math.exp(r[v]) / z_r if v in r else (1 - g) * math.exp(s[v]) / z_e for v in range(V)]
            assert abs(sum(p) - 1.0) <= 1e-13, f"{label}: session {b}: P sums to {sum(p)}"
            for v in range(V):
                got = scores[b, v].item()
                assert abs(got - math.log(p[v])) <= 1e-12 * max(1.0, abs(got)), \
                    f"{label}: session {b} item {v}: log P {got}, formula {math.log(p[v])}"
            want_loss -= math.log(p[target]) / len(sessions)
        assert abs(loss.item() - want_loss) <= 1e-12 * abs(want_loss), f"{label}: loss {loss.item()}, {want_loss}"

    # Gradients with the GNN and attention (training, dropout): the gate's are a binary cross-entropy's,
    # dL/dgamma_b = (g_b - [t_b in session b]) / B; repeat.bias gets none (log-softmax is shift-invariant).
    cfg = base_config(use_repeat=True, repeat_buckets=3, repeat_mixture=True, gnn_steps=1)
    sessions = with_both_target_kinds(random_sessions(rng, 6, cfg["num_items"], O, 7), cfg["num_items"])
    bt = make_batch(sessions, O, "given")
    P = random_params(cfg, seed=81)
    leaves = {k: v.clone().requires_grad_(True) for k, v in P.items()}
    scores, loss = oracle.forward(cfg, leaves, bt)
    loss.backward()
    assert abs(leaves["repeat.bias"].grad.item()) <= 1e-15, f"grad repeat.bias = {leaves['repeat.bias'].grad.item()}"
    B = len(sessions)
    dgate_op = [0.0] * (O + 1)
    with torch.no_grad():
        for b in range(B):  # g_b = P(the session's items) = sum of exp(log P) over them
            items, _, target, next_op = sessions[b]
            g = sum(math.exp(scores[b, v].item()) for v in set(items))
            dgate_op[next_op] += (g - (1.0 if target in items else 0.0)) / B
    got = leaves["repeat.gate_op"].grad[:, 0].tolist()
    for o in range(O + 1):
        assert abs(got[o] - dgate_op[o]) <= 1e-12, f"dL/dgate_op[{o}] = {got[o]}, BCE gives {dgate_op[o]}"
    with torch.no_grad():
        shifted = dict(P, **{"repeat.bias": P["repeat.bias"] + 3.0})
        s2, l2 = oracle.forward(cfg, shifted, bt)
    assert torch.allclose(s2, scores.detach(), rtol=0, atol=1e-12) and abs(l2.item() - loss.item()) <= 1e-12, \
        "the mixture depends on repeat.bias"

    # repeat_mixture absent == false, bit for bit, for the bonus and the plain model.
    for overrides in ({"use_repeat": True, "repeat_buckets": 3}, {}):
        cfg_absent = base_config(**overrides)
        cfg_false = dict(cfg_absent, repeat_mixture=False)
        raw = {k: v for k, v in cfg_absent.items() if k != "repeat_mixture"}
        bt = make_batch(random_sessions(rng, 4, cfg_absent["num_items"], O, 6), O, "given")
        P = random_params(cfg_absent, seed=91)
        ref = oracle.run_oracle(oracle.check_config(raw), P, bt)
        off = oracle.run_oracle(oracle.check_config(cfg_false), P, bt)
        assert np.array_equal(off[0], ref[0]) and np.array_equal(off[1], ref[1]), "repeat_mixture false: scores/loss"
        for k in P:
            assert np.array_equal(off[2][k], ref[2][k]), f"repeat_mixture false: grad {k} differs"

    # A mixture exchange directory: round trip, parameter files, rejected inputs.
    cfg = base_config(use_repeat=True, repeat_buckets=3, repeat_mixture=True, gnn_steps=1, next_op_mode="learned")
    assert list(oracle.all_param_shapes(cfg))[-3:] == ["repeat.bias", "repeat.gate", "repeat.gate_op"], \
        "the gate's entries follow repeat.bias (the C++ layout's order)"
    assert oracle.all_param_shapes(cfg)["repeat.gate"] == (3, 1) and oracle.all_param_shapes(cfg)["repeat.gate_op"] == (4, 1)
    bt = make_batch(random_sessions(rng, 4, cfg["num_items"], O, 6), O, "learned")
    params = random_params(cfg, seed=101)
    del params["nf.W"], params["nf.b"]
    scores, loss, grads = oracle.run_oracle(cfg, params, bt)
    assert np.allclose(np.exp(scores).sum(axis=1), 1.0, rtol=0, atol=1e-13), "exp(scores) rows do not sum to 1"
    check_exchange_round_trip(cfg, params, bt, (scores, loss, grads), "mixture")

    def expect_rejected(mutate, what):
        expect_exchange_rejected(cfg, params, bt, mutate, what)

    expect_rejected(lambda c, p: c.__setitem__("repeat_mixture", False), "gate parameters with repeat_mixture false")
    expect_rejected(lambda c, p: c.__setitem__("use_repeat", False), "repeat_mixture without use_repeat")
    expect_rejected(lambda c, p: c.__setitem__("repeat_mixture", "yes"), "a non-boolean repeat_mixture")
    expect_rejected(lambda c, p: p.pop("repeat.gate"), "a missing repeat.gate")
    expect_rejected(lambda c, p: p.__setitem__("repeat.gate_op", p["repeat.gate_op"][:-1]), "a short repeat.gate_op")


def run_all(verbose=True):
    torch.set_default_dtype(DTYPE)
    checks = [("counter_random / dropout masks vs C++", check_random),
              ("GRU / GGNN / LayerNorm vs torch.nn", check_layers),
              ("gradcheck (all configs)", lambda: check_gradients(verbose)),
              ("batch independence", check_batch_independence),
              ("exchange directory round trip", check_exchange),
              ("repeat path (docs/REPEAT.md)", check_repeat),
              ("repeat/explore mixture (repeat_mixture)", check_mixture)]
    failed = 0
    for label, fn in checks:
        try:
            fn()
            print(f"PASS {label}")
        except AssertionError as exc:
            failed += 1
            print(f"FAIL {label}: {exc}")
    print("selfcheck: " + ("all passed" if not failed else f"{failed} check(s) failed"))
    return failed == 0


if __name__ == "__main__":
    sys.exit(0 if run_all() else 1)
