// GC-SAN's self-attention block (Xu et al., IJCAI 2019, Sec. 3.3; docs/GRAPH_MODELS.md section 3),
// layers/self_attention_block.hpp: the forward against a host computation of the equations,
// central-difference gradients of every coordinate of X and of the seven parameters, that the
// backward adds (twice doubles), that dX may be empty, session independence, sessions of length 1
// and 0, an empty batch, and shape / offset checks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>
#include <embsr/layers/self_attention_block.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_self_attention_block {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;
using IV = std::vector<index_t>;
using DV = std::vector<double>;

template <class M>
using Mat = embsr::Mat<double, M>;
template <class M>
using Vec = embsr::Vec<double, M>;
template <class M>
using Offsets = Kokkos::View<index_t*, M>;

constexpr int kDim = 3;  // not a power of 2: 1 / sqrt(d) is not exact

std::size_t at(int r, int cols, int c) { return static_cast<std::size_t>(r * cols + c); }

// Sessions of 3, 1, 0, 5 and 2 rows (an empty session in the middle owns no rows).
const IV kLengths{3, 1, 0, 5, 2};

IV offsets_of(const IV& lengths) {
  IV off{0};
  for (const index_t n : lengths) off.push_back(off.back() + n);
  return off;
}

template <class M>
Offsets<M> upload_offsets(const IV& off) {
  return embsr::test::to_ids<M>(off);
}

template <class V>
void copy_in(const V& v, const DV& values) {
  auto f = embsr::test::flat(v);
  auto h = Kokkos::create_mirror_view(f);
  REQUIRE(h.extent(0) == values.size());
  for (std::size_t i = 0; i < values.size(); ++i) h(i) = values[i];
  Kokkos::deep_copy(f, h);
}

DV random_values(std::size_t n, unsigned seed, double scale = 1.0) {
  Vec<Kokkos::HostSpace> v("v", n);
  embsr::test::fill_random(v, seed, scale);
  return embsr::test::to_vector(v);
}

// The parameters (or their gradient buffers), in one memory space.
template <class M>
struct Params {
  Mat<M> W_Q{"W_Q", kDim, kDim}, W_K{"W_K", kDim, kDim}, W_V{"W_V", kDim, kDim}, W_1{"W_1", kDim, kDim},
      W_2{"W_2", kDim, kDim};
  Vec<M> b_1{"b_1", kDim}, b_2{"b_2", kDim};

  explicit Params(unsigned seed) {
    // Q and K large enough that the attention weights are far from uniform.
    embsr::test::fill_random(W_Q, seed + 1, 1.0);
    embsr::test::fill_random(W_K, seed + 2, 1.0);
    embsr::test::fill_random(W_V, seed + 3, 0.7);
    embsr::test::fill_random(W_1, seed + 4, 0.7);
    embsr::test::fill_random(b_1, seed + 5, 0.3);
    embsr::test::fill_random(W_2, seed + 6, 0.7);
    embsr::test::fill_random(b_2, seed + 7, 0.5);
  }
  embsr::SelfAttentionBlockParams<double, M> refs() const { return {W_Q, W_K, W_V, W_1, b_1, W_2, b_2}; }
};

// Host copies of the parameters (row-major, flat), in the params struct's order.
struct HostParams {
  DV W_Q, W_K, W_V, W_1, b_1, W_2, b_2;
  template <class M>
  explicit HostParams(const Params<M>& p)
      : W_Q(embsr::test::to_vector(p.W_Q)), W_K(embsr::test::to_vector(p.W_K)), W_V(embsr::test::to_vector(p.W_V)),
        W_1(embsr::test::to_vector(p.W_1)), b_1(embsr::test::to_vector(p.b_1)), W_2(embsr::test::to_vector(p.W_2)),
        b_2(embsr::test::to_vector(p.b_2)) {}
  std::vector<const DV*> all() const { return {&W_Q, &W_K, &W_V, &W_1, &b_1, &W_2, &b_2}; }
};
const char* const kNames[7] = {"W_Q", "W_K", "W_V", "W_1", "b_1", "W_2", "b_2"};

// y = W x (+ b), W [d x d] row-major.
DV mat_vec(const DV& W, const double* x, const DV* b = nullptr) {
  DV y(kDim, 0.0);
  for (int o = 0; o < kDim; ++o) {
    double s = b != nullptr ? (*b)[static_cast<std::size_t>(o)] : 0.0;
    for (int k = 0; k < kDim; ++k) s += W[at(o, kDim, k)] * x[k];
    y[static_cast<std::size_t>(o)] = s;
  }
  return y;
}

