// The graph family (SR-GNN and its successors, docs/GRAPH_MODELS.md) against the independent
// PyTorch oracle tests/oracle/graph_oracle.py, written from the papers: real JD sessions, scores,
// loss and every parameter's gradient, 1e-9 relative in double, 1e-4 in float. Runs python3 with
// Debian's python3-torch; a missing torch FAILS the test.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include <embsr/model/gcsan.hpp>
#include <embsr/model/mkmsr.hpp>
#include <embsr/model/sgnnhn.hpp>
#include <embsr/model/srgnn.hpp>

#include "oracle_exchange.hpp"

namespace test_graph_oracle {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

// The keys every graph model's exchange config has (docs/GRAPH_MODELS.md, "Exchange config").
template <class Config>
std::string common_keys(const char* model, const Config& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "\"model\": \"%s\", \"d\": %d, \"num_items\": %d, \"num_ops\": %d, \"max_length\": %d, \"gnn_steps\": %d",
                model, c.d, c.num_items, c.num_ops, c.max_length, c.gnn_steps);
  return buf;
}

std::string config_json(const embsr::SrgnnConfig& c) { return "{" + common_keys("sr-gnn", c) + "}\n"; }
std::string config_json(const embsr::MkmsrConfig& c) { return "{" + common_keys("mkm-sr", c) + "}\n"; }
std::string config_json(const embsr::GcsanConfig& c) {
  char extra[96];
  std::snprintf(extra, sizeof extra, ", \"num_blocks\": %d, \"omega\": %.17g}\n", c.num_blocks, c.omega);
  return "{" + common_keys("gc-san", c) + extra;
}
std::string config_json(const embsr::SgnnhnConfig& c) {
  char w_k[64];
  std::snprintf(w_k, sizeof w_k, ", \"w_k\": %.17g}\n", c.w_k);
  return "{" + common_keys("sgnn-hn", c) + w_k;
}

// ModelOf<Exec, Scalar> against the oracle on the first `sessions` JD Computers test sessions
// (oracle_exchange.hpp).
template <template <class, class> class ModelOf, class Scalar, class Config>
void check_against_oracle(const Config& config, std::size_t sessions, double tol) {
  embsr::test::oracle::check_against_oracle<ModelOf, Scalar>(
      "graph_oracle.py", config, [](const Config& c) { return config_json(c); }, sessions, tol);
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

template <class Exec, class Scalar>
using SGNNHN = embsr::SGNNHN<Exec, Scalar>;

embsr::SgnnhnConfig sgnnhn_config() {
  embsr::SgnnhnConfig c;
  c.d = 12;
  c.max_length = 30;
  c.seed = 11;
  return c;
}

template <class Exec, class Scalar>
using GCSAN = embsr::GCSAN<Exec, Scalar>;

embsr::GcsanConfig gcsan_config() {
  embsr::GcsanConfig c;
  c.d = 12;
  c.max_length = 30;
  c.seed = 11;
  return c;
}

template <class Exec, class Scalar>
using MKMSR = embsr::MKMSR<Exec, Scalar>;

embsr::MkmsrConfig mkmsr_config() {
  embsr::MkmsrConfig c;
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

TEST_CASE("oracle: SGNN-HN, real JD sessions, scores, loss and every gradient to 1e-9", "[oracle][sgnnhn][shared-data]") {
  auto c = sgnnhn_config();
  SECTION("one SGNN layer") { c.gnn_steps = 1; }
  SECTION("two SGNN layers with shared weights, w_k 8") {
    c.gnn_steps = 2;
    c.w_k = 8;
  }
  check_against_oracle<SGNNHN, double>(c, 24, 1e-9);
}

TEST_CASE("oracle: SGNN-HN in single precision to 1e-4", "[oracle][sgnnhn][shared-data]") {
  check_against_oracle<SGNNHN, float>(sgnnhn_config(), 24, 1e-4);
}

TEST_CASE("oracle: GC-SAN, real JD sessions, scores, loss and every gradient to 1e-9", "[oracle][gcsan][shared-data]") {
  auto c = gcsan_config();
  SECTION("one GGNN step, one block") {}
  SECTION("two GGNN steps, three blocks, omega 0.3") {
    c.gnn_steps = 2;
    c.num_blocks = 3;
    c.omega = 0.3;
  }
  check_against_oracle<GCSAN, double>(c, 24, 1e-9);
}

TEST_CASE("oracle: GC-SAN in single precision to 1e-4", "[oracle][gcsan][shared-data]") {
  auto c = gcsan_config();
  c.num_blocks = 2;
  check_against_oracle<GCSAN, float>(c, 24, 1e-4);
}

TEST_CASE("oracle: MKM-SR, real JD sessions, scores, loss and every gradient to 1e-9", "[oracle][mkmsr][shared-data]") {
  auto c = mkmsr_config();
  SECTION("one GGNN step") {}
  SECTION("two GGNN steps") { c.gnn_steps = 2; }
  check_against_oracle<MKMSR, double>(c, 24, 1e-9);
}

TEST_CASE("oracle: MKM-SR in single precision to 1e-4", "[oracle][mkmsr][shared-data]") {
  check_against_oracle<MKMSR, float>(mkmsr_config(), 24, 1e-4);
}

}  // namespace test_graph_oracle
