"""BERT4Rec for the sequence oracle (sequence_oracle.py): Sun, Liu, Wu, Pei, Lin, Ou, Jiang, "BERT4Rec:
Sequential Recommendation with Bidirectional Encoder Representations from Transformer", CIKM 2019,
Sec. 3.

Written from the paper and, where it is silent, from the authors' TensorFlow code (FeiSun/BERT4Rec,
modeling.py and run.py), as docs/SEQUENCE_MODELS.md "BERT4Rec" states. Per session, with its macro
items s_1..s_n (consecutive repeats merged) and one more token at position n:

    x_i  = e(token_i) + p_i   e = item_embedding row, or mask_embedding for [mask]   Sec. 3.4
    H^0  = LN_in(x)                                         the code's embedding_postprocessor
    per layer (post-LN, Sec. 3.3 eqs. (1)-(5), Fig. 1b):
      MH(H) = [head_1; ..; head_h] W_O^T + b_O,  head_a = softmax(Q_a K_a^T / sqrt(d/h)) V_a,
              Q = H W_Q^T + b_Q (K, V alike; the biases are the code's tf.layers.dense)
      A    = LN_1(H + MH(H))
      H'   = LN_2(A + W_2 GELU(W_1 A + b_1) + b_2)          inner size 4d, GELU(x) = x Phi(x) (exact)
    logits(h) = LN_out(GELU(h W_P^T + b_P)) E^T + output_bias   eq. (7) + the code's LayerNorm
    LayerNorm eps 1e-12 (tf.contrib.layers.layer_norm)

scores [B x V]: the logits of the last token of [s_1..s_n, [mask]] (evaluation).
loss: the cloze task (Sec. 3.6, eq. (8)) on [s_1..s_n, t]: the last position always masked, every
other position i masked when to_unit_double(counter_random(seed, ((step + 1) << 32) + example_id,
i)) < mask_prob (training only; core/random.hpp's generator, reimplemented in embsr_oracle.py); the
mean over all masked positions of the batch of -log softmax(logits)[hidden item].

Config keys beyond the common ones: num_layers, num_heads, mask_prob, seed, step, training. The
batch must carry example_ids (the C++ writes every batch array; the shared loader reads it as an
optional array).
"""

import math

import numpy as np
import torch

import embsr_oracle
import graph_oracle as common

NAME = "bert4rec"
KEYS = {"num_layers": int, "num_heads": int, "mask_prob": float, "seed": int, "step": int, "training": bool}
DTYPE = torch.float64
LN_EPS = 1e-12



def check(cfg):
    if cfg["num_layers"] < 1 or cfg["num_heads"] < 1 or cfg["d"] % cfg["num_heads"] != 0:
        raise common.OracleError(f"config.json: bad num_layers / num_heads for d = {cfg['d']}")
    if not (0.0 <= cfg["mask_prob"] < 1.0):
        raise common.OracleError("config.json: mask_prob must be in [0, 1)")
    if cfg["seed"] < 0 or cfg["step"] < 0:
        raise common.OracleError("config.json: seed and step must be >= 0")


def layer_names(l):
    p = f"trm{l}."
    return [p + n for n in ("W_Q", "b_Q", "W_K", "b_K", "W_V", "b_V", "W_O", "b_O", "ln1.gamma", "ln1.beta",
                            "W_1", "b_1", "W_2", "b_2", "ln2.gamma", "ln2.beta")]