// The block's equations on the host, session by session, written out row by row: Y [R x d].
DV reference(const IV& off, const DV& X, const HostParams& p) {
  const int B = static_cast<int>(off.size()) - 1, d = kDim;
  DV Y(X.size(), 0.0);
  for (int b = 0; b < B; ++b) {
    const int s = off[static_cast<std::size_t>(b)], n = off[static_cast<std::size_t>(b) + 1] - s;
    std::vector<DV> q, k, v;
    for (int i = 0; i < n; ++i) {
      const double* x = &X[at(s + i, d, 0)];
      q.push_back(mat_vec(p.W_Q, x));
      k.push_back(mat_vec(p.W_K, x));
      v.push_back(mat_vec(p.W_V, x));
    }
    for (int i = 0; i < n; ++i) {
      DV a(static_cast<std::size_t>(n));
      for (int j = 0; j < n; ++j) {
        const DV &qi = q[static_cast<std::size_t>(i)], &kj = k[static_cast<std::size_t>(j)];
        double dot = 0;
        for (std::size_t c = 0; c < static_cast<std::size_t>(d); ++c) dot += qi[c] * kj[c];
        a[static_cast<std::size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
      }
      double z = 0;
      for (const double x : a) z += std::exp(x);  // no max shift: the reference stays the plain formula
      DV f(d, 0.0);
      for (std::size_t j = 0; j < static_cast<std::size_t>(n); ++j)
        for (std::size_t c = 0; c < static_cast<std::size_t>(d); ++c) f[c] += std::exp(a[j]) / z * v[j][c];
      DV h = mat_vec(p.W_1, f.data(), &p.b_1);
      for (double& x : h) x = std::max(x, 0.0);
      const DV y = mat_vec(p.W_2, h.data(), &p.b_2);
      for (int c = 0; c < d; ++c) Y[at(s + i, d, c)] = y[static_cast<std::size_t>(c)] + f[static_cast<std::size_t>(c)];
    }
  }
  return Y;
}

DV added(const DV& now, const DV& before) {
  DV out(now);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] -= before[i];
  return out;
}

// Forward + backward with loss <Y, Rm>: Y, the increment of dX and of the seven parameter gradients
// (every buffer pre-filled with random values). `with_dx` false passes an empty dX.
struct Run {
  DV Y, dX;
  std::vector<DV> grads;  // in kNames order
};

template <class Exec>
Run forward_backward(const IV& off, const DV& X_host, const DV& R_host, const Params<typename Exec::memory_space>& p,
                     bool with_dx = true) {
  using M = typename Exec::memory_space;
  const int R = off.back();
  const auto offsets = upload_offsets<M>(off);
  Mat<M> X("X", R, kDim), Y("Y", R, kDim), Rm("R", R, kDim), dX("dX", R, kDim);
  copy_in(X, X_host);
  copy_in(Rm, R_host);
  Params<M> g(900);
  embsr::test::fill_random(dX, 901);
  const DV dX0 = embsr::test::to_vector(dX);
  const HostParams g0(g);
  embsr::SelfAttentionBlockCache<double, M> cache;
  embsr::self_attention_block_forward(Exec(), offsets, X, p.refs(), Y, cache);
  if (with_dx) embsr::self_attention_block_backward(Exec(), offsets, X, p.refs(), cache, Rm, dX, g.refs());
  else embsr::self_attention_block_backward(Exec(), offsets, X, p.refs(), cache, Rm, Mat<M>(), g.refs());
  Kokkos::fence();
  const HostParams g1(g);
  Run run{embsr::test::to_vector(Y), added(embsr::test::to_vector(dX), dX0), {}};
  for (std::size_t t = 0; t < 7; ++t) run.grads.push_back(added(*g1.all()[t], *g0.all()[t]));
  return run;
}

void same(const char* name, const DV& a, const DV& b, double eps) {
  INFO(name);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("[" << i << "]");
    CHECK(a[i] == Approx(b[i]).epsilon(eps).margin(eps));
  }
}

}  // namespace

// ------------------------------------------------------------------------------------ forward + gradients

