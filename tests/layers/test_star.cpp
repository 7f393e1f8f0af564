// Star node (initial mean, star update): forwards against host references written from MODEL.md 3.4,
// central-difference gradients of every input and parameter, and per-session independence from the
// rest of the batch. (The highway of 3.5: test_highway.cpp.)
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch_builder.hpp>
#include <embsr/layers/star.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_star {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;
using IV = std::vector<index_t>;
using DV = std::vector<double>;

template <class M>
using Mat = embsr::Mat<double, M>;
template <class M>
using Vec = embsr::Vec<double, M>;

constexpr int kDim = 4;

// Sessions of 2, 1, 2, 4 and 3 distinct items (nodes).
embsr::ExampleSet examples() {
  embsr::ExampleSet set;
  set.add(IV{5, 5, 7, 5}, IV{0, 1, 0, 2}, 9, 1, 0, 0.0);     // 2 nodes
  set.add(IV{3}, IV{2}, 4, 0, 1, 1.0);                       // 1 node
  set.add(IV{7, 3, 7, 3}, IV{1, 1, 1, 1}, 5, 2, 2, 2.0);     // 2 nodes
  set.add(IV{1, 2, 3, 4, 2}, IV{0, 1, 2, 0, 1}, 6, 0, 3, 3.0);  // 4 nodes
  set.add(IV{8, 6, 8, 2}, IV{2, 0, 1, 1}, 1, 1, 4, 4.0);     // 3 nodes
  return set;
}

template <class M>
embsr::Batch<M> make_batch(const IV& ids) {
  embsr::BatchBuilder builder;
  const embsr::HostBatch host = builder.build(examples(), ids);
  return embsr::to_memory_space<M>(host);
}

IV host_offsets(const IV& ids) {
  embsr::BatchBuilder builder;
  return builder.build(examples(), ids).node_offsets;
}

// Four [d x d] weights and four [d] biases in one flat buffer, like a Parameters slice.
template <class M>
struct StarWeights {
  Vec<M> flat;
  embsr::StarParams<double, M> p;
  explicit StarWeights(const std::string& label) : flat(label, 4 * kDim * kDim + 4 * kDim) {
    double* base = flat.data();
    auto mat = [&](int k) { return embsr::MatRef<double, M>(base + k * kDim * kDim, kDim, kDim); };
    auto vec = [&](int k) { return embsr::VecRef<double, M>(base + 4 * kDim * kDim + k * kDim, kDim); };
    p.W_q1 = mat(0), p.W_k1 = mat(1), p.W_k2 = mat(2), p.W_q2 = mat(3);
    p.b_q1 = vec(0), p.b_k1 = vec(1), p.b_k2 = vec(2), p.b_q2 = vec(3);
  }
};

