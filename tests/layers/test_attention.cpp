// Operation-aware self-attention (star query only): forward against a host computation of MODEL.md
// 4.2, every gradient against central differences, with and without relations and dropout, and
// the argument checks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/data/example_set.hpp>
#include <embsr/batch/batch_builder.hpp>
#include <embsr/layers/attention.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_attention {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;
using IVec = std::vector<index_t>;
using DVec = std::vector<double>;
template <class M>
using Mat = Kokkos::View<double**, Kokkos::LayoutRight, M>;
template <class M>
using Vec = Kokkos::View<double*, Kokkos::LayoutRight, M>;

constexpr int kD = 5;
constexpr int kMaxLen = 6;             // L: positions has L + 1 rows
constexpr int kOpIds = 4;              // operations 0..2 and the [NEXT] id 3
constexpr double kAddTol = 1e-5;

// Sessions of 3, 1, 5 and 2 micro-behaviors (items < 10, operations < 3).
embsr::ExampleSet hand_examples() {
  embsr::ExampleSet set;
  set.add(IVec{5, 7, 5}, IVec{0, 1, 2}, 9, 1, 0, 0.0);
  set.add(IVec{3}, IVec{2}, 4, 0, 1, 1.0);
  set.add(IVec{7, 3, 7, 3, 8}, IVec{1, 0, 1, 2, 0}, 5, 2, 2, 2.0);
  set.add(IVec{2, 6}, IVec{2, 2}, 1, 1, 3, 3.0);
  return set;
}
const IVec kOp0{1, 3, 2, 0};  // session 1 uses the [NEXT] id

template <class M>
struct Layer {
  Mat<M> W_Q{"W_Q", kD, kD}, W_1{"W_1", kD, kD}, W_2{"W_2", kD, kD};
  Vec<M> b_Q{"b_Q", kD}, b_1{"b_1", kD}, b_2{"b_2", kD}, gamma{"gamma", kD}, beta{"beta", kD};
  Mat<M> P{"P", kMaxLen + 1, kD}, R{"R", kOpIds * kOpIds, kD};

  explicit Layer(std::uint64_t seed, bool random) {
    if (!random) return;
    embsr::test::fill_random(W_Q, seed + 1, 0.6);
    embsr::test::fill_random(W_1, seed + 2, 0.6);
    embsr::test::fill_random(W_2, seed + 3, 0.6);
    embsr::test::fill_random(b_Q, seed + 4, 0.3);
    embsr::test::fill_random(b_1, seed + 5, 0.3);
    embsr::test::fill_random(b_2, seed + 6, 0.3);
    embsr::test::fill_random(gamma, seed + 7, 0.5);
    embsr::test::fill_random(beta, seed + 8, 0.5);
    embsr::test::fill_random(P, seed + 9, 0.5);
    embsr::test::fill_random(R, seed + 10, 0.5);
  }
  embsr::AttentionParams<double, M> params() const {
    return embsr::AttentionParams<double, M>{W_Q, W_1, W_2, b_Q, b_1, b_2, gamma, beta, P, R};
  }
  std::vector<embsr::test::GradTarget<M>> targets(const Layer& grad) const {
    using embsr::test::flat;
    using embsr::test::to_vector;
    return {{"W_Q", flat(W_Q), to_vector(grad.W_Q)},       {"W_1", flat(W_1), to_vector(grad.W_1)},
            {"W_2", flat(W_2), to_vector(grad.W_2)},       {"b_Q", flat(b_Q), to_vector(grad.b_Q)},
            {"b_1", flat(b_1), to_vector(grad.b_1)},       {"b_2", flat(b_2), to_vector(grad.b_2)},
            {"ln_gamma", flat(gamma), to_vector(grad.gamma)}, {"ln_beta", flat(beta), to_vector(grad.beta)},
            {"positions", flat(P), to_vector(grad.P)},     {"relations", flat(R), to_vector(grad.R)}};
  }
};

