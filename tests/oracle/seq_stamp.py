"""STAMP for the sequence oracle (sequence_oracle.py): Liu, Zeng, Mokhosi, Zhang, "STAMP: Short-Term
Attention/Memory Priority Model for Session-based Recommendation", KDD 2018, Sec. 3.

Written from the paper (Sec. 3.2 STMP, eq. 1-7; Sec. 3.3 STAMP, eq. 8-9) and, where the paper and
the authors' TensorFlow code (uestcnlp/STAMP) differ, as docs/SEQUENCE_MODELS.md "STAMP" states:

    x_1..x_t  the embeddings of the session's macro items (consecutive repeats merged)
    m_s = (1/t) sum_i x_i,  m_t = x_t                                         eq. 1
    alpha_i = W_0 sigmoid(W_1 x_i + W_2 x_t + W_3 m_s + b_a)                  eq. 8 (not normalised)
    m_a = sum_i alpha_i x_i        (+ m_s when mean_residual: the code)        eq. 9
    h_s = tanh(W_s m_a + b_s),  h_t = tanh(W_t m_t + b_t)                     eq. 2-3
    z_v = <h_s, h_t, x_v> = sum_k h_s[k] h_t[k] E_v[k]                        eq. 4-5, no sigmoid (the code)
    loss = cross-entropy of softmax(z) with the target                        eq. 6 (softmax CE: the code)

Config keys beyond the common ones: mean_residual (bool).
"""

import numpy as np
import torch

import graph_oracle as common

NAME = "stamp"
KEYS = {"mean_residual": bool}
DTYPE = torch.float64


def param_shapes(cfg):
    d, V = cfg["d"], cfg["num_items"]
    return [("item_embedding", (V, d)), ("W_0", (1, d)), ("W_1", (d, d)), ("W_2", (d, d)), ("W_3", (d, d)),
            ("b_a", (1, d)), ("W_s", (d, d)), ("b_s", (1, d)), ("W_t", (d, d)), ("b_t", (1, d))]


def macro_items(s):
    """The session's items with consecutive repeats merged, in order (graph_oracle.Session)."""
    return s.node_items[s.alias]


def attention(P, X, x_t, m_s):
    """eq. 8-9 without the residual: alpha [t] and sum_i alpha_i x_i [d]."""
    pre = X @ P["W_1"].t() + (P["W_2"] @ x_t) + (P["W_3"] @ m_s) + P["b_a"].reshape(-1)
    alpha = torch.sigmoid(pre) @ P["W_0"].reshape(-1)
    return alpha, alpha @ X


def session_scores(cfg, P, s):
    E = P["item_embedding"]
    X = E[macro_items(s)]                                  # x_1..x_t  [t x d]
    m_s = X.mean(dim=0)                                    # eq. 1
    x_t = X[-1]                                            # m_t
    _, m_a = attention(P, X, x_t, m_s)                     # eq. 8-9
    if cfg["mean_residual"]:
        m_a = m_a + m_s                                    # the authors' code
    h_s = torch.tanh(P["W_s"] @ m_a + P["b_s"].reshape(-1))   # eq. 2
    h_t = torch.tanh(P["W_t"] @ x_t + P["b_t"].reshape(-1))   # eq. 3
    return torch.einsum("k,k,vk->v", h_s, h_t, E)         # eq. 4-5: trilinear products [V]


# ---------------------------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------------------------
def _random_params(cfg, seed, scale=0.6):
    g = torch.Generator().manual_seed(seed)
    return {name: (torch.rand(shape, generator=g, dtype=DTYPE) * 2 - 1) * scale for name, shape in param_shapes(cfg)}


