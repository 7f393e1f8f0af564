// The soft-attention readout of the SR-GNN family (SR-GNN, Wu et al., AAAI 2019, Sec. 3.4, eq. 6-7;
// SGNN-HN's with the star as a context term; MKM-SR's at input width 2d),
// layers/soft_attention_readout.hpp: the forward against a host computation of the equations and
// central-difference gradients of every coordinate of X, of the context and of every parameter
// (the backward adds into its outputs), for three widths (D = d_out = 4; D = 4 with a context of
// width 3; D = 6, d_out = 3) on segments of lengths 1..6; SR-GNN's use (rows gathered from node
// states over a Batch's macro positions, repeated items, gradients scattered back to the nodes);
// batch invariance; sessions of length 1; an empty batch; optional input gradients; shape checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch_builder.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/embedding.hpp>
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

std::size_t sz(int i) { return static_cast<std::size_t>(i); }
std::size_t at(int r, int cols, int c) { return static_cast<std::size_t>(r * cols + c); }

// The widths of one configuration: input D, output d_out, context d_c (0: no context term).
struct Dims {
  int D = 4, out = 4, ctx = 0;
};
constexpr Dims kPlain{4, 4, 0};  // SR-GNN
constexpr Dims kStar{4, 4, 3};   // SGNN-HN: a per-session context inside the sigmoid
constexpr Dims kWide{6, 3, 0};   // MKM-SR: D = 2d, d_out = d

// Segments of lengths 1..6, not in order: rows [offsets[b], offsets[b+1]) are session b.
const IV kLengths{3, 1, 6, 2, 5, 4};

IV offsets_of(const IV& lengths) {
  IV off{0};
  for (const index_t n : lengths) off.push_back(off.back() + n);
  return off;
}

// A matrix [rows x cols], or an empty View when cols = 0 (the absent context and W_s).
template <class M>
Mat<M> matrix(const char* label, int rows, int cols) {
  return cols > 0 ? Mat<M>(std::string(label), sz(rows), sz(cols)) : Mat<M>();
}

// The parameters (W_s, b_s only with a context), in one memory space.
template <class M>
struct Params {
  Dims dims;
  Mat<M> W1, W2, W3, W_s;
  Vec<M> b1, b2, q, b3, b_s;

  Params(const Dims& dm, unsigned seed)
      : dims(dm),
        W1("W1", sz(dm.D), sz(dm.D)),
        W2("W2", sz(dm.D), sz(dm.D)),
        W3("W3", sz(dm.out), sz(2 * dm.D)),
        W_s(matrix<M>("W_s", dm.D, dm.ctx)),
        b1("b1", sz(dm.D)),
        b2("b2", sz(dm.D)),
        q("q", sz(dm.D)),
        b3("b3", sz(dm.out)),
        b_s("b_s", sz(dm.ctx > 0 ? dm.D : 0)) {
    embsr::test::fill_random(W1, seed + 1, 0.5);
    embsr::test::fill_random(b1, seed + 2, 0.5);
    embsr::test::fill_random(W2, seed + 3, 0.5);
    embsr::test::fill_random(b2, seed + 4, 0.5);
    embsr::test::fill_random(q, seed + 5);
    embsr::test::fill_random(W3, seed + 6, 0.5);
    embsr::test::fill_random(b3, seed + 7);
    embsr::test::fill_random(W_s, seed + 8, 0.5);
    embsr::test::fill_random(b_s, seed + 9, 0.5);
  }
  embsr::SoftAttentionReadoutParams<double, M> refs() const { return {W1, b1, W2, b2, q, W3, b3, W_s, b_s}; }
};

