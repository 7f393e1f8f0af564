// The graph family (SR-GNN and its successors, docs/GRAPH_MODELS.md) against the independent
// PyTorch oracle tests/oracle/graph_oracle.py, written from the papers: real JD sessions, scores,
// loss and every parameter's gradient, 1e-9 relative in double, 1e-4 in float. Runs python3 with
// Debian's python3-torch; a missing torch FAILS the test.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include <embsr/model/srgnn.hpp>

#include "oracle_exchange.hpp"

namespace test_graph_oracle {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::test::oracle::jd_computers;

// The keys every graph model's exchange config has (docs/GRAPH_MODELS.md, "Exchange config").
template <class Config>
std::string common_keys(const char* model, const Config& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "\"model\": \"%s\", \"d\": %d, \"num_items\": %d, \"num_ops\": %d, \"max_length\": %d, \"gnn_steps\": %d",
                model, c.d, c.num_items, c.num_ops, c.max_length, c.gnn_steps);
  return buf;
}

std::string config_json(const embsr::SrgnnConfig& c) { return "{" + common_keys("sr-gnn", c) + "}\n"; }

// ModelOf<Exec, Scalar> on the first `sessions` JD Computers test sessions against the oracle:
// the double model's parameters are exported; a float model gets them rounded once.
template <template <class, class> class ModelOf, class Scalar, class Config>
void check_against_oracle(Config config, std::size_t sessions, double tol) {
  using Exec = Kokkos::DefaultExecutionSpace;  // the device in a CUDA build: oracle parity there too
  const auto& data = jd_computers();
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  const auto host = embsr::test::oracle::first_examples(data.test, sessions);
  const auto batch = embsr::to_memory_space<Exec::memory_space>(host);
  ModelOf<Exec, double> reference(config);
  ModelOf<Exec, Scalar> model(config);
  const auto oracle = embsr::test::oracle::run_oracle("graph_oracle.py", config_json(config), reference, host, host.next_ops);
  if constexpr (std::is_same<Scalar, float>::value) {
    const auto v = embsr::test::to_vector(reference.parameters().values());
    auto h = Kokkos::create_mirror_view(model.parameters().values());
    for (std::size_t i = 0; i < v.size(); ++i) h(i) = static_cast<float>(v[i]);
    Kokkos::deep_copy(model.parameters().values(), h);
  }
  const auto scores = embsr::test::to_vector(model.scores(batch));
  const double loss = model.loss_and_backward(batch, 0, true);
  embsr::test::oracle::compare_model(model, oracle, loss, tol, &scores);
}

template <class Exec, class Scalar>
using SRGNN = embsr::SRGNN<Exec, Scalar>;

embsr::SrgnnConfig srgnn_config() {
  embsr::SrgnnConfig c;
  c.d = 12;
  c.max_length = 30;
  c.seed = 11;
  return c;
}

}  // namespace

TEST_CASE("oracle: SR-GNN, real JD sessions, scores, loss and every gradient to 1e-9", "[oracle][srgnn][shared-data]") {
  auto c = srgnn_config();
  SECTION("one GGNN step (the authors' default)") { c.gnn_steps = 1; }
  SECTION("three GGNN steps with shared weights") { c.gnn_steps = 3; }
  check_against_oracle<SRGNN, double>(c, 24, 1e-9);
}

TEST_CASE("oracle: SR-GNN in single precision to 1e-4", "[oracle][srgnn][shared-data]") {
  check_against_oracle<SRGNN, float>(srgnn_config(), 24, 1e-4);
}

}  // namespace test_graph_oracle