def param_shapes(cfg):
    d, V, L = cfg["d"], cfg["num_items"], cfg["max_length"]
    out = [("item_embedding", (V, d)), ("mask_embedding", (1, d)), ("position_embedding", (L + 1, d)),
           ("input_ln.gamma", (1, d)), ("input_ln.beta", (1, d))]
    for l in range(cfg["num_layers"]):
        shapes = [(d, d), (1, d)] * 4 + [(1, d), (1, d), (4 * d, d), (1, 4 * d), (d, 4 * d), (1, d), (1, d), (1, d)]
        out += list(zip(layer_names(l), shapes))
    out += [("W_P", (d, d)), ("b_P", (1, d)), ("out_ln.gamma", (1, d)), ("out_ln.beta", (1, d)), ("output_bias", (1, V))]
    return out


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------
def gelu(x):
    """x Phi(x), Phi the standard Gaussian CDF (the paper; the code's tf.erf form)."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def layer_norm(x, gamma, beta):
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + LN_EPS) * gamma.reshape(-1) + beta.reshape(-1)


def multi_head(P, l, H, heads):
    """eq. (1)-(2) over one session's rows H [n x d], no mask (bidirectional)."""
    p = f"trm{l}."
    n, d = H.shape
    dh = d // heads
    Q = H @ P[p + "W_Q"].t() + P[p + "b_Q"].reshape(-1)
    K = H @ P[p + "W_K"].t() + P[p + "b_K"].reshape(-1)
    V = H @ P[p + "W_V"].t() + P[p + "b_V"].reshape(-1)
    outs = []
    for a in range(heads):
        cols = slice(a * dh, (a + 1) * dh)
        A = Q[:, cols] @ K[:, cols].t() / math.sqrt(dh)
        outs.append(torch.softmax(A, dim=1) @ V[:, cols])
    return torch.cat(outs, dim=1) @ P[p + "W_O"].t() + P[p + "b_O"].reshape(-1)


def transformer_layer(P, l, H, heads):
    """Trm(H) = LN_2(A + PFFN(A)), A = LN_1(H + MH(H)) (post-LN, no dropout)."""
    p = f"trm{l}."
    A = layer_norm(H + multi_head(P, l, H, heads), P[p + "ln1.gamma"], P[p + "ln1.beta"])
    F = gelu(A @ P[p + "W_1"].t() + P[p + "b_1"].reshape(-1)) @ P[p + "W_2"].t() + P[p + "b_2"].reshape(-1)
    return layer_norm(A + F, P[p + "ln2.gamma"], P[p + "ln2.beta"])


def encode(cfg, P, items, masked):
    """Final hidden rows [n x d] of one token sequence: items [n] (any value where masked), masked [n] bool."""
    n = len(items)
    E = P["item_embedding"]
    rows = [P["mask_embedding"][0] if masked[i] else E[int(items[i])] for i in range(n)]
    x = torch.stack(rows) + P["position_embedding"][:n]
    H = layer_norm(x, P["input_ln.gamma"], P["input_ln.beta"])
    for l in range(cfg["num_layers"]):
        H = transformer_layer(P, l, H, cfg["num_heads"])
    return H


def output_logits(P, h):
    """eq. (7) with the code's LayerNorm: rows h [k x d] -> logits [k x V]."""
    z = layer_norm(gelu(h @ P["W_P"].t() + P["b_P"].reshape(-1)), P["out_ln.gamma"], P["out_ln.beta"])
    return z @ P["item_embedding"].t() + P["output_bias"].reshape(-1)


def cloze_masks(cfg, example_id, length):
    """[length] bools: the last position always; position i < length - 1 when its draw < mask_prob (training)."""
    out = [False] * length
    out[-1] = True
    if cfg["training"]:
        stream = ((cfg["step"] + 1) << 32) + int(example_id)
        for i in range(length - 1):
            u = embsr_oracle.to_unit_double(embsr_oracle.counter_random(cfg["seed"], stream, i))
            out[i] = u < cfg["mask_prob"]
    return out


def session_items(bt, b):
    k0, k1 = int(bt["macro_offsets"][b]), int(bt["macro_offsets"][b + 1])
    return [int(v) for v in bt["macro_items"][k0:k1]]


