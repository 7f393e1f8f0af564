// The soft-attention readout of SR-GNN (Wu et al., AAAI 2019, Sec. 3.4, eq. 6-7),
// layers/soft_attention_readout.hpp: the forward against a host computation of the equations,
// central-difference gradients of every coordinate of H and of the seven parameters (the backward
// adds into its outputs), batch invariance, a session of length 1, repeated items, an empty batch,
// and shape checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch_builder.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/soft_attention_readout.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_soft_attention_readout {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;
using IV = std::vector<index_t>;
using DV = std::vector<double>;

template <class M>
using Mat = embsr::Mat<double, M>;
template <class M>
using Vec = embsr::Vec<double, M>;

constexpr int kDim = 4;

// Sessions (micro items; consecutive repeats merge into one macro item):
//   0: 5 5 7 5 3       macro 5 7 5 3: item 5 at two positions
//   1: 3               a session of length 1
//   2: 9 1 2 1 2 1     macro positions share nodes 1 and 2; the last item (1) also occurs earlier
//   3: 4 6 8           all distinct
//   4: 7 7 7           one macro item (length 1 after merging)
//   5: 2 8 2 8 8 2     the last item (2) at three positions
embsr::ExampleSet examples() {
  embsr::ExampleSet set;
  set.add(IV{5, 5, 7, 5, 3}, IV{0, 1, 0, 2, 1}, 5, 1, 0, 0.0);
  set.add(IV{3}, IV{2}, 4, 0, 1, 1.0);
  set.add(IV{9, 1, 2, 1, 2, 1}, IV{1, 0, 0, 1, 1, 2}, 2, 2, 2, 2.0);
  set.add(IV{4, 6, 8}, IV{0, 2, 1}, 8, 0, 3, 3.0);
  set.add(IV{7, 7, 7}, IV{1, 1, 1}, 3, 1, 4, 4.0);
  set.add(IV{2, 8, 2, 8, 8, 2}, IV{0, 1, 2, 0, 1, 2}, 6, 2, 5, 5.0);
  return set;
}
constexpr int kSessions = 6;

embsr::HostBatch host_batch(const IV& ids) {
  embsr::BatchBuilder builder;
  return builder.build(examples(), ids);
}

std::size_t at(int r, int cols, int c) { return static_cast<std::size_t>(r * cols + c); }

// The parameters and their gradient buffers, in one memory space.
template <class M>
struct Params {
  Mat<M> W1{"W1", kDim, kDim}, W2{"W2", kDim, kDim}, W3{"W3", kDim, 2 * kDim};
  Vec<M> b1{"b1", kDim}, b2{"b2", kDim}, q{"q", kDim}, b3{"b3", kDim};

  explicit Params(unsigned seed) {
    embsr::test::fill_random(W1, seed + 1, 0.5);
    embsr::test::fill_random(b1, seed + 2, 0.5);
    embsr::test::fill_random(W2, seed + 3, 0.5);
    embsr::test::fill_random(b2, seed + 4, 0.5);
    embsr::test::fill_random(q, seed + 5);
    embsr::test::fill_random(W3, seed + 6, 0.5);
    embsr::test::fill_random(b3, seed + 7);
  }
  embsr::SoftAttentionReadoutParams<double, M> refs() const { return {W1, b1, W2, b2, q, W3, b3}; }
};

