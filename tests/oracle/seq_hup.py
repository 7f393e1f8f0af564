"""HUP for the sequence oracle (sequence_oracle.py): Gu, Ding, Wang, Yin, "Hierarchical User Profiling
for E-commerce Recommender Systems", WSDM 2020 (the Pyramid Recurrent Neural Network with the
Behavior-LSTM), at the levels our batches support, written from the paper's description and, where
it leaves a choice open, from the authors' code (github.com/guyulongcs/WSDM2020_HUP,
HUP_code/BLSTM.py for the cell, HUP_code/PRNN_BLSTM.py for the pyramid and its attention,
HUP_code/run_PRNN.sh for the loss weights), not from the C++ code. docs/SEQUENCE_MODELS.md, "HUP",
is the contract.

One session, its micro-behaviors (p_1, o_1) .. (p_t, o_t) and its macro items v^1 .. v^n (runs of
equal consecutive items; item k's last micro-behavior is run_end[k] - 1):

  Behavior-LSTM (micro-behavior level), x_j = [E_item[p_j] ; E_op[o_j]], behavior b_j = E_op[o_j]:
    B_j = sigmoid(W_xB x_j + W_bB b_j + b_B)            behavior gate
    i_j = sigmoid(W_xi x_j + W_bi b_j + W_hi h_{j-1} + b_i)
    f_j = sigmoid(W_xf x_j + W_bf b_j + W_hf h_{j-1} + b_f)
    o_j = sigmoid(W_xo x_j + W_bo b_j + W_ho h_{j-1} + b_o)
    g_j = tanh(W_xg x_j + W_hg h_{j-1} + b_g)
    c_j = f_j c_{j-1} + i_j B_j g_j,   h_j = o_j tanh(c_j),   h_0 = c_0 = 0
  (the paper's time gate, a second factor of i_j g_j, is left out: no time intervals.)
  levels = 1:  a_j = tanh(w . [h_j ; h_t ; b_j] + c),  alpha = softmax(a),  s = sum_j alpha_j h_j
  levels = 2:  item level, y_k = [E_item[v^k] ; h_{run_end[k]-1}]; the same cell without behavior
               and time terms (no B gate): an LSTM, k = 1..n, state z_k;
               a_k = tanh(w . [z_k ; z_n] + c),  alpha = softmax(a),  s = sum_k alpha_k z_k
  p = tanh(W_out s + b_out);  scores = E_item p  [V];  loss: the driver's mean cross-entropy.

Parameter storage (the C++ layout): micro.W_x [5d x 2d] rows [B; i; f; o; g], micro.W_b [4d x d]
rows [B; i; f; o], micro.W_h [4d x d] rows [i; f; o; g], micro.b [1 x 5d] [B, i, f, o, g];
item.W_x [4d x 2d], item.W_h [4d x d], item.b [1 x 4d] rows [i; f; o; g]; att.w [1 x 3d] (levels 1)
or [1 x 2d] (levels 2), att.c [1 x 1]; out.W [d x d], out.b [1 x d]. No dropout.
"""

import time

import numpy as np
import torch

NAME = "hup"
KEYS = {"levels": int}


def check(cfg):
    import graph_oracle as common
    if cfg["levels"] not in (1, 2):
        raise common.OracleError(f"config.json: levels must be 1 or 2, got {cfg['levels']}")


def param_shapes(cfg):
    d, V, O = cfg["d"], cfg["num_items"], cfg["num_ops"]
    shapes = [("item_embedding", (V, d)), ("op_embedding", (O, d)),
              ("micro.W_x", (5 * d, 2 * d)), ("micro.W_b", (4 * d, d)), ("micro.W_h", (4 * d, d)),
              ("micro.b", (1, 5 * d))]
    if cfg["levels"] == 2:
        shapes += [("item.W_x", (4 * d, 2 * d)), ("item.W_h", (4 * d, d)), ("item.b", (1, 4 * d)),
                   ("att.w", (1, 2 * d))]
    else:
        shapes += [("att.w", (1, 3 * d))]
    shapes += [("att.c", (1, 1)), ("out.W", (d, d)), ("out.b", (1, d))]
    return shapes


