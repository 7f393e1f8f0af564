// The repeat/explore mixture of EMBSR-R (docs/REPEAT.md, "The mixture"), layers/repeat_mixture.hpp:
// the gate logit gamma_b = u . m_b + w[o_0(b)] against the formula and central differences of
// every coordinate of u, w and m (the backward adds into its outputs); the mixture's log P against
// a direct computation of g softmax_r / (1 - g) softmax_e, its loss, and central differences of
// every coordinate of s, r and gamma, on a batch with repeat and explore targets and on one with a
// session that holds the whole catalogue (no explore item); batch invariance; bad inputs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch_builder.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/repeat_mixture.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_repeat_mixture {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;
using IV = std::vector<index_t>;
using DV = std::vector<double>;

template <class M>
using Mat = embsr::Mat<double, M>;
template <class M>
using Vec = embsr::Vec<double, M>;
template <class M>
using Ints = Kokkos::View<int*, M>;
template <class M>
using Ids = Kokkos::View<std::int32_t*, M>;

constexpr int kItems = 12;      // the catalogue of the main batch
constexpr int kSmallItems = 5;  // the catalogue of the batch with a whole-catalogue session

std::size_t at(int r, int cols, int c) { return static_cast<std::size_t>(r * cols + c); }
std::size_t uz(int i) { return static_cast<std::size_t>(i); }

// Repeated items everywhere; a repeat target that is not the last item (session 0), explore
// targets (sessions 1 and 2), and item 9 that is an explore target of session 1 but a repeat
// target of session 3.
embsr::ExampleSet examples() {
  embsr::ExampleSet set;
  set.add(IV{2, 5, 2, 7, 5}, IV{0, 1, 0, 2, 1}, 5, 1, 0, 0.0);
  set.add(IV{1, 3, 1}, IV{2, 0, 1}, 9, 0, 1, 1.0);
  set.add(IV{0, 6, 8, 10, 11, 6}, IV{1, 1, 0, 2, 2, 0}, 4, 2, 2, 2.0);
  set.add(IV{4, 9, 4}, IV{0, 2, 0}, 9, 1, 3, 3.0);
  return set;
}

// Catalogue of kSmallItems: session 0 holds all of it (a repeat target, necessarily), session 1 an
// explore target, session 2 a single item repeated and targeted again (softmax_r = 1).
embsr::ExampleSet small_examples() {
  embsr::ExampleSet set;
  set.add(IV{0, 1, 2, 3, 4, 2}, IV{0, 1, 2, 0, 1, 2}, 3, 0, 0, 0.0);
  set.add(IV{1, 4}, IV{2, 2}, 0, 1, 1, 1.0);
  set.add(IV{3, 3}, IV{1, 0}, 3, 2, 2, 2.0);
  return set;
}

embsr::HostBatch build(const embsr::ExampleSet& set, const IV& ids) {
  embsr::BatchBuilder builder;
  return builder.build(set, ids);
}

// The items of session b, as a mask over the catalogue.
std::vector<char> session_mask(const embsr::HostBatch& host, int b, int V) {
  std::vector<char> in(uz(V), 0);
  for (int c = host.node_offsets[uz(b)]; c < host.node_offsets[uz(b) + 1]; ++c) in[uz(host.node_items[uz(c)])] = 1;
  return in;
}

// log P(v | b) for every (b, v), straight from the definition at the top of repeat_mixture.hpp:
// P = g softmax_{session}(r) on the session's items, (1 - g) softmax_{others}(s) on the others.
// (Inputs are O(1): no max subtraction needed.)
DV reference_log_p(const embsr::HostBatch& host, const DV& s, const DV& r, const DV& gamma, int V) {
  const int B = host.num_sessions();
  DV out(uz(B * V), 0.0);
  for (int b = 0; b < B; ++b) {
    const double g = 1.0 / (1.0 + std::exp(-gamma[uz(b)]));
    const int c0 = host.node_offsets[uz(b)], c1 = host.node_offsets[uz(b) + 1];
    const std::vector<char> in = session_mask(host, b, V);
    double sum_r = 0, sum_e = 0;
    for (int c = c0; c < c1; ++c) sum_r += std::exp(r[uz(c)]);
    for (int v = 0; v < V; ++v)
      if (!in[uz(v)]) sum_e += std::exp(s[at(b, V, v)]);
    for (int v = 0; v < V; ++v)
      if (!in[uz(v)]) out[at(b, V, v)] = std::log((1.0 - g) * std::exp(s[at(b, V, v)]) / sum_e);
    for (int c = c0; c < c1; ++c) out[at(b, V, host.node_items[uz(c)])] = std::log(g * std::exp(r[uz(c)]) / sum_r);
  }
  return out;
}