// MODEL.md 4.2 for the star's query, written out directly on the host.
struct Reference {
  DVec out;    // [B x d]
  DVec alpha;  // [T + B]
};
Reference reference(const embsr::HostBatch& hb, const IVec& op0, const DVec& xs, const DVec& xm, const DVec& WQ,
                    const DVec& W1, const DVec& W2, const DVec& bQ, const DVec& b1, const DVec& b2, const DVec& gamma,
                    const DVec& beta, const DVec& P, const DVec& R, const embsr::AttentionOptions& opt) {
  const int d = kD;
  const auto B = static_cast<int>(hb.num_sessions());
  Reference ref;
  ref.out.assign(static_cast<std::size_t>(B * d), 0.0);
  ref.alpha.assign(static_cast<std::size_t>(hb.micro_offsets.back() + B), 0.0);
  auto at = [](const DVec& v, int i) { return v[static_cast<std::size_t>(i)]; };
  auto mask = [&](std::uint64_t site, int b, int k) {
    return opt.dropout.active() ? embsr::dropout_scale<double>(opt.dropout.site(site), opt.dropout.rate,
                                                               static_cast<std::uint64_t>(b), d, static_cast<std::uint64_t>(k))
                                : 1.0;
  };
  auto affine = [&](const DVec& W, const DVec& bias, const DVec& x) {  // W x + b, W [d x d]
    DVec y(static_cast<std::size_t>(d));
    for (int r = 0; r < d; ++r) {
      double s = at(bias, r);
      for (int c = 0; c < d; ++c) s += at(W, r * d + c) * x[static_cast<std::size_t>(c)];
      y[static_cast<std::size_t>(r)] = s;
    }
    return y;
  };
  for (int b = 0; b < B; ++b) {
    const int m0 = hb.micro_offsets[static_cast<std::size_t>(b)];
    const int t = hb.micro_offsets[static_cast<std::size_t>(b) + 1] - m0;
    const int o0 = op0[static_cast<std::size_t>(b)];
    DVec x0(xs.begin() + b * d, xs.begin() + (b + 1) * d);
    DVec q = affine(WQ, bQ, x0);
    for (int k = 0; k < d; ++k) q[static_cast<std::size_t>(k)] = std::max(0.0, q[static_cast<std::size_t>(k)]) * mask(0, b, k);
    std::vector<DVec> v(static_cast<std::size_t>(t + 1), DVec(static_cast<std::size_t>(d)));
    DVec e(static_cast<std::size_t>(t + 1));
    for (int j = 0; j <= t; ++j) {
      const int oj = j == 0 ? o0 : hb.micro_ops[static_cast<std::size_t>(m0 + j - 1)];
      const int r = o0 * kOpIds + oj;
      double s = 0;
      for (int k = 0; k < d; ++k) {
        const double x = j == 0 ? at(xs, b * d + k) : at(xm, (m0 + j - 1) * d + k);
        const double vk = x + at(P, j * d + k) + (opt.use_relations ? at(R, r * d + k) : 0.0);
        v[static_cast<std::size_t>(j)][static_cast<std::size_t>(k)] = vk;
        s += q[static_cast<std::size_t>(k)] * vk;
      }
      e[static_cast<std::size_t>(j)] = s / std::sqrt(static_cast<double>(d));
    }
    const double mx = *std::max_element(e.begin(), e.end());
    double sum = 0;
    for (double& ej : e) sum += (ej = std::exp(ej - mx));
    DVec z(static_cast<std::size_t>(d), 0.0);
    for (int j = 0; j <= t; ++j) {
      const double a = e[static_cast<std::size_t>(j)] / sum;
      ref.alpha[static_cast<std::size_t>(m0 + b + j)] = a;
      for (int k = 0; k < d; ++k) z[static_cast<std::size_t>(k)] += a * v[static_cast<std::size_t>(j)][static_cast<std::size_t>(k)];
    }
    DVec h = affine(W1, b1, z);
    for (double& hk : h) hk = std::max(0.0, hk);
    const DVec f = affine(W2, b2, h);
    DVec y(static_cast<std::size_t>(d));
    double mean = 0;
    for (int k = 0; k < d; ++k) {
      y[static_cast<std::size_t>(k)] = z[static_cast<std::size_t>(k)] + mask(1, b, k) * f[static_cast<std::size_t>(k)];
      mean += y[static_cast<std::size_t>(k)] / d;
    }
    double var = 0;
    for (double yk : y) var += (yk - mean) * (yk - mean) / d;
    for (int k = 0; k < d; ++k)
      ref.out[static_cast<std::size_t>(b * d + k)] =
          at(gamma, k) * (y[static_cast<std::size_t>(k)] - mean) / std::sqrt(var + 1e-5) + at(beta, k);
  }
  return ref;
}