def blocks(M, names, d):
    """The row blocks of a stacked gate matrix (or the entries of a stacked bias) by gate name."""
    flat = M.reshape(-1) if M.dim() == 1 or M.shape[0] == 1 else M
    return {n: flat[k * d:(k + 1) * d] for k, n in enumerate(names)}


def behavior_lstm(Wx, Wb, Wh, bias, X, Bv):
    """Every state of the (Behavior-)LSTM over the rows of X [t x D_in] with behaviors Bv [t x D_b]
    (Wb None: no behavior terms and no behavior gate, a standard LSTM). One step at a time."""
    d = Wh.shape[1]
    beh = Wb is not None
    x_gates = ["B", "i", "f", "o", "g"] if beh else ["i", "f", "o", "g"]
    wx, bb, wh = blocks(Wx, x_gates, d), blocks(bias, x_gates, d), blocks(Wh, ["i", "f", "o", "g"], d)
    wb = blocks(Wb, ["B", "i", "f", "o"], d) if beh else {}
    h = torch.zeros(d, dtype=X.dtype)
    c = torch.zeros(d, dtype=X.dtype)
    out = []
    for j in range(X.shape[0]):
        x = X[j]

        def pre(n, recurrent=True):
            z = wx[n] @ x + bb[n]
            if beh and n in wb:
                z = z + wb[n] @ Bv[j]
            if recurrent:
                z = z + wh[n] @ h
            return z

        gate_b = torch.sigmoid(pre("B", recurrent=False)) if beh else torch.ones(d, dtype=X.dtype)
        i, f, o = torch.sigmoid(pre("i")), torch.sigmoid(pre("f")), torch.sigmoid(pre("o"))
        g = torch.tanh(pre("g"))
        c = f * c + i * gate_b * g
        h = o * torch.tanh(c)
        out.append(h)
    return torch.stack(out)


def level_attention(w, c, H, A=None):
    """s = sum_j alpha_j H_j, alpha = softmax_j tanh(w . [H_j ; H_last (; A_j)] + c) (the authors'
    mode_attention 2: Dense(1, tanh) over the concatenation, then a softmax over positions)."""
    n = H.shape[0]
    parts = [H, H[-1].expand(n, -1)] + ([A] if A is not None else [])
    a = torch.tanh(torch.cat(parts, dim=1) @ w.reshape(-1) + c.reshape(-1))
    alpha = torch.softmax(a, dim=0)
    return alpha @ H, alpha


def session_scores(cfg, P, s):
    items, ops = s.micro_items, s.micro_ops
    eo = P["op_embedding"][ops]
    X = torch.cat([P["item_embedding"][items], eo], dim=1)
    hm = behavior_lstm(P["micro.W_x"], P["micro.W_b"], P["micro.W_h"], P["micro.b"], X, eo)
    if cfg["levels"] == 2:
        # The item level reads each macro item with the micro level's state at its last micro-behavior
        # (the authors mask every micro position whose item equals the next one's).
        t = len(items)
        last = [j for j in range(t) if j == t - 1 or int(items[j]) != int(items[j + 1])]
        Y = torch.cat([P["item_embedding"][items[last]], hm[last]], dim=1)
        hi = behavior_lstm(P["item.W_x"], None, P["item.W_h"], P["item.b"], Y, None)
        pooled, _ = level_attention(P["att.w"], P["att.c"], hi)
    else:
        pooled, _ = level_attention(P["att.w"], P["att.c"], hm, eo)
    p = torch.tanh(P["out.W"] @ pooled + P["out.b"].reshape(-1))
    return P["item_embedding"] @ p


# ---------------------------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------------------------
def _config(**overrides):
    cfg = {"model": NAME, "d": 3, "num_items": 7, "num_ops": 3, "max_length": 8, "levels": 2}
    cfg.update(overrides)
    return cfg


