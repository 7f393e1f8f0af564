// GRU over operation runs (MODEL.md 3.1): forward against a per-run host loop written from the
// formulas, and central-difference gradients of x and every weight, on ragged batches mixing run
// lengths 1..4 (so the packed step order the batch carries is exercised), with d_in != d and d_in == d.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/data/example_set.hpp>
#include <embsr/batch/batch_builder.hpp>
#include <embsr/layers/gru.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_gru {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using V = std::vector<embsr::index_t>;
template <class M>
using Mat = Kokkos::View<double**, Kokkos::LayoutRight, M>;
template <class M>
using Vec = Kokkos::View<double*, Kokkos::LayoutRight, M>;

// Runs (macro items) of lengths 2 1 1 | 1 | 1 1 1 1 | 3 2 1 2 | 4.
embsr::ExampleSet examples() {
  embsr::ExampleSet set;
  set.add(V{5, 5, 7, 5}, V{0, 1, 0, 2}, 9, 1, 0, 0.0);
  set.add(V{3}, V{2}, 4, 0, 1, 1.0);
  set.add(V{7, 3, 7, 3}, V{1, 1, 1, 1}, 5, 2, 2, 2.0);
  set.add(V{2, 2, 2, 4, 4, 6, 2, 2}, V{0, 1, 2, 1, 0, 2, 2, 0}, 8, 0, 3, 3.0);
  set.add(V{8, 8, 8, 8}, V{2, 0, 1, 1}, 1, 1, 4, 4.0);
  return set;
}

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// Straight from MODEL.md 3.1 / PyTorch's nn.GRU: one run at a time, one step at a time.
std::vector<double> reference(const embsr::HostBatch& hb, const std::vector<double>& x, std::size_t d_in, std::size_t d,
                              const std::vector<double>& W_ih, const std::vector<double>& W_hh,
                              const std::vector<double>& b_ih, const std::vector<double>& b_hh) {
  const std::size_t N = hb.run_begin.size();
  std::vector<double> out(N * d);
  for (std::size_t k = 0; k < N; ++k) {
    std::vector<double> h(d, 0.0), gi(3 * d), gh(3 * d);
    for (auto t = static_cast<std::size_t>(hb.run_begin[k]); t < static_cast<std::size_t>(hb.run_end[k]); ++t) {
      for (std::size_t g = 0; g < 3 * d; ++g) {
        gi[g] = b_ih[g];
        gh[g] = b_hh[g];
        for (std::size_t p = 0; p < d_in; ++p) gi[g] += W_ih[g * d_in + p] * x[t * d_in + p];
        for (std::size_t p = 0; p < d; ++p) gh[g] += W_hh[g * d + p] * h[p];
      }
      for (std::size_t c = 0; c < d; ++c) {
        const double r = sigmoid(gi[c] + gh[c]);
        const double z = sigmoid(gi[d + c] + gh[d + c]);
        const double n = std::tanh(gi[2 * d + c] + r * gh[2 * d + c]);
        h[c] = (1 - z) * n + z * h[c];
      }
    }
    for (std::size_t c = 0; c < d; ++c) out[k * d + c] = h[c];
  }
  return out;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("run GRU: forward against the per-run loop and central-difference gradients", "[layers][gru]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const auto set = examples();
  embsr::BatchBuilder builder;
  const std::size_t dims[][2] = {{3, 4}, {2, 2}};  // (d, d_in)
  for (const auto& dd : dims) {
    const std::size_t d = dd[0], d_in = dd[1];
    DYNAMIC_SECTION("d = " << d << ", d_in = " << d_in) {
      const embsr::HostBatch hb = builder.build(set, V{0, 1, 2, 3, 4});
      const auto batch = embsr::to_memory_space<M>(hb);
      const std::size_t T = hb.micro_items.size(), N = hb.run_begin.size();
      Mat<M> x("x", T, d_in), W_ih("W_ih", 3 * d, d_in), W_hh("W_hh", 3 * d, d), h_last("h_last", N, d), R("R", N, d);
      Vec<M> b_ih("b_ih", 3 * d), b_hh("b_hh", 3 * d);
      Mat<M> dx("dx", T, d_in), dW_ih("dW_ih", 3 * d, d_in), dW_hh("dW_hh", 3 * d, d);
      Vec<M> db_ih("db_ih", 3 * d), db_hh("db_hh", 3 * d);
      embsr::test::fill_random(x, 1);
      embsr::test::fill_random(W_ih, 2, 0.6);
      embsr::test::fill_random(W_hh, 3, 0.6);
      embsr::test::fill_random(b_ih, 4, 0.3);
      embsr::test::fill_random(b_hh, 5, 0.3);
      embsr::test::fill_random(R, 6);
      const embsr::GruParams<double, M> p{W_ih, W_hh, b_ih, b_hh};
      const embsr::GruParams<double, M> g{dW_ih, dW_hh, db_ih, db_hh};
      embsr::RunGruCache<double, M> cache;

      auto loss = [&] {
        embsr::run_gru_forward(Exec(), batch, x, p, h_last, cache);
        Kokkos::fence();
        return embsr::test::dot(h_last, R);
      };
      loss();
      const auto ref =
          reference(hb, embsr::test::to_vector(x), d_in, d, embsr::test::to_vector(W_ih), embsr::test::to_vector(W_hh),
                    embsr::test::to_vector(b_ih), embsr::test::to_vector(b_hh));
      const auto got = embsr::test::to_vector(h_last);
      REQUIRE(got.size() == ref.size());
      for (std::size_t i = 0; i < ref.size(); ++i) CHECK(got[i] == Approx(ref[i]).epsilon(1e-12).margin(1e-14));
      {
        // The schedule comes with the batch; a Batch without its host copy (filled some other way)
        // gives the same states, read back from the View.
        auto bare = batch;
        bare.host_run_step_offsets.clear();
        Mat<M> h_bare("h_bare", N, d);
        embsr::RunGruCache<double, M> bare_cache;
        embsr::run_gru_forward(Exec(), bare, x, p, h_bare, bare_cache);
        Kokkos::fence();
        CHECK(embsr::test::to_vector(h_bare) == got);
        CHECK(bare_cache.step_offsets == hb.run_step_offsets);
      }

      embsr::run_gru_backward(Exec(), batch, x, p, cache, R, dx, g);
      Kokkos::fence();
      using T_ = embsr::test::GradTarget<M>;
      std::vector<T_> targets{{"x", embsr::test::flat(x), embsr::test::to_vector(dx)},
                              {"W_ih", embsr::test::flat(W_ih), embsr::test::to_vector(dW_ih)},
                              {"W_hh", embsr::test::flat(W_hh), embsr::test::to_vector(dW_hh)},
                              {"b_ih", embsr::test::flat(b_ih), embsr::test::to_vector(db_ih)},
                              {"b_hh", embsr::test::flat(b_hh), embsr::test::to_vector(db_hh)}};
      embsr::test::check_gradients<M>(loss, targets);

      // The backward adds: a second call with an empty dx doubles the weight gradients and
      // leaves dx alone.
      const auto dx1 = embsr::test::to_vector(dx), dW1 = embsr::test::to_vector(dW_hh),
                 db1 = embsr::test::to_vector(db_ih);
      loss();
      embsr::run_gru_backward(Exec(), batch, x, p, cache, R, Mat<M>(), g);
      Kokkos::fence();
      CHECK(embsr::test::to_vector(dx) == dx1);
      const auto dW2 = embsr::test::to_vector(dW_hh), db2 = embsr::test::to_vector(db_ih);
      for (std::size_t i = 0; i < dW1.size(); ++i) CHECK(dW2[i] == Approx(2 * dW1[i]).epsilon(1e-12).margin(1e-14));
      for (std::size_t i = 0; i < db1.size(); ++i) CHECK(db2[i] == Approx(2 * db1[i]).epsilon(1e-12).margin(1e-14));
    }
  }
}

TEMPLATE_LIST_TEST_CASE("run GRU: a session's states do not depend on the rest of the batch; caches shrink and grow",
                        "[layers][gru]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t d = 3, d_in = 2;
  const auto set = examples();
  embsr::BatchBuilder builder;
  Mat<M> W_ih("W_ih", 3 * d, d_in), W_hh("W_hh", 3 * d, d);
  Vec<M> b_ih("b_ih", 3 * d), b_hh("b_hh", 3 * d);
  embsr::test::fill_random(W_ih, 12, 0.6);
  embsr::test::fill_random(W_hh, 13, 0.6);
  embsr::test::fill_random(b_ih, 14, 0.3);
  embsr::test::fill_random(b_hh, 15, 0.3);
  const embsr::GruParams<double, M> p{W_ih, W_hh, b_ih, b_hh};
  embsr::RunGruCache<double, M> cache;
  // Per-micro-behavior inputs fixed per (example, position), so the same session sees the same x.
  auto inputs = [&](const embsr::HostBatch& hb) {
    Mat<M> x("x", hb.micro_items.size(), d_in);
    auto hx = Kokkos::create_mirror_view(x);
    for (std::size_t b = 0; b + 1 < hb.micro_offsets.size(); ++b)
      for (embsr::index_t t = hb.micro_offsets[b]; t < hb.micro_offsets[b + 1]; ++t)
        for (std::size_t c = 0; c < d_in; ++c)
          hx(static_cast<std::size_t>(t), c) =
              std::sin(1.0 + hb.example_ids[b] * 0.7 + (t - hb.micro_offsets[b]) * 1.3 + static_cast<double>(c) * 0.4);
    Kokkos::deep_copy(x, hx);
    return x;
  };
  auto run = [&](const V& ids) {
    const embsr::HostBatch hb = builder.build(set, ids);
    const auto batch = embsr::to_memory_space<M>(hb);
    const auto x = inputs(hb);
    Mat<M> h_last("h_last", hb.run_begin.size(), d);
    embsr::run_gru_forward(Exec(), batch, x, p, h_last, cache);
    Kokkos::fence();
    return std::make_pair(hb, embsr::test::to_vector(h_last));
  };
  const auto [big, h_big] = run(V{0, 1, 2, 3, 4});
  const auto [small, h_small] = run(V{3, 1});
  const auto [again, h_again] = run(V{4, 3, 2, 1, 0});
  // Session with example id e: its rows in each batch.
  auto rows_of = [&](const embsr::HostBatch& hb, const std::vector<double>& h, embsr::index_t example) {
    for (std::size_t b = 0; b < hb.example_ids.size(); ++b)
      if (hb.example_ids[b] == example)
        return std::vector<double>(h.begin() + hb.macro_offsets[b] * static_cast<std::ptrdiff_t>(d),
                                   h.begin() + hb.macro_offsets[b + 1] * static_cast<std::ptrdiff_t>(d));
    FAIL("example not in batch");
    return std::vector<double>();
  };
  for (embsr::index_t e : {3, 1}) {
    const auto a = rows_of(big, h_big, e), b = rows_of(small, h_small, e), c = rows_of(again, h_again, e);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i] == Approx(b[i]).epsilon(1e-13).margin(1e-15));
      CHECK(a[i] == Approx(c[i]).epsilon(1e-13).margin(1e-15));
    }
  }
}

}  // namespace test_gru