def _authors_attention(P, X, x_t, m_s):
    """The authors' FwNnAttLayer.count_alpha / forward for one session, transcribed in their tiled
    layout (batch of one, [1 x t x d]; right-multiplied weights, so W here is our W^T), plus the
    paper's b_a, which the code lacks."""
    t, d = X.shape
    ctx = X.reshape(1, t, d)
    aspect_3dim = x_t.reshape(1, d).repeat(1, t).reshape(-1, t, d)
    output_3dim = m_s.reshape(1, d).repeat(1, t).reshape(-1, t, d)
    res = ctx @ P["W_1"].t() + aspect_3dim @ P["W_2"].t() + output_3dim @ P["W_3"].t() + P["b_a"].reshape(-1)
    alpha = (torch.sigmoid(res) @ P["W_0"].t()).reshape(-1, t)           # norm_type 'none'
    vec = (alpha.reshape(-1, 1, t) @ ctx).reshape(-1)
    return alpha.reshape(-1), vec


def selfcheck(check):
    import torch.nn.functional as F

    import sequence_oracle as seq
    from test_graph_oracle_selfcheck import make_batch, random_sessions

    torch.set_default_dtype(DTYPE)
    rng = np.random.default_rng(5)
    for mean_residual in (False, True):
        cfg = {"model": NAME, "d": 4, "num_items": 7, "num_ops": 3, "max_length": 8, "mean_residual": mean_residual}
        tag = f"stamp (mean_residual={mean_residual})"
        P = _random_params(cfg, 3 + int(mean_residual))
        sessions = random_sessions(rng, 5, cfg["num_items"], cfg["num_ops"], 7)
        bt = make_batch(sessions)

        # Building blocks against torch.nn and the authors' layout.
        s = common.Session(bt, 2)
        X = P["item_embedding"][macro_items(s)]
        m_s, x_t = X.mean(0), X[-1]
        alpha, vec = attention(P, X, x_t, m_s)
        a2, v2 = _authors_attention(P, X, x_t, m_s)
        check(torch.allclose(alpha, a2, atol=1e-12) and torch.allclose(vec, v2, atol=1e-12),
              f"{tag}: attention equals the authors' tiled count_alpha")
        lin = torch.nn.Linear(cfg["d"], cfg["d"]).to(DTYPE)
        with torch.no_grad():
            lin.weight.copy_(P["W_s"])
            lin.bias.copy_(P["b_s"].reshape(-1))
        m_a = vec + (m_s if mean_residual else 0)
        h_s = torch.tanh(P["W_s"] @ m_a + P["b_s"].reshape(-1))
        check(torch.allclose(h_s, torch.tanh(lin(m_a)), atol=1e-12), f"{tag}: the MLP cell equals nn.Linear + tanh")
        h_t = torch.tanh(P["W_t"] @ x_t + P["b_t"].reshape(-1))
        z = session_scores(cfg, P, s)
        check(torch.allclose(z, P["item_embedding"] @ (h_s * h_t), atol=1e-12), f"{tag}: trilinear = (h_s*h_t).E")
        check(len(macro_items(s)) <= s.t and all(int(a) != int(b) for a, b in
                                                zip(macro_items(s)[:-1], macro_items(s)[1:])),
              f"{tag}: macro items have no consecutive repeats")
        scores, loss = seq.forward(cfg, P, bt)
        check(torch.allclose(loss, F.cross_entropy(scores, torch.as_tensor(bt["targets"])), atol=1e-12),
              f"{tag}: the loss equals F.cross_entropy")

        # Batch independence: a session alone = in the batch.
        for b in range(len(sessions)):
            alone, _ = seq.forward(cfg, P, make_batch([sessions[b]]))
            check(torch.allclose(alone[0], scores[b], atol=1e-13), f"{tag}: session {b} alone = in its batch")

        # gradcheck of the loss w.r.t. every parameter.
        names = [n for n, _ in param_shapes(cfg)]

        def loss_of(*tensors):
            return seq.forward(cfg, dict(zip(names, tensors)), bt)[1]

        leaves = [P[n].clone().requires_grad_(True) for n in names]
        check(torch.autograd.gradcheck(loss_of, leaves, eps=1e-6, atol=1e-8, rtol=1e-6),
              f"{tag}: gradcheck of the loss w.r.t. every parameter")
