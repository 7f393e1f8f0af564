// STAMP (model/stamp.hpp) against the independent PyTorch oracle tests/oracle/seq_stamp.py (run by
// tests/oracle/sequence_oracle.py), written from the paper: real JD Computers test sessions, scores,
// loss and every parameter's gradient, 1e-9 relative in double, 1e-4 in float. Runs python3 with
// Debian's python3-torch; a missing torch FAILS the test.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include <embsr/model/stamp.hpp>

#include "oracle_exchange.hpp"

namespace test_oracle_stamp {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

// The exchange config (docs/SEQUENCE_MODELS.md, "STAMP").
std::string config_json(const embsr::StampConfig& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"model\": \"stamp\", \"d\": %d, \"num_items\": %d, \"num_ops\": %d, \"max_length\": %d, "
                "\"mean_residual\": %s}\n",
                c.d, c.num_items, c.num_ops, c.max_length, c.mean_residual ? "true" : "false");
  return buf;
}

embsr::StampConfig stamp_config() {
  embsr::StampConfig c;
  c.d = 12;
  c.max_length = 30;
  c.seed = 11;
  return c;
}

// STAMP against the oracle on the first `sessions` JD Computers test sessions (oracle_exchange.hpp).
template <class Scalar>
void check_against_oracle(const embsr::StampConfig& config, std::size_t sessions, double tol) {
  embsr::test::oracle::check_against_oracle<embsr::STAMP, Scalar>("sequence_oracle.py", config, config_json, sessions, tol);
}

}  // namespace

TEST_CASE("oracle: STAMP, real JD sessions, scores, loss and every gradient to 1e-9", "[oracle][stamp][shared-data]") {
  auto c = stamp_config();
  SECTION("the paper's m_a (eq. 9)") { c.mean_residual = false; }
  SECTION("the authors' code: m_a + m_s, d 20") {
    c.mean_residual = true;
    c.d = 20;
  }
  check_against_oracle<double>(c, 24, 1e-9);
}

TEST_CASE("oracle: STAMP in single precision to 1e-4", "[oracle][stamp][shared-data]") {
  auto c = stamp_config();
  c.mean_residual = true;
  check_against_oracle<float>(c, 24, 1e-4);
}

}  // namespace test_oracle_stamp
