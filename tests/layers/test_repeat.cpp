// The repeat bonus of EMBSR-R (docs/REPEAT.md), layers/repeat.hpp: the forward against a host
// computation of r_c from the sessions' micro-behaviors, central-difference gradients of every
// coordinate of the five parameters and of h^f (the backward adds into its outputs), the scoring
// layer's bonus term (ScoringBonus, layers/scoring.hpp), and shape checks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch_builder.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/repeat.hpp>
#include <embsr/layers/scoring.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_repeat {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

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

constexpr int kDim = 3;
constexpr int kOps = 3;      // operation ids 0..2, [NEXT] = 3
constexpr int kBuckets = 4;  // R: distances 0..2 have their own bucket, 3 and beyond share bucket 3
constexpr int kItems = 10;

// Sessions with repeated items under different operations, a single micro-behavior, a node last
// touched 7 micro-behaviors back (bucket clamped at R - 1 = 3), one exactly at distance R - 1, and
// a session that is one item repeated with one operation.
embsr::ExampleSet examples() {
  embsr::ExampleSet set;
  set.add(IV{5, 5, 7, 5}, IV{0, 1, 0, 2}, 5, 1, 0, 0.0);
  set.add(IV{3}, IV{2}, 4, 0, 1, 1.0);
  set.add(IV{9, 1, 2, 1, 2, 1, 2, 1}, IV{1, 0, 0, 1, 1, 2, 2, 0}, 2, 2, 2, 2.0);
  set.add(IV{4, 6, 8, 6, 4, 0}, IV{0, 2, 1, 1, 2, 0}, 8, 0, 3, 3.0);
  set.add(IV{7, 7, 7, 7, 7}, IV{1, 1, 1, 1, 1}, 3, 1, 4, 4.0);
  return set;
}

// The batch of every example, in a shuffled order.
embsr::HostBatch host_batch() {
  embsr::BatchBuilder builder;
  return builder.build(examples(), IV{2, 0, 4, 1, 3});
}

// o_0 per session: the given next operation for some sessions, [NEXT] (= kOps) for the others.
std::vector<int> op0_of(const embsr::HostBatch& host) {
  std::vector<int> op0;
  for (index_t b = 0; b < host.num_sessions(); ++b)
    op0.push_back(b % 2 == 0 ? static_cast<int>(host.next_ops[static_cast<std::size_t>(b)]) : kOps);
  return op0;
}

template <class M>
Ints<M> to_ints(const std::vector<int>& v) {
  Ints<M> out("ints", v.size());
  auto h = Kokkos::create_mirror_view(out);
  for (std::size_t i = 0; i < v.size(); ++i) h(i) = v[i];
  Kokkos::deep_copy(out, h);
  return out;
}

// The features of one node, recomputed from the session's items (not from micro_alias).
struct Features {
  std::vector<int> counts;  // n_{c,o}
  int distance = 0;         // D_c
};

Features features_of(const embsr::HostBatch& host, int c) {
  const auto b = static_cast<std::size_t>(host.node_session[static_cast<std::size_t>(c)]);
  const index_t item = host.node_items[static_cast<std::size_t>(c)];
  const int begin = host.micro_offsets[b], end = host.micro_offsets[b + 1];
  Features f;
  f.counts.assign(kOps, 0);
  int last = -1;
  for (int i = begin; i < end; ++i)
    if (host.micro_items[static_cast<std::size_t>(i)] == item) {
      ++f.counts[static_cast<std::size_t>(host.micro_ops[static_cast<std::size_t>(i)])];
      last = i - begin;
    }
  REQUIRE(last >= 0);
  f.distance = (end - begin) - 1 - last;
  return f;
}

std::size_t at(int r, int cols, int c) { return static_cast<std::size_t>(r * cols + c); }

}  // namespace

// ------------------------------------------------------------------------------------ repeat