// Host helpers on flat row-major vectors.
double at(const DV& m, int r, int c, int cols) { return m[static_cast<std::size_t>(r * cols + c)]; }
// y = W x + b for a [d x d] W and a row x of `X`.
DV affine(const DV& W, const DV& b, const DV& X, int row) {
  DV y(kDim);
  for (int o = 0; o < kDim; ++o) {
    double acc = b[static_cast<std::size_t>(o)];
    for (int k = 0; k < kDim; ++k) acc += at(W, o, k, kDim) * at(X, row, k, kDim);
    y[static_cast<std::size_t>(o)] = acc;
  }
  return y;
}
double dotv(const DV& a, const DV& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// MODEL.md 3.4 on the host, session by session.
void star_reference(const IV& offsets, const DV& hh, const DV& st, const DV& Wq1, const DV& Wk1, const DV& Wk2,
                    const DV& Wq2, const DV& bq1, const DV& bk1, const DV& bk2, const DV& bq2, DV& h_next, DV& star_next) {
  const int B = static_cast<int>(offsets.size()) - 1, C = offsets.back();
  const double r = 1.0 / std::sqrt(double(kDim));
  h_next.assign(static_cast<std::size_t>(C * kDim), 0.0);
  star_next.assign(static_cast<std::size_t>(B * kDim), 0.0);
  for (int b = 0; b < B; ++b) {
    const DV k1 = affine(Wk1, bk1, st, b), q2 = affine(Wq2, bq2, st, b);
    std::vector<double> logits;
    for (int i = offsets[static_cast<std::size_t>(b)]; i < offsets[static_cast<std::size_t>(b) + 1]; ++i) {
      const double alpha = r * dotv(affine(Wq1, bq1, hh, i), k1);
      for (int j = 0; j < kDim; ++j)
        h_next[static_cast<std::size_t>(i * kDim + j)] = (1 - alpha) * at(hh, i, j, kDim) + alpha * at(st, b, j, kDim);
      logits.push_back(r * dotv(affine(Wk2, bk2, h_next, i), q2));
    }
    double m = logits[0], sum = 0;
    for (double l : logits) m = std::max(m, l);
    for (double& l : logits) sum += (l = std::exp(l - m));
    for (int i = offsets[static_cast<std::size_t>(b)], k = 0; i < offsets[static_cast<std::size_t>(b) + 1]; ++i, ++k)
      for (int j = 0; j < kDim; ++j)
        star_next[static_cast<std::size_t>(b * kDim + j)] += logits[static_cast<std::size_t>(k)] / sum * at(h_next, i, j, kDim);
  }
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("star_init: session means and gradients", "[layers][star]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const IV ids{0, 1, 2, 3, 4};
  const auto batch = make_batch<M>(ids);
  const IV off = host_offsets(ids);
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes;
  REQUIRE(B == 5);
  REQUIRE(C == 12);
  Mat<M> h0("h0", C, kDim), star0("star0", B, kDim), R("R", B, kDim), dh0("dh0", C, kDim);
  embsr::test::fill_random(h0, 1);
  embsr::test::fill_random(R, 2);
  auto loss = [&] {
    embsr::star_init_forward(Exec(), batch, h0, star0);
    Kokkos::fence();
    return embsr::test::dot(star0, R);
  };
  loss();
  const DV h = embsr::test::to_vector(h0), s = embsr::test::to_vector(star0);
  for (int b = 0; b < B; ++b)
    for (int j = 0; j < kDim; ++j) {
      double ref = 0;
      const int lo = off[static_cast<std::size_t>(b)], hi = off[static_cast<std::size_t>(b) + 1];
      for (int i = lo; i < hi; ++i) ref += at(h, i, j, kDim);
      CHECK(at(s, b, j, kDim) == Approx(ref / (hi - lo)).epsilon(1e-12));
    }
  embsr::test::fill_random(dh0, 3);  // the backward adds
  const DV before = embsr::test::to_vector(dh0);
  embsr::star_init_backward(Exec(), batch, R, dh0);
  Kokkos::fence();
  DV analytic = embsr::test::to_vector(dh0);
  for (std::size_t i = 0; i < analytic.size(); ++i) analytic[i] -= before[i];
  std::vector<embsr::test::GradTarget<M>> targets{{"h0", embsr::test::flat(h0), analytic}};
  embsr::test::check_gradients<M>(loss, targets);
}

TEMPLATE_LIST_TEST_CASE("star_update: forward against MODEL.md 3.4 and central-difference gradients", "[layers][star]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const IV ids{0, 1, 2, 3, 4};
  const auto batch = make_batch<M>(ids);
  const IV off = host_offsets(ids);
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes;
  Mat<M> h_hat("h_hat", C, kDim), star("star", B, kDim), h_next("h_next", C, kDim), star_next("star_next", B, kDim);
  Mat<M> R1("R1", C, kDim), R2("R2", B, kDim), dh_hat("dh_hat", C, kDim), dstar("dstar", B, kDim);
  StarWeights<M> w("weights"), gw("grads");
  embsr::test::fill_random(h_hat, 10);
  embsr::test::fill_random(star, 11);
  embsr::test::fill_random(w.flat, 12, 0.5);
  embsr::test::fill_random(R1, 13);
  embsr::test::fill_random(R2, 14);
  embsr::StarCache<double, M> cache;

  auto loss = [&] {
    embsr::star_update_forward(Exec(), batch, h_hat, star, w.p, h_next, star_next, cache);
    Kokkos::fence();
    return embsr::test::dot(h_next, R1) + embsr::test::dot(star_next, R2);
  };
  loss();

  // Forward against the host reference.
  DV ref_h, ref_s;
  auto v = [](const auto& x) { return embsr::test::to_vector(x); };
  star_reference(off, v(h_hat), v(star), v(w.p.W_q1), v(w.p.W_k1), v(w.p.W_k2), v(w.p.W_q2), v(w.p.b_q1), v(w.p.b_k1),
                 v(w.p.b_k2), v(w.p.b_q2), ref_h, ref_s);
  const DV got_h = v(h_next), got_s = v(star_next);
  REQUIRE(got_h.size() == ref_h.size());
  REQUIRE(got_s.size() == ref_s.size());
  for (std::size_t i = 0; i < ref_h.size(); ++i) CHECK(got_h[i] == Approx(ref_h[i]).epsilon(1e-12).margin(1e-12));
  for (std::size_t i = 0; i < ref_s.size(); ++i) CHECK(got_s[i] == Approx(ref_s[i]).epsilon(1e-12).margin(1e-12));
  // A one-node session's star is its (updated) node.
  for (int j = 0; j < kDim; ++j) CHECK(at(got_s, 1, j, kDim) == Approx(at(got_h, off[1], j, kDim)).epsilon(1e-12));

  // Backward: gradient buffers start non-zero, the backward adds.
  embsr::test::fill_random(dh_hat, 20);
  embsr::test::fill_random(dstar, 21);
  embsr::test::fill_random(gw.flat, 22);
  const DV dh0 = v(dh_hat), ds0 = v(dstar), gw0 = v(gw.flat);
  embsr::star_update_backward(Exec(), batch, h_hat, star, w.p, cache, R1, R2, dh_hat, dstar, gw.p);
  Kokkos::fence();
  auto added = [](const DV& now, const DV& before) {
    DV out(now);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] -= before[i];
    return out;
  };
  const DV g_flat = added(v(gw.flat), gw0);
  auto slice = [&](int begin, int count) {
    return DV(g_flat.begin() + begin, g_flat.begin() + begin + count);
  };
  const int dd = kDim * kDim, W = 4 * dd;
  auto flat = [](const auto& x) { return embsr::test::flat(x); };
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"h_hat", flat(h_hat), added(v(dh_hat), dh0)},
                         {"star", flat(star), added(v(dstar), ds0)},
                         {"W_q1", flat(w.p.W_q1), slice(0, dd)},
                         {"W_k1", flat(w.p.W_k1), slice(dd, dd)},
                         {"W_k2", flat(w.p.W_k2), slice(2 * dd, dd)},
                         {"W_q2", flat(w.p.W_q2), slice(3 * dd, dd)},
                         {"b_q1", flat(w.p.b_q1), slice(W, kDim)},
                         {"b_k1", flat(w.p.b_k1), slice(W + kDim, kDim)},
                         {"b_q2", flat(w.p.b_q2), slice(W + 3 * kDim, kDim)}};
  embsr::test::check_gradients<M>(loss, targets);

  // b_k2 shifts every logit of a session by the same amount, which the softmax ignores: its
  // gradient is zero (up to rounding), so compare absolute values instead of relative errors.
  const DV db_k2 = slice(W + 2 * kDim, kDim);
  const double h = 1e-5;
  for (int j = 0; j < kDim; ++j) {
    auto elem = Kokkos::subview(w.p.b_k2, j);
    double x = 0;
    Kokkos::deep_copy(x, elem);
    Kokkos::deep_copy(elem, x + h);
    const double lp = loss();
    Kokkos::deep_copy(elem, x - h);
    const double lm = loss();
    Kokkos::deep_copy(elem, x);
    CHECK(std::abs(db_k2[static_cast<std::size_t>(j)]) < 1e-12);
    CHECK(std::abs((lp - lm) / (2 * h)) < 1e-8);
  }
}