// Host copies of the parameters (row-major, flat; W_s, b_s empty without a context).
struct HostParams {
  DV W1, b1, W2, b2, q, W3, b3, W_s, b_s;
  template <class M>
  explicit HostParams(const Params<M>& p)
      : W1(embsr::test::to_vector(p.W1)), b1(embsr::test::to_vector(p.b1)), W2(embsr::test::to_vector(p.W2)),
        b2(embsr::test::to_vector(p.b2)), q(embsr::test::to_vector(p.q)), W3(embsr::test::to_vector(p.W3)),
        b3(embsr::test::to_vector(p.b3)), W_s(embsr::test::to_vector(p.W_s)), b_s(embsr::test::to_vector(p.b_s)) {}
};

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// The equations on the host, session by session: X [R x D], C [B x d_c] (empty without a
// context) -> s_h [B x d_out].
DV reference(const IV& off, const DV& X, const DV& C, const HostParams& p, const Dims& dm) {
  const int B = static_cast<int>(off.size()) - 1, D = dm.D, O = dm.out, K = dm.ctx;
  REQUIRE(X.size() == sz(off.back() * D));
  REQUIRE(C.size() == sz(B * K));
  DV out(sz(B * O));
  for (int b = 0; b < B; ++b) {
    const int begin = off[sz(b)], end = off[sz(b) + 1];
    REQUIRE(end > begin);
    auto row = [&](int i) {  // v_i
      DV v(sz(D));
      for (int j = 0; j < D; ++j) v[sz(j)] = X[at(i, D, j)];
      return v;
    };
    const DV vn = row(end - 1);
    DV query(sz(D));  // W1 v_n + b1 + W_s c_b + b_s
    for (int o = 0; o < D; ++o) {
      double s = p.b1[sz(o)];
      for (int k = 0; k < D; ++k) s += p.W1[at(o, D, k)] * vn[sz(k)];
      if (K > 0) {
        s += p.b_s[sz(o)];
        for (int k = 0; k < K; ++k) s += p.W_s[at(o, K, k)] * C[at(b, K, k)];
      }
      query[sz(o)] = s;
    }
    DV sg(sz(D), 0.0);
    for (int i = begin; i < end; ++i) {
      const DV vi = row(i);
      double alpha = 0;
      for (int o = 0; o < D; ++o) {
        double pre = query[sz(o)] + p.b2[sz(o)];
        for (int k = 0; k < D; ++k) pre += p.W2[at(o, D, k)] * vi[sz(k)];
        alpha += p.q[sz(o)] * sigmoid(pre);
      }
      for (int j = 0; j < D; ++j) sg[sz(j)] += alpha * vi[sz(j)];
    }
    for (int o = 0; o < O; ++o) {
      double s = p.b3[sz(o)];
      for (int k = 0; k < D; ++k) s += p.W3[at(o, 2 * D, k)] * vn[sz(k)] + p.W3[at(o, 2 * D, D + k)] * sg[sz(k)];
      out[at(b, O, o)] = s;
    }
  }
  return out;
}

DV added(const DV& now, const DV& before) {
  DV out(now);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] -= before[i];
  return out;
}

template <class V>
void copy_in(const V& v, const DV& values) {
  auto h = Kokkos::create_mirror_view(embsr::test::flat(v));
  REQUIRE(h.extent(0) == values.size());
  for (std::size_t i = 0; i < values.size(); ++i) h(i) = values[i];
  Kokkos::deep_copy(embsr::test::flat(v), h);
}

DV random_values(std::size_t n, unsigned seed) {
  Vec<Kokkos::HostSpace> v("v", n);
  embsr::test::fill_random(v, seed);
  return embsr::test::to_vector(v);
}

// Forward + backward of one batch with loss sum(s_h * R): s_h, dX, dcontext and the parameter
// gradients (each buffer pre-filled with random values; the returned values are the increments).
// Without `want_inputs`, dX and dcontext are empty Views (not needed) and come back empty.
struct Run {
  DV s_h, dX, dc, dW1, db1, dW2, db2, dq, dW3, db3, dW_s, db_s;
};

