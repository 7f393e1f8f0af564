// BERT4Rec (model/bert4rec.hpp) against the independent PyTorch oracle tests/oracle/seq_bert4rec.py
// (through tests/oracle/sequence_oracle.py), written from the paper: real JD Computers test sessions,
// the evaluation scores, the cloze loss at a training step (the oracle draws the same masks from
// (seed, step, example id, position)) and every parameter's gradient, 1e-9 relative in double, 1e-4
// in float. Runs python3 with Debian's python3-torch; a missing torch FAILS the test.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include <embsr/core/random.hpp>
#include <embsr/model/bert4rec.hpp>

#include "oracle_exchange.hpp"

namespace test_oracle_bert4rec {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

std::string config_json(const embsr::Bert4recConfig& c, std::uint64_t step, bool training) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"model\": \"bert4rec\", \"d\": %d, \"num_items\": %d, \"num_ops\": %d, \"max_length\": %d, "
                "\"num_layers\": %d, \"num_heads\": %d, \"mask_prob\": %.17g, \"seed\": %llu, \"step\": %llu, "
                "\"training\": %s}\n",
                c.d, c.num_items, c.num_ops, c.max_length, c.num_layers, c.num_heads, c.mask_prob,
                static_cast<unsigned long long>(c.seed), static_cast<unsigned long long>(step), training ? "true" : "false");
  return buf;
}

embsr::Bert4recConfig small_config() {
  embsr::Bert4recConfig c;
  c.d = 8;
  c.max_length = 30;
  c.num_layers = 2;
  c.num_heads = 2;
  c.mask_prob = 0.3;
  c.seed = 11;
  return c;
}

// BERT4Rec<Exec, Scalar> on 24 JD Computers test sessions (example ids 1, 4, 7, ...: the masks must
// follow the ids, not the batch rows) against the oracle. The double model's parameters are moved
// off their initial values (LayerNorm gains 1, biases 0) by a seeded perturbation and exported; a
// float model gets them rounded once.
template <class Scalar>
void check_against_oracle(embsr::Bert4recConfig config, std::uint64_t step, bool training, double tol) {
  using Exec = Kokkos::DefaultExecutionSpace;
  const auto& data = embsr::test::oracle::jd_computers();
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  std::vector<embsr::index_t> ids;
  for (embsr::index_t i = 0; i < 24; ++i) ids.push_back(3 * i + 1);
  REQUIRE(data.test.size() > static_cast<std::size_t>(ids.back()));
  embsr::BatchBuilder builder;
  const auto host = builder.build(data.test, embsr::Span<const embsr::index_t>(ids.data(), ids.size()));
  const auto batch = embsr::to_memory_space<Exec::memory_space>(host);
  embsr::BERT4Rec<Exec, double> reference(config);
  {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), reference.parameters().values());
    embsr::Rng rng(5, 0);
    for (std::size_t i = 0; i < h.extent(0); ++i) h(i) += 0.2 * (2 * rng.uniform() - 1);
    Kokkos::deep_copy(reference.parameters().values(), h);
  }
  embsr::BERT4Rec<Exec, Scalar> model(config);
  const auto oracle = embsr::test::oracle::run_oracle("sequence_oracle.py", config_json(config, step, training), reference,
                                                      host, host.next_ops);
  embsr::test::oracle::copy_parameters(reference, model);
  const auto scores = embsr::test::to_vector(model.scores(batch));
  const double loss = model.loss_and_backward(batch, step, training);
  embsr::test::oracle::compare_model(model, oracle, loss, tol, &scores);
}

}  // namespace

TEST_CASE("oracle: BERT4Rec, real JD sessions, scores, cloze loss and every gradient to 1e-9",
          "[oracle][bert4rec][shared-data]") {
  auto c = small_config();
  std::uint64_t step = 5;
  bool training = true;
  SECTION("two layers, two heads, mask_prob 0.3, step 5") {}
  SECTION("one layer, four heads, mask_prob 0.6, step 0") {
    c.num_layers = 1;
    c.num_heads = 4;
    c.mask_prob = 0.6;
    step = 0;
  }
  SECTION("evaluation loss (training = false: only the appended [mask])") { training = false; }
  check_against_oracle<double>(c, step, training, 1e-9);
}

TEST_CASE("oracle: BERT4Rec in single precision to 1e-4", "[oracle][bert4rec][shared-data]") {
  check_against_oracle<float>(small_config(), 2, true, 1e-4);
}

}  // namespace test_oracle_bert4rec
