// GGNN layer (MODEL.md 3.2 + 3.3): forward against a host computation that sums one message per
// edge straight from the edge lists, and central-difference gradients of h, hrun and every
// weight, on a ragged batch with a one-item session (no edges), parallel edges and nodes with
// several in- and out-edges.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/data/example_set.hpp>
#include <embsr/batch/batch_builder.hpp>
#include <embsr/batch/batch_validator.hpp>
#include <embsr/layers/ggnn.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_ggnn {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using V = std::vector<embsr::index_t>;
template <class M>
using Mat = Kokkos::View<double**, Kokkos::LayoutRight, M>;
template <class M>
using Vec = Kokkos::View<double*, Kokkos::LayoutRight, M>;

// ex0: 5 -> 7 -> 5;  ex1: one item;  ex2: 7 -> 3 -> 7 -> 3 (parallel 7 -> 3 edges);
// ex3: 2 -> 4 -> 6 -> 2 -> 4 (node 2 and 4 with two in/out edges);  ex4: one item, run of 4.
embsr::ExampleSet examples() {
  embsr::ExampleSet set;
  set.add(V{5, 5, 7, 5}, V{0, 1, 0, 2}, 9, 1, 0, 0.0);
  set.add(V{3}, V{2}, 4, 0, 1, 1.0);
  set.add(V{7, 3, 7, 3}, V{1, 1, 1, 1}, 5, 2, 2, 2.0);
  set.add(V{2, 2, 2, 4, 4, 6, 2, 2, 4}, V{0, 1, 2, 1, 0, 2, 2, 0, 1}, 8, 0, 3, 3.0);
  set.add(V{8, 8, 8, 8}, V{2, 0, 1, 1}, 1, 1, 4, 4.0);
  return set;
}

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

struct HostParams {
  std::vector<double> W_in, W_out, b_in, b_out, W_ih, W_hh, b_ih, b_hh;
};

// MODEL.md 3.2-3.3 node by node, one message per edge (every edge of the batch is visited).
std::vector<double> reference(const embsr::HostBatch& hb, const std::vector<double>& h, const std::vector<double>& hrun,
                              std::size_t d, const HostParams& p) {
  const std::size_t C = hb.node_items.size(), E = hb.edge_src.size();
  std::vector<double> out(C * d);
  auto message = [&](const std::vector<double>& W, const std::vector<double>& b, std::size_t node, std::size_t macro,
                     std::vector<double>& acc) {
    for (std::size_t o = 0; o < d; ++o) {
      double m = b[o];
      for (std::size_t q = 0; q < d; ++q)
        m += W[o * 2 * d + q] * h[node * d + q] + W[o * 2 * d + d + q] * hrun[macro * d + q];
      acc[o] += m;
    }
  };
  for (std::size_t i = 0; i < C; ++i) {
    std::vector<double> a_in(d, 0.0), a_out(d, 0.0);
    for (std::size_t e = 0; e < E; ++e) {
      if (static_cast<std::size_t>(hb.edge_dst[e]) == i)
        message(p.W_in, p.b_in, static_cast<std::size_t>(hb.edge_src[e]),
                static_cast<std::size_t>(hb.edge_src_macro[e]), a_in);
      if (static_cast<std::size_t>(hb.edge_src[e]) == i)
        message(p.W_out, p.b_out, static_cast<std::size_t>(hb.edge_dst[e]),
                static_cast<std::size_t>(hb.edge_dst_macro[e]), a_out);
    }
    std::vector<double> a(a_in);
    a.insert(a.end(), a_out.begin(), a_out.end());
    std::vector<double> gi(3 * d), gh(3 * d);
    for (std::size_t g = 0; g < 3 * d; ++g) {
      gi[g] = p.b_ih[g];
      gh[g] = p.b_hh[g];
      for (std::size_t q = 0; q < 2 * d; ++q) gi[g] += p.W_ih[g * 2 * d + q] * a[q];
      for (std::size_t q = 0; q < d; ++q) gh[g] += p.W_hh[g * d + q] * h[i * d + q];
    }
    for (std::size_t c = 0; c < d; ++c) {
      const double r = sigmoid(gi[c] + gh[c]);
      const double z = sigmoid(gi[d + c] + gh[d + c]);
      const double n = std::tanh(gi[2 * d + c] + r * gh[2 * d + c]);
      out[i * d + c] = (1 - z) * h[i * d + c] + z * n;
    }
  }
  return out;
}

