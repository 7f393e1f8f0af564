"""NARM for the sequence oracle (sequence_oracle.py): Li, Ren, Chen, Ren, Lian, Ma, "Neural Attentive
Session-based Recommendation", CIKM 2017, Section 3, written from the paper's equations (and, where
the paper leaves a choice open, from the PyTorch port the EMBSR paper's baselines use), not from the
C++ code. docs/SEQUENCE_MODELS.md, "NARM", is the contract.

One session (its MACRO items, consecutive repeats merged, x_1..x_n):
    h_j   = GRU(emb[x_j], h_{j-1}), h_0 = 0                 eq. 1-3 (PyTorch's nn.GRU cell)
    c_g   = h_t = h_n                                       eq. 4   (global encoder)
    alpha_tj = v^T sigmoid(A_1 h_t + A_2 h_j)               eq. 6-7 (not normalised)
    c_l   = sum_j alpha_tj h_j                              eq. 5   (local encoder, the SAME GRU states)
    c_t   = [c_g ; c_l]                                     eq. 8
    S_i   = emb_i^T B c_t  for every item i                 eq. 9   (bi-linear decoder, B [d x 2H])
    loss  = cross-entropy of softmax(S) with the target     eq. 10-11 (the driver's mean CE)
No dropout (the contract has none).
"""

import time

import numpy as np
import torch

import graph_oracle as common

NAME = "narm"
KEYS = {"hidden": int}


def check(cfg):
    if cfg["hidden"] < 1:
        raise common.OracleError(f"config.json: hidden {cfg['hidden']} < 1")


def param_shapes(cfg):
    d, V, H = cfg["d"], cfg["num_items"], cfg["hidden"]
    return [("item_embedding", (V, d)),
            ("gru.W_ih", (3 * H, d)), ("gru.W_hh", (3 * H, H)), ("gru.b_ih", (1, 3 * H)), ("gru.b_hh", (1, 3 * H)),
            ("attention.A_1", (H, H)), ("attention.A_2", (H, H)), ("attention.v", (1, H)),
            ("B", (d, 2 * H))]


def macro_items(s):
    """The session's macro items (Session keeps them as node_items[alias])."""
    return s.node_items[s.alias]


def gru_states(P, X):
    """Every hidden state of the GRU over the rows of X [n x d]: [n x H] (eq. 1-3, nn.GRU's cell)."""
    H = P["gru.W_hh"].shape[1]
    h = torch.zeros(H, dtype=X.dtype)
    out = []
    for x in X:
        h = common.gru_cell(x, h, P["gru.W_ih"], P["gru.W_hh"], P["gru.b_ih"], P["gru.b_hh"], "torch")
        out.append(h)
    return torch.stack(out)


def session_representation(P, Hs):
    """c_t = [c_g ; c_l] [2H] from the states Hs [n x H] (eq. 4-8)."""
    h_t = Hs[-1]
    v = P["attention.v"].reshape(-1)
    alpha = torch.stack([v @ torch.sigmoid(P["attention.A_1"] @ h_t + P["attention.A_2"] @ h_j) for h_j in Hs])
    c_l = (alpha[:, None] * Hs).sum(dim=0)
    return torch.cat([h_t, c_l])


def session_scores(cfg, P, s):
    E = P["item_embedding"]
    c_t = session_representation(P, gru_states(P, E[macro_items(s)]))
    return E @ (P["B"] @ c_t)  # S_i = emb_i^T B c_t (eq. 9)


# ---------------------------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------------------------
def _config(**overrides):
    cfg = {"model": NAME, "d": 3, "num_items": 7, "num_ops": 3, "max_length": 8, "hidden": 4}
    cfg.update(overrides)
    return cfg


