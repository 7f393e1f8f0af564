#!/usr/bin/env python3
"""Independent PyTorch float64 autograd oracle for the sequence baselines of docs/SEQUENCE_MODELS.md:
NARM, STAMP, RIB, HUP and BERT4Rec.

Written from the papers (and, where a paper is silent, its authors' public code), not from the C++
code. Reads the exchange directory of tests/oracle/README.md (config.json, params/, batch/), runs
forward, loss and backward with torch autograd, and writes the scores, the loss and every gradient
to DIR/out/, exactly as graph_oracle.py (whose batch checks and loading it shares).

    /usr/bin/python3 tests/oracle/sequence_oracle.py DIR          # DIR/config.json, params/, batch/ -> DIR/out/
    /usr/bin/python3 tests/oracle/sequence_oracle.py --selfcheck  # every model's self-check; exit 0 pass, 1 fail

Exit status 0 on success, 2 with a one-line message on stderr for inconsistent input.

Each model is one module beside this file, seq_<name>.py, with:
    NAME                       the registry name ("narm", ...)
    KEYS                       {key: type} of its config keys beyond COMMON_KEYS
    check(cfg)                 value checks of those keys (raise OracleError), optional
    param_shapes(cfg)          [(name, shape)] in the C++ layout order
    session_scores(cfg, P, s)  the scores [V] of one session (s: graph_oracle.Session), for models
                               whose loss is the mean cross-entropy of those scores with the target
    forward(cfg, P, bt)        (scores [B x V], loss) for a model with its own training loss
                               (BERT4Rec's cloze loss); used instead of session_scores when present
    selfcheck(check)           its own checks (building blocks against torch.nn, gradcheck, batch
                               independence); check(ok, what) records a failure; optional
"""

import importlib
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graph_oracle as common  # noqa: E402  (the exchange format, batch checks, Session, linear, gru_cell)

DTYPE = torch.float64
OracleError = common.OracleError
Session = common.Session
MODULES = ("seq_narm", "seq_stamp", "seq_rib", "seq_hup", "seq_bert4rec")
COMMON_KEYS = {"model": str, "d": int, "num_items": int, "num_ops": int, "max_length": int}


def models():
    """name -> module, for every model module present beside this file."""
    out = {}
    here = os.path.dirname(os.path.abspath(__file__))
    for module_name in MODULES:
        if os.path.exists(os.path.join(here, module_name + ".py")):
            module = importlib.import_module(module_name)
            out[module.NAME] = module
    return out


def check_config(cfg):
    if not isinstance(cfg, dict):
        raise OracleError("config.json: not a JSON object")
    known = models()
    if cfg.get("model") not in known:
        raise OracleError(f"config.json: model {cfg.get('model')!r} is not one of {sorted(known)}")
    module = known[cfg["model"]]
    keys = dict(COMMON_KEYS)
    keys.update(module.KEYS)
    for key, typ in keys.items():
        if key not in cfg:
            raise OracleError(f"config.json: missing key '{key}' (model {cfg['model']})")
        cfg[key] = common._check_type(key, cfg[key], typ)
    unknown = sorted(set(cfg) - set(keys))
    if unknown:
        raise OracleError(f"config.json: unknown keys {unknown} for model {cfg['model']}")
    if cfg["d"] < 1 or cfg["num_items"] < 1 or cfg["num_ops"] < 1 or cfg["max_length"] < 1:
        raise OracleError(f"config.json: bad sizes {cfg}")
    if hasattr(module, "check"):
        module.check(cfg)
    return cfg


def param_shapes(cfg):
    return models()[cfg["model"]].param_shapes(cfg)


def check_params(cfg, params):
    shapes = dict(param_shapes(cfg))
    for name, p in params.items():
        if name not in shapes:
            raise OracleError(f"params/{name}.npy: unknown parameter for model {cfg['model']}")
        if tuple(p.shape) != shapes[name]:
            raise OracleError(f"params/{name}.npy: shape {tuple(p.shape)}, expected {shapes[name]}")
        if not torch.isfinite(p).all():
            raise OracleError(f"params/{name}.npy: non-finite values")
    for name in shapes:
        if name not in params:
            raise OracleError(f"params/{name}.npy: missing (model {cfg['model']})")


def forward(cfg, P, bt):
    """(scores [B x V], loss scalar). P: name -> tensor; bt: int64 arrays."""
    module = models()[cfg["model"]]
    if hasattr(module, "forward"):
        return module.forward(cfg, P, bt)
    B = len(bt["targets"])
    scores = torch.stack([module.session_scores(cfg, P, Session(bt, b)) for b in range(B)])
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
    cfg, params, batch = common.load_exchange(directory, check_config, check_params)
    scores, loss, grads = run_oracle(cfg, params, batch)
    if not (np.isfinite(scores).all() and np.isfinite(loss).all()):
        raise OracleError("non-finite scores or loss")
    out = os.path.join(directory, "out")
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "scores.npy"), np.ascontiguousarray(scores, dtype=np.float64))
    np.save(os.path.join(out, "loss.npy"), loss)
    for name, g in grads.items():
        np.save(os.path.join(out, f"grad_{name}.npy"), np.ascontiguousarray(g, dtype=np.float64))


def selfcheck(only=None):
    """Every model module's own self-check (or only the named ones); True when all pass."""
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)
            print(f"  FAIL: {what}")
        return ok

    for name, module in sorted(models().items()):
        if only and name not in only:
            continue
        if not hasattr(module, "selfcheck"):
            check(False, f"{name}: no selfcheck")
            continue
        print(f"sequence oracle self-check: {name}")
        module.selfcheck(check)
    print("sequence oracle self-check: " + ("PASS" if not failures else f"{len(failures)} FAILURES"))
    return not failures


def main(argv):
    torch.set_default_dtype(DTYPE)
    if len(argv) >= 2 and argv[1] == "--selfcheck":
        return 0 if selfcheck(argv[2:]) else 1
    if len(argv) != 2 or argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        main_exchange(argv[1])
    except OracleError as exc:
        print(f"sequence_oracle: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