TEMPLATE_LIST_TEST_CASE("repeat: forward against docs/REPEAT.md and central-difference gradients", "[layers][repeat]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const embsr::HostBatch host = host_batch();
  const auto batch = embsr::to_memory_space<M>(host);
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes;
  REQUIRE(B == 5);
  const std::vector<int> op0v = op0_of(host);
  const auto op0 = to_ints<M>(op0v);

  Mat<M> a("op_count", kOps, 1), N("next_op", kOps + 1, kOps), rho("recency", kBuckets, 1), q("state", kDim, 1),
      gamma("bias", 1, 1), hf("hf", C, kDim);
  Mat<M> da("dop_count", kOps, 1), dN("dnext_op", kOps + 1, kOps), drho("drecency", kBuckets, 1), dq("dstate", kDim, 1),
      dgamma("dbias", 1, 1), dhf("dhf", C, kDim);
  Vec<M> r("r", C), w("w", C);
  embsr::test::fill_random(a, 91);
  embsr::test::fill_random(N, 92);
  embsr::test::fill_random(rho, 93);
  embsr::test::fill_random(q, 94);
  embsr::test::fill_random(gamma, 95);
  embsr::test::fill_random(hf, 96);
  embsr::test::fill_random(w, 97);
  const embsr::RepeatParams<double, M> p{a, N, rho, q, gamma}, g{da, dN, drho, dq, dgamma};
  embsr::RepeatCache<double, M> cache;
  auto loss = [&] {
    embsr::repeat_forward(Exec(), batch, op0, hf, p, r, cache);
    Kokkos::fence();
    return embsr::test::dot(r, w);
  };
  loss();

  // The forward, node by node, from the formula.
  const DV av = embsr::test::to_vector(a), Nv = embsr::test::to_vector(N), rhov = embsr::test::to_vector(rho),
           qv = embsr::test::to_vector(q), gv = embsr::test::to_vector(gamma), hv = embsr::test::to_vector(hf),
           rv = embsr::test::to_vector(r);
  const auto bucket = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), cache.bucket);
  const auto node_op0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), cache.node_op0);
  REQUIRE(bucket.extent(0) == static_cast<std::size_t>(C));
  REQUIRE(node_op0.extent(0) == static_cast<std::size_t>(C));
  int clamped = 0, next_nodes = 0, mixed_ops = 0, absent_ops = 0;
  for (int c = 0; c < C; ++c) {
    INFO("node " << c);
    const Features f = features_of(host, c);
    const int b = host.node_session[static_cast<std::size_t>(c)];
    const int o0 = op0v[static_cast<std::size_t>(b)];
    const int k = std::min(f.distance, kBuckets - 1);
    clamped += f.distance > kBuckets - 1;
    next_nodes += o0 == kOps;
    int used = 0;
    double want = gv[0] + rhov[static_cast<std::size_t>(k)];
    for (int o = 0; o < kOps; ++o) {
      const int n = f.counts[static_cast<std::size_t>(o)];
      want += av[static_cast<std::size_t>(o)] * std::log(1.0 + n);
      if (n > 0) {
        want += Nv[at(o0, kOps, o)];
        ++used;
      }
    }
    mixed_ops += used > 1;
    absent_ops += used < kOps;
    for (int j = 0; j < kDim; ++j) want += qv[static_cast<std::size_t>(j)] * hv[at(c, kDim, j)];
    CHECK(rv[static_cast<std::size_t>(c)] == Approx(want).epsilon(1e-12).margin(1e-12));
    CHECK(bucket(c) == k);
    CHECK(node_op0(c) == o0);
  }
  // The batch covers the cases the test is about.
  CHECK(clamped >= 1);
  CHECK(next_nodes >= 1);
  CHECK(next_nodes < C);
  CHECK(mixed_ops >= 1);
  CHECK(absent_ops >= 1);

  // Gradients of sum_c w_c r_c. The backward adds: pre-fill every output and compare the increments.
  embsr::test::fill_random(da, 101);
  embsr::test::fill_random(dN, 102);
  embsr::test::fill_random(drho, 103);
  embsr::test::fill_random(dq, 104);
  embsr::test::fill_random(dgamma, 105);
  embsr::test::fill_random(dhf, 106);
  const DV da0 = embsr::test::to_vector(da), dN0 = embsr::test::to_vector(dN), drho0 = embsr::test::to_vector(drho),
           dq0 = embsr::test::to_vector(dq), dgamma0 = embsr::test::to_vector(dgamma), dhf0 = embsr::test::to_vector(dhf);
  embsr::repeat_backward(Exec(), hf, p, cache, w, dhf, g);
  Kokkos::fence();
  auto added = [](const DV& now, const DV& before) {
    DV out(now);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] -= before[i];
    return out;
  };
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"op_count", embsr::test::flat(a), added(embsr::test::to_vector(da), da0)},
                         {"next_op", embsr::test::flat(N), added(embsr::test::to_vector(dN), dN0)},
                         {"recency", embsr::test::flat(rho), added(embsr::test::to_vector(drho), drho0)},
                         {"state", embsr::test::flat(q), added(embsr::test::to_vector(dq), dq0)},
                         {"bias", embsr::test::flat(gamma), added(embsr::test::to_vector(dgamma), dgamma0)},
                         {"hf", embsr::test::flat(hf), added(embsr::test::to_vector(dhf), dhf0)}};
  embsr::test::check_gradients<M>(loss, targets);

  // A second forward reuses the cache and gives the same values (the FD loop left r at a perturbed hf).
  loss();
  const DV before = embsr::test::to_vector(r);
  loss();
  CHECK(embsr::test::to_vector(r) == before);
}

// ------------------------------------------------------------------------------------ scoring bonus