template <class M>
struct Weights {
  Mat<M> W_in, W_out, W_ih, W_hh;
  Vec<M> b_in, b_out, b_ih, b_hh;
  explicit Weights(std::size_t d, std::size_t input_dim = 0)  // input_dim: 2d (run inputs, default) or d
      : W_in("W_in", d, input_dim == 0 ? 2 * d : input_dim),
        W_out("W_out", d, input_dim == 0 ? 2 * d : input_dim),
        W_ih("W_ih", 3 * d, 2 * d),
        W_hh("W_hh", 3 * d, d),
        b_in("b_in", d),
        b_out("b_out", d),
        b_ih("b_ih", 3 * d),
        b_hh("b_hh", 3 * d) {}
  embsr::GgnnParams<double, M> params() const {
    return embsr::GgnnParams<double, M>{W_in, W_out, b_in, b_out, embsr::GruParams<double, M>{W_ih, W_hh, b_ih, b_hh}};
  }
  HostParams host() const {
    using embsr::test::to_vector;
    return HostParams{to_vector(W_in), to_vector(W_out), to_vector(b_in), to_vector(b_out),
                      to_vector(W_ih), to_vector(W_hh),  to_vector(b_ih), to_vector(b_hh)};
  }
};

// SR-GNN's layer (docs/GRAPH_MODELS.md) node by node from a dense adjacency per session: A[u][v] = 1
// for each distinct transition u -> v, A_in row-normalised by v's in-degree, A_out by u's
// out-degree; no run inputs (W_in, W_out [d x d]).
// With `counted` (MKM-SR's graph, docs/GRAPH_MODELS.md): A counts the transitions of the MICRO
// sequence, self-loops included.
std::vector<double> reference_srgnn(const embsr::HostBatch& hb, const std::vector<double>& h, std::size_t d,
                                    const HostParams& p, bool counted = false) {
  const std::size_t C = hb.node_items.size(), E = hb.edge_src.size();
  std::vector<std::vector<int>> A(C, std::vector<int>(C, 0));
  if (counted) {
    for (std::size_t b = 0; b + 1 < hb.micro_offsets.size(); ++b)
      for (auto j = hb.micro_offsets[b]; j + 1 < hb.micro_offsets[b + 1]; ++j)
        A[hb.micro_alias[static_cast<std::size_t>(j)]][hb.micro_alias[static_cast<std::size_t>(j + 1)]] += 1;
  } else {
    for (std::size_t e = 0; e < E; ++e) A[hb.edge_src[e]][hb.edge_dst[e]] = 1;
  }
  std::vector<double> indeg(C, 0), outdeg(C, 0);
  for (std::size_t u = 0; u < C; ++u)
    for (std::size_t v = 0; v < C; ++v) indeg[v] += A[u][v], outdeg[u] += A[u][v];
  std::vector<double> out(C * d);
  for (std::size_t i = 0; i < C; ++i) {
    std::vector<double> a(2 * d, 0.0);
    for (std::size_t u = 0; u < C; ++u)
      for (std::size_t o = 0; o < d; ++o) {
        double m_in = p.b_in[o], m_out = p.b_out[o];
        for (std::size_t q = 0; q < d; ++q) m_in += p.W_in[o * d + q] * h[u * d + q], m_out += p.W_out[o * d + q] * h[u * d + q];
        if (A[u][i]) a[o] += A[u][i] * m_in / indeg[i];         // u -> i
        if (A[i][u]) a[d + o] += A[i][u] * m_out / outdeg[i];   // i -> u
      }
    std::vector<double> gi(3 * d), gh(3 * d);
    for (std::size_t g = 0; g < 3 * d; ++g) {
      gi[g] = p.b_ih[g];
      gh[g] = p.b_hh[g];
      for (std::size_t q = 0; q < 2 * d; ++q) gi[g] += p.W_ih[g * 2 * d + q] * a[q];
      for (std::size_t q = 0; q < d; ++q) gh[g] += p.W_hh[g * d + q] * h[i * d + q];
    }
    for (std::size_t c = 0; c < d; ++c) {
      const double r = sigmoid(gi[c] + gh[c]);
      const double z = sigmoid(gi[d + c] + gh[d + c]);
      const double n = std::tanh(gi[2 * d + c] + r * gh[2 * d + c]);
      out[i * d + c] = (1 - z) * h[i * d + c] + z * n;
    }
  }
  return out;
}

