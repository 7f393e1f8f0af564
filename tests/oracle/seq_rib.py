"""RIB for the sequence oracle (sequence_oracle.py): Zhou, Ding, Tang, Yin, "Micro Behaviors: A New
Perspective in E-commerce Recommender Systems", WSDM 2018, Section 4 (the RIB framework: input,
embedding, RNN, attention and output layers), written from the paper's description (and, where it
leaves a choice open, from the Keras port of RIB by the same lab, github.com/guyulongcs/WSDM2020_HUP,
HUP_code/MicroRNN.py), not from the C++ code. docs/SEQUENCE_MODELS.md, "RIB", is the contract.

One session, its MICRO-behaviors (p_1, o_1) .. (p_t, o_t) in order (repeats kept):
    x_j     = [E_item[p_j] ; E_op[o_j]]                 embedding layer (the paper's dwell time
                                                        embedding is left out: no dwell times)
    h_j     = GRU(x_j, h_{j-1}), h_0 = 0                RNN layer (PyTorch's nn.GRU cell)
    u_j     = tanh(W_a h_j + b_a)                       attention layer
    alpha_j = exp(u_j . c_a) / sum_k exp(u_k . c_a)
    s       = sum_j alpha_j h_j
    y       = W_o s + b_o  (tied_output: E_item s)      output layer: softmax over every item
    loss    = cross-entropy of softmax(y) with the next item (the driver's mean CE)
The dense output layer is stored as ONE parameter "output" [V x (d+1)] = [W_o | b_o].
No dropout (the contract has none).
"""

import time

import numpy as np
import torch

import graph_oracle as common

NAME = "rib"
KEYS = {"tied_output": bool}


def param_shapes(cfg):
    d, V, O = cfg["d"], cfg["num_items"], cfg["num_ops"]
    shapes = [("item_embedding", (V, d)), ("op_embedding", (O, d)),
              ("gru.W_ih", (3 * d, 2 * d)), ("gru.W_hh", (3 * d, d)), ("gru.b_ih", (1, 3 * d)), ("gru.b_hh", (1, 3 * d)),
              ("attention.W", (d, d)), ("attention.b", (1, d)), ("attention.c", (1, d))]
    if not cfg["tied_output"]:
        shapes.append(("output", (V, d + 1)))
    return shapes


def embed(P, items, ops):
    """x_j = [item ; operation] for every micro-behavior: [t x 2d]."""
    return torch.cat([P["item_embedding"][items], P["op_embedding"][ops]], dim=1)


def gru_states(P, X):
    """Every hidden state of the GRU over the rows of X [t x 2d]: [t x d] (nn.GRU's cell, h_0 = 0)."""
    d = P["gru.W_hh"].shape[1]
    h = torch.zeros(d, dtype=X.dtype)
    out = []
    for x in X:
        h = common.gru_cell(x, h, P["gru.W_ih"], P["gru.W_hh"], P["gru.b_ih"], P["gru.b_hh"], "torch")
        out.append(h)
    return torch.stack(out)


def attention_pool(P, Hs):
    """s = sum_j alpha_j h_j with alpha = softmax_j(tanh(W_a h_j + b_a) . c_a), one position at a time."""
    e = torch.stack([torch.tanh(P["attention.W"] @ h + P["attention.b"].reshape(-1)) @ P["attention.c"].reshape(-1)
                     for h in Hs])
    alpha = torch.exp(e) / torch.exp(e).sum()
    return (alpha[:, None] * Hs).sum(dim=0), alpha


def output_layer(cfg, P, s):
    """The logits of every item [V]: W_o s + b_o (dense), or E_item s (tied_output)."""
    if cfg["tied_output"]:
        return P["item_embedding"] @ s
    d = cfg["d"]
    return P["output"][:, :d] @ s + P["output"][:, d]


def session_scores(cfg, P, s):
    Hs = gru_states(P, embed(P, s.micro_items, s.micro_ops))
    return output_layer(cfg, P, attention_pool(P, Hs)[0])


# ---------------------------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------------------------
def _config(**overrides):
    cfg = {"model": NAME, "d": 3, "num_items": 7, "num_ops": 3, "max_length": 8, "tied_output": False}
    cfg.update(overrides)
    return cfg


