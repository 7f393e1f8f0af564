#!/usr/bin/env python3
"""Brute-force reference of the session kNN models (sknn, v-sknn, stan, vstan, vstan-ops).

Written from the formulas at the top of include/embsr/model/session_knn.hpp (the contract) and the
session/operation-count definitions at the top of include/embsr/model/knn_index.hpp, NOT from the
C++ index or scorer: there is no index here. Every request looks at every training session.

    knn_reference.py DIR          reads DIR/input.json, writes DIR/scores.txt
    knn_reference.py --selfcheck  hand-computed tiny cases; exit 0 = pass, 1 = a check failed

DIR/input.json:
    {"num_items": V, "num_ops": O,
     "train":    [[input items], [input ops], target, next_op, order_key], ...],   (ExampleSet rows)
     "requests": [[items], [ops]], ...],                                           (micro-behaviors)
     "jobs":     [{"model": "v-sknn", "options": {"k": "20", ...}, "requests": [i, ...]}, ...]}
Option values may be strings (as ModelOptions holds them) or JSON numbers/booleans. Options a model
does not take are an error (exit 2), as are ids out of range.

DIR/scores.txt: one line per (job, request) in input order:
    JOB REQUEST COUNT item score item score ...
listing every item whose score is nonzero, scores with 17 significant digits; all other items
score exactly 0.

Choices where the contract leaves room (documented in tests/oracle/README.md):
  - the dot product of the similarity runs over the neighbour's items in their order of first
    appearance in the neighbour (rounding only: "sums over a session's items run in their order
    of first appearance");
  - cosine with a zero current-session norm gives sim = 0; lambda_snh > 0 with t_max == t_min
    applies no recency decay (the formula would divide 0 by 0).
"""

import json
import math
import os
import sys

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15          # core/random.hpp golden_gamma
STREAM_MULTIPLIER = 0xD1B54A32D192ED03


class InputError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# core/random.hpp: SplitMix64's mix, stream keys; h(n) of sampling = random
# ---------------------------------------------------------------------------------------------

def mix64(z):
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stream_key(seed, stream):
    return mix64(mix64((seed + GAMMA) & MASK64) ^ ((stream * STREAM_MULTIPLIER) & MASK64))


def sample_hash(seed, n):
    """h(n) = mix64(stream_key(seed, 0) + 0x9e3779b97f4a7c15 (n + 1))."""
    return mix64((stream_key(seed, 0) + GAMMA * (n + 1)) & MASK64)


# ---------------------------------------------------------------------------------------------
# The models: settings each fixes, and the options each takes (KnnSpec<Kind> in session_knn.hpp)
# ---------------------------------------------------------------------------------------------

DECAYS = ("same", "div", "linear", "log", "quadratic", "exp")

COMMON_DEFAULTS = dict(k=100, sample_size=500, sampling="recent", seed=0, similarity="cosine",
                       session_weighting="same", lambda_spw=1.02, lambda_snh=0.0, lambda_inh=0.0,
                       match_weighting="same", lambda_ipw=1.02, lambda_idf=0.0, remind=True,
                       use_operations=False, op_power=0.0)

STAN_FIXED = dict(session_weighting="exp", lambda_snh=0.1, lambda_inh=2.05)
MODELS = {
    # name: (fixed settings / defaults, options it takes beyond k, sample_size, sampling, seed)
    "sknn": (dict(), ()),
    "v-sknn": (dict(similarity="vector", session_weighting="div", match_weighting="div"),
               ("session_weighting", "match_weighting", "lambda_idf", "remind")),
    "stan": (dict(STAN_FIXED), ("lambda_spw", "lambda_snh", "lambda_inh", "remind")),
    "vstan": (dict(STAN_FIXED, match_weighting="exp", lambda_idf=5.0),
              ("lambda_spw", "lambda_snh", "lambda_inh", "remind", "lambda_ipw", "lambda_idf")),
    "vstan-ops": (dict(STAN_FIXED, match_weighting="exp", lambda_idf=5.0, use_operations=True, op_power=1.0),
                  ("lambda_spw", "lambda_snh", "lambda_inh", "remind", "lambda_ipw", "lambda_idf", "op_power")),
}
DATA_OPTIONS = ("num_items", "num_ops", "max_length")  # accepted, not used by the formulas