// Host copies of the parameters (row-major, flat).
struct HostParams {
  DV W1, b1, W2, b2, q, W3, b3;
  template <class M>
  explicit HostParams(const Params<M>& p)
      : W1(embsr::test::to_vector(p.W1)), b1(embsr::test::to_vector(p.b1)), W2(embsr::test::to_vector(p.W2)),
        b2(embsr::test::to_vector(p.b2)), q(embsr::test::to_vector(p.q)), W3(embsr::test::to_vector(p.W3)),
        b3(embsr::test::to_vector(p.b3)) {}
};

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// eq. 6-7 on the host, session by session, from the batch's macro_offsets / macro_alias: s_h [B x d].
DV reference(const embsr::HostBatch& host, const DV& H, const HostParams& p) {
  const int B = host.num_sessions(), d = kDim;
  DV out(static_cast<std::size_t>(B * d));
  for (int b = 0; b < B; ++b) {
    const int begin = host.macro_offsets[static_cast<std::size_t>(b)], end = host.macro_offsets[static_cast<std::size_t>(b) + 1];
    REQUIRE(end > begin);
    auto vec = [&](int i) {  // v_i
      DV v(static_cast<std::size_t>(d));
      const int c = host.macro_alias[static_cast<std::size_t>(i)];
      for (int j = 0; j < d; ++j) v[static_cast<std::size_t>(j)] = H[at(c, d, j)];
      return v;
    };
    const DV vn = vec(end - 1);
    DV sg(static_cast<std::size_t>(d), 0.0);
    for (int i = begin; i < end; ++i) {
      const DV vi = vec(i);
      double alpha = 0;
      for (int o = 0; o < d; ++o) {
        double pre = p.b1[static_cast<std::size_t>(o)] + p.b2[static_cast<std::size_t>(o)];
        for (int k = 0; k < d; ++k)
          pre += p.W1[at(o, d, k)] * vn[static_cast<std::size_t>(k)] + p.W2[at(o, d, k)] * vi[static_cast<std::size_t>(k)];
        alpha += p.q[static_cast<std::size_t>(o)] * sigmoid(pre);
      }
      for (int j = 0; j < d; ++j) sg[static_cast<std::size_t>(j)] += alpha * vi[static_cast<std::size_t>(j)];
    }
    for (int o = 0; o < d; ++o) {
      double s = p.b3[static_cast<std::size_t>(o)];
      for (int k = 0; k < d; ++k)
        s += p.W3[at(o, 2 * d, k)] * vn[static_cast<std::size_t>(k)] + p.W3[at(o, 2 * d, d + k)] * sg[static_cast<std::size_t>(k)];
      out[at(b, d, o)] = s;
    }
  }
  return out;
}

DV added(const DV& now, const DV& before) {
  DV out(now);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] -= before[i];
  return out;
}

// Forward + backward of one batch with loss sum(s_h * R): s_h, dH and the seven parameter gradients
// (each buffer pre-filled with random values; the returned values are the increments).
struct Run {
  DV s_h, dH, dW1, db1, dW2, db2, dq, dW3, db3;
};

template <class Exec>
Run forward_backward(const embsr::HostBatch& host, const DV& H_host, const DV& R_host, const Params<typename Exec::memory_space>& p) {
  using M = typename Exec::memory_space;
  const auto batch = embsr::to_memory_space<M>(host);
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes;
  Mat<M> H("H", C, kDim), s_h("s_h", B, kDim), R("R", B, kDim), dH("dH", C, kDim);
  auto copy_in = [](const auto& v, const DV& values) {
    auto h = Kokkos::create_mirror_view(embsr::test::flat(v));
    REQUIRE(h.extent(0) == values.size());
    for (std::size_t i = 0; i < values.size(); ++i) h(i) = values[i];
    Kokkos::deep_copy(embsr::test::flat(v), h);
  };
  copy_in(H, H_host);
  copy_in(R, R_host);
  Params<M> g(900);
  embsr::test::fill_random(dH, 901);
  const DV dH0 = embsr::test::to_vector(dH);
  const HostParams g0(g);
  embsr::SoftAttentionReadoutCache<double, M> cache;
  embsr::soft_attention_readout_forward(Exec(), batch, H, p.refs(), s_h, cache);
  embsr::soft_attention_readout_backward(Exec(), batch, H, p.refs(), cache, R, dH, g.refs());
  Kokkos::fence();
  const HostParams g1(g);
  return {embsr::test::to_vector(s_h), added(embsr::test::to_vector(dH), dH0), added(g1.W1, g0.W1),
          added(g1.b1, g0.b1),         added(g1.W2, g0.W2),                     added(g1.b2, g0.b2),
          added(g1.q, g0.q),           added(g1.W3, g0.W3),                     added(g1.b3, g0.b3)};
}

DV random_values(std::size_t n, unsigned seed) {
  Vec<Kokkos::HostSpace> v("v", n);
  embsr::test::fill_random(v, seed);
  return embsr::test::to_vector(v);
}

}  // namespace

// ------------------------------------------------------------------------------------ forward + gradients