template <class M>
Ints<M> to_ints(const std::vector<int>& v) {
  Ints<M> out("ints", v.size());
  auto h = Kokkos::create_mirror_view(out);
  for (std::size_t i = 0; i < v.size(); ++i) h(i) = v[i];
  Kokkos::deep_copy(out, h);
  return out;
}

template <class V>
void set_values(const V& v, const DV& values) {
  auto f = embsr::test::flat(v);
  auto h = Kokkos::create_mirror_view(f);
  REQUIRE(h.extent(0) == values.size());
  for (std::size_t i = 0; i < values.size(); ++i) h(i) = values[i];
  Kokkos::deep_copy(f, h);
}

DV added(const DV& now, const DV& before) {
  DV out(now);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] -= before[i];
  return out;
}

// The inputs of repeat_mixture_forward on one batch, with the loss as a function of them. The
// forward rewrites the scores buffer in place: every evaluation starts from a fresh copy of s.
template <class Exec>
struct Mixture {
  using M = typename Exec::memory_space;
  embsr::HostBatch host;
  embsr::Batch<M> batch;
  int B, C, V;
  Mat<M> s, buf;
  Vec<M> r, gamma;
  Ids<M> targets;
  embsr::MatRef<double, M> scores;
  embsr::RepeatMixtureCache<double, M> cache;

  Mixture(const embsr::HostBatch& h, int items)
      : host(h),
        batch(embsr::to_memory_space<M>(h)),
        B(h.num_sessions()),
        C(h.sizes().num_nodes),
        V(items),
        s("s", uz(B), uz(V)),
        buf("scores", uz(B), uz(V)),
        r("r", uz(C)),
        gamma("gamma", uz(B)),
        targets(embsr::test::to_ids<M>(std::vector<std::int32_t>(h.targets.begin(), h.targets.end()))),
        scores(buf) {}

  double forward(const Ids<M>& t) {
    Kokkos::deep_copy(buf, s);
    const double l = embsr::repeat_mixture_forward(Exec(), batch, r, gamma, t, scores, cache);
    Kokkos::fence();
    return l;
  }
  double loss() { return forward(targets); }
};