TEMPLATE_LIST_TEST_CASE("self_attention_block: forward against the GC-SAN equations and central-difference gradients",
                        "[layers][self_attention_block]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const IV off = offsets_of(kLengths);
  const int R = off.back();
  const auto offsets = upload_offsets<M>(off);
  Params<M> p(10);
  Params<M> g(20);  // gradient buffers, pre-filled: the backward adds
  Mat<M> X("X", R, kDim), Y("Y", R, kDim), Rm("R", R, kDim), dX("dX", R, kDim);
  embsr::test::fill_random(X, 30);
  embsr::test::fill_random(Rm, 31);
  embsr::test::fill_random(dX, 32);
  embsr::SelfAttentionBlockCache<double, M> cache;
  auto loss = [&] {
    embsr::self_attention_block_forward(Exec(), offsets, X, p.refs(), Y, cache);
    Kokkos::fence();
    return embsr::test::dot(Y, Rm);
  };
  loss();

  const DV want = reference(off, embsr::test::to_vector(X), HostParams(p));
  const DV got = embsr::test::to_vector(Y);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("Y[" << i << "]");
    CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));
  }

  // The test is about what it claims: attention far from uniform, the ReLU both open and shut
  // (and no pre-activation within reach of the finite-difference step), the cache's P of size
  // sum n_b^2 with rows summing to 1.
  const DV pre = embsr::test::to_vector(cache.pre);
  REQUIRE(pre.size() == static_cast<std::size_t>(R * kDim));
  int open = 0, shut = 0;
  for (const double x : pre) {
    open += x > 0;
    shut += x <= 0;
    CHECK(std::abs(x) > 1e-3);
  }
  CHECK(open >= 5);
  CHECK(shut >= 5);
  const DV P = embsr::test::to_vector(cache.P);
  REQUIRE(cache.num_scores == 9u + 1u + 0u + 25u + 4u);
  REQUIRE(P.size() >= cache.num_scores);
  double spread = 0;
  for (std::size_t base = 9 + 1, r = 0; r < 5; ++r) {  // session 3 (5 rows) starts after 3^2 + 1^2 + 0^2
    double sum = 0, lo = 1, hi = 0;
    for (std::size_t j = 0; j < 5; ++j) {
      const double x = P[base + r * 5 + j];
      sum += x;
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
    CHECK(sum == Approx(1.0).epsilon(1e-14));
    spread = std::max(spread, hi - lo);
  }
  CHECK(spread > 0.3);

  const HostParams g0(g);
  const DV dX0 = embsr::test::to_vector(dX);
  embsr::self_attention_block_backward(Exec(), offsets, X, p.refs(), cache, Rm, dX, g.refs());
  Kokkos::fence();
  const HostParams g1(g);
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"X", embsr::test::flat(X), added(embsr::test::to_vector(dX), dX0)},
                         {"W_Q", embsr::test::flat(p.W_Q), added(g1.W_Q, g0.W_Q)},
                         {"W_K", embsr::test::flat(p.W_K), added(g1.W_K, g0.W_K)},
                         {"W_V", embsr::test::flat(p.W_V), added(g1.W_V, g0.W_V)},
                         {"W_1", embsr::test::flat(p.W_1), added(g1.W_1, g0.W_1)},
                         {"b_1", embsr::test::flat(p.b_1), added(g1.b_1, g0.b_1)},
                         {"W_2", embsr::test::flat(p.W_2), added(g1.W_2, g0.W_2)},
                         {"b_2", embsr::test::flat(p.b_2), added(g1.b_2, g0.b_2)}};
  embsr::test::check_gradients<M>(loss, targets);

  // A second forward reuses the cache and gives the same values; so does a second backward.
  loss();
  const DV before = embsr::test::to_vector(Y);
  loss();
  CHECK(embsr::test::to_vector(Y) == before);
  Kokkos::deep_copy(dX, 0.0);
  embsr::self_attention_block_backward(Exec(), offsets, X, p.refs(), cache, Rm, dX, g.refs());
  Kokkos::fence();
  const DV dX1 = embsr::test::to_vector(dX);
  Kokkos::deep_copy(dX, 0.0);
  embsr::self_attention_block_backward(Exec(), offsets, X, p.refs(), cache, Rm, dX, g.refs());
  Kokkos::fence();
  CHECK(embsr::test::to_vector(dX) == dX1);
}

// ------------------------------------------------------------------------------------ the backward adds