TEMPLATE_LIST_TEST_CASE("soft_attention_readout: forward against SR-GNN eq. 6-7 and central-difference gradients",
                        "[layers][soft_attention_readout]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const embsr::HostBatch host = host_batch(IV{2, 0, 5, 1, 4, 3});
  const auto batch = embsr::to_memory_space<M>(host);
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes;
  REQUIRE(B == kSessions);

  // The batch covers the cases the test is about: a session of one position, a node at several
  // positions of its session, and a last item that also occurs earlier in its session.
  int single = 0, repeated = 0, last_repeated = 0;
  for (int b = 0; b < B; ++b) {
    const int begin = host.macro_offsets[static_cast<std::size_t>(b)], end = host.macro_offsets[static_cast<std::size_t>(b) + 1];
    single += end - begin == 1;
    repeated += (end - begin) > (host.node_offsets[static_cast<std::size_t>(b) + 1] - host.node_offsets[static_cast<std::size_t>(b)]);
    for (int i = begin; i + 1 < end; ++i)
      last_repeated += host.macro_alias[static_cast<std::size_t>(i)] == host.macro_alias[static_cast<std::size_t>(end) - 1];
  }
  CHECK(single >= 2);
  CHECK(repeated >= 3);
  CHECK(last_repeated >= 2);

  Params<M> p(10);
  Params<M> g(20);  // gradient buffers, pre-filled: the backward adds
  Mat<M> H("H", C, kDim), s_h("s_h", B, kDim), R("R", B, kDim), dH("dH", C, kDim);
  embsr::test::fill_random(H, 30);
  embsr::test::fill_random(R, 31);
  embsr::test::fill_random(dH, 32);
  embsr::SoftAttentionReadoutCache<double, M> cache;
  auto loss = [&] {
    embsr::soft_attention_readout_forward(Exec(), batch, H, p.refs(), s_h, cache);
    Kokkos::fence();
    return embsr::test::dot(s_h, R);
  };
  loss();

  const DV want = reference(host, embsr::test::to_vector(H), HostParams(p));
  const DV got = embsr::test::to_vector(s_h);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("s_h[" << i << "]");
    CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));
  }

  const HostParams g0(g);
  const DV dH0 = embsr::test::to_vector(dH);
  embsr::soft_attention_readout_backward(Exec(), batch, H, p.refs(), cache, R, dH, g.refs());
  Kokkos::fence();
  const HostParams g1(g);
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"H", embsr::test::flat(H), added(embsr::test::to_vector(dH), dH0)},
                         {"W1", embsr::test::flat(p.W1), added(g1.W1, g0.W1)},
                         {"b1", embsr::test::flat(p.b1), added(g1.b1, g0.b1)},
                         {"W2", embsr::test::flat(p.W2), added(g1.W2, g0.W2)},
                         {"b2", embsr::test::flat(p.b2), added(g1.b2, g0.b2)},
                         {"q", embsr::test::flat(p.q), added(g1.q, g0.q)},
                         {"W3", embsr::test::flat(p.W3), added(g1.W3, g0.W3)},
                         {"b3", embsr::test::flat(p.b3), added(g1.b3, g0.b3)}};
  embsr::test::check_gradients<M>(loss, targets);

  // A second forward reuses the cache and gives the same values; so does a second backward.
  loss();
  const DV before = embsr::test::to_vector(s_h);
  loss();
  CHECK(embsr::test::to_vector(s_h) == before);
  Kokkos::deep_copy(dH, 0.0);
  embsr::soft_attention_readout_backward(Exec(), batch, H, p.refs(), cache, R, dH, g.refs());
  Kokkos::fence();
  const DV dH1 = embsr::test::to_vector(dH);
  Kokkos::deep_copy(dH, 0.0);
  embsr::soft_attention_readout_backward(Exec(), batch, H, p.refs(), cache, R, dH, g.refs());
  Kokkos::fence();
  CHECK(embsr::test::to_vector(dH) == dH1);
}

// ------------------------------------------------------------------------------------ batch invariance

