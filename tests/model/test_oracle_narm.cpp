// NARM (model/narm.hpp) against the independent PyTorch oracle tests/oracle/sequence_oracle.py
// (its module seq_narm.py, written from the paper): real JD Computers test sessions, scores, loss
// and every parameter's gradient, 1e-9 relative in double, 1e-4 in float. Runs python3 with
// Debian's python3-torch; a missing torch FAILS the test.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include <embsr/model/narm.hpp>

#include "oracle_exchange.hpp"

namespace test_oracle_narm {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

// docs/SEQUENCE_MODELS.md, "NARM", exchange config.
std::string config_json(const embsr::NarmConfig& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"model\": \"narm\", \"d\": %d, \"num_items\": %d, \"num_ops\": %d, \"max_length\": %d, "
                "\"hidden\": %d}\n",
                c.d, c.num_items, c.num_ops, c.max_length, c.hidden);
  return buf;
}

// NARM against the oracle on the first `sessions` JD Computers test sessions (oracle_exchange.hpp).
template <class Scalar>
void check_against_oracle(const embsr::NarmConfig& config, std::size_t sessions, double tol) {
  embsr::test::oracle::check_against_oracle<embsr::NARM, Scalar>("sequence_oracle.py", config, config_json, sessions, tol);
}

embsr::NarmConfig narm_config() {
  embsr::NarmConfig c;
  c.d = 12;
  c.hidden = 12;
  c.max_length = 30;
  c.seed = 11;
  return c;
}

}  // namespace

TEST_CASE("oracle: NARM, real JD sessions, scores, loss and every gradient to 1e-9", "[oracle][narm][shared-data]") {
  auto c = narm_config();
  SECTION("embedding 12, hidden 12") {}
  SECTION("embedding 10, hidden 16 (the paper's hidden > embedding)") {
    c.d = 10;
    c.hidden = 16;
  }
  check_against_oracle<double>(c, 24, 1e-9);
}

TEST_CASE("oracle: NARM in single precision to 1e-4", "[oracle][narm][shared-data]") {
  check_against_oracle<float>(narm_config(), 24, 1e-4);
}

}  // namespace test_oracle_narm