// Every check of the mixture on one batch: log P against reference_log_p, the row sums of P (1, or
// g_b for a session without explore items), the loss, the same scores without targets, the cache,
// and central differences of every coordinate of s, r and gamma. Returns the log P of the batch.
template <class Exec>
DV check_mixture(Mixture<Exec>& mx) {
  using M = typename Exec::memory_space;
  const int B = mx.B, V = mx.V;
  const embsr::HostBatch& host = mx.host;

  // Evaluation (no targets): loss 0.
  const double none = mx.forward(Ids<M>());
  CHECK(none == 0.0);
  const DV eval = embsr::test::to_vector(mx.buf);

  const double l = mx.loss();
  const DV logp = embsr::test::to_vector(mx.buf);
  CHECK(logp == eval);  // the targets change nothing but the loss

  const DV want = reference_log_p(host, embsr::test::to_vector(mx.s), embsr::test::to_vector(mx.r),
                                  embsr::test::to_vector(mx.gamma), V);
  const DV gv = embsr::test::to_vector(mx.gamma);
  double expected = 0;
  for (int b = 0; b < B; ++b) {
    INFO("session " << b);
    const std::vector<char> in = session_mask(host, b, V);
    const bool has_explore = std::count(in.begin(), in.end(), 0) > 0;
    const double g = 1.0 / (1.0 + std::exp(-gv[uz(b)]));
    double sum = 0;
    for (int v = 0; v < V; ++v) {
      INFO("item " << v);
      REQUIRE(std::isfinite(logp[at(b, V, v)]));
      CHECK(logp[at(b, V, v)] == Approx(want[at(b, V, v)]).epsilon(1e-12).margin(1e-12));
      sum += std::exp(logp[at(b, V, v)]);
    }
    CHECK(sum == Approx(has_explore ? 1.0 : g).epsilon(1e-12).margin(1e-12));
    expected -= want[at(b, V, host.targets[uz(b)])];
  }
  REQUIRE(std::isfinite(l));
  CHECK(l == Approx(expected / B).epsilon(1e-12).margin(1e-14));

  // The cache: log g, log(1 - g), the rows' losses and the node holding each target.
  {
    const DV lg = embsr::test::to_vector(mx.cache.log_gate), l1g = embsr::test::to_vector(mx.cache.log_explore_gate),
             rl = embsr::test::to_vector(mx.cache.row_loss);
    const auto tn = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mx.cache.target_node);
    REQUIRE(lg.size() == uz(B));
    REQUIRE(tn.extent(0) == uz(B));
    for (int b = 0; b < B; ++b) {
      INFO("session " << b);
      const double g = 1.0 / (1.0 + std::exp(-gv[uz(b)]));
      CHECK(lg[uz(b)] == Approx(std::log(g)).epsilon(1e-12));
      CHECK(l1g[uz(b)] == Approx(std::log(1.0 - g)).epsilon(1e-12));
      CHECK(rl[uz(b)] == Approx(-want[at(b, V, host.targets[uz(b)])]).epsilon(1e-12).margin(1e-14));
      int node = -1;
      for (int c = host.node_offsets[uz(b)]; c < host.node_offsets[uz(b) + 1]; ++c)
        if (host.node_items[uz(c)] == host.targets[uz(b)]) node = c;
      CHECK(tn(b) == node);
    }
  }

  // Gradients of the loss. dr and dgamma are pre-filled with garbage: the backward overwrites them.
  Vec<M> dr("dr", uz(mx.C)), dgamma("dgamma", uz(B));
  embsr::test::fill_random(dr, 301);
  embsr::test::fill_random(dgamma, 302);
  mx.loss();
  embsr::repeat_mixture_backward(Exec(), mx.batch, mx.targets, mx.cache, mx.scores, dr, dgamma);
  Kokkos::fence();
  using T = embsr::test::GradTarget<M>;
  const std::vector<T> grads{{"s", embsr::test::flat(mx.s), embsr::test::to_vector(mx.buf)},
                             {"r", embsr::test::flat(mx.r), embsr::test::to_vector(dr)},
                             {"gamma", embsr::test::flat(mx.gamma), embsr::test::to_vector(dgamma)}};
  embsr::test::check_gradients<M>([&] { return mx.loss(); }, grads);
  return logp;
}

// Counts of repeat targets, explore targets and whole-catalogue sessions in a batch.
struct Coverage {
  int repeat = 0, explore = 0, full = 0;
};
Coverage coverage_of(const embsr::HostBatch& host, int V) {
  Coverage cov;
  for (int b = 0; b < host.num_sessions(); ++b) {
    const std::vector<char> in = session_mask(host, b, V);
    if (in[uz(host.targets[uz(b)])]) ++cov.repeat;
    else ++cov.explore;
    cov.full += std::count(in.begin(), in.end(), 0) == 0;
  }
  return cov;
}

}  // namespace

// ------------------------------------------------------------------------------------ gate