template <class Exec>
Run forward_backward(const IV& off, const DV& X_host, const DV& C_host, const DV& R_host,
                     const Params<typename Exec::memory_space>& p, bool want_inputs = true) {
  using M = typename Exec::memory_space;
  const Dims dm = p.dims;
  const int B = static_cast<int>(off.size()) - 1, R = off.back();
  const auto offsets = embsr::test::to_ids<M>(off);
  Mat<M> X("X", sz(R), sz(dm.D)), s_h("s_h", sz(B), sz(dm.out)), Rm("R", sz(B), sz(dm.out)), dX("dX", sz(R), sz(dm.D));
  const Mat<M> C = matrix<M>("C", B, dm.ctx), dC = matrix<M>("dC", B, dm.ctx);
  copy_in(X, X_host);
  copy_in(C, C_host);
  copy_in(Rm, R_host);
  Params<M> g(dm, 900);
  embsr::test::fill_random(dX, 901);
  embsr::test::fill_random(dC, 902);
  const DV dX0 = embsr::test::to_vector(dX), dC0 = embsr::test::to_vector(dC);
  const HostParams g0(g);
  embsr::SoftAttentionReadoutCache<double, M> cache;
  embsr::soft_attention_readout_forward(Exec(), offsets, X, p.refs(), C, s_h, cache);
  if (want_inputs)
    embsr::soft_attention_readout_backward(Exec(), offsets, X, p.refs(), C, cache, Rm, dX, dC, g.refs());
  else
    embsr::soft_attention_readout_backward(Exec(), offsets, X, p.refs(), C, cache, Rm, Mat<M>(), Mat<M>(), g.refs());
  Kokkos::fence();
  const HostParams g1(g);
  Run r{embsr::test::to_vector(s_h), added(embsr::test::to_vector(dX), dX0), added(embsr::test::to_vector(dC), dC0),
        added(g1.W1, g0.W1),         added(g1.b1, g0.b1),                     added(g1.W2, g0.W2),
        added(g1.b2, g0.b2),         added(g1.q, g0.q),                       added(g1.W3, g0.W3),
        added(g1.b3, g0.b3),         added(g1.W_s, g0.W_s),                   added(g1.b_s, g0.b_s)};
  if (!want_inputs) {
    for (const double x : r.dX) CHECK(x == 0.0);  // an empty dX: the buffer is not touched
    for (const double x : r.dc) CHECK(x == 0.0);
    r.dX.clear();
    r.dc.clear();
  }
  return r;
}

// ------------------------------------------------------------------------ SR-GNN's batch (macro positions)

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

// X = H[macro_alias] on the host: SR-GNN's rows.
DV gather_macro(const embsr::HostBatch& host, const DV& H, int d) {
  DV X;
  for (const index_t c : host.macro_alias)
    for (int j = 0; j < d; ++j) X.push_back(H[at(c, d, j)]);
  return X;
}

}  // namespace

// ------------------------------------------------------------------------------------ forward + gradients