TEMPLATE_LIST_TEST_CASE("soft_attention_readout: a session's output and gradients do not depend on the rest of the batch",
                        "[layers][soft_attention_readout]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const IV order{3, 5, 0, 4, 1, 2};
  const embsr::HostBatch full = host_batch(order);
  const int C = full.node_offsets.back();
  const DV H = random_values(static_cast<std::size_t>(C * kDim), 40);
  const DV R = random_values(static_cast<std::size_t>(kSessions * kDim), 41);
  const Params<M> p(50);
  const Run all = forward_backward<Exec>(full, H, R, p);

  Run sum;  // parameter gradients summed over the single-session batches
  for (int b = 0; b < kSessions; ++b) {
    INFO("session " << b << " (example " << order[static_cast<std::size_t>(b)] << ")");
    const embsr::HostBatch one = host_batch(IV{order[static_cast<std::size_t>(b)]});
    const int c0 = full.node_offsets[static_cast<std::size_t>(b)], c1 = full.node_offsets[static_cast<std::size_t>(b) + 1];
    REQUIRE(one.node_offsets.back() == c1 - c0);
    const DV Hb(H.begin() + c0 * kDim, H.begin() + c1 * kDim), Rb(R.begin() + b * kDim, R.begin() + (b + 1) * kDim);
    const Run r = forward_backward<Exec>(one, Hb, Rb, p);
    for (int j = 0; j < kDim; ++j) CHECK(r.s_h[at(0, kDim, j)] == Approx(all.s_h[at(b, kDim, j)]).epsilon(1e-13).margin(1e-14));
    for (int c = c0; c < c1; ++c)
      for (int j = 0; j < kDim; ++j)
        CHECK(r.dH[at(c - c0, kDim, j)] == Approx(all.dH[at(c, kDim, j)]).epsilon(1e-12).margin(1e-13));
    auto accumulate = [](DV& acc, const DV& x) {
      if (acc.empty()) acc.assign(x.size(), 0.0);
      for (std::size_t i = 0; i < x.size(); ++i) acc[i] += x[i];
    };
    accumulate(sum.dW1, r.dW1);
    accumulate(sum.db1, r.db1);
    accumulate(sum.dW2, r.dW2);
    accumulate(sum.db2, r.db2);
    accumulate(sum.dq, r.dq);
    accumulate(sum.dW3, r.dW3);
    accumulate(sum.db3, r.db3);
  }
  auto same = [](const char* name, const DV& a, const DV& b) {
    INFO(name);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-11).margin(1e-12));
  };
  same("W1", sum.dW1, all.dW1);
  same("b1", sum.db1, all.db1);
  same("W2", sum.dW2, all.dW2);
  same("b2", sum.db2, all.db2);
  same("q", sum.dq, all.dq);
  same("W3", sum.dW3, all.dW3);
  same("b3", sum.db3, all.db3);
}

// ------------------------------------------------------------------------------------ length 1, empty batch

TEMPLATE_LIST_TEST_CASE("soft_attention_readout: a session of length 1 and an empty batch", "[layers][soft_attention_readout]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const Params<M> p(60);
  const HostParams hp(p);
  {
    // One position: v_n = v_1 = v, alpha = q . sigmoid((W1 + W2) v + b1 + b2), s_h = W3 [v ; alpha v] + b3.
    const embsr::HostBatch one = host_batch(IV{4});  // 7 7 7: a single macro item
    REQUIRE(one.macro_offsets.back() == 1);
    REQUIRE(one.node_offsets.back() == 1);
    const DV H = random_values(kDim, 61), R = random_values(kDim, 62);
    const Run r = forward_backward<Exec>(one, H, R, p);
    double alpha = 0;
    for (int o = 0; o < kDim; ++o) {
      double pre = hp.b1[static_cast<std::size_t>(o)] + hp.b2[static_cast<std::size_t>(o)];
      for (int k = 0; k < kDim; ++k) pre += (hp.W1[at(o, kDim, k)] + hp.W2[at(o, kDim, k)]) * H[static_cast<std::size_t>(k)];
      alpha += hp.q[static_cast<std::size_t>(o)] * sigmoid(pre);
    }
    for (int o = 0; o < kDim; ++o) {
      double s = hp.b3[static_cast<std::size_t>(o)];
      for (int k = 0; k < kDim; ++k)
        s += (hp.W3[at(o, 2 * kDim, k)] + alpha * hp.W3[at(o, 2 * kDim, kDim + k)]) * H[static_cast<std::size_t>(k)];
      CHECK(r.s_h[static_cast<std::size_t>(o)] == Approx(s).epsilon(1e-12).margin(1e-12));
    }
    // The bias gradient of eq. 7 is ds_h itself.
    for (int o = 0; o < kDim; ++o) CHECK(r.db3[static_cast<std::size_t>(o)] == Approx(R[static_cast<std::size_t>(o)]).epsilon(1e-14));
  }
  {
    // B = 0: nothing to compute, no gradient added.
    const embsr::HostBatch empty = host_batch(IV{});
    REQUIRE(empty.num_sessions() == 0);
    const Run r = forward_backward<Exec>(empty, DV{}, DV{}, p);
    CHECK(r.s_h.empty());
    CHECK(r.dH.empty());
    for (const DV* grad : {&r.dW1, &r.db1, &r.dW2, &r.db2, &r.dq, &r.dW3, &r.db3})
      for (const double x : *grad) CHECK(x == 0.0);
  }
}