def forward(cfg, P, bt):
    if "example_ids" not in bt:
        raise common.OracleError("batch/example_ids.npy: missing (BERT4Rec's cloze masks need it)")
    B = len(bt["targets"])
    scores, losses = [], []
    for b in range(B):
        items = session_items(bt, b)
        n = len(items)
        # Evaluation: [s_1..s_n, [mask]], the logits of the last token.
        H = encode(cfg, P, items + [0], [False] * n + [True])
        scores.append(output_logits(P, H[n:n + 1])[0])
        # Training: [s_1..s_n, t] with the cloze masks.
        seq = items + [int(bt["targets"][b])]
        masked = cloze_masks(cfg, bt["example_ids"][b], n + 1)
        H = encode(cfg, P, seq, masked)
        where = [i for i in range(n + 1) if masked[i]]
        logits = output_logits(P, H[where])
        labels = torch.as_tensor([seq[i] for i in where])
        losses.append(torch.logsumexp(logits, dim=1) - logits[torch.arange(len(where)), labels])
    return torch.stack(scores), torch.cat(losses).mean()


# ---------------------------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------------------------
def _random_params(cfg, seed, scale=0.6):
    g = torch.Generator().manual_seed(seed)
    P = {name: (torch.rand(shape, generator=g, dtype=DTYPE) * 2 - 1) * scale for name, shape in param_shapes(cfg)}
    for name in P:  # gains near 1, as trained models have them
        if name.endswith("gamma"):
            P[name] = P[name] * 0.5 + 1.0
    return P