template <class M>
Kokkos::View<index_t*, M> upload(const IVec& v) {
  Kokkos::View<index_t*, M> out("op0", v.size());
  auto h = Kokkos::create_mirror_view(out);
  for (std::size_t i = 0; i < v.size(); ++i) h(i) = v[i];
  Kokkos::deep_copy(out, h);
  return out;
}

embsr::AttentionOptions options(bool relations, bool dropout) {
  embsr::AttentionOptions opt;
  opt.num_op_ids = kOpIds;
  opt.use_relations = relations;
  opt.dropout.rate = 0.3;
  opt.dropout.seed = 1234;
  opt.dropout.step = 7;
  opt.dropout.training = dropout;
  return opt;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("attention: forward matches MODEL.md 4.2 and every gradient matches central differences",
                        "[layers][attention]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const auto set = hand_examples();
  embsr::BatchBuilder builder;
  const IVec ids{0, 1, 2, 3};
  const embsr::HostBatch hb = builder.build(set, ids);
  const auto batch = embsr::to_memory_space<M>(hb);
  const int B = 4, T = hb.micro_offsets.back();
  REQUIRE(T == 11);
  const auto op0 = upload<M>(kOp0);

  Layer<M> layer(100, true), grad(0, false);
  Mat<M> xs("xs", B, kD), xm("xm", T, kD), out("out", B, kD), R("R", B, kD);
  Mat<M> dxs("dxs", B, kD), dxm("dxm", T, kD);
  embsr::test::fill_random(xs, 21, 0.8);
  embsr::test::fill_random(xm, 22, 0.8);
  embsr::test::fill_random(R, 23);
  embsr::AttentionCache<double, M> cache;

  for (const bool relations : {true, false})
    for (const bool dropout : {false, true}) {
      CAPTURE(relations, dropout);
      const auto opt = options(relations, dropout);
      auto loss = [&] {
        embsr::attention_forward(Exec(), batch, op0, xs, xm, layer.params(), opt, out, cache);
        Kokkos::fence();
        return embsr::test::dot(out, R);
      };
      loss();

      // Forward and attention weights against the host computation.
      using embsr::test::to_vector;
      const Reference ref = reference(hb, kOp0, to_vector(xs), to_vector(xm), to_vector(layer.W_Q), to_vector(layer.W_1),
                                      to_vector(layer.W_2), to_vector(layer.b_Q), to_vector(layer.b_1),
                                      to_vector(layer.b_2), to_vector(layer.gamma), to_vector(layer.beta),
                                      to_vector(layer.P), to_vector(layer.R), opt);
      const auto got = to_vector(out), alpha = to_vector(cache.alpha);
      REQUIRE(got.size() == ref.out.size());
      REQUIRE(alpha.size() == ref.alpha.size());
      for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(ref.out[i]).epsilon(1e-12).margin(1e-12));
      for (std::size_t i = 0; i < alpha.size(); ++i) CHECK(alpha[i] == Approx(ref.alpha[i]).epsilon(1e-12).margin(1e-14));
      for (int b = 0; b < B; ++b) {  // each session's weights sum to 1
        double s = 0;
        for (int j = hb.micro_offsets[static_cast<std::size_t>(b)] + b; j < hb.micro_offsets[static_cast<std::size_t>(b) + 1] + b + 1; ++j)
          s += alpha[static_cast<std::size_t>(j)];
        CHECK(s == Approx(1.0).epsilon(1e-12));
      }
      // The same options in evaluation mode are the dropout-free function.
      if (dropout) {
        auto eval = opt;
        eval.dropout.training = false;
        embsr::attention_forward(Exec(), batch, op0, xs, xm, layer.params(), eval, out, cache);
        Kokkos::fence();
        const auto plain = to_vector(out);
        double diff = 0;
        for (std::size_t i = 0; i < plain.size(); ++i) diff = std::max(diff, std::abs(plain[i] - got[i]));
        CHECK(diff > 1e-3);  // rate 0.3 on 20 + 20 elements: some are dropped
        loss();
      }

      // Gradients (backward adds: zero first).
      for (auto* v : {&dxs, &dxm, &grad.W_Q, &grad.W_1, &grad.W_2, &grad.P, &grad.R}) Kokkos::deep_copy(*v, 0.0);
      for (auto* v : {&grad.b_Q, &grad.b_1, &grad.b_2, &grad.gamma, &grad.beta}) Kokkos::deep_copy(*v, 0.0);
      embsr::attention_backward(Exec(), batch, op0, xs, xm, layer.params(), opt, cache, R, dxs, dxm, grad.params());
      Kokkos::fence();
      auto targets = layer.targets(grad);
      targets.push_back({"xs", embsr::test::flat(xs), to_vector(dxs)});
      targets.push_back({"xm", embsr::test::flat(xm), to_vector(dxm)});
      const double worst = embsr::test::check_gradients<M>(loss, targets);
      CHECK(worst < 1e-6);
      if (!relations) {
        const auto gr = to_vector(grad.R);
        CHECK(std::all_of(gr.begin(), gr.end(), [](double x) { return x == 0.0; }));
      }
      // A second backward adds the same amounts again.
      // (grad.P and grad.R go through ScatterViews kept in the cache: the second call reuses them.)
      const auto once = to_vector(grad.P), dxm_once = to_vector(dxm), r_once = to_vector(grad.R);
      embsr::attention_backward(Exec(), batch, op0, xs, xm, layer.params(), opt, cache, R, dxs, dxm, grad.params());
      Kokkos::fence();
      const auto twice = to_vector(grad.P), dxm_twice = to_vector(dxm), r_twice = to_vector(grad.R);
      for (std::size_t i = 0; i < once.size(); ++i) CHECK(twice[i] == Approx(2 * once[i]).margin(kAddTol));
      for (std::size_t i = 0; i < r_once.size(); ++i) CHECK(r_twice[i] == Approx(2 * r_once[i]).margin(kAddTol));
      for (std::size_t i = 0; i < dxm_once.size(); ++i) CHECK(dxm_twice[i] == Approx(2 * dxm_once[i]).margin(kAddTol));
    }
}