def parse_bool(x):
    if isinstance(x, bool):
        return x
    if x in ("true", "1"):
        return True
    if x in ("false", "0"):
        return False
    raise InputError(f"not a boolean: {x!r}")


def model_config(name, options):
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}")
    fixed, takes = MODELS[name]
    c = dict(COMMON_DEFAULTS)
    c.update(fixed)
    allowed = ("k", "sample_size", "sampling", "seed") + takes
    for key, value in options.items():
        if key in DATA_OPTIONS:
            continue
        if key not in allowed:
            raise InputError(f"model {name} does not take option {key!r}")
        if key in ("k", "sample_size", "seed"):
            c[key] = int(value)
        elif key == "sampling":
            if value not in ("recent", "random"):
                raise InputError(f"sampling: {value!r}")
            c[key] = value
        elif key in ("session_weighting", "match_weighting"):
            if value not in DECAYS[:5]:
                raise InputError(f"{key}: {value!r}")
            c[key] = value
        elif key == "remind":
            c[key] = parse_bool(value)
        else:
            c[key] = float(value)
    if c["k"] < 1 or c["sample_size"] < 0:
        raise InputError("k must be >= 1 and sample_size >= 0")
    return c


def position_weight(d, p, L, lam):
    """pw(p, L)."""
    if d == "same":
        return 1.0
    if d == "div":
        return p / L
    if d == "linear":
        return max(0.0, 1.0 - 0.1 * (L - p))
    if d == "log":
        return 1.0 / math.log10((L - p) + 1.7)
    if d == "quadratic":
        return (p / L) * (p / L)
    if d == "exp":
        return math.exp((p - L) / lam)
    raise InputError(d)


def match_weight(d, q, lam):
    """m(q)."""
    if d == "same":
        return 1.0
    if d == "div":
        return 1.0 / q
    if d == "linear":
        return max(0.0, 1.0 - 0.1 * q)
    if d == "log":
        return 1.0 / math.log10(q + 1.7)
    if d == "quadratic":
        return 1.0 / (q * q)
    if d == "exp":
        return math.exp(-(q - 1) / lam)
    raise InputError(d)


# ---------------------------------------------------------------------------------------------
# Sessions (knn_index.hpp): input micro-behaviors + the target micro-behavior, consecutive
# micro-behaviors on one item = one macro item; numbered by a stable sort on the order key.
# ---------------------------------------------------------------------------------------------

def session_of(items, ops):
    """Distinct items in order of first appearance, last macro positions, operation sets, L."""
    order, last, opset = [], {}, {}
    L, previous = 0, None
    for v, o in zip(items, ops):
        if v != previous:
            L += 1
        previous = v
        if v not in last:
            order.append(v)
            opset[v] = set()
        last[v] = L
        opset[v].add(o)
    return order, last, opset, L


class Training:
    def __init__(self, rows, num_items, num_ops):
        self.num_items, self.num_ops = num_items, num_ops
        if not rows:
            raise InputError("empty training split")
        for items, ops, target, next_op, _ in rows:
            if len(items) == 0 or len(items) != len(ops):
                raise InputError("training row with no input or mismatched ops")
            for v, o in zip(list(items) + [target], list(ops) + [next_op]):
                if not (0 <= v < num_items and 0 <= o < num_ops):
                    raise InputError(f"training event ({v}, {o}) out of range")
        ranked = sorted(range(len(rows)), key=lambda e: rows[e][4])  # stable: ties by position
        self.sessions = []  # by recency: (items in first-appearance order, last pos, ops, time)
        for e in ranked:
            items, ops, target, next_op, key = rows[e]
            order, last, opset, _ = session_of(list(items) + [target], list(ops) + [next_op])
            self.sessions.append((order, last, opset, float(key), set(order)))
        self.times = [s[3] for s in self.sessions]
        # Operation statistics over the examples (each distinct input item once).
        self.hits, self.uses = [0] * num_ops, [0] * num_ops
        for items, ops, target, _, _ in rows:
            seen = {}
            for v, o in zip(items, ops):
                seen.setdefault(v, set()).add(o)
            for v, os_ in seen.items():
                for o in os_:
                    self.uses[o] += 1
                    if v == target:
                        self.hits[o] += 1
        # Document frequencies: training sessions holding v.
        self.df = [0] * num_items
        for s in self.sessions:
            for v in s[0]:
                self.df[v] += 1

    def operation_weights(self, power):
        r = (sum(self.hits) + 1) / (sum(self.uses) + 2)
        return [math.pow(((self.hits[o] + 1) / (self.uses[o] + 2)) / r, power) for o in range(self.num_ops)]