def _params(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    return {name: (torch.rand(shape, generator=g, dtype=torch.float64) - 0.5) for name, shape in param_shapes(cfg)}


def _batch(sessions):
    from test_graph_oracle_selfcheck import make_batch
    return make_batch(sessions)


def _loss(cfg, P, bt):
    import sequence_oracle
    return sequence_oracle.forward(cfg, P, bt)


def selfcheck(check):
    from test_graph_oracle_selfcheck import random_sessions
    start = time.time()
    torch.set_default_dtype(torch.float64)
    cfg = _config()
    d, H, V = cfg["d"], cfg["hidden"], cfg["num_items"]
    P = _params(cfg, 5)

    # 1. The GRU against torch.nn.GRU (PyTorch's gate order r, z, n and both biases).
    gru = torch.nn.GRU(d, H, batch_first=True).double()
    with torch.no_grad():
        gru.weight_ih_l0.copy_(P["gru.W_ih"])
        gru.weight_hh_l0.copy_(P["gru.W_hh"])
        gru.bias_ih_l0.copy_(P["gru.b_ih"].reshape(-1))
        gru.bias_hh_l0.copy_(P["gru.b_hh"].reshape(-1))
    X = torch.rand(5, d, dtype=torch.float64)
    want, _ = gru(X[None])
    check(torch.allclose(gru_states(P, X), want[0], atol=1e-13), "narm: GRU states differ from torch.nn.GRU")

    # 2. The decoder against torch.nn.Bilinear: S_i = emb_i^T B c_t (eq. 9).
    bil = torch.nn.Bilinear(d, 2 * H, 1, bias=False).double()
    with torch.no_grad():
        bil.weight.copy_(P["B"][None])
    c_t = torch.rand(2 * H, dtype=torch.float64)
    E = P["item_embedding"]
    check(torch.allclose(bil(E, c_t.expand(V, 2 * H)).reshape(-1), E @ (P["B"] @ c_t), atol=1e-13),
          "narm: bi-linear decoder differs from torch.nn.Bilinear")

    # 3. The attention in matrix form (all positions at once) against the per-position formula, and
    #    the global encoder's part of c_t is the last state.
    Hs = torch.rand(6, H, dtype=torch.float64)
    alpha = torch.sigmoid((P["attention.A_1"] @ Hs[-1])[None, :] + Hs @ P["attention.A_2"].t()) @ P["attention.v"].reshape(-1)
    c = session_representation(P, Hs)
    check(torch.allclose(c[H:], alpha @ Hs, atol=1e-13) and torch.equal(c[:H], Hs[-1]),
          "narm: c_t = [h_t ; sum_j alpha_tj h_j] does not hold")

    # 4. gradcheck of the mean loss w.r.t. every parameter.
    rng = np.random.default_rng(3)
    sessions = random_sessions(rng, 3, V, cfg["num_ops"], cfg["max_length"])
    bt = _batch(sessions)
    names = [n for n, _ in param_shapes(cfg)]
    leaves = [P[n].clone().requires_grad_(True) for n in names]

    def loss_of(*xs):
        return _loss(cfg, dict(zip(names, xs)), bt)[1]

    check(torch.autograd.gradcheck(loss_of, leaves, eps=1e-6, atol=1e-8, rtol=1e-6),
          "narm: gradcheck of the loss failed")
    cfg2 = _config(d=4, hidden=2)
    P2 = _params(cfg2, 9)
    leaves2 = [P2[n].clone().requires_grad_(True) for n in names]
    check(torch.autograd.gradcheck(lambda *xs: _loss(cfg2, dict(zip(names, xs)), bt)[1], leaves2, eps=1e-6, atol=1e-8,
                                   rtol=1e-6), "narm: gradcheck of the loss failed (d 4, hidden 2)")

    # 5. A session's scores do not depend on the rest of its batch.
    many = random_sessions(rng, 4, V, cfg["num_ops"], cfg["max_length"])
    together, _ = _loss(cfg, P, _batch(many))
    reversed_scores, _ = _loss(cfg, P, _batch(many[::-1]))
    for b, sess in enumerate(many):
        alone, _ = _loss(cfg, P, _batch([sess]))
        check(torch.allclose(together[b], alone[0], atol=1e-12, rtol=0) and
              torch.allclose(reversed_scores[len(many) - 1 - b], alone[0], atol=1e-12, rtol=0),
              f"narm: session {b}'s scores depend on the rest of the batch")

    # 6. Macro items: a repeated item counts once; the order matters.
    rep, _ = _loss(cfg, P, _batch([([2, 2, 5], [0, 1, 2], 3, 0)]))
    merged, _ = _loss(cfg, P, _batch([([2, 5], [0, 2], 3, 0)]))
    swapped, _ = _loss(cfg, P, _batch([([5, 2], [0, 2], 3, 0)]))
    check(torch.equal(rep, merged), "narm: a repeated item changed the scores")
    check(not torch.allclose(merged, swapped), "narm: the scores do not depend on the order")
    print(f"  narm: done ({time.time() - start:.1f} s)")