TEMPLATE_LIST_TEST_CASE("repeat: the scoring bonus, its loss and central-difference gradients", "[layers][repeat]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const embsr::HostBatch host = host_batch();
  const auto batch = embsr::to_memory_space<M>(host);
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes, V = kItems, d = kDim;
  const double w_k = 3.0;  // moderate logits: every probability, hence every gradient, well above FD noise
  Mat<M> m("m", B, d), E("E", V, d), dm("dm", B, d), dE("dE", V, d);
  Vec<M> values("bonus", C), dvalues("dbonus", C);
  embsr::test::fill_random(m, 111);
  embsr::test::fill_random(E, 112, 0.3);
  embsr::test::fill_random(values, 113, 0.5);
  const auto targets = embsr::test::to_ids<M>(std::vector<std::int32_t>(host.targets.begin(), host.targets.end()));
  const embsr::ScoringBonus<double, M> bonus{values, batch.node_items, batch.node_session, dvalues};
  embsr::ScoringCache<double, M> cache;

  // Scores: those without the bonus, plus the bonus of the node at (session, item).
  embsr::scoring_forward(Exec(), m, E, Kokkos::View<std::int32_t*, M>(), w_k, cache);
  const DV plain = embsr::test::to_vector(cache.scores);
  embsr::scoring_forward(Exec(), m, E, Kokkos::View<std::int32_t*, M>(), w_k, cache, false, bonus);
  const DV s = embsr::test::to_vector(cache.scores);
  DV want(plain);
  const DV vv = embsr::test::to_vector(values);
  for (int c = 0; c < C; ++c)
    want[at(host.node_session[static_cast<std::size_t>(c)], V, host.node_items[static_cast<std::size_t>(c)])] +=
        vv[static_cast<std::size_t>(c)];
  REQUIRE(s.size() == want.size());
  for (std::size_t i = 0; i < s.size(); ++i) CHECK(s[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));

  // The loss over the bonus-carrying scores.
  auto loss = [&] { return embsr::scoring_forward(Exec(), m, E, targets, w_k, cache, false, bonus); };
  const double l = loss();
  double expected = 0;
  DV g(s.size());  // dL/dscores = (softmax - onehot) / B
  int repeat_targets = 0;
  for (int b = 0; b < B; ++b) {
    double mx = -std::numeric_limits<double>::infinity();
    for (int v = 0; v < V; ++v) mx = std::max(mx, s[at(b, V, v)]);
    double sum = 0;
    for (int v = 0; v < V; ++v) sum += std::exp(s[at(b, V, v)] - mx);
    const int t = host.targets[static_cast<std::size_t>(b)];
    expected += mx + std::log(sum) - s[at(b, V, t)];
    for (int v = 0; v < V; ++v) g[at(b, V, v)] = (std::exp(s[at(b, V, v)] - mx) / sum - (v == t ? 1.0 : 0.0)) / B;
    for (int c = host.node_offsets[static_cast<std::size_t>(b)]; c < host.node_offsets[static_cast<std::size_t>(b) + 1]; ++c)
      repeat_targets += host.node_items[static_cast<std::size_t>(c)] == t;
  }
  CHECK(repeat_targets >= 1);  // a target's own bonus enters through the one-hot term too
  CHECK(l == Approx(expected / B).epsilon(1e-12));

  // The backward overwrites bonus.gradients (pre-filled with garbage) and adds into dm, dE.
  embsr::test::fill_random(dvalues, 114);
  embsr::test::fill_random(dm, 115);
  embsr::test::fill_random(dE, 116);
  const DV dm0 = embsr::test::to_vector(dm), dE0 = embsr::test::to_vector(dE);
  embsr::scoring_backward(Exec(), m, E, targets, w_k, cache, dm, dE, bonus);
  Kokkos::fence();
  const DV dv = embsr::test::to_vector(dvalues);
  for (int c = 0; c < C; ++c)
    CHECK(dv[static_cast<std::size_t>(c)] ==
          Approx(g[at(host.node_session[static_cast<std::size_t>(c)], V, host.node_items[static_cast<std::size_t>(c)])])
              .epsilon(1e-12)
              .margin(1e-14));
  auto added = [](const DV& now, const DV& before) {
    DV out(now);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] -= before[i];
    return out;
  };
  using T = embsr::test::GradTarget<M>;
  std::vector<T> grads{{"bonus", embsr::test::flat(values), dv},
                       {"m", embsr::test::flat(m), added(embsr::test::to_vector(dm), dm0)},
                       {"E", embsr::test::flat(E), added(embsr::test::to_vector(dE), dE0)}};
  embsr::test::check_gradients<M>(loss, grads);

  // Without a gradients View the backward still runs (inference-style bonus, training of m and E).
  loss();
  const embsr::ScoringBonus<double, M> no_grad{values, batch.node_items, batch.node_session, Vec<M>()};
  CHECK_NOTHROW(embsr::scoring_backward(Exec(), m, E, targets, w_k, cache, dm, dE, no_grad));
}