def score_request(train, c, items, ops):
    """The dense score vector s(v) of one request under config c."""
    V = train.num_items
    s = [0.0] * V
    for v, o in zip(items, ops):
        if not (0 <= v < V and 0 <= o < train.num_ops):
            raise InputError(f"request event ({v}, {o}) out of range")
    order, pos, ops_c, L = session_of(items, ops)
    if L == 0:
        return s
    if c["use_operations"]:
        w = train.operation_weights(c["op_power"])
        a = lambda opset: max(w[o] for o in opset)  # noqa: E731
    else:
        a = lambda opset: 1.0  # noqa: E731
    u = {v: position_weight(c["session_weighting"], pos[v], L, c["lambda_spw"]) * a(ops_c[v]) for v in order}
    norm_c = 0.0
    for v in order:
        norm_c += u[v] * u[v]
    norm_c = math.sqrt(norm_c)
    current = set(order)

    # Candidates: every training session sharing an item; then the sample.
    S = len(train.sessions)
    candidates = [n for n in range(S) if not current.isdisjoint(train.sessions[n][4])]
    m = c["sample_size"]
    if m > 0 and len(candidates) > m:
        if c["sampling"] == "recent":
            candidates = sorted(candidates, reverse=True)[:m]
        else:
            candidates = sorted(candidates, key=lambda n: sample_hash(c["seed"], n))[:m]

    t_min, t_max = min(train.times), max(train.times)
    recency = c["lambda_snh"] > 0 and t_max > t_min
    neighbours = []
    for n in candidates:
        n_items, n_last, n_ops, t_n, _ = train.sessions[n]
        dot, norm_n = 0.0, 0.0
        for v in n_items:
            a_n = a(n_ops[v])
            norm_n += a_n * a_n
            if v in current:
                dot += u[v] * a_n
        norm_n = math.sqrt(norm_n)
        if c["similarity"] == "cosine":
            sim = dot / (norm_c * norm_n) if norm_c > 0 else 0.0
        else:
            sim = dot / len(order)
        if recency:
            sim *= math.exp(-(t_max - t_n) / (c["lambda_snh"] * (t_max - t_min)))
        if sim > 0:
            shared = [v for v in n_items if v in current]
            q = L - max(pos[v] for v in shared) + 1
            p_star = max(n_last[v] for v in shared)
            neighbours.append((sim, n, q, p_star))
    neighbours.sort(key=lambda x: (-x[0], -x[1]))  # sim descending, ties to the more recent
    neighbours = neighbours[:c["k"]]

    for sim, n, q, p_star in neighbours:
        n_items, n_last, n_ops, _, _ = train.sessions[n]
        for v in n_items:
            if not c["remind"] and v in current:
                continue
            x = sim * match_weight(c["match_weighting"], q, c["lambda_ipw"]) * a(n_ops[v])
            if c["lambda_inh"] > 0:
                x *= math.exp(-abs(n_last[v] - p_star) / c["lambda_inh"])
            if c["lambda_idf"] > 0:
                x *= 1.0 + c["lambda_idf"] * math.log(S / train.df[v])
            s[v] += x
    return s


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def run_directory(d):
    with open(os.path.join(d, "input.json")) as f:
        spec = json.load(f)
    for key in ("num_items", "num_ops", "train", "requests", "jobs"):
        if key not in spec:
            raise InputError(f"input.json: missing {key!r}")
    train = Training([tuple(r) for r in spec["train"]], int(spec["num_items"]), int(spec["num_ops"]))
    requests = spec["requests"]
    lines = []
    for j, job in enumerate(spec["jobs"]):
        c = model_config(job["model"], job.get("options", {}))
        for r in job["requests"]:
            items, ops = requests[r]
            if len(items) != len(ops):
                raise InputError(f"request {r}: {len(items)} items, {len(ops)} operations")
            s = score_request(train, c, items, ops)
            nz = [(v, x) for v, x in enumerate(s) if x != 0.0]
            lines.append(f"{j} {r} {len(nz)}" + "".join(f" {v} {x!r}" for v, x in nz))
    tmp = os.path.join(d, "scores.txt.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, os.path.join(d, "scores.txt"))


# ---------------------------------------------------------------------------------------------
# Self-check: tiny cases computed by hand
# ---------------------------------------------------------------------------------------------

# (seed, counter, counter_random(seed, 0, counter)) printed by a C++ program against core/random.hpp
# (tests/oracle/test_oracle_selfcheck.py holds the same values): h(n) is counter_random(seed, 0, n).
CPP_STREAM0 = [(0, 0, 6235967106033911276), (1, 1, 7851527857629710090), (42, 99, 11201775461173161600),
               (1234567, 123456789, 8452237659794972991),
               (18446744073709551615, 18446744073709551614, 14078187158060996612)]

# Three training rows (items, ops, target, next_op, order key), sessions 0, 1, 2 by recency:
#   A = 0 1 | 2      -> macro 0@1 1@2 2@3,   items {0, 1, 2}
#   B = 1 3 | 3      -> macro 1@1 3@2 (3 3 merge),  items {1, 3}
#   C = 4   | 5      -> items {4, 5}
# Given out of order to check the stable sort on the order key.
THREE = [([4], [0], 5, 0, 2.0), ([0, 1], [0, 0], 2, 0, 0.0), ([1, 3], [0, 0], 3, 0, 1.0)]
REQ = ([1, 2], [0, 0])  # c = 1@1 2@2, L = 2


def selfcheck():
    failures = []

    def expect(what, got, want, tol=1e-12):
        ok = len(got) == len(want) and all(abs(g - w) <= tol * max(1.0, abs(w)) for g, w in zip(got, want))
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)
            print(f"     got  {got}\n     want {want}")

    def run(rows, name, options, items, ops, V=6, O=1):
        return score_request(Training(rows, V, O), model_config(name, options), items, ops)

    # The generator.
    got = [sample_hash(seed, n) for seed, n, _ in CPP_STREAM0]
    expect("h(n) = counter_random(seed, 0, n) of core/random.hpp", got, [b for _, _, b in CPP_STREAM0], 0)
    expect("SplitMix64 reference outputs from state 1234567", [mix64(1234567 + GAMMA * i) for i in (1, 2, 3)],
           [6457827717110365317, 3203168211198807973, 9817491932198370423], 0)

    # SKNN: sim(A) = |{1,2}| / sqrt(2 * 3) = 2/sqrt(6), sim(B) = |{1}| / sqrt(2 * 2) = 1/2, C shares nothing.
    # s(0) = s(2) = 2/sqrt(6), s(1) = 2/sqrt(6) + 1/2, s(3) = 1/2.
    a, b = 2 / math.sqrt(6), 0.5
    expect("sknn, 3 sessions", run(THREE, "sknn", {}, *REQ), [a, a + b, a, b, 0, 0])
    # k = 1: only A.
    expect("sknn, k = 1", run(THREE, "sknn", {"k": 1}, *REQ), [a, a, a, 0, 0, 0])
    # sample_size = 1, recent: of the candidates A (0) and B (1), B is the more recent.
    expect("sknn, sample_size 1 recent", run(THREE, "sknn", {"sample_size": 1}, *REQ), [0, b, 0, b, 0, 0])
    # sample_size = 1, random: the candidate of the smaller h(n) under the seed.
    for seed in (0, 3, 5, 7):  # seeds 0 and 7 keep B, 3 and 5 keep A
        keep_b = sample_hash(seed, 1) < sample_hash(seed, 0)
        want = [0, b, 0, b, 0, 0] if keep_b else [a, a, a, 0, 0, 0]
        expect(f"sknn, sample_size 1 random seed {seed} (keeps {'B' if keep_b else 'A'})",
               run(THREE, "sknn", {"sample_size": 1, "sampling": "random", "seed": seed}, *REQ), want)
    # Ties: X = [0] -> 1, Y = [1] -> 0, Z = [0] -> 3 (order keys 0, 1, 2), request [0]:
    # sim = 1/sqrt(1 * 2) for all three. k = 1 keeps Z (the newest); k = 2 keeps Z and Y.
    tie = [([0], [0], 1, 0, 0.0), ([1], [0], 0, 0, 1.0), ([0], [0], 3, 0, 2.0)]
    r = 1 / math.sqrt(2)
    expect("sknn, tie to the more recent", run(tie, "sknn", {"k": 1}, [0], [0]), [r, 0, 0, r, 0, 0])
    expect("sknn, k = 2 of a three-way tie", run(tie, "sknn", {"k": 2}, [0], [0]), [2 * r, r, 0, r, 0, 0])
    # Equal order keys: recency by position in the split. X = [0] -> 1 and Y = [0] -> 2, both key 5:
    # Y is the more recent, so k = 1 keeps Y: s(0) = s(2) = 1/sqrt(2).
    same_key = [([0], [0], 1, 0, 5.0), ([0], [0], 2, 0, 5.0)]
    expect("sknn, equal order keys: later row is more recent", run(same_key, "sknn", {"k": 1}, [0], [0]), [r, 0, r, 0, 0, 0])

    # V-SKNN (div, div): u(1) = 1/2, u(2) = 2/2 = 1. sim(A) = (1/2 + 1) / |c| = 3/4, sim(B) = (1/2)/2 = 1/4.
    # q(A) = 2 - 2 + 1 = 1 -> m = 1; q(B) = 2 - 1 + 1 = 2 -> m = 1/2.
    # s(0) = 3/4, s(1) = 3/4 + 1/8, s(2) = 3/4, s(3) = 1/8.
    expect("v-sknn div/div", run(THREE, "v-sknn", {}, *REQ), [0.75, 0.875, 0.75, 0.125, 0, 0])
    expect("v-sknn remind = false", run(THREE, "v-sknn", {"remind": "false"}, *REQ), [0.75, 0, 0, 0.125, 0, 0])
    # IDF, lambda 1: S = 3, df(0) = df(2) = df(3) = 1, df(1) = 2.
    i1, i2 = 1 + math.log(3), 1 + math.log(1.5)
    expect("v-sknn lambda_idf = 1", run(THREE, "v-sknn", {"lambda_idf": 1}, *REQ),
           [0.75 * i1, 0.875 * i2, 0.75 * i1, 0.125 * i1, 0, 0])
    # same/quadratic: u = 1, 1 -> sim(A) = 1, sim(B) = 1/2; m(1) = 1, m(2) = 1/4.
    expect("v-sknn same/quadratic", run(THREE, "v-sknn", {"session_weighting": "same", "match_weighting": "quadratic"}, *REQ),
           [1, 1 + 0.125, 1, 0.125, 0, 0])
    # quadratic/linear: u(1) = 1/4, u(2) = 1: sim(A) = 5/8, sim(B) = 1/8; m(1) = 0.9, m(2) = 0.8.
    expect("v-sknn quadratic/linear", run(THREE, "v-sknn", {"session_weighting": "quadratic", "match_weighting": "linear"}, *REQ),
           [5 / 8 * 0.9, 5 / 8 * 0.9 + 0.1, 5 / 8 * 0.9, 0.1, 0, 0])
    # linear/log: u(1) = 0.9, u(2) = 1: sim(A) = 0.95, sim(B) = 0.45; m(1) = 1/log10(2.7), m(2) = 1/log10(3.7).
    m1, m2 = 1 / math.log10(2.7), 1 / math.log10(3.7)
    expect("v-sknn linear/log", run(THREE, "v-sknn", {"session_weighting": "linear", "match_weighting": "log"}, *REQ),
           [0.95 * m1, 0.95 * m1 + 0.45 * m2, 0.95 * m1, 0.45 * m2, 0, 0])
    # log/same: u(1) = 1/log10(2.7), u(2) = 1/log10(1.7): sim(A) = (u1 + u2)/2, sim(B) = u1/2.
    u1, u2 = 1 / math.log10(2.7), 1 / math.log10(1.7)
    sa, sb = (u1 + u2) / 2, u1 / 2
    expect("v-sknn log/same", run(THREE, "v-sknn", {"session_weighting": "log", "match_weighting": "same"}, *REQ),
           [sa, sa + sb, sa, sb, 0, 0])

    # STAN, lambda_spw = 1, lambda_snh = 1, lambda_inh = 1; order keys 0, 1, 2 -> span 2.
    # u(1) = e^-1, u(2) = 1, |u| = sqrt(1 + e^-2).
    # A: dot = e^-1 + 1, |A| = sqrt(3), recency exp(-(2 - 0)/2) = e^-1; p* = last_A(2) = 3:
    #    e(0) = e^-2, e(1) = e^-1, e(2) = 1.
    # B: dot = e^-1, |B| = sqrt(2), recency e^-1/2; p* = last_B(1) = 1: e(1) = 1, e(3) = e^-1.
    E = math.e
    nc = math.sqrt(1 + E ** -2)
    sa = (E ** -1 + 1) / (nc * math.sqrt(3)) * E ** -1
    sb = E ** -1 / (nc * math.sqrt(2)) * E ** -0.5
    expect("stan lambdas 1/1/1", run(THREE, "stan", {"lambda_spw": 1, "lambda_snh": 1, "lambda_inh": 1}, *REQ),
           [sa * E ** -2, sa * E ** -1 + sb, sa, sb * E ** -1, 0, 0])
    # VSTAN adds m = exp(-(q - 1)/lambda_ipw): q(A) = 1 -> 1, q(B) = 2 -> e^-1 (lambda_ipw 1); no IDF.
    expect("vstan, lambda_ipw 1, no idf", run(THREE, "vstan", {"lambda_spw": 1, "lambda_snh": 1, "lambda_inh": 1,
                                                               "lambda_ipw": 1, "lambda_idf": 0}, *REQ),
           [sa * E ** -2, sa * E ** -1 + sb * E ** -1, sa, sb * E ** -2, 0, 0])

    # VSTAN-OPS: rows P = 0 1 | 1 with ops 0 1 | 1, Q = 2 0 | 3 with ops 0 0 | 1 (2 operations).
    # uses: P: item 0 {0}, item 1 {1}; Q: items 2 {0}, 0 {0} -> uses = [3, 1]; hits: P's target 1
    # with op 1 -> hits = [0, 1]. r = (1 + 1)/(4 + 2) = 1/3, r_0 = 1/5, r_1 = 2/3:
    # w_0 = (3/5)^p, w_1 = 2^p; p = 1: 0.6, 2.
    # Sessions: P = 0@1 {0}, 1@2 {1, 1}: a = 0.6, 2; |P| = sqrt(4.36).
    #           Q = 2 {0}, 0 {0}, 3 {1}: a = 0.6, 0.6, 2; |Q| = sqrt(4.72).
    # Request [0] with op 1: u(0) = exp(0) * w_1 = 2, |u| = 2. sim(P) = 2 * 0.6 / (2 sqrt(4.36)),
    # sim(Q) = 1.2 / (2 sqrt(4.72)); q = 1, no decays, no IDF:
    # s(0) = 0.6 (sim P + sim Q), s(1) = 2 sim P, s(2) = 0.6 sim Q, s(3) = 2 sim Q.
    ops_rows = [([0, 1], [0, 1], 1, 1, 0.0), ([2, 0], [0, 0], 3, 1, 1.0)]
    plain = {"lambda_snh": 0, "lambda_inh": 0, "lambda_idf": 0}
    sp, sq = 0.6 / math.sqrt(4.36), 0.6 / math.sqrt(4.72)
    expect("vstan-ops op_power 1", run(ops_rows, "vstan-ops", plain, [0], [1], V=4, O=2),
           [0.6 * (sp + sq), 2 * sp, 0.6 * sq, 2 * sq])
    # op_power 0: every weight 1 -> VSTAN: sim(P) = 1/sqrt(2), sim(Q) = 1/sqrt(3).
    p0, q0 = 1 / math.sqrt(2), 1 / math.sqrt(3)
    want0 = [p0 + q0, p0, q0, q0]
    expect("vstan-ops op_power 0", run(ops_rows, "vstan-ops", dict(plain, op_power=0), [0], [1], V=4, O=2), want0)
    expect("vstan = vstan-ops op_power 0", run(ops_rows, "vstan", plain, [0], [1], V=4, O=2), want0)

    # Options a model does not take are errors.
    try:
        model_config("stan", {"lambda_idf": "1"})
        failures.append("stan accepted lambda_idf")
        print("FAIL stan rejects lambda_idf")
    except InputError:
        print("ok   stan rejects lambda_idf")

    print("selfcheck:", "PASS" if not failures else f"FAIL ({len(failures)})")
    return 0 if not failures else 1


def main(argv):
    if len(argv) == 2 and argv[1] == "--selfcheck":
        return selfcheck()
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        run_directory(argv[1])
    except (InputError, KeyError, ValueError, TypeError, IndexError) as e:
        print(f"knn_reference: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