TEMPLATE_LIST_TEST_CASE("attention: a session is computed the same whatever else is in the batch",
                        "[layers][attention]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const auto set = hand_examples();
  embsr::BatchBuilder builder;
  Layer<M> layer(200, true);
  const auto opt = options(true, false);
  // Session 2 alone vs. inside the full batch: the same inputs give the same output row.
  const embsr::HostBatch full_h = builder.build(set, IVec{0, 1, 2, 3});
  const embsr::HostBatch one_h = builder.build(set, IVec{2});
  const auto full = embsr::to_memory_space<M>(full_h);
  const auto one = embsr::to_memory_space<M>(one_h);
  Mat<M> xs("xs", 4, kD), xm("xm", 11, kD), out("out", 4, kD);
  embsr::test::fill_random(xs, 31);
  embsr::test::fill_random(xm, 32);
  Mat<M> xs1("xs1", 1, kD), xm1("xm1", 5, kD), out1("out1", 1, kD);
  Kokkos::deep_copy(xs1, Kokkos::subview(xs, std::make_pair(2, 3), Kokkos::ALL));
  Kokkos::deep_copy(xm1, Kokkos::subview(xm, std::make_pair(4, 9), Kokkos::ALL));
  embsr::AttentionCache<double, M> cache;
  embsr::attention_forward(Exec(), full, upload<M>(kOp0), xs, xm, layer.params(), opt, out, cache);
  Kokkos::fence();
  const auto a = embsr::test::to_vector(out);
  embsr::attention_forward(Exec(), one, upload<M>(IVec{kOp0[2]}), xs1, xm1, layer.params(), opt, out1, cache);
  Kokkos::fence();
  const auto b = embsr::test::to_vector(out1);
  for (int k = 0; k < kD; ++k) CHECK(b[static_cast<std::size_t>(k)] == Approx(a[static_cast<std::size_t>(2 * kD + k)]).epsilon(1e-13));
}