// ------------------------------------------------------------------------------------ shapes

TEST_CASE("soft_attention_readout: shape mismatches are rejected", "[layers][soft_attention_readout]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const auto batch = embsr::to_memory_space<M>(host_batch(IV{0, 1, 2}));
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes, d = kDim;
  const Params<M> params(70), grads(71);
  const auto p = params.refs(), g = grads.refs();
  Mat<M> H("H", C, d), s_h("s_h", B, d), dH("dH", C, d);
  Mat<M> H_rows("H_rows", C + 1, d), H_cols("H_cols", C, d + 1), s_h_rows("s_h_rows", B - 1, d),
      s_h_cols("s_h_cols", B, d - 1), dH_rows("dH_rows", C - 1, d);
  Mat<M> sq_bad("sq_bad", d, d + 1), W3_bad("W3_bad", d, d);
  Vec<M> v_bad("v_bad", d - 1);
  embsr::SoftAttentionReadoutCache<double, M> cache;
  CHECK_NOTHROW(embsr::soft_attention_readout_forward(Exec(), batch, H, p, s_h, cache));
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), batch, H_rows, p, s_h, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), batch, H_cols, p, s_h, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), batch, H, p, s_h_rows, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), batch, H, p, s_h_cols, cache), embsr::InvalidArgument);

  // Each parameter of the wrong shape, in turn.
  std::vector<embsr::SoftAttentionReadoutParams<double, M>> bad(7, p);
  bad[0].W1 = sq_bad;
  bad[1].b1 = v_bad;
  bad[2].W2 = sq_bad;
  bad[3].b2 = v_bad;
  bad[4].q = v_bad;
  bad[5].W3 = W3_bad;
  bad[6].b3 = v_bad;
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("parameter " << i);
    CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), batch, H, bad[i], s_h, cache), embsr::InvalidArgument);
  }

  // The backward checks H, ds_h, dH, the parameters, the gradients and the cache.
  embsr::soft_attention_readout_forward(Exec(), batch, H, p, s_h, cache);
  CHECK_NOTHROW(embsr::soft_attention_readout_backward(Exec(), batch, H, p, cache, s_h, dH, g));
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), batch, H_rows, p, cache, s_h, dH, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), batch, H, p, cache, s_h_rows, dH, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), batch, H, p, cache, s_h_cols, dH, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), batch, H, p, cache, s_h, dH_rows, g), embsr::InvalidArgument);
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("parameter " << i);
    CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), batch, H, bad[i], cache, s_h, dH, g), embsr::InvalidArgument);
    CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), batch, H, p, cache, s_h, dH, bad[i]), embsr::InvalidArgument);
  }
  embsr::SoftAttentionReadoutCache<double, M> fresh;
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), batch, H, p, fresh, s_h, dH, g), embsr::InvalidArgument);
  // A cache of another batch.
  const auto other = embsr::to_memory_space<M>(host_batch(IV{3}));
  Mat<M> H_other("H_other", other.sizes.num_nodes, d), s_h_other("s_h_other", 1, d);
  embsr::soft_attention_readout_forward(Exec(), other, H_other, p, s_h_other, fresh);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), batch, H, p, fresh, s_h, dH, g), embsr::InvalidArgument);
}

}  // namespace test_soft_attention_readout