TEMPLATE_LIST_TEST_CASE("soft_attention_readout: forward against the equations and central-difference gradients",
                        "[layers][soft_attention_readout]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  Dims dm = kPlain;
  SECTION("D = d_out = 4, no context (SR-GNN)") {}
  SECTION("D = 4 with a context of width 3 (SGNN-HN)") { dm = kStar; }
  SECTION("D = 6, d_out = 3 (MKM-SR)") { dm = kWide; }
  const IV off = offsets_of(kLengths);
  const int B = kSessions, R = off.back();
  REQUIRE(static_cast<int>(kLengths.size()) == B);
  const auto offsets = embsr::test::to_ids<M>(off);

  Params<M> p(dm, 10);
  Params<M> g(dm, 20);  // gradient buffers, pre-filled: the backward adds
  Mat<M> X("X", sz(R), sz(dm.D)), s_h("s_h", sz(B), sz(dm.out)), Rm("R", sz(B), sz(dm.out)), dX("dX", sz(R), sz(dm.D));
  const Mat<M> C = matrix<M>("C", B, dm.ctx), dC = matrix<M>("dC", B, dm.ctx);
  embsr::test::fill_random(X, 30);
  embsr::test::fill_random(Rm, 31);
  embsr::test::fill_random(dX, 32);
  embsr::test::fill_random(C, 33);
  embsr::test::fill_random(dC, 34);
  embsr::SoftAttentionReadoutCache<double, M> cache;
  auto loss = [&] {
    embsr::soft_attention_readout_forward(Exec(), offsets, X, p.refs(), C, s_h, cache);
    Kokkos::fence();
    return embsr::test::dot(s_h, Rm);
  };
  loss();

  const DV want = reference(off, embsr::test::to_vector(X), embsr::test::to_vector(C), HostParams(p), dm);
  const DV got = embsr::test::to_vector(s_h);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("s_h[" << i << "]");
    CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));
  }

  const HostParams g0(g);
  const DV dX0 = embsr::test::to_vector(dX), dC0 = embsr::test::to_vector(dC);
  embsr::soft_attention_readout_backward(Exec(), offsets, X, p.refs(), C, cache, Rm, dX, dC, g.refs());
  Kokkos::fence();
  const HostParams g1(g);
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"X", embsr::test::flat(X), added(embsr::test::to_vector(dX), dX0)},
                         {"W1", embsr::test::flat(p.W1), added(g1.W1, g0.W1)},
                         {"b1", embsr::test::flat(p.b1), added(g1.b1, g0.b1)},
                         {"W2", embsr::test::flat(p.W2), added(g1.W2, g0.W2)},
                         {"b2", embsr::test::flat(p.b2), added(g1.b2, g0.b2)},
                         {"q", embsr::test::flat(p.q), added(g1.q, g0.q)},
                         {"W3", embsr::test::flat(p.W3), added(g1.W3, g0.W3)},
                         {"b3", embsr::test::flat(p.b3), added(g1.b3, g0.b3)}};
  if (dm.ctx > 0) {
    targets.push_back({"context", embsr::test::flat(C), added(embsr::test::to_vector(dC), dC0)});
    targets.push_back({"W_s", embsr::test::flat(p.W_s), added(g1.W_s, g0.W_s)});
    targets.push_back({"b_s", embsr::test::flat(p.b_s), added(g1.b_s, g0.b_s)});
  } else {
    CHECK(g1.W_s.empty());
    CHECK(g1.b_s.empty());
  }
  // Every coordinate of every target (X: R x D = 21 x 4 or 21 x 6).
  REQUIRE(targets.front().analytic.size() == sz(R * dm.D));
  embsr::test::check_gradients<M>(loss, targets);

  // A second forward reuses the cache and gives the same values; so does a second backward.
  loss();
  const DV before = embsr::test::to_vector(s_h);
  loss();
  CHECK(embsr::test::to_vector(s_h) == before);
  Kokkos::deep_copy(dX, 0.0);
  Kokkos::deep_copy(dC, 0.0);
  embsr::soft_attention_readout_backward(Exec(), offsets, X, p.refs(), C, cache, Rm, dX, dC, g.refs());
  Kokkos::fence();
  const DV dX1 = embsr::test::to_vector(dX), dC1 = embsr::test::to_vector(dC);
  Kokkos::deep_copy(dX, 0.0);
  Kokkos::deep_copy(dC, 0.0);
  embsr::soft_attention_readout_backward(Exec(), offsets, X, p.refs(), C, cache, Rm, dX, dC, g.refs());
  Kokkos::fence();
  CHECK(embsr::test::to_vector(dX) == dX1);
  CHECK(embsr::test::to_vector(dC) == dC1);
}

// ------------------------------------------------------------------------------------ SR-GNN's use