TEMPLATE_LIST_TEST_CASE("repeat mixture: the gate logit and its central-difference gradients", "[layers][repeat_mixture]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int B = 5, d = 3, ops = 4;                  // operation ids 0..2, [NEXT] = 3
  const std::vector<int> op0v{0, 3, 0, 2, 3};       // operation 1 unused: its gradient is 0
  const auto op0 = to_ints<M>(op0v);
  Mat<M> m("m", B, d), u("gate", d, 1), w("gate_op", ops, 1), dm("dm", B, d), du("dgate", d, 1), dw("dgate_op", ops, 1);
  Vec<M> gamma("gamma", B), coef("coef", B);
  embsr::test::fill_random(m, 401);
  embsr::test::fill_random(u, 402);
  embsr::test::fill_random(w, 403);
  embsr::test::fill_random(coef, 404);
  const embsr::RepeatGateParams<double, M> p{u, w}, g{du, dw};
  auto loss = [&] {
    embsr::repeat_gate_forward(Exec(), m, op0, p, gamma);
    Kokkos::fence();
    return embsr::test::dot(gamma, coef);
  };
  loss();

  const DV mv = embsr::test::to_vector(m), uv = embsr::test::to_vector(u), wv = embsr::test::to_vector(w),
           gv = embsr::test::to_vector(gamma);
  for (int b = 0; b < B; ++b) {
    double want = wv[uz(op0v[uz(b)])];
    for (int j = 0; j < d; ++j) want += uv[uz(j)] * mv[at(b, d, j)];
    CHECK(gv[uz(b)] == Approx(want).epsilon(1e-12).margin(1e-12));
  }

  // The backward adds into the gradients and dm: pre-fill them and compare the increments.
  embsr::test::fill_random(dm, 405);
  embsr::test::fill_random(du, 406);
  embsr::test::fill_random(dw, 407);
  const DV dm0 = embsr::test::to_vector(dm), du0 = embsr::test::to_vector(du), dw0 = embsr::test::to_vector(dw);
  embsr::repeat_gate_backward(Exec(), m, op0, p, coef, dm, g);
  Kokkos::fence();
  const DV dwa = added(embsr::test::to_vector(dw), dw0);
  CHECK(dwa[1] == 0.0);
  using T = embsr::test::GradTarget<M>;
  const std::vector<T> grads{{"gate", embsr::test::flat(u), added(embsr::test::to_vector(du), du0)},
                             {"gate_op", embsr::test::flat(w), dwa},
                             {"m", embsr::test::flat(m), added(embsr::test::to_vector(dm), dm0)}};
  embsr::test::check_gradients<M>(loss, grads);
}

// ------------------------------------------------------------------------------------ mixture

TEMPLATE_LIST_TEST_CASE("repeat mixture: log P against a direct computation and central-difference gradients",
                        "[layers][repeat_mixture]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  Mixture<Exec> mx(build(examples(), IV{2, 0, 3, 1}), kItems);
  REQUIRE(mx.B == 4);
  const Coverage cov = coverage_of(mx.host, kItems);
  CHECK(cov.repeat >= 2);
  CHECK(cov.explore >= 2);
  CHECK(cov.full == 0);
  embsr::test::fill_random(mx.s, 201);
  embsr::test::fill_random(mx.r, 202);
  embsr::test::fill_random(mx.gamma, 203);
  check_mixture(mx);

  // The same batch with a confident gate either way (P(repeat) near 0 and near 1, all rows).
  for (const double sign : {-1.0, 1.0}) {
    INFO("gamma sign " << sign);
    DV gv(uz(mx.B));
    for (int b = 0; b < mx.B; ++b) gv[uz(b)] = sign * (4.0 + b);
    set_values(mx.gamma, gv);
    check_mixture(mx);
  }
}

TEMPLATE_LIST_TEST_CASE("repeat mixture: a session that holds the whole catalogue (no explore item)",
                        "[layers][repeat_mixture]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  Mixture<Exec> mx(build(small_examples(), IV{0, 1, 2}), kSmallItems);
  const Coverage cov = coverage_of(mx.host, kSmallItems);
  REQUIRE(cov.full == 1);
  CHECK(cov.explore >= 1);
  embsr::test::fill_random(mx.s, 211);
  embsr::test::fill_random(mx.r, 212);
  embsr::test::fill_random(mx.gamma, 213);
  const DV logp = check_mixture(mx);  // finite log P everywhere, P of that row sums to g, FD of s, r, gamma
  for (double v : logp) CHECK(std::isfinite(v));
}