TEMPLATE_LIST_TEST_CASE("star: a session's outputs and gradients do not depend on the rest of the batch",
                        "[layers][star]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  StarWeights<M> w("weights");
  embsr::test::fill_random(w.flat, 30, 0.5);
  // Per-example node states and incoming star: a function of (example, row), whatever the batch.
  auto node_value = [](index_t ex, int node, int j) { return std::sin(1.3 * ex + 0.7 * node + 0.31 * j + 0.1); };
  auto star_value = [](index_t ex, int j) { return std::cos(0.9 * ex + 0.43 * j); };

  struct Result {
    IV off;
    DV star0, h_next, star_next, dh_hat, dstar;
  };
  embsr::StarCache<double, M> cache;  // shared by all runs: exercises growing and shrinking
  auto run = [&](const IV& ids) {
    const auto batch = make_batch<M>(ids);
    Result res;
    res.off = host_offsets(ids);
    const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes;
    Mat<M> h("h", C, kDim), s("s", B, kDim), star0("star0", B, kDim), hn("hn", C, kDim), sn("sn", B, kDim);
    Mat<M> dhn("dhn", C, kDim), dsn("dsn", B, kDim), dh("dh", C, kDim), ds("ds", B, kDim);
    StarWeights<M> gw("grads");
    auto hh = Kokkos::create_mirror_view(h), hs = Kokkos::create_mirror_view(s);
    auto hdhn = Kokkos::create_mirror_view(dhn), hdsn = Kokkos::create_mirror_view(dsn);
    for (int b = 0; b < B; ++b) {
      const index_t ex = ids[static_cast<std::size_t>(b)];
      for (int j = 0; j < kDim; ++j) {
        hs(b, j) = star_value(ex, j);
        hdsn(b, j) = star_value(ex + 7, j);
      }
      const int lo = res.off[static_cast<std::size_t>(b)], hi = res.off[static_cast<std::size_t>(b) + 1];
      for (int i = lo; i < hi; ++i)
        for (int j = 0; j < kDim; ++j) {
          hh(i, j) = node_value(ex, i - lo, j);
          hdhn(i, j) = node_value(ex + 11, i - lo, j);
        }
    }
    Kokkos::deep_copy(h, hh);
    Kokkos::deep_copy(s, hs);
    Kokkos::deep_copy(dhn, hdhn);
    Kokkos::deep_copy(dsn, hdsn);
    embsr::star_init_forward(Exec(), batch, h, star0);
    embsr::star_update_forward(Exec(), batch, h, s, w.p, hn, sn, cache);
    embsr::star_update_backward(Exec(), batch, h, s, w.p, cache, dhn, dsn, dh, ds, gw.p);
    Kokkos::fence();
    res.star0 = embsr::test::to_vector(star0);
    res.h_next = embsr::test::to_vector(hn);
    res.star_next = embsr::test::to_vector(sn);
    res.dh_hat = embsr::test::to_vector(dh);
    res.dstar = embsr::test::to_vector(ds);
    return res;
  };
  const Result full = run(IV{0, 1, 2, 3, 4});
  // Compare session `b_small` of `small` with session `b_full` of `full`.
  auto same_session = [&](const Result& small, int b_small, int b_full) {
    INFO("session " << b_full);
    for (int j = 0; j < kDim; ++j) {
      CHECK(at(small.star0, b_small, j, kDim) == Approx(at(full.star0, b_full, j, kDim)).epsilon(1e-13));
      CHECK(at(small.star_next, b_small, j, kDim) == Approx(at(full.star_next, b_full, j, kDim)).epsilon(1e-13));
      CHECK(at(small.dstar, b_small, j, kDim) == Approx(at(full.dstar, b_full, j, kDim)).epsilon(1e-13));
    }
    const int n = small.off[static_cast<std::size_t>(b_small) + 1] - small.off[static_cast<std::size_t>(b_small)];
    REQUIRE(n == full.off[static_cast<std::size_t>(b_full) + 1] - full.off[static_cast<std::size_t>(b_full)]);
    for (int k = 0; k < n; ++k)
      for (int j = 0; j < kDim; ++j) {
        const int is = small.off[static_cast<std::size_t>(b_small)] + k, ifull = full.off[static_cast<std::size_t>(b_full)] + k;
        CHECK(at(small.h_next, is, j, kDim) == Approx(at(full.h_next, ifull, j, kDim)).epsilon(1e-13));
        CHECK(at(small.dh_hat, is, j, kDim) == Approx(at(full.dh_hat, ifull, j, kDim)).epsilon(1e-13));
      }
  };
  const Result alone = run(IV{3});
  same_session(alone, 0, 3);
  const Result pair = run(IV{4, 1});
  same_session(pair, 0, 4);
  same_session(pair, 1, 1);
  const Result shuffled = run(IV{2, 4, 0, 3, 1});
  for (int b = 0; b < 5; ++b) same_session(shuffled, b, IV{2, 4, 0, 3, 1}[static_cast<std::size_t>(b)]);
}

TEST_CASE("star: shape mismatches are rejected", "[layers][star]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const auto batch = make_batch<M>(IV{0, 1});
  Mat<M> h("h", 3, kDim), bad("bad", 2, kDim), s("s", 2, kDim);
  CHECK_THROWS_AS(embsr::star_init_forward(Exec(), batch, bad, s), embsr::InvalidArgument);
  StarWeights<M> w("weights");
  embsr::StarCache<double, M> cache;
  Mat<M> hn("hn", 3, kDim), sn("sn", 2, kDim);
  CHECK_NOTHROW(embsr::star_update_forward(Exec(), batch, h, s, w.p, hn, sn, cache));
  Mat<M> s3("s3", 3, kDim);
  CHECK_THROWS_AS(embsr::star_update_forward(Exec(), batch, h, s3, w.p, hn, sn, cache), embsr::InvalidArgument);
}

}  // namespace test_star
