// RIB (model/rib.hpp) against the independent PyTorch oracle tests/oracle/seq_rib.py (through
// tests/oracle/sequence_oracle.py), written from the paper: real JD Computers test sessions, scores,
// loss and every parameter's gradient, 1e-9 relative in double, 1e-4 in float. Runs python3 with
// Debian's python3-torch; a missing torch FAILS the test.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include <embsr/model/rib.hpp>

#include "oracle_exchange.hpp"

namespace test_oracle_rib {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

// The exchange config (docs/SEQUENCE_MODELS.md, "RIB", exchange keys).
std::string config_json(const embsr::RibConfig& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"model\": \"rib\", \"d\": %d, \"num_items\": %d, \"num_ops\": %d, \"max_length\": %d, "
                "\"tied_output\": %s}\n",
                c.d, c.num_items, c.num_ops, c.max_length, c.tied_output ? "true" : "false");
  return buf;
}

// RIB against the oracle on the first `sessions` JD Computers test sessions (oracle_exchange.hpp).
template <class Scalar>
void check_against_oracle(const embsr::RibConfig& config, std::size_t sessions, double tol) {
  embsr::test::oracle::check_against_oracle<embsr::RIB, Scalar>("sequence_oracle.py", config, config_json, sessions, tol);
}

embsr::RibConfig rib_config() {
  embsr::RibConfig c;
  c.d = 12;
  c.max_length = 30;
  c.seed = 11;
  return c;
}

}  // namespace

TEST_CASE("oracle: RIB, real JD sessions, scores, loss and every gradient to 1e-9", "[oracle][rib][shared-data]") {
  auto c = rib_config();
  SECTION("dense softmax output layer (the paper's)") {}
  SECTION("output tied to the item embeddings, d 8") {
    c.tied_output = true;
    c.d = 8;
  }
  check_against_oracle<double>(c, 24, 1e-9);
}

TEST_CASE("oracle: RIB in single precision to 1e-4", "[oracle][rib][shared-data]") {
  check_against_oracle<float>(rib_config(), 24, 1e-4);
}

}  // namespace test_oracle_rib