TEMPLATE_LIST_TEST_CASE("repeat mixture: large logits stay finite and normalised", "[layers][repeat_mixture]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  Mixture<Exec> mx(build(examples(), IV{0, 1, 2, 3}), kItems);
  embsr::test::fill_random(mx.s, 221, 400.0);  // values far past 709, where a plain exp overflows
  embsr::test::fill_random(mx.r, 222, 400.0);
  DV gv(uz(mx.B));
  for (int b = 0; b < mx.B; ++b) gv[uz(b)] = (b % 2 == 0 ? 1.0 : -1.0) * 800.0;
  set_values(mx.gamma, gv);
  const double l = mx.loss();
  CHECK(std::isfinite(l));
  const DV logp = embsr::test::to_vector(mx.buf);
  for (int b = 0; b < mx.B; ++b) {
    double sum = 0;
    for (int v = 0; v < mx.V; ++v) {
      REQUIRE(std::isfinite(logp[at(b, mx.V, v)]));
      CHECK(logp[at(b, mx.V, v)] <= 0.0);
      sum += std::exp(logp[at(b, mx.V, v)]);
    }
    CHECK(sum == Approx(1.0).epsilon(1e-12));
  }
  Vec<M> dr("dr", uz(mx.C)), dgamma("dgamma", uz(mx.B));
  embsr::repeat_mixture_backward(Exec(), mx.batch, mx.targets, mx.cache, mx.scores, dr, dgamma);
  Kokkos::fence();
  for (double v : embsr::test::to_vector(mx.buf)) CHECK(std::isfinite(v));
  for (double v : embsr::test::to_vector(dr)) CHECK(std::isfinite(v));
  for (double v : embsr::test::to_vector(dgamma)) CHECK(std::isfinite(v));
}

// ------------------------------------------------------------------------------------ batch invariance

TEMPLATE_LIST_TEST_CASE("repeat mixture: a session's scores do not depend on the rest of the batch",
                        "[layers][repeat_mixture]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  const IV order{2, 0, 3, 1};
  Mixture<Exec> full(build(examples(), order), kItems);
  embsr::test::fill_random(full.s, 231);
  embsr::test::fill_random(full.r, 232);
  embsr::test::fill_random(full.gamma, 233);
  const double l = full.loss();
  const DV logp = embsr::test::to_vector(full.buf), s = embsr::test::to_vector(full.s), r = embsr::test::to_vector(full.r),
           gamma = embsr::test::to_vector(full.gamma);
  const int V = kItems;
  double sum_losses = 0;
  for (int b = 0; b < full.B; ++b) {
    INFO("session " << b << " (example " << order[uz(b)] << ")");
    Mixture<Exec> one(build(examples(), IV{order[uz(b)]}), V);
    REQUIRE(one.B == 1);
    const int c0 = full.host.node_offsets[uz(b)], c1 = full.host.node_offsets[uz(b) + 1];
    REQUIRE(one.C == c1 - c0);
    for (int c = c0; c < c1; ++c) REQUIRE(one.host.node_items[uz(c - c0)] == full.host.node_items[uz(c)]);
    set_values(one.s, DV(s.begin() + static_cast<std::ptrdiff_t>(at(b, V, 0)), s.begin() + static_cast<std::ptrdiff_t>(at(b + 1, V, 0))));
    set_values(one.r, DV(r.begin() + c0, r.begin() + c1));
    set_values(one.gamma, DV{gamma[uz(b)]});
    const double lb = one.loss();
    const DV row = embsr::test::to_vector(one.buf);
    for (int v = 0; v < V; ++v) {
      INFO("item " << v);
      CHECK(row[uz(v)] == Approx(logp[at(b, V, v)]).epsilon(1e-12).margin(1e-12));
    }
    CHECK(lb == Approx(-logp[at(b, V, full.host.targets[uz(b)])]).epsilon(1e-12));
    sum_losses += lb;
  }
  CHECK(l == Approx(sum_losses / full.B).epsilon(1e-12));
}

// ------------------------------------------------------------------------------------ bad input