// ------------------------------------------------------------------------------------ shapes

TEST_CASE("repeat: shape mismatches are rejected", "[layers][repeat]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const auto batch = embsr::to_memory_space<M>(host_batch());
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes;
  Mat<M> a("a", kOps, 1), N("N", kOps + 1, kOps), rho("rho", kBuckets, 1), q("q", kDim, 1), gamma("gamma", 1, 1);
  Mat<M> hf("hf", C, kDim), dhf("dhf", C, kDim), hf_bad("hf_bad", C + 1, kDim), hf_narrow("hf_narrow", C, kDim - 1);
  Vec<M> r("r", C), r_bad("r_bad", C - 1);
  Ints<M> op0("op0", B), op0_bad("op0_bad", B + 1);
  Mat<M> a_bad("a_bad", kOps, 2), N_bad("N_bad", kOps, kOps), q_bad("q_bad", kDim + 1, 1), gamma_bad("gamma_bad", 1, 2),
      rho_bad("rho_bad", kBuckets, 2);
  const embsr::RepeatParams<double, M> p{a, N, rho, q, gamma};
  embsr::RepeatCache<double, M> cache;
  CHECK_NOTHROW(embsr::repeat_forward(Exec(), batch, op0, hf, p, r, cache));
  const std::vector<embsr::RepeatParams<double, M>> bad{{a_bad, N, rho, q, gamma}, {a, N_bad, rho, q, gamma},
                                                        {a, N, rho_bad, q, gamma}, {a, N, rho, q_bad, gamma},
                                                        {a, N, rho, q, gamma_bad}};
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("parameter " << i);
    CHECK_THROWS_AS(embsr::repeat_forward(Exec(), batch, op0, hf, bad[i], r, cache), embsr::InvalidArgument);
  }
  CHECK_THROWS_AS(embsr::repeat_forward(Exec(), batch, op0, hf_bad, p, r, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_forward(Exec(), batch, op0, hf_narrow, p, r, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_forward(Exec(), batch, op0_bad, hf, p, r, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_forward(Exec(), batch, op0, hf, p, r_bad, cache), embsr::InvalidArgument);

  // The backward checks the parameters, the gradients, hf, dhf and dr.
  embsr::repeat_forward(Exec(), batch, op0, hf, p, r, cache);
  Mat<M> da("da", kOps, 1), dN("dN", kOps + 1, kOps), drho("drho", kBuckets, 1), dq("dq", kDim, 1), dgamma("dgamma", 1, 1);
  const embsr::RepeatParams<double, M> g{da, dN, drho, dq, dgamma};
  CHECK_NOTHROW(embsr::repeat_backward(Exec(), hf, p, cache, r, dhf, g));
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("parameter " << i);
    CHECK_THROWS_AS(embsr::repeat_backward(Exec(), hf, bad[i], cache, r, dhf, g), embsr::InvalidArgument);
    CHECK_THROWS_AS(embsr::repeat_backward(Exec(), hf, p, cache, r, dhf, bad[i]), embsr::InvalidArgument);
  }
  CHECK_THROWS_AS(embsr::repeat_backward(Exec(), hf_bad, p, cache, r, dhf, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_backward(Exec(), hf, p, cache, r, hf_bad, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::repeat_backward(Exec(), hf, p, cache, r_bad, dhf, g), embsr::InvalidArgument);

  // A bonus needs an item and a session per value, in the forward and in the backward.
  Mat<M> m("m", B, kDim), E("E", kItems, kDim), dm("dm", B, kDim), dE("dE", kItems, kDim);
  Vec<M> values("values", C), short_values("short", C - 1), dvalues("dvalues", C);
  embsr::ScoringCache<double, M> sc;
  const Kokkos::View<std::int32_t*, M> none;
  const embsr::ScoringBonus<double, M> bad_fwd{short_values, batch.node_items, batch.node_session, dvalues};
  CHECK_THROWS_AS(embsr::scoring_forward(Exec(), m, E, none, 12.0, sc, false, bad_fwd), embsr::InvalidArgument);
  auto targets = embsr::test::to_ids<M>(std::vector<std::int32_t>(static_cast<std::size_t>(B), 1));
  const embsr::ScoringBonus<double, M> ok{values, batch.node_items, batch.node_session, dvalues};
  embsr::scoring_forward(Exec(), m, E, targets, 12.0, sc, false, ok);
  const embsr::ScoringBonus<double, M> bad_bwd{values, batch.node_items, batch.node_session, short_values};
  CHECK_THROWS_AS(embsr::scoring_backward(Exec(), m, E, targets, 12.0, sc, dm, dE, bad_bwd), embsr::InvalidArgument);
}

}  // namespace test_repeat