TEMPLATE_LIST_TEST_CASE("self_attention_block: the backward adds into its gradients, and dX may be empty",
                        "[layers][self_attention_block]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const IV off = offsets_of(kLengths);
  const int R = off.back();
  const auto offsets = upload_offsets<M>(off);
  const Params<M> p(40);
  Params<M> g(41);
  Mat<M> X("X", R, kDim), Y("Y", R, kDim), Rm("R", R, kDim), dX("dX", R, kDim);
  embsr::test::fill_random(X, 42);
  embsr::test::fill_random(Rm, 43);
  embsr::SelfAttentionBlockCache<double, M> cache;
  embsr::self_attention_block_forward(Exec(), offsets, X, p.refs(), Y, cache);
  Kokkos::fence();
  const HostParams g0(g);
  embsr::self_attention_block_backward(Exec(), offsets, X, p.refs(), cache, Rm, dX, g.refs());
  Kokkos::fence();
  const HostParams g1(g);
  const DV dX1 = embsr::test::to_vector(dX);
  embsr::self_attention_block_backward(Exec(), offsets, X, p.refs(), cache, Rm, dX, g.refs());
  Kokkos::fence();
  const HostParams g2(g);
  const DV dX2 = embsr::test::to_vector(dX);
  for (std::size_t t = 0; t < 7; ++t) {
    const DV once = added(*g1.all()[t], *g0.all()[t]), twice = added(*g2.all()[t], *g0.all()[t]);
    DV doubled(once);
    double norm = 0;
    for (double& x : doubled) {
      norm += x * x;
      x *= 2;
    }
    CHECK(norm > 1e-6);  // a gradient that is there to double
    same(kNames[t], twice, doubled, 1e-12);
  }
  DV dX_doubled(dX1);
  for (double& x : dX_doubled) x *= 2;
  same("dX", dX2, dX_doubled, 1e-12);

  // An empty dX: the same parameter gradients, nothing else written.
  const DV Xh = embsr::test::to_vector(X), Rh = embsr::test::to_vector(Rm);
  const Run with = forward_backward<Exec>(off, Xh, Rh, p, true);
  const Run without = forward_backward<Exec>(off, Xh, Rh, p, false);
  for (std::size_t t = 0; t < 7; ++t) CHECK(with.grads[t] == without.grads[t]);
  for (const double x : without.dX) CHECK(x == 0.0);
  same("dX after one backward", with.dX, dX1, 1e-12);
}

// ------------------------------------------------------------------------------------ session independence

TEMPLATE_LIST_TEST_CASE("self_attention_block: a session's output and gradients do not depend on the rest of the batch",
                        "[layers][self_attention_block]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const IV off = offsets_of(kLengths);
  const int R = off.back(), B = static_cast<int>(kLengths.size());
  const DV X = random_values(static_cast<std::size_t>(R * kDim), 50);
  const DV Rv = random_values(static_cast<std::size_t>(R * kDim), 51);
  const Params<M> p(52);
  const Run all = forward_backward<Exec>(off, X, Rv, p);

  std::vector<DV> sum(7, DV(kDim * kDim, 0.0));
  sum[4].assign(kDim, 0.0);
  sum[6].assign(kDim, 0.0);
  for (int b = 0; b < B; ++b) {
    INFO("session " << b << " (" << kLengths[static_cast<std::size_t>(b)] << " rows)");
    const int s = off[static_cast<std::size_t>(b)], e = off[static_cast<std::size_t>(b) + 1];
    const DV Xb(X.begin() + s * kDim, X.begin() + e * kDim), Rb(Rv.begin() + s * kDim, Rv.begin() + e * kDim);
    const Run r = forward_backward<Exec>(IV{0, e - s}, Xb, Rb, p);
    same("Y", r.Y, DV(all.Y.begin() + s * kDim, all.Y.begin() + e * kDim), 1e-13);
    same("dX", r.dX, DV(all.dX.begin() + s * kDim, all.dX.begin() + e * kDim), 1e-13);
    for (std::size_t t = 0; t < 7; ++t)
      for (std::size_t i = 0; i < sum[t].size(); ++i) sum[t][i] += r.grads[t][i];
  }
  for (std::size_t t = 0; t < 7; ++t) same(kNames[t], sum[t], all.grads[t], 1e-12);

  // The same session among different neighbours (shuffled order, one extra session): same rows.
  const IV off2 = offsets_of(IV{2, 5, 4});
  DV X2 = random_values(static_cast<std::size_t>(off2.back() * kDim), 53);
  const DV R2 = random_values(static_cast<std::size_t>(off2.back() * kDim), 54);
  std::copy(X.begin() + off[3] * kDim, X.begin() + off[4] * kDim, X2.begin() + 2 * kDim);  // session 3 (5 rows) at rows 2..6
  const Run r2 = forward_backward<Exec>(off2, X2, R2, p);
  same("Y of session 3 elsewhere", DV(r2.Y.begin() + 2 * kDim, r2.Y.begin() + 7 * kDim),
       DV(all.Y.begin() + off[3] * kDim, all.Y.begin() + off[4] * kDim), 1e-13);
}