def _params(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    return {name: (torch.rand(shape, generator=g, dtype=torch.float64) - 0.5) * 1.6 for name, shape in param_shapes(cfg)}


def _forward(cfg, P, bt):
    import sequence_oracle
    return sequence_oracle.forward(cfg, P, bt)


def selfcheck(check):
    from test_graph_oracle_selfcheck import make_batch, random_sessions
    start = time.time()
    torch.set_default_dtype(torch.float64)
    cfg = _config()
    d, V, O = cfg["d"], cfg["num_items"], cfg["num_ops"]
    P = _params(cfg, 5)

    # 1. The GRU over [item ; operation] rows against torch.nn.GRU(2d, d).
    gru = torch.nn.GRU(2 * d, d, batch_first=True).double()
    with torch.no_grad():
        gru.weight_ih_l0.copy_(P["gru.W_ih"])
        gru.weight_hh_l0.copy_(P["gru.W_hh"])
        gru.bias_ih_l0.copy_(P["gru.b_ih"].reshape(-1))
        gru.bias_hh_l0.copy_(P["gru.b_hh"].reshape(-1))
    items, ops = torch.tensor([1, 1, 4, 2, 6]), torch.tensor([0, 2, 2, 1, 0])
    X = embed(P, items, ops)
    check(torch.equal(X[:, :d], P["item_embedding"][items]) and torch.equal(X[:, d:], P["op_embedding"][ops]),
          "rib: x_j is not [item ; operation]")
    want, _ = gru(X[None])
    check(torch.allclose(gru_states(P, X), want[0], atol=1e-13), "rib: GRU states differ from torch.nn.GRU")

    # 2. The attention layer against nn.Linear + tanh + F.softmax in matrix form; its weights sum to 1
    #    and are not uniform (a test that could not fail otherwise).
    lin = torch.nn.Linear(d, d).double()
    with torch.no_grad():
        lin.weight.copy_(P["attention.W"])
        lin.bias.copy_(P["attention.b"].reshape(-1))
    Hs = torch.rand(6, d, dtype=torch.float64) * 2 - 1
    alpha_want = torch.nn.functional.softmax(torch.tanh(lin(Hs)) @ P["attention.c"].reshape(-1), dim=0)
    s, alpha = attention_pool(P, Hs)
    check(torch.allclose(alpha, alpha_want, atol=1e-14) and abs(float(alpha.sum()) - 1) < 1e-14,
          "rib: attention weights differ from softmax(tanh(Linear(h)) . c)")
    check(float((alpha - 1 / 6).abs().max()) > 1e-3, "rib: attention weights are uniform")
    check(torch.allclose(s, alpha_want @ Hs, atol=1e-14), "rib: s != sum_j alpha_j h_j")

    # 3. The dense output layer against nn.Linear(d, V); tied: the item embeddings.
    out = torch.nn.Linear(d, V).double()
    with torch.no_grad():
        out.weight.copy_(P["output"][:, :d])
        out.bias.copy_(P["output"][:, d])
    check(torch.allclose(output_layer(cfg, P, s), out(s), atol=1e-14), "rib: output layer differs from nn.Linear")
    cfg_t = _config(tied_output=True)
    check(torch.allclose(output_layer(cfg_t, P, s), P["item_embedding"] @ s, atol=1e-14), "rib: tied output layer")

    # 4. gradcheck of the mean loss w.r.t. every parameter, both output layers.
    rng = np.random.default_rng(3)
    sessions = random_sessions(rng, 3, V, O, cfg["max_length"])
    bt = make_batch(sessions)
    for c in (cfg, _config(d=2, tied_output=True)):
        names = [n for n, _ in param_shapes(c)]
        P0 = _params(c, 7)
        leaves = [P0[n].clone().requires_grad_(True) for n in names]
        try:
            ok = torch.autograd.gradcheck(lambda *xs: _forward(c, dict(zip(names, xs)), bt)[1], leaves, eps=1e-6,
                                          atol=1e-8, rtol=1e-6)
        except RuntimeError as exc:
            ok = False
            print(f"    {str(exc)[:400]}")
        check(ok, f"rib: gradcheck of the loss failed (tied_output {c['tied_output']})")

    # 5. A session's scores do not depend on the rest of its batch (alone, and in reversed order).
    sessions = random_sessions(np.random.default_rng(4), 4, V, O, cfg["max_length"])
    full, _ = _forward(cfg, P, make_batch(sessions))
    rev, _ = _forward(cfg, P, make_batch(list(reversed(sessions))))
    for b in range(len(sessions)):
        alone, _ = _forward(cfg, P, make_batch([sessions[b]]))
        check(torch.allclose(alone[0], full[b], atol=1e-13, rtol=1e-13), f"rib: session {b} alone != in batch")
        check(torch.allclose(rev[len(sessions) - 1 - b], full[b], atol=1e-13, rtol=1e-13),
              f"rib: session {b} in reversed batch")

    # 6. The operations matter: the same items under other operations score differently.
    items, ops = sessions[1][0], sessions[1][1]
    other = [(o + 1) % O for o in ops]
    a, _ = _forward(cfg, P, make_batch([(items, ops, 0, 0)]))
    b, _ = _forward(cfg, P, make_batch([(items, other, 0, 0)]))
    check(float((a - b).abs().max()) > 1e-6, "rib: scores do not depend on the operations")
    print(f"  rib self-check: {time.time() - start:.1f} s")
