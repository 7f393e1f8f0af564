// SR-GNN (model/srgnn.hpp): whole-model finite differences on every coordinate in double, batch
// invariance, backend agreement, freezing, memorising real sessions, the normalised adjacency, and
// its errors. Its PyTorch oracle comparison is tests/model/test_graph_oracle.cpp.
#include <catch2/catch.hpp>

#include <vector>

#include <embsr/model/registry.hpp>
#include <embsr/model/srgnn.hpp>

#include "neural_model_checks.hpp"

namespace test_srgnn {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::test::all_ids;
using embsr::test::make_batch;
using embsr::test::tiny_examples;

embsr::SrgnnConfig tiny_srgnn(int gnn_steps = 2) {
  embsr::SrgnnConfig c;
  c.num_items = 9;
  c.num_ops = 3;
  c.max_length = 8;
  c.d = 4;
  c.gnn_steps = gnn_steps;
  c.seed = 7;
  return c;
}

template <class Exec>
using FloatModel = embsr::SRGNN<Exec, float>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("sr-gnn: gradients match finite differences on every coordinate", "[model][srgnn][gradcheck]",
                        embsr::test::ModelExecutionSpaces) {
  int steps = 2;
  SECTION("two GGNN steps with shared weights") {}
  SECTION("one GGNN step") { steps = 1; }
  embsr::SRGNN<TestType, double> model(tiny_srgnn(steps));
  embsr::test::check_model_gradients(model, tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("sr-gnn: a session's scores do not depend on the rest of its batch", "[model][srgnn][invariance]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::SRGNN<TestType, double> model(tiny_srgnn());
  embsr::test::check_batch_invariance(model, tiny_examples());
}

TEST_CASE("sr-gnn: every enabled backend computes the same function (float)", "[model][srgnn][invariance]") {
  auto config = tiny_srgnn();
  config.d = 16;
  embsr::test::check_backends_agree<FloatModel>(config, tiny_examples());
}

TEMPLATE_LIST_TEST_CASE("sr-gnn: a frozen model scores as before and refuses training", "[model][srgnn][freeze]",
                        embsr::test::ModelExecutionSpaces) {
  embsr::SRGNN<TestType, double> model(tiny_srgnn());
  embsr::test::check_freeze(model, tiny_examples());
}

TEST_CASE("sr-gnn: the normalised adjacency of a session with repeated transitions", "[model][srgnn][graph]") {
  using Exec = Kokkos::DefaultHostExecutionSpace;
  using M = Exec::memory_space;
  // Session 2 of tiny_examples: macro items 1 2 1 2 1, so the edges are 1->2, 2->1, 1->2, 2->1:
  // one distinct transition each way, each of multiplicity 2 (weight 1/2 per copy, both ways).
  // Session 4: 2 4 5 2 3 8: node 2 has distinct in-neighbour 5 and out-neighbours 4, 3.
  const auto set = tiny_examples();
  const auto batch = make_batch<M>(set, {2, 4});
  const auto E = static_cast<std::size_t>(batch.sizes.num_edges);
  Kokkos::View<double*, M> w_in("w_in", E), w_out("w_out", E);
  embsr::ggnn_normalised_edge_weights(Exec(), batch, w_in, w_out);
  const auto src = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.edge_src);
  const auto dst = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.edge_dst);
  const auto items = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.node_items);
  REQUIRE(E == 4 + 5);
  for (std::size_t e = 0; e < 4; ++e) {
    CHECK(w_in(e) == 0.5);
    CHECK(w_out(e) == 0.5);
  }
  for (std::size_t e = 4; e < E; ++e) {
    const int u = items(src(e)), v = items(dst(e));
    INFO("edge " << u << " -> " << v);
    CHECK(w_in(e) == 1.0);                    // every node of session 4 has one distinct in-neighbour
    CHECK(w_out(e) == (u == 2 ? 0.5 : 1.0));  // item 2 leads to 4 and to 3
  }
}

TEST_CASE("sr-gnn: memorises 64 real JD sessions", "[model][srgnn][training]") {
  using Exec = Kokkos::DefaultExecutionSpace;
  const auto& data = embsr::test::jd_appliances_for_memorising();
  embsr::SrgnnConfig config;
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  config.max_length = 40;
  config.seed = 3;
  embsr::SRGNN<Exec, float> model(config);
  embsr::test::check_memorises(model, 0.001);
}

TEST_CASE("sr-gnn: registered, with its options, and bad configurations say what is wrong", "[model][srgnn][registry]") {
  using Catch::Matchers::Contains;
  const embsr::ModelOptions sizes{{"num_items", "7"}, {"num_ops", "3"}, {"max_length", "12"}};
  auto model = embsr::make_model<Kokkos::DefaultHostExecutionSpace>("sr-gnn", sizes);
  CHECK(model->learns_by_gradients());
  CHECK(model->options().get_int32("d", 0) == 100);
  // 7 x 100 items, 4 GGNN maps and biases, the GRU cell, the readout.
  CHECK(model->parameters()->size() == 700 + (2 * 100 * 100 + 200) + (300 * 200 + 300 * 100 + 600) +
                                           (2 * 100 * 100 + 200 + 100 + 100 * 200 + 100));
  auto with = [&](const char* key, const char* value) {
    embsr::ModelOptions o = sizes;
    o.set(key, value);
    return o;
  };
  CHECK_THROWS_WITH(embsr::make_model<Kokkos::DefaultHostExecutionSpace>("sr-gnn", with("d", "0")), Contains("d must be in"));
  CHECK_THROWS_WITH(embsr::make_model<Kokkos::DefaultHostExecutionSpace>("sr-gnn", with("gnn_steps", "0")),
                    Contains("gnn_steps must be in"));
  CHECK_THROWS_WITH(embsr::make_model<Kokkos::DefaultHostExecutionSpace>("sr-gnn", with("dropout", "0.1")),
                    Contains("does not take option 'dropout'"));
}

TEST_CASE("sr-gnn: a checkpoint restores the same model through the registry", "[model][srgnn][checkpoint]") {
  embsr::test::check_checkpoint_round_trip("sr-gnn", embsr::ModelOptions{{"d", "4"}, {"gnn_steps", "2"}}, embsr::test::tiny_examples());
}

}  // namespace test_srgnn
