// HUP (model/hup.hpp) against the independent PyTorch oracle tests/oracle/seq_hup.py (through
// tests/oracle/sequence_oracle.py), written from the paper and the authors' code: real JD
// Computers test sessions, scores, loss and every parameter's gradient, 1e-9 relative in double,
// 1e-4 in float. Runs python3 with Debian's python3-torch; a missing torch FAILS the test.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include <embsr/model/hup.hpp>

#include "oracle_exchange.hpp"

namespace test_oracle_hup {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

// The exchange config (docs/SEQUENCE_MODELS.md, "HUP", exchange keys).
std::string config_json(const embsr::HupConfig& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"model\": \"hup\", \"d\": %d, \"num_items\": %d, \"num_ops\": %d, \"max_length\": %d, "
                "\"levels\": %d}\n",
                c.d, c.num_items, c.num_ops, c.max_length, c.levels);
  return buf;
}

// HUP against the oracle on the first `sessions` JD Computers test sessions (oracle_exchange.hpp).
template <class Scalar>
void check_against_oracle(const embsr::HupConfig& config, std::size_t sessions, double tol) {
  embsr::test::oracle::check_against_oracle<embsr::HUP, Scalar>("sequence_oracle.py", config, config_json, sessions, tol);
}

embsr::HupConfig hup_config() {
  embsr::HupConfig c;
  c.d = 12;
  c.max_length = 30;
  c.seed = 11;
  return c;
}

}  // namespace

TEST_CASE("oracle: HUP, real JD sessions, scores, loss and every gradient to 1e-9", "[oracle][hup][shared-data]") {
  auto c = hup_config();
  SECTION("two levels: micro-behavior and item (the default)") {}
  SECTION("one level: micro-behavior, d 8") {
    c.levels = 1;
    c.d = 8;
  }
  check_against_oracle<double>(c, 24, 1e-9);
}

TEST_CASE("oracle: HUP in single precision to 1e-4", "[oracle][hup][shared-data]") {
  auto c = hup_config();
  SECTION("two levels") {}
  SECTION("one level") { c.levels = 1; }
  check_against_oracle<float>(c, 24, 1e-4);
}

}  // namespace test_oracle_hup