TEMPLATE_LIST_TEST_CASE("soft_attention_readout: SR-GNN's rows H[macro_alias] over a batch's macro positions",
                        "[layers][soft_attention_readout]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const Dims dm = kPlain;
  const int d = dm.D;
  const embsr::HostBatch host = host_batch(IV{2, 0, 5, 1, 4, 3});
  const auto batch = embsr::to_memory_space<M>(host);
  const int B = batch.sizes.num_sessions, N = batch.sizes.num_macro, C = batch.sizes.num_nodes;
  REQUIRE(B == kSessions);

  // The batch covers the cases SR-GNN's gather is about: a session of one position, a node at
  // several positions of its session, and a last item that also occurs earlier in its session.
  int single = 0, repeated = 0, last_repeated = 0;
  for (int b = 0; b < B; ++b) {
    const int begin = host.macro_offsets[sz(b)], end = host.macro_offsets[sz(b) + 1];
    single += end - begin == 1;
    repeated += (end - begin) > (host.node_offsets[sz(b) + 1] - host.node_offsets[sz(b)]);
    for (int i = begin; i + 1 < end; ++i) last_repeated += host.macro_alias[sz(i)] == host.macro_alias[sz(end) - 1];
  }
  CHECK(single >= 2);
  CHECK(repeated >= 3);
  CHECK(last_repeated >= 2);

  Params<M> p(dm, 10);
  Params<M> g(dm, 20);
  Mat<M> H("H", sz(C), sz(d)), X("X", sz(N), sz(d)), s_h("s_h", sz(B), sz(d)), Rm("R", sz(B), sz(d)),
      dX("dX", sz(N), sz(d)), dH("dH", sz(C), sz(d));
  embsr::test::fill_random(H, 30);
  embsr::test::fill_random(Rm, 31);
  embsr::test::fill_random(dH, 32);
  embsr::SoftAttentionReadoutCache<double, M> cache;
  auto loss = [&] {
    embsr::embedding_forward(Exec(), H, batch.macro_alias, X);
    embsr::soft_attention_readout_forward(Exec(), batch.macro_offsets, X, p.refs(), Mat<M>(), s_h, cache);
    Kokkos::fence();
    return embsr::test::dot(s_h, Rm);
  };
  loss();

  const DV want = reference(host.macro_offsets, gather_macro(host, embsr::test::to_vector(H), d), DV{}, HostParams(p), dm);
  const DV got = embsr::test::to_vector(s_h);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("s_h[" << i << "]");
    CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));
  }

  // dX, then scattered to the nodes: dH[alias(i)] += dX_i.
  const HostParams g0(g);
  const DV dH0 = embsr::test::to_vector(dH);
  Kokkos::deep_copy(dX, 0.0);
  embsr::soft_attention_readout_backward(Exec(), batch.macro_offsets, X, p.refs(), Mat<M>(), cache, Rm, dX, Mat<M>(),
                                         g.refs());
  embsr::embedding_backward(Exec(), batch.macro_alias, dX, dH);
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
  // SR-GNN's b1 and b2 enter only as b1 + b2: equal gradients.
  const DV db1 = added(g1.b1, g0.b1), db2 = added(g1.b2, g0.b2);
  for (int j = 0; j < d; ++j) CHECK(db1[sz(j)] == Approx(db2[sz(j)]).epsilon(1e-12).margin(1e-14));
}

// ------------------------------------------------------------------------------------ batch invariance