// ------------------------------------------------------------------------------------ length 1, empty batch

TEMPLATE_LIST_TEST_CASE("self_attention_block: a session of length 1 and an empty batch", "[layers][self_attention_block]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const Params<M> p(60);
  const HostParams hp(p);
  {
    // One row: P = [1], F = V = W_V x, Y = relu(W_1 F + b_1) W_2^T + b_2 + F; W_Q and W_K get no gradient.
    const DV X = random_values(kDim, 61), Rv = random_values(kDim, 62);
    const Run r = forward_backward<Exec>(IV{0, 1}, X, Rv, p);
    const DV f = mat_vec(hp.W_V, X.data());
    DV h = mat_vec(hp.W_1, f.data(), &hp.b_1);
    for (double& x : h) x = std::max(x, 0.0);
    const DV y = mat_vec(hp.W_2, h.data(), &hp.b_2);
    for (int c = 0; c < kDim; ++c)
      CHECK(r.Y[static_cast<std::size_t>(c)] == Approx(y[static_cast<std::size_t>(c)] + f[static_cast<std::size_t>(c)]).epsilon(1e-13));
    for (const double x : r.grads[0]) CHECK(x == 0.0);
    for (const double x : r.grads[1]) CHECK(x == 0.0);
    for (int c = 0; c < kDim; ++c) CHECK(r.grads[6][static_cast<std::size_t>(c)] == Approx(Rv[static_cast<std::size_t>(c)]).epsilon(1e-14));
  }
  {
    // B = 0, R = 0: nothing to compute, no gradient added (with and without dX).
    const Run r = forward_backward<Exec>(IV{0}, DV{}, DV{}, p);
    CHECK(r.Y.empty());
    CHECK(r.dX.empty());
    for (const DV& grad : r.grads)
      for (const double x : grad) CHECK(x == 0.0);
    const Run r2 = forward_backward<Exec>(IV{0}, DV{}, DV{}, p, false);
    for (const DV& grad : r2.grads)
      for (const double x : grad) CHECK(x == 0.0);
  }
  {
    // Only empty sessions: R = 0 with B = 3.
    const Run r = forward_backward<Exec>(IV{0, 0, 0, 0}, DV{}, DV{}, p);
    CHECK(r.Y.empty());
    for (const DV& grad : r.grads)
      for (const double x : grad) CHECK(x == 0.0);
  }
}

// ------------------------------------------------------------------------------------ shapes