// Central differences for the inputs h, hrun and every weight of one GGNN layer.
template <class M, class LossFn, class HV, class RV>
void check_ggnn_gradients(LossFn&& loss, const HV& h, const RV& hrun, const HV& dh, const RV& dhrun,
                          const Weights<M>& w, const Weights<M>& gw) {
  using embsr::test::flat;
  using embsr::test::to_vector;
  std::vector<embsr::test::GradTarget<M>> targets{{"h", flat(h), to_vector(dh)},
                                                  {"hrun", flat(hrun), to_vector(dhrun)},
                                                  {"W_in", flat(w.W_in), to_vector(gw.W_in)},
                                                  {"W_out", flat(w.W_out), to_vector(gw.W_out)},
                                                  {"b_in", flat(w.b_in), to_vector(gw.b_in)},
                                                  {"b_out", flat(w.b_out), to_vector(gw.b_out)},
                                                  {"W_ih", flat(w.W_ih), to_vector(gw.W_ih)},
                                                  {"W_hh", flat(w.W_hh), to_vector(gw.W_hh)},
                                                  {"b_ih", flat(w.b_ih), to_vector(gw.b_ih)},
                                                  {"b_hh", flat(w.b_hh), to_vector(gw.b_hh)}};
  if (hrun.extent(0) == 0) targets.erase(targets.begin() + 1);  // no run inputs
  embsr::test::check_gradients<M>(loss, targets);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("ggnn: forward against per-edge messages and central-difference gradients", "[layers][ggnn]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t d = 3;
  const auto set = examples();
  embsr::BatchBuilder builder;
  const embsr::HostBatch hb = builder.build(set, V{0, 1, 2, 3, 4});
  embsr::validate_batch(hb, 10, 3);
  const auto batch = embsr::to_memory_space<M>(hb);
  const std::size_t C = hb.node_items.size(), N = hb.run_begin.size();
  REQUIRE(hb.edge_src.size() == 9);

  Mat<M> h("h", C, d), hrun("hrun", N, d), h_hat("h_hat", C, d), R("R", C, d), dh("dh", C, d), dhrun("dhrun", N, d);
  Weights<M> w(d), gw(d);
  embsr::test::fill_random(h, 1);
  embsr::test::fill_random(hrun, 2);
  embsr::test::fill_random(R, 3);
  embsr::test::fill_random(w.W_in, 4, 0.5);
  embsr::test::fill_random(w.W_out, 5, 0.5);
  embsr::test::fill_random(w.b_in, 6, 0.3);
  embsr::test::fill_random(w.b_out, 7, 0.3);
  embsr::test::fill_random(w.W_ih, 8, 0.4);
  embsr::test::fill_random(w.W_hh, 9, 0.5);
  embsr::test::fill_random(w.b_ih, 10, 0.3);
  embsr::test::fill_random(w.b_hh, 11, 0.3);
  const auto p = w.params(), g = gw.params();
  embsr::GgnnCache<double, M> cache;

  auto loss = [&] {
    embsr::ggnn_forward(Exec(), batch, h, hrun, p, h_hat, cache);
    Kokkos::fence();
    return embsr::test::dot(h_hat, R);
  };
  loss();
  const auto ref = reference(hb, embsr::test::to_vector(h), embsr::test::to_vector(hrun), d, w.host());
  const auto got = embsr::test::to_vector(h_hat);
  REQUIRE(got.size() == ref.size());
  for (std::size_t i = 0; i < ref.size(); ++i) CHECK(got[i] == Approx(ref[i]).epsilon(1e-12).margin(1e-14));

  embsr::ggnn_backward(Exec(), batch, h, hrun, p, cache, R, dh, dhrun, g);
  Kokkos::fence();
  check_ggnn_gradients<M>(loss, h, hrun, dh, dhrun, w, gw);

  // The backward adds; empty dh / dhrun are skipped while the weight gradients still accumulate.
  using embsr::test::to_vector;
  const auto dh1 = to_vector(dh), dhrun1 = to_vector(dhrun), dW1 = to_vector(gw.W_in), db1 = to_vector(gw.b_out);
  loss();
  embsr::ggnn_backward(Exec(), batch, h, hrun, p, cache, R, Mat<M>(), Mat<M>(), g);
  Kokkos::fence();
  CHECK(to_vector(dh) == dh1);
  CHECK(to_vector(dhrun) == dhrun1);
  const auto dW2 = to_vector(gw.W_in), db2 = to_vector(gw.b_out);
  for (std::size_t i = 0; i < dW1.size(); ++i) CHECK(dW2[i] == Approx(2 * dW1[i]).epsilon(1e-12).margin(1e-14));
  for (std::size_t i = 0; i < db1.size(); ++i) CHECK(db2[i] == Approx(2 * db1[i]).epsilon(1e-12).margin(1e-14));
}

TEMPLATE_LIST_TEST_CASE("ggnn: a batch of single-item sessions (no edges) and two stacked layers", "[layers][ggnn]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t d = 2;
  const auto set = examples();
  embsr::BatchBuilder builder;
  Weights<M> w(d), gw(d);
  embsr::test::fill_random(w.W_in, 21, 0.5);
  embsr::test::fill_random(w.W_out, 22, 0.5);
  embsr::test::fill_random(w.b_in, 23, 0.3);
  embsr::test::fill_random(w.b_out, 24, 0.3);
  embsr::test::fill_random(w.W_ih, 25, 0.4);
  embsr::test::fill_random(w.W_hh, 26, 0.5);
  embsr::test::fill_random(w.b_ih, 27, 0.3);
  embsr::test::fill_random(w.b_hh, 28, 0.3);
  const auto p = w.params(), g = gw.params();

  SECTION("no edges: a = 0, so only the cell's biases reach the update") {
    const embsr::HostBatch hb = builder.build(set, V{1, 4});
    const auto batch = embsr::to_memory_space<M>(hb);
    REQUIRE(hb.edge_src.empty());
    const std::size_t C = hb.node_items.size(), N = hb.run_begin.size();
    Mat<M> h("h", C, d), hrun("hrun", N, d), h_hat("h_hat", C, d);
    embsr::test::fill_random(h, 29);
    embsr::test::fill_random(hrun, 30);
    embsr::GgnnCache<double, M> cache;
    embsr::ggnn_forward(Exec(), batch, h, hrun, p, h_hat, cache);
    Kokkos::fence();
    const auto ref = reference(hb, embsr::test::to_vector(h), embsr::test::to_vector(hrun), d, w.host());
    const auto got = embsr::test::to_vector(h_hat);
    for (std::size_t i = 0; i < ref.size(); ++i) CHECK(got[i] == Approx(ref[i]).epsilon(1e-12).margin(1e-14));
    Mat<M> dh("dh", C, d), dhrun("dhrun", N, d);
    embsr::ggnn_backward(Exec(), batch, h, hrun, p, cache, h_hat, dh, dhrun, g);
    Kokkos::fence();
    for (double v : embsr::test::to_vector(dhrun)) CHECK(v == 0.0);
    for (double v : embsr::test::to_vector(gw.W_in)) CHECK(v == 0.0);
    for (double v : embsr::test::to_vector(gw.b_out)) CHECK(v == 0.0);
  }

  SECTION("two layers with separate caches: gradients through both") {
    const embsr::HostBatch hb = builder.build(set, V{3, 2, 0});
    const auto batch = embsr::to_memory_space<M>(hb);
    const std::size_t C = hb.node_items.size(), N = hb.run_begin.size();
    Mat<M> h("h", C, d), hrun("hrun", N, d), h1("h1", C, d), h2("h2", C, d), R("R", C, d);
    Mat<M> dh("dh", C, d), dhrun("dhrun", N, d), dh1("dh1", C, d);
    embsr::test::fill_random(h, 31);
    embsr::test::fill_random(hrun, 32);
    embsr::test::fill_random(R, 33);
    embsr::GgnnCache<double, M> c1, c2;
    auto loss = [&] {
      embsr::ggnn_forward(Exec(), batch, h, hrun, p, h1, c1);
      embsr::ggnn_forward(Exec(), batch, h1, hrun, p, h2, c2);
      Kokkos::fence();
      return embsr::test::dot(h2, R);
    };
    loss();
    const auto host_p = w.host();
    const auto r1 = reference(hb, embsr::test::to_vector(h), embsr::test::to_vector(hrun), d, host_p);
    const auto r2 = reference(hb, r1, embsr::test::to_vector(hrun), d, host_p);
    const auto got = embsr::test::to_vector(h2);
    for (std::size_t i = 0; i < r2.size(); ++i) CHECK(got[i] == Approx(r2[i]).epsilon(1e-12).margin(1e-14));
    embsr::ggnn_backward(Exec(), batch, h1, hrun, p, c2, R, dh1, dhrun, g);
    embsr::ggnn_backward(Exec(), batch, h, hrun, p, c1, dh1, dh, dhrun, g);
    Kokkos::fence();
    check_ggnn_gradients<M>(loss, h, hrun, dh, dhrun, w, gw);
  }
}

TEMPLATE_LIST_TEST_CASE("ggnn: SR-GNN's normalised and MKM-SR's counted edge weights without run inputs, against a dense adjacency",
                        "[layers][ggnn][srgnn]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t d = 3;
  const auto set = examples();
  embsr::BatchBuilder builder;
  const embsr::HostBatch hb = builder.build(set, V{0, 1, 2, 3, 4});
  const auto batch = embsr::to_memory_space<M>(hb);
  const std::size_t C = hb.node_items.size(), E = hb.edge_src.size();

  Mat<M> h("h", C, d), h_hat("h_hat", C, d), R("R", C, d), dh("dh", C, d), no_runs;
  Vec<M> w_in("w_in", E), w_out("w_out", E), self_in("self_in", C), self_out("self_out", C);
  bool counted = false;
  embsr::GgnnEdgeWeights<double, M> weights;
  SECTION("SR-GNN: distinct transitions of the macro sequence") {
    embsr::ggnn_normalised_edge_weights(Exec(), batch, w_in, w_out);
    weights = embsr::GgnnEdgeWeights<double, M>{w_in, w_out, {}, {}};
  }
  SECTION("MKM-SR: counted transitions of the micro sequence, self-loops included") {
    counted = true;
    embsr::ggnn_counted_edge_weights(Exec(), batch, w_in, w_out, self_in, self_out);
    weights = embsr::GgnnEdgeWeights<double, M>{w_in, w_out, self_in, self_out};
    CHECK(embsr::test::to_vector(self_in) != std::vector<double>(C, 0.0));  // the sessions have runs
  }
  Weights<M> w(d, d), gw(d, d);
  std::uint64_t seed = 20;
  for (auto* v : {&w.W_in, &w.W_out, &w.W_ih, &w.W_hh}) embsr::test::fill_random(*v, ++seed, 0.5);
  for (auto* v : {&w.b_in, &w.b_out, &w.b_ih, &w.b_hh}) embsr::test::fill_random(*v, ++seed, 0.3);
  embsr::test::fill_random(h, 1);
  embsr::test::fill_random(R, 3);
  const auto p = w.params(), g = gw.params();
  embsr::GgnnCache<double, M> cache;
  auto loss = [&] {
    embsr::ggnn_forward(Exec(), batch, h, no_runs, p, h_hat, cache, weights);
    Kokkos::fence();
    return embsr::test::dot(h_hat, R);
  };
  loss();
  const auto ref = reference_srgnn(hb, embsr::test::to_vector(h), d, w.host(), counted);
  const auto got = embsr::test::to_vector(h_hat);
  REQUIRE(got.size() == ref.size());
  for (std::size_t i = 0; i < ref.size(); ++i) CHECK(got[i] == Approx(ref[i]).epsilon(1e-12).margin(1e-14));

  embsr::ggnn_backward(Exec(), batch, h, no_runs, p, cache, R, dh, no_runs, g, weights);
  Kokkos::fence();
  check_ggnn_gradients<M>(loss, h, no_runs, dh, no_runs, w, gw);

  // Weights [d x d] with a batch's run states, or weights of the wrong length: errors, not guesses.
  Vec<M> short_weights("short", E - 1);
  CHECK_THROWS_AS(embsr::ggnn_forward(Exec(), batch, h, no_runs, p, h_hat, cache,
                                      embsr::GgnnEdgeWeights<double, M>{short_weights, w_out, {}, {}}),
                  embsr::InvalidArgument);
  Weights<M> odd(d, d + 1);
  CHECK_THROWS_AS(embsr::ggnn_forward(Exec(), batch, h, no_runs, odd.params(), h_hat, cache), embsr::InvalidArgument);
}

}  // namespace test_ggnn