TEMPLATE_LIST_TEST_CASE("soft_attention_readout: a session's output and gradients do not depend on the rest of the batch",
                        "[layers][soft_attention_readout]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  Dims dm = kPlain;
  SECTION("D = d_out = 4, no context") {}
  SECTION("D = 4 with a context of width 3") { dm = kStar; }
  SECTION("D = 6, d_out = 3") { dm = kWide; }
  const IV off = offsets_of(kLengths);
  const int B = kSessions, R = off.back(), D = dm.D, O = dm.out, K = dm.ctx;
  const DV X = random_values(sz(R * D), 40), C = random_values(sz(B * K), 41), Rv = random_values(sz(B * O), 42);
  const Params<M> p(dm, 50);
  const Run all = forward_backward<Exec>(off, X, C, Rv, p);

  Run sum;  // parameter gradients summed over the single-session batches
  auto accumulate = [](DV& acc, const DV& x) {
    if (acc.empty()) acc.assign(x.size(), 0.0);
    for (std::size_t i = 0; i < x.size(); ++i) acc[i] += x[i];
  };
  for (int b = 0; b < B; ++b) {
    INFO("session " << b << " of length " << kLengths[sz(b)]);
    const int r0 = off[sz(b)], r1 = off[sz(b) + 1];
    const DV Xb(X.begin() + r0 * D, X.begin() + r1 * D), Cb(C.begin() + b * K, C.begin() + (b + 1) * K),
        Rb(Rv.begin() + b * O, Rv.begin() + (b + 1) * O);
    const Run r = forward_backward<Exec>(IV{0, r1 - r0}, Xb, Cb, Rb, p);
    for (int j = 0; j < O; ++j) CHECK(r.s_h[at(0, O, j)] == Approx(all.s_h[at(b, O, j)]).epsilon(1e-13).margin(1e-14));
    for (int i = r0; i < r1; ++i)
      for (int j = 0; j < D; ++j)
        CHECK(r.dX[at(i - r0, D, j)] == Approx(all.dX[at(i, D, j)]).epsilon(1e-12).margin(1e-13));
    for (int k = 0; k < K; ++k) CHECK(r.dc[sz(k)] == Approx(all.dc[at(b, K, k)]).epsilon(1e-12).margin(1e-13));
    accumulate(sum.dW1, r.dW1);
    accumulate(sum.db1, r.db1);
    accumulate(sum.dW2, r.dW2);
    accumulate(sum.db2, r.db2);
    accumulate(sum.dq, r.dq);
    accumulate(sum.dW3, r.dW3);
    accumulate(sum.db3, r.db3);
    accumulate(sum.dW_s, r.dW_s);
    accumulate(sum.db_s, r.db_s);
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
  same("W_s", sum.dW_s, all.dW_s);
  same("b_s", sum.db_s, all.db_s);
  CHECK(all.dW_s.size() == sz(D * K));
}

// ------------------------------------------------------------------------------------ length 1, empty batch

TEMPLATE_LIST_TEST_CASE("soft_attention_readout: sessions of length 1, an empty batch, input gradients not needed",
                        "[layers][soft_attention_readout]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  Dims dm = kPlain;
  SECTION("D = d_out = 4, no context") {}
  SECTION("D = 4 with a context of width 3") { dm = kStar; }
  SECTION("D = 6, d_out = 3") { dm = kWide; }
  const int D = dm.D, O = dm.out, K = dm.ctx;
  const Params<M> p(dm, 60);
  const HostParams hp(p);
  {
    // One row: v_n = v_1 = v, alpha = q . sigmoid((W1 + W2) v + b1 + b2 [+ W_s c + b_s]),
    // s_h = W3 [v ; alpha v] + b3.
    const DV X = random_values(sz(D), 61), C = random_values(sz(K), 62), Rv = random_values(sz(O), 63);
    const Run r = forward_backward<Exec>(IV{0, 1}, X, C, Rv, p);
    double alpha = 0;
    for (int o = 0; o < D; ++o) {
      double pre = hp.b1[sz(o)] + hp.b2[sz(o)];
      for (int k = 0; k < D; ++k) pre += (hp.W1[at(o, D, k)] + hp.W2[at(o, D, k)]) * X[sz(k)];
      if (K > 0) pre += hp.b_s[sz(o)];
      for (int k = 0; k < K; ++k) pre += hp.W_s[at(o, K, k)] * C[sz(k)];
      alpha += hp.q[sz(o)] * sigmoid(pre);
    }
    for (int o = 0; o < O; ++o) {
      double s = hp.b3[sz(o)];
      for (int k = 0; k < D; ++k) s += (hp.W3[at(o, 2 * D, k)] + alpha * hp.W3[at(o, 2 * D, D + k)]) * X[sz(k)];
      CHECK(r.s_h[sz(o)] == Approx(s).epsilon(1e-12).margin(1e-12));
    }
    // The bias gradient of eq. 7 is ds_h itself.
    for (int o = 0; o < O; ++o) CHECK(r.db3[sz(o)] == Approx(Rv[sz(o)]).epsilon(1e-14));
  }
  {
    // Six sessions of length 1 in one batch: each as alone.
    const IV off{0, 1, 2, 3, 4, 5, 6};
    const DV X = random_values(sz(6 * D), 64), C = random_values(sz(6 * K), 65), Rv = random_values(sz(6 * O), 66);
    const Run all = forward_backward<Exec>(off, X, C, Rv, p);
    const DV want = reference(off, X, C, hp, dm);
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(all.s_h[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));
  }
  {
    // B = 0: nothing to compute, no gradient added.
    const Run r = forward_backward<Exec>(IV{0}, DV{}, DV{}, DV{}, p);
    CHECK(r.s_h.empty());
    CHECK(r.dX.empty());
    CHECK(r.dc.empty());
    for (const DV* grad : {&r.dW1, &r.db1, &r.dW2, &r.db2, &r.dq, &r.dW3, &r.db3, &r.dW_s, &r.db_s})
      for (const double x : *grad) CHECK(x == 0.0);
    CHECK(r.dW1.size() == sz(D * D));
  }
  {
    // Empty dX and dcontext: not needed, left alone; the parameter gradients are the same.
    const IV off = offsets_of(kLengths);
    const int B = kSessions, R = off.back();
    const DV X = random_values(sz(R * D), 67), C = random_values(sz(B * K), 68), Rv = random_values(sz(B * O), 69);
    const Run with = forward_backward<Exec>(off, X, C, Rv, p, true);
    const Run without = forward_backward<Exec>(off, X, C, Rv, p, false);
    CHECK(without.s_h == with.s_h);
    CHECK(without.dW1 == with.dW1);
    CHECK(without.db1 == with.db1);
    CHECK(without.dW2 == with.dW2);
    CHECK(without.db2 == with.db2);
    CHECK(without.dq == with.dq);
    CHECK(without.dW3 == with.dW3);
    CHECK(without.db3 == with.db3);
    CHECK(without.dW_s == with.dW_s);
    CHECK(without.db_s == with.db_s);
  }
}

// ------------------------------------------------------------------------------------ shapes

TEST_CASE("soft_attention_readout: shape mismatches are rejected", "[layers][soft_attention_readout]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  using P = embsr::SoftAttentionReadoutParams<double, M>;
  const Dims dm = kStar;
  const int D = dm.D, O = dm.out, K = dm.ctx;
  const IV off = offsets_of(IV{2, 1, 3});
  const int B = 3, R = off.back();
  const auto offsets = embsr::test::to_ids<M>(off);
  const auto offsets_empty = embsr::test::to_ids<M>(IV{});
  const auto offsets_long = embsr::test::to_ids<M>(offsets_of(IV{2, 1, 2, 1}));  // B = 4, the same R
  const Params<M> params(dm, 70), grads(dm, 71);
  const P p = params.refs(), g = grads.refs();
  P p_plain = p, g_plain = g;  // the same without the context term
  p_plain.W_s = g_plain.W_s = embsr::MatRef<double, M>();
  p_plain.b_s = g_plain.b_s = embsr::VecRef<double, M>();
  Mat<M> X("X", sz(R), sz(D)), C("C", sz(B), sz(K)), s_h("s_h", sz(B), sz(O)), dX("dX", sz(R), sz(D)),
      dC("dC", sz(B), sz(K));
  Mat<M> X_rows("X_rows", sz(R + 1), sz(D)), X_cols("X_cols", sz(R), sz(D + 1)), s_h_rows("s_h_rows", sz(B - 1), sz(O)),
      s_h_cols("s_h_cols", sz(B), sz(O - 1)), C_rows("C_rows", sz(B - 1), sz(K)), C_cols("C_cols", sz(B), sz(K + 1)),
      dX_rows("dX_rows", sz(R - 1), sz(D)), dX_cols("dX_cols", sz(R), sz(D + 1)), dC_rows("dC_rows", sz(B + 1), sz(K)),
      dC_cols("dC_cols", sz(B), sz(K - 1));
  Mat<M> sq_bad("sq_bad", sz(D), sz(D + 1)), W3_bad("W3_bad", sz(O), sz(D)), W_s_rows("W_s_rows", sz(D + 1), sz(K)),
      W_s_cols("W_s_cols", sz(D), sz(K + 1));
  Vec<M> v_bad("v_bad", sz(D - 1)), b3_bad("b3_bad", sz(O + 1));
  const Mat<M> none;
  embsr::SoftAttentionReadoutCache<double, M> cache;
  CHECK_NOTHROW(embsr::soft_attention_readout_forward(Exec(), offsets, X, p, C, s_h, cache));
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), offsets, X_cols, p, C, s_h, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), offsets, X, p, C, s_h_rows, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), offsets, X, p, C, s_h_cols, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), offsets_empty, X, p, C, s_h, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), offsets_long, X, p, C, s_h, cache), embsr::InvalidArgument);
  // The context: [B x d_c] with W_s, empty without.
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), offsets, X, p, C_rows, s_h, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), offsets, X, p, C_cols, s_h, cache), embsr::InvalidArgument);
  CHECK_THROWS_WITH(embsr::soft_attention_readout_forward(Exec(), offsets, X, p, none, s_h, cache),
                    Catch::Contains("soft_attention_readout_forward") && Catch::Contains("context"));
  CHECK_NOTHROW(embsr::soft_attention_readout_forward(Exec(), offsets, X, p_plain, none, s_h, cache));
  CHECK_THROWS_WITH(embsr::soft_attention_readout_forward(Exec(), offsets, X, p_plain, C, s_h, cache),
                    Catch::Contains("context") && Catch::Contains("W_s"));

  // Each parameter of the wrong shape, in turn (W_s / b_s: one without the other, too).
  std::vector<P> bad(12, p);
  bad[0].W1 = sq_bad;
  bad[1].b1 = v_bad;
  bad[2].W2 = sq_bad;
  bad[3].b2 = v_bad;
  bad[4].q = v_bad;
  bad[5].W3 = W3_bad;
  bad[6].b3 = b3_bad;
  bad[7].W_s = W_s_rows;
  bad[8].W_s = W_s_cols;
  bad[9].b_s = v_bad;
  bad[10].b_s = embsr::VecRef<double, M>();
  bad[11].W_s = embsr::MatRef<double, M>();
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("parameter " << i);
    CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), offsets, X, bad[i], C, s_h, cache), embsr::InvalidArgument);
  }
  CHECK_THROWS_WITH(embsr::soft_attention_readout_forward(Exec(), offsets, X, bad[9], C, s_h, cache), Catch::Contains("b_s"));

  // The backward checks X, the context, ds_h, dX, dcontext, the parameters, the gradients and the cache.
  embsr::soft_attention_readout_forward(Exec(), offsets, X, p, C, s_h, cache);
  CHECK_NOTHROW(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, cache, s_h, dX, dC, g));
  CHECK_NOTHROW(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, cache, s_h, none, none, g));
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X_rows, p, C, cache, s_h, dX, dC, g),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X_cols, p, C, cache, s_h, dX, dC, g),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C_rows, cache, s_h, dX, dC, g),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, none, cache, s_h, dX, dC, g),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, cache, s_h_rows, dX, dC, g),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, cache, s_h_cols, dX, dC, g),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, cache, s_h, dX_rows, dC, g),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, cache, s_h, dX_cols, dC, g),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, cache, s_h, dX, dC_rows, g),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, cache, s_h, dX, dC_cols, g),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets_long, X, p, C, cache, s_h, dX, dC, g),
                  embsr::InvalidArgument);
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("parameter " << i);
    CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, bad[i], C, cache, s_h, dX, dC, g),
                    embsr::InvalidArgument);
    CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, cache, s_h, dX, dC, bad[i]),
                    embsr::InvalidArgument);
  }
  // Gradients without the context term for parameters with it; the cache of a forward with the
  // context for parameters without it; a dcontext without a context term.
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, cache, s_h, dX, dC, g_plain),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p_plain, none, cache, s_h, dX, none, g_plain),
                  embsr::InvalidArgument);
  embsr::soft_attention_readout_forward(Exec(), offsets, X, p_plain, none, s_h, cache);
  CHECK_NOTHROW(embsr::soft_attention_readout_backward(Exec(), offsets, X, p_plain, none, cache, s_h, dX, none, g_plain));
  CHECK_THROWS_WITH(embsr::soft_attention_readout_backward(Exec(), offsets, X, p_plain, none, cache, s_h, dX, dC, g_plain),
                    Catch::Contains("dcontext"));

  embsr::SoftAttentionReadoutCache<double, M> fresh;
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, fresh, s_h, dX, dC, g),
                  embsr::InvalidArgument);
  // A cache of another batch.
  const auto other = embsr::test::to_ids<M>(IV{0, 2});
  Mat<M> X_other("X_other", 2, sz(D)), C_other("C_other", 1, sz(K)), s_h_other("s_h_other", 1, sz(O));
  embsr::soft_attention_readout_forward(Exec(), other, X_other, p, C_other, s_h_other, fresh);
  CHECK_THROWS_AS(embsr::soft_attention_readout_backward(Exec(), offsets, X, p, C, fresh, s_h, dX, dC, g),
                  embsr::InvalidArgument);

  // D != d_out: s_h is [B x d_out], not [B x D].
  const Params<M> wide(kWide, 72);
  Mat<M> Xw("Xw", sz(R), sz(kWide.D)), s_hw("s_hw", sz(B), sz(kWide.out)), s_hD("s_hD", sz(B), sz(kWide.D));
  CHECK_NOTHROW(embsr::soft_attention_readout_forward(Exec(), offsets, Xw, wide.refs(), none, s_hw, cache));
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), offsets, Xw, wide.refs(), none, s_hD, cache),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::soft_attention_readout_forward(Exec(), offsets, X, wide.refs(), none, s_hw, cache),
                  embsr::InvalidArgument);
}

}  // namespace test_soft_attention_readout