TEST_CASE("self_attention_block: bad shapes and offsets are rejected", "[layers][self_attention_block]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const IV off = offsets_of(IV{2, 1, 3});
  const int R = off.back(), d = kDim;
  const auto offsets = upload_offsets<M>(off);
  const Params<M> params(70), grads(71);
  const auto p = params.refs(), g = grads.refs();
  Mat<M> X("X", R, d), Y("Y", R, d), dX("dX", R, d);
  embsr::test::fill_random(X, 72);
  Mat<M> X_cols("X_cols", R, d + 1), Y_rows("Y_rows", R + 1, d), Y_cols("Y_cols", R, d - 1), dX_rows("dX_rows", R - 1, d),
      dX_cols("dX_cols", R, d + 1);
  Mat<M> sq_bad("sq_bad", d, d + 1), sq_rows("sq_rows", d + 1, d);
  Vec<M> v_bad("v_bad", d - 1);
  embsr::SelfAttentionBlockCache<double, M> cache;
  CHECK_NOTHROW(embsr::self_attention_block_forward(Exec(), offsets, X, p, Y, cache));
  CHECK_THROWS_AS(embsr::self_attention_block_forward(Exec(), offsets, X, p, Y_rows, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::self_attention_block_forward(Exec(), offsets, X, p, Y_cols, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::self_attention_block_forward(Exec(), offsets, X_cols, p, Y, cache), embsr::InvalidArgument);
  // Y aliasing X, or a window of it.
  CHECK_THROWS_AS(embsr::self_attention_block_forward(Exec(), offsets, X, p, X, cache), embsr::InvalidArgument);
  Mat<M> big("big", 2 * R, d);
  const embsr::MatRef<double, M> lower(big.data(), R, d), upper(big.data() + d, R, d), apart(big.data() + R * d, R, d);
  CHECK_THROWS_AS(embsr::self_attention_block_forward(Exec(), offsets, lower, p, upper, cache), embsr::InvalidArgument);
  CHECK_NOTHROW(embsr::self_attention_block_forward(Exec(), offsets, lower, p, apart, cache));

  // Offsets that do not describe the rows of X.
  for (const IV& bad : {IV{0, 2, 3, 5}, IV{0, 2, 3, 7}, IV{1, 2, 3, 6}, IV{0, 3, 2, 6}, IV{}}) {
    INFO("offsets of length " << bad.size());
    CHECK_THROWS_AS(embsr::self_attention_block_forward(Exec(), upload_offsets<M>(bad), X, p, Y, cache),
                    embsr::InvalidArgument);
  }

  // Each parameter of the wrong shape, in turn.
  std::vector<embsr::SelfAttentionBlockParams<double, M>> bad(9, p);
  bad[0].W_Q = sq_bad;
  bad[1].W_K = sq_rows;
  bad[2].W_V = sq_bad;
  bad[3].W_1 = sq_rows;
  bad[4].b_1 = v_bad;
  bad[5].W_2 = sq_bad;
  bad[6].b_2 = v_bad;
  bad[7].b_1 = embsr::VecRef<double, M>();
  bad[8].W_Q = embsr::MatRef<double, M>();
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("parameter case " << i);
    CHECK_THROWS_AS(embsr::self_attention_block_forward(Exec(), offsets, X, bad[i], Y, cache), embsr::InvalidArgument);
  }

  // The backward checks dY, dX, the parameters, the gradients and the cache.
  embsr::self_attention_block_forward(Exec(), offsets, X, p, Y, cache);
  CHECK_NOTHROW(embsr::self_attention_block_backward(Exec(), offsets, X, p, cache, Y, dX, g));
  CHECK_NOTHROW(embsr::self_attention_block_backward(Exec(), offsets, X, p, cache, Y, Mat<M>(), g));
  CHECK_THROWS_AS(embsr::self_attention_block_backward(Exec(), offsets, X, p, cache, Y_rows, dX, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::self_attention_block_backward(Exec(), offsets, X, p, cache, Y_cols, dX, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::self_attention_block_backward(Exec(), offsets, X, p, cache, Y, dX_rows, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::self_attention_block_backward(Exec(), offsets, X, p, cache, Y, dX_cols, g), embsr::InvalidArgument);
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("parameter case " << i);
    CHECK_THROWS_AS(embsr::self_attention_block_backward(Exec(), offsets, X, bad[i], cache, Y, dX, g), embsr::InvalidArgument);
    CHECK_THROWS_AS(embsr::self_attention_block_backward(Exec(), offsets, X, p, cache, Y, dX, bad[i]), embsr::InvalidArgument);
  }
  embsr::SelfAttentionBlockCache<double, M> fresh;
  CHECK_THROWS_AS(embsr::self_attention_block_backward(Exec(), offsets, X, p, fresh, Y, dX, g), embsr::InvalidArgument);
  // A cache of another batch: other rows, other sessions.
  Mat<M> X1("X1", 2, d), Y1("Y1", 2, d);
  embsr::self_attention_block_forward(Exec(), upload_offsets<M>(IV{0, 2}), X1, p, Y1, fresh);
  CHECK_THROWS_AS(embsr::self_attention_block_backward(Exec(), offsets, X, p, fresh, Y, dX, g), embsr::InvalidArgument);
  embsr::self_attention_block_forward(Exec(), upload_offsets<M>(IV{0, 6}), X, p, Y, fresh);
  CHECK_THROWS_AS(embsr::self_attention_block_backward(Exec(), offsets, X, p, fresh, Y, dX, g), embsr::InvalidArgument);
}

}  // namespace test_self_attention_block