def selfcheck(check):
    import torch.nn.functional as F

    import sequence_oracle as seq
    from test_graph_oracle_selfcheck import make_batch, random_sessions

    torch.set_default_dtype(DTYPE)
    rng = np.random.default_rng(11)
    base = {"model": NAME, "d": 4, "num_items": 7, "num_ops": 3, "max_length": 8, "num_layers": 2, "num_heads": 2,
            "mask_prob": 0.5, "seed": 7, "step": 3, "training": True}
    cfg = seq.check_config(dict(base))
    P = _random_params(cfg, 5)
    sessions = random_sessions(rng, 5, cfg["num_items"], cfg["num_ops"], 7)
    bt = make_batch(sessions)
    bt["example_ids"] = np.asarray([10, 3, 7, 0, 42], dtype=np.int64)

    # Building blocks against torch.nn.
    x = torch.linspace(-4, 4, 33)
    check(torch.allclose(gelu(x), F.gelu(x), atol=1e-15), "bert4rec: gelu = F.gelu (exact erf form)")
    X = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=DTYPE)
    ln = torch.nn.LayerNorm(4, eps=LN_EPS).to(DTYPE)
    with torch.no_grad():
        ln.weight.copy_(P["input_ln.gamma"].reshape(-1))
        ln.bias.copy_(P["input_ln.beta"].reshape(-1))
    check(torch.allclose(layer_norm(X, P["input_ln.gamma"], P["input_ln.beta"]), ln(X), atol=1e-13),
          "bert4rec: layer_norm = nn.LayerNorm(eps=1e-12)")
    mha = torch.nn.MultiheadAttention(4, 2, bias=True).to(DTYPE)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([P["trm0.W_Q"], P["trm0.W_K"], P["trm0.W_V"]]))
        mha.in_proj_bias.copy_(torch.cat([P["trm0.b_Q"], P["trm0.b_K"], P["trm0.b_V"]]).reshape(-1))
        mha.out_proj.weight.copy_(P["trm0.W_O"])
        mha.out_proj.bias.copy_(P["trm0.b_O"].reshape(-1))
    want, _ = mha(X[:, None, :], X[:, None, :], X[:, None, :], need_weights=False)
    check(torch.allclose(multi_head(P, 0, X, 2), want[:, 0, :], atol=1e-13),
          "bert4rec: multi_head = nn.MultiheadAttention (2 heads, biases, no mask)")
    enc = torch.nn.TransformerEncoderLayer(4, 2, dim_feedforward=16, dropout=0.0, activation="gelu",
                                           layer_norm_eps=LN_EPS).to(DTYPE)
    with torch.no_grad():
        enc.self_attn.load_state_dict(mha.state_dict())
        enc.linear1.weight.copy_(P["trm0.W_1"])
        enc.linear1.bias.copy_(P["trm0.b_1"].reshape(-1))
        enc.linear2.weight.copy_(P["trm0.W_2"])
        enc.linear2.bias.copy_(P["trm0.b_2"].reshape(-1))
        enc.norm1.weight.copy_(P["trm0.ln1.gamma"].reshape(-1))
        enc.norm1.bias.copy_(P["trm0.ln1.beta"].reshape(-1))
        enc.norm2.weight.copy_(P["trm0.ln2.gamma"].reshape(-1))
        enc.norm2.bias.copy_(P["trm0.ln2.beta"].reshape(-1))
    enc.eval()
    check(torch.allclose(transformer_layer(P, 0, X, 2), enc(X[:, None, :])[:, 0, :], atol=1e-12),
          "bert4rec: transformer_layer = nn.TransformerEncoderLayer (post-LN, gelu, inner 4d)")

    # The masks: the last position always, others at about mask_prob, a function of (seed, step, id).
    m = [cloze_masks(cfg, e, 8) for e in range(200)]
    frac = sum(sum(r[:-1]) for r in m) / (200 * 7)
    check(all(r[-1] for r in m) and 0.45 < frac < 0.55, f"bert4rec: masks at rate mask_prob ({frac:.3f})")
    check(any(cloze_masks(cfg, e, 8) != cloze_masks(dict(cfg, step=4), e, 8) for e in range(20)) and
          any(cloze_masks(cfg, e, 8) != cloze_masks(dict(cfg, seed=8), e, 8) for e in range(20)),
          "bert4rec: masks change with the step and the seed")
    check(cloze_masks(dict(cfg, training=False), 5, 8) == [False] * 7 + [True], "bert4rec: evaluation masks the last only")
    scores, loss = seq.forward(cfg, P, bt)
    # With mask_prob 0 the loss is the evaluation cross-entropy of the scores.
    s0, l0 = seq.forward(dict(cfg, mask_prob=0.0), P, bt)
    check(torch.allclose(l0, F.cross_entropy(s0, torch.as_tensor(bt["targets"])), atol=1e-12),
          "bert4rec: mask_prob 0: the loss is F.cross_entropy of the scores")
    check(torch.allclose(s0, scores, atol=0) and abs(float(l0 - loss)) > 1e-6,
          "bert4rec: the scores do not depend on the masks; the loss does")

    # Batch independence: a session alone = in the batch (scores; its masks follow its example id).
    for b in range(len(sessions)):
        one = make_batch([sessions[b]])
        one["example_ids"] = bt["example_ids"][b:b + 1]
        alone, _ = seq.forward(cfg, P, one)
        check(torch.allclose(alone[0], scores[b], atol=1e-13), f"bert4rec: session {b} alone = in its batch")

    # gradcheck of the loss w.r.t. every parameter, two structures.
    for layers, heads in ((2, 2), (1, 1)):
        c = seq.check_config(dict(base, num_layers=layers, num_heads=heads))
        Pc = _random_params(c, 6 + layers)
        names = [n for n, _ in param_shapes(c)]
        small = make_batch(sessions[:3])
        small["example_ids"] = bt["example_ids"][:3]

        def loss_of(*tensors):
            return seq.forward(c, dict(zip(names, tensors)), small)[1]

        leaves = [Pc[n].clone().requires_grad_(True) for n in names]
        check(torch.autograd.gradcheck(loss_of, leaves, eps=1e-6, atol=1e-8, rtol=1e-6),
              f"bert4rec ({layers} layers, {heads} heads): gradcheck of the loss w.r.t. every parameter")