TEMPLATE_LIST_TEST_CASE("attention: argument checks", "[layers][attention]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  using Catch::Matchers::Contains;
  const auto set = hand_examples();
  embsr::BatchBuilder builder;
  const auto batch = embsr::to_memory_space<M>(builder.build(set, IVec{0, 1, 2, 3}));
  const auto op0 = upload<M>(kOp0);
  Layer<M> layer(300, true);
  Mat<M> xs("xs", 4, kD), xm("xm", 11, kD), out("out", 4, kD);
  embsr::AttentionCache<double, M> cache;
  const auto opt = options(true, false);

  // Session 2 has 5 micro-behaviors: a table of 4 positions (+ the star's) is too short.
  Mat<M> short_P("P", 5, kD);
  auto p = layer.params();
  p.positions = short_P;
  CHECK_THROWS_WITH(embsr::attention_forward(Exec(), batch, op0, xs, xm, p, opt, out, cache),
                    Contains("session 2") && Contains("5 micro-behaviors") && Contains("4 positions"));
  CHECK_THROWS_AS(embsr::attention_forward(Exec(), batch, op0, xs, xm, p, opt, out, cache), embsr::InvalidArgument);
  // Exactly L = 5 positions is enough.
  Mat<M> exact_P("P", 6, kD);
  p.positions = exact_P;
  CHECK_NOTHROW(embsr::attention_forward(Exec(), batch, op0, xs, xm, p, opt, out, cache));

  // Relation table of the wrong size (only checked with relations).
  p = layer.params();
  p.relations = embsr::MatRef<double, M>(layer.R.data(), 9, kD);
  CHECK_THROWS_WITH(embsr::attention_forward(Exec(), batch, op0, xs, xm, p, opt, out, cache), Contains("relations"));
  auto standard = opt;
  standard.use_relations = false;
  p.relations = embsr::MatRef<double, M>();
  CHECK_NOTHROW(embsr::attention_forward(Exec(), batch, op0, xs, xm, p, standard, out, cache));

  // Input shapes.
  Mat<M> bad_xm("xm", 10, kD);
  CHECK_THROWS_WITH(embsr::attention_forward(Exec(), batch, op0, xs, bad_xm, layer.params(), opt, out, cache), Contains("xm"));
  Mat<M> bad_W("W", kD, kD + 1);
  p = layer.params();
  p.W_1 = bad_W;
  CHECK_THROWS_WITH(embsr::attention_forward(Exec(), batch, op0, xs, xm, p, opt, out, cache), Contains("W_1"));

  // Backward with a cache from another batch.
  const auto small = embsr::to_memory_space<M>(builder.build(set, IVec{1}));
  Mat<M> xs1("xs1", 1, kD), xm1("xm1", 1, kD), out1("out1", 1, kD);
  embsr::attention_forward(Exec(), small, upload<M>(IVec{0}), xs1, xm1, layer.params(), opt, out1, cache);
  Layer<M> grad(0, false);
  CHECK_THROWS_AS(embsr::attention_backward(Exec(), batch, op0, xs, xm, layer.params(), opt, cache, out, xs, xm,
                                            grad.params()),
                  embsr::InvalidArgument);
}

}  // namespace test_attention