def _params(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    return {name: (torch.rand(shape, generator=g, dtype=torch.float64) - 0.5) * 1.6 for name, shape in param_shapes(cfg)}


def _torch_lstm(Wx, Wh, bias, d):
    """torch.nn.LSTM with our [i; f; o; g] blocks reordered to its [i; f; g; o]."""
    lstm = torch.nn.LSTM(Wx.shape[1], d, batch_first=True).double()
    order = lambda M: torch.cat([M[0:d], M[d:2 * d], M[3 * d:4 * d], M[2 * d:3 * d]])  # noqa: E731
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(order(Wx))
        lstm.weight_hh_l0.copy_(order(Wh))
        lstm.bias_ih_l0.copy_(order(bias.reshape(-1)))
        lstm.bias_hh_l0.zero_()
    return lstm


def selfcheck(check):
    import sequence_oracle
    from test_graph_oracle_selfcheck import make_batch, random_sessions
    start = time.time()
    torch.set_default_dtype(torch.float64)
    cfg = _config()
    d, V, O = cfg["d"], cfg["num_items"], cfg["num_ops"]
    P = _params(cfg, 5)
    X = torch.rand(6, 2 * d) * 2 - 1
    Bv = torch.rand(6, d) * 2 - 1

    # 1. The item level's cell (no behavior) is torch.nn.LSTM.
    want, _ = _torch_lstm(P["item.W_x"], P["item.W_h"], P["item.b"], d)(X[None])
    got = behavior_lstm(P["item.W_x"], None, P["item.W_h"], P["item.b"], X, None)
    check(torch.allclose(got, want[0], atol=1e-13), "hup: LSTM states differ from torch.nn.LSTM")
    # 2. The Behavior-LSTM reduces to torch.nn.LSTM when the behavior terms are zero and the behavior
    #    gate is open (its bias large: sigmoid = 1 in double), and differs from it otherwise.
    Wx, Wb, b = P["micro.W_x"].clone(), torch.zeros(4 * d, d), P["micro.b"].clone().reshape(-1)
    Wx[:d] = 0
    b[:d] = 60.0
    want, _ = _torch_lstm(Wx[d:], P["micro.W_h"], b[d:], d)(X[None])
    got = behavior_lstm(Wx, Wb, P["micro.W_h"], b, X, Bv)
    check(torch.allclose(got, want[0], atol=1e-13), "hup: Behavior-LSTM with zero behavior terms != torch.nn.LSTM")
    full = behavior_lstm(P["micro.W_x"], P["micro.W_b"], P["micro.W_h"], P["micro.b"], X, Bv)
    check(float((full - want[0]).abs().max()) > 1e-3, "hup: the behavior terms change nothing")
    # The behavior gate scales the candidate: with W_x's g rows and the behavior rows fixed, a closed
    # gate (bias -60) keeps c = 0, so h = 0.
    b2 = P["micro.b"].clone().reshape(-1)
    b2[:d] = -60.0
    Wx2 = P["micro.W_x"].clone()
    Wx2[:d] = 0
    Wb2 = P["micro.W_b"].clone()
    Wb2[:d] = 0
    closed = behavior_lstm(Wx2, Wb2, P["micro.W_h"], b2, X, Bv)
    check(float(closed.abs().max()) < 1e-20, "hup: a closed behavior gate lets the candidate through")

    # 3. The attention against F.softmax of a Dense(1, tanh) over the concatenation, weights sum to 1.
    H, A = torch.rand(5, d) * 2 - 1, torch.rand(5, d) * 2 - 1
    w, c = torch.rand(1, 3 * d) * 2 - 1, torch.rand(1, 1)
    dense = torch.nn.Linear(3 * d, 1).double()
    with torch.no_grad():
        dense.weight.copy_(w)
        dense.bias.copy_(c.reshape(-1))
    alpha_want = torch.nn.functional.softmax(torch.tanh(dense(torch.cat([H, H[-1:].expand(5, -1), A], 1))).reshape(-1), 0)
    s, alpha = level_attention(w, c, H, A)
    check(torch.allclose(alpha, alpha_want, atol=1e-14) and abs(float(alpha.sum()) - 1) < 1e-14,
          "hup: attention weights differ from softmax(tanh(Linear([h ; h_last ; a])))")
    check(float((alpha - 0.2).abs().max()) > 1e-3, "hup: attention weights are uniform")
    check(torch.allclose(s, alpha_want @ H, atol=1e-14), "hup: s != sum_j alpha_j h_j")

    # 4. The item level reads the state at each item's LAST micro-behavior: changing the micro level's
    #    state elsewhere inside a run (an earlier micro-behavior's operation is read by the micro LSTM
    #    only through later states) is seen; the macro split follows the runs.
    rng = np.random.default_rng(3)
    sessions = random_sessions(rng, 3, V, O, cfg["max_length"])
    sessions.append(([2, 2, 5, 2, 2, 2], [0, 1, 2, 0, 1, 1], 3, 0))
    bt = make_batch(sessions)
    s3 = sequence_oracle.Session(bt, 3)
    eo = P["op_embedding"][s3.micro_ops]
    hm = behavior_lstm(P["micro.W_x"], P["micro.W_b"], P["micro.W_h"], P["micro.b"],
                       torch.cat([P["item_embedding"][s3.micro_items], eo], 1), eo)
    Y = torch.cat([P["item_embedding"][torch.tensor([2, 5, 2])], hm[[1, 2, 5]]], 1)
    hi = behavior_lstm(P["item.W_x"], None, P["item.W_h"], P["item.b"], Y, None)
    pooled, _ = level_attention(P["att.w"], P["att.c"], hi)
    by_hand = P["item_embedding"] @ torch.tanh(P["out.W"] @ pooled + P["out.b"].reshape(-1))
    check(torch.allclose(session_scores(cfg, P, s3), by_hand, atol=1e-14), "hup: item level's inputs by hand")

    # 5. gradcheck of the mean loss w.r.t. every parameter, both pyramid heights.
    for c in (cfg, _config(d=2, levels=1)):
        names = [n for n, _ in param_shapes(c)]
        P0 = _params(c, 7)
        leaves = [P0[n].clone().requires_grad_(True) for n in names]
        try:
            ok = torch.autograd.gradcheck(lambda *t: sequence_oracle.forward(c, dict(zip(names, t)), bt)[1], leaves,
                                          eps=1e-6, atol=1e-8, rtol=1e-6)
        except RuntimeError as exc:
            ok = False
            print(f"    {str(exc)[:400]}")
        check(ok, f"hup: gradcheck levels={c['levels']}")
        # Every parameter gets a nonzero gradient (none is dead in the loss).
        loss = sequence_oracle.forward(c, dict(zip(names, leaves)), bt)[1]
        grads = torch.autograd.grad(loss, leaves)
        for n, g in zip(names, grads):
            check(float(g.abs().max()) > 0, f"hup: levels={c['levels']}: {n} has a zero gradient")

    # 6. Batch independence: a session alone = in the batch = in a permuted batch.
    for c in (cfg, _config(levels=1)):
        Pc = _params(c, 9)
        full, _ = sequence_oracle.forward(c, Pc, bt)
        perm = list(reversed(range(len(sessions))))
        permuted, _ = sequence_oracle.forward(c, Pc, make_batch([sessions[i] for i in perm]))
        for b in range(len(sessions)):
            alone, _ = sequence_oracle.forward(c, Pc, make_batch([sessions[b]]))
            check(torch.allclose(alone[0], full[b], atol=1e-13, rtol=1e-13),
                  f"hup: levels={c['levels']}: session {b} alone != in batch")
            check(torch.allclose(permuted[perm.index(b)], full[b], atol=1e-13, rtol=1e-13),
                  f"hup: levels={c['levels']}: session {b} in a permuted batch")
    print(f"  hup self-check: {time.time() - start:.1f} s")