TEST_CASE("repeat mixture: bad shapes and a backward without a forward with targets are rejected",
          "[layers][repeat_mixture]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const auto host = build(examples(), IV{0, 1, 2, 3});
  const auto batch = embsr::to_memory_space<M>(host);
  const int B = host.num_sessions(), C = host.sizes().num_nodes, V = kItems;
  Mat<M> buf("scores", B, V), buf_bad("scores_bad", B + 1, V);
  const embsr::MatRef<double, M> scores = buf, scores_bad = buf_bad;
  Vec<M> r("r", C), r_short("r_short", C - 1), r_long("r_long", C + 1), gamma("gamma", B), gamma_short("gamma_short", B - 1),
      gamma_long("gamma_long", B + 1), dr("dr", C), dgamma("dgamma", B);
  const auto targets = embsr::test::to_ids<M>(std::vector<std::int32_t>(host.targets.begin(), host.targets.end()));
  const auto targets_bad = embsr::test::to_ids<M>(std::vector<std::int32_t>(uz(B + 1), 1));
  const Ids<M> none;
  embsr::RepeatMixtureCache<double, M> cache;

  // A backward before any forward.
  CHECK_THROWS_AS(embsr::repeat_mixture_backward(Exec(), batch, targets, cache, scores, dr, dgamma), embsr::InvalidArgument);

  CHECK_NOTHROW(embsr::repeat_mixture_forward(Exec(), batch, r, gamma, targets, scores, cache));
  CHECK_THROWS_AS(embsr::repeat_mixture_forward(Exec(), batch, r_short, gamma, targets, scores, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_mixture_forward(Exec(), batch, r_long, gamma, targets, scores, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_mixture_forward(Exec(), batch, r, gamma_short, targets, scores, cache),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_mixture_forward(Exec(), batch, r, gamma_long, targets, scores, cache),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_mixture_forward(Exec(), batch, r, gamma, targets_bad, scores, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_mixture_forward(Exec(), batch, r, gamma, targets, scores_bad, cache), embsr::InvalidArgument);

  // A backward after a forward without targets.
  embsr::repeat_mixture_forward(Exec(), batch, r, gamma, none, scores, cache);
  CHECK_THROWS_AS(embsr::repeat_mixture_backward(Exec(), batch, targets, cache, scores, dr, dgamma), embsr::InvalidArgument);

  // With targets: wrong dr, dgamma or targets are refused; one backward passes, a second one does not.
  embsr::repeat_mixture_forward(Exec(), batch, r, gamma, targets, scores, cache);
  CHECK_THROWS_AS(embsr::repeat_mixture_backward(Exec(), batch, targets, cache, scores, r_short, dgamma),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_mixture_backward(Exec(), batch, targets, cache, scores, dr, gamma_long),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_mixture_backward(Exec(), batch, targets_bad, cache, scores, dr, dgamma),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_mixture_backward(Exec(), batch, targets, cache, scores_bad, dr, dgamma),
                  embsr::InvalidArgument);
  CHECK_NOTHROW(embsr::repeat_mixture_backward(Exec(), batch, targets, cache, scores, dr, dgamma));
  CHECK_THROWS_AS(embsr::repeat_mixture_backward(Exec(), batch, targets, cache, scores, dr, dgamma), embsr::InvalidArgument);

  // The gate: u of the wrong length or width, w of two columns, op0, gamma, dm and gradients of the wrong shape.
  const int d = 3, ops = 4;
  Mat<M> m("m", B, d), u("u", d, 1), w("w", ops, 1), dm("dm", B, d), du("du", d, 1), dw("dw", ops, 1);
  Mat<M> u_bad("u_bad", d + 1, 1), u_wide("u_wide", d, 2), w_wide("w_wide", ops, 2), dw_bad("dw_bad", ops + 1, 1),
      dm_bad("dm_bad", B, d + 1);
  const auto op0 = to_ints<M>(std::vector<int>(uz(B), 0)), op0_bad = to_ints<M>(std::vector<int>(uz(B + 1), 0));
  const embsr::RepeatGateParams<double, M> p{u, w}, g{du, dw}, p_bad{u_bad, w}, g_bad_gate{u_bad, dw},
      g_bad_op{du, dw_bad};
  CHECK_NOTHROW(embsr::repeat_gate_forward(Exec(), m, op0, p, gamma));
  CHECK_NOTHROW(embsr::repeat_gate_backward(Exec(), m, op0, p, gamma, dm, g));
  for (const auto& bad : std::vector<embsr::RepeatGateParams<double, M>>{{u_bad, w}, {u_wide, w}, {u, w_wide}})
    CHECK_THROWS_AS(embsr::repeat_gate_forward(Exec(), m, op0, bad, gamma), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_gate_forward(Exec(), m, op0_bad, p, gamma), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_gate_forward(Exec(), m, op0, p, gamma_long), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_gate_backward(Exec(), m, op0, p_bad, gamma, dm, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_gate_backward(Exec(), m, op0, p, gamma, dm, g_bad_gate), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_gate_backward(Exec(), m, op0, p, gamma, dm, g_bad_op), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_gate_backward(Exec(), m, op0, p, gamma, dm_bad, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_gate_backward(Exec(), m, op0_bad, p, gamma, dm, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_gate_backward(Exec(), m, op0, p, gamma_short, dm, g), embsr::InvalidArgument);
}

}  // namespace test_repeat_mixture
