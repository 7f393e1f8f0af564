// The whole model against the independent PyTorch oracle (tests/oracle/embsr_oracle.py, written
// from MODEL.md): real sessions, every parameter's gradient, scores and loss; 1e-9 relative in
// double, 1e-4 in float. Runs python3 with Debian's python3-torch; a missing torch FAILS the test.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <embsr/data/jd_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/model/embsr.hpp>
#include <embsr/model/embsr_spec.hpp>

#include "data_paths.hpp"
#include "gradcheck.hpp"
#include "model_fixture.hpp"
#include "npy.hpp"
#include "oracle_exchange.hpp"

namespace test_oracle {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::test::oracle::compare;
using embsr::test::oracle::jd_computers;
using embsr::test::oracle::OracleRun;
using embsr::test::oracle::setting;

std::string config_json(const embsr::Config& c, bool training, std::uint64_t step) {
  const char* fusion = c.fusion == embsr::FusionMode::Gate ? "gate" : c.fusion == embsr::FusionMode::Mlp ? "mlp" : "fixed";
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "{\"d\": %d, \"gnn_steps\": %d, \"w_k\": %.17g, \"num_items\": %d, \"num_ops\": %d, \"max_length\": %d, "
                "\"next_op_mode\": \"%s\", \"dropout\": %.17g, \"dropout_seed\": %llu, \"dropout_step\": %llu, "
                "\"training\": %s, \"use_relations\": %s, \"use_gnn\": %s, \"use_run_gru\": %s, \"use_attention\": %s, "
                "\"fusion\": \"%s\", \"fixed_beta\": %.17g, \"use_repeat\": %s, \"repeat_buckets\": %d, "
                "\"repeat_mixture\": %s, \"use_attention_ops\": %s, \"encoder\": \"%s\"}\n",
                c.d, c.gnn_steps, c.w_k, c.num_items, c.num_ops, c.max_length,
                c.next_op == embsr::NextOpMode::Given ? "given" : "learned", c.dropout,
                static_cast<unsigned long long>(c.seed), static_cast<unsigned long long>(step), training ? "true" : "false",
                c.use_relations ? "true" : "false", c.use_gnn ? "true" : "false", c.use_run_gru ? "true" : "false",
                c.use_attention ? "true" : "false", fusion, c.fixed_beta, c.use_repeat ? "true" : "false",
                c.repeat_buckets, c.repeat_mixture ? "true" : "false", c.use_attention_ops ? "true" : "false",
                c.encoder == embsr::SequenceEncoder::Rnn ? "rnn" : "gnn");
  return buf;
}

// EMBSR's exchange: its config and op0 (the [NEXT] row O in learned mode).
template <class Model>
OracleRun run_oracle(const Model& model, const embsr::HostBatch& host, bool training, std::uint64_t step) {
  std::vector<embsr::index_t> op0(host.next_ops);
  if (model.config().next_op == embsr::NextOpMode::Learned)
    for (auto& o : op0) o = model.config().num_ops;
  return embsr::test::oracle::run_oracle("embsr_oracle.py", config_json(model.config(), training, step), model, host, op0);
}

// Returns the exchange directory of the oracle run.
template <class Scalar>
std::string check_against_oracle(embsr::Config config, std::size_t sessions, bool training, double tol) {
  using Exec = Kokkos::DefaultExecutionSpace;  // the device in a CUDA build: oracle parity there too
  using M = Exec::memory_space;
  const auto& data = jd_computers();
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  const auto host = embsr::test::oracle::first_examples(data.test, sessions);
  const auto batch = embsr::to_memory_space<M>(host);

  embsr::EMBSR<Exec, double> reference(config);  // parameters in double are what the oracle reads
  embsr::EMBSR<Exec, Scalar> model(config);       // same seed: same parameters up to rounding
  const std::uint64_t step = 5;
  const auto oracle = run_oracle(reference, host, training, step);
  if constexpr (std::is_same<Scalar, float>::value) {
    // Give the float model exactly the double model's values, rounded once.
    const auto v = embsr::test::to_vector(reference.parameters().values());
    auto h = Kokkos::create_mirror_view(model.parameters().values());
    for (std::size_t i = 0; i < v.size(); ++i) h(i) = static_cast<float>(v[i]);
    Kokkos::deep_copy(model.parameters().values(), h);
  }
  const double loss = model.loss_and_backward(batch, step, training);
  std::vector<double> scores;
  if (!training) scores = embsr::test::to_vector(model.scores(batch));
  embsr::test::oracle::compare_model(model, oracle, loss, tol, training ? nullptr : &scores);
  return oracle.dir;
}


embsr::Config oracle_config() {
  embsr::Config c;
  c.d = 12;
  c.max_length = 30;
  c.gnn_steps = 2;
  c.dropout = 0.3;
  c.seed = 11;
  c.init_std = 0.2;
  return c;
}

}  // namespace

TEST_CASE("oracle: double precision, real JD sessions, eval mode: scores, loss, every gradient to 1e-9",
          "[oracle][shared-data]") {
  check_against_oracle<double>(oracle_config(), 24, /*training=*/false, 1e-9);
}

TEST_CASE("oracle: double precision with dropout masks (training mode) to 1e-9", "[oracle][shared-data]") {
  check_against_oracle<double>(oracle_config(), 24, /*training=*/true, 1e-9);
}

TEST_CASE("oracle: learned [NEXT] operation and the ablations to 1e-9", "[oracle][shared-data]") {
  auto c = oracle_config();
  c.gnn_steps = 1;
  SECTION("learned next operation") { c.next_op = embsr::NextOpMode::Learned; }
  SECTION("NS") { c.use_attention = false; }
  SECTION("NG") { c.use_gnn = false; }
  SECTION("NF") { c.fusion = embsr::FusionMode::Mlp; }
  SECTION("fixed beta") {
    c.fusion = embsr::FusionMode::Fixed;
    c.fixed_beta = 0.6;
  }
  SECTION("no operation GRU") { c.use_run_gru = false; }
  SECTION("no relations") { c.use_relations = false; }
  check_against_oracle<double>(c, 12, true, 1e-9);
}

// The paper's Sec. V-D variants (docs/GRAPH_MODELS.md section 6), as the registry's presets define
// them: the standard attention over the macro items (SGNN-Self, SGNN-Seq-Self) and the GRU over
// [item ; operation] rows in place of the GNN (RNN-Self). Real JD sessions repeat items, so the
// macro positions differ from the micro ones.
TEST_CASE("oracle: the Sec. V-D variants SGNN-Self / SGNN-Seq-Self / RNN-Self to 1e-9", "[oracle][shared-data]") {
  auto c = oracle_config();
  c.gnn_steps = 1;
  bool training = true;
  SECTION("SGNN-Self") { embsr::embsr_presets::SgnnSelf::apply(c); }
  SECTION("SGNN-Seq-Self, eval mode (scores compared)") {
    embsr::embsr_presets::SgnnSeqSelf::apply(c);
    training = false;
  }
  SECTION("RNN-Self") { embsr::embsr_presets::RnnSelf::apply(c); }
  SECTION("RNN-Self, learned [NEXT], eval mode") {
    embsr::embsr_presets::RnnSelf::apply(c);
    c.next_op = embsr::NextOpMode::Learned;
    training = false;
  }
  SECTION("RNN encoder with the dyadic attention") {
    c.encoder = embsr::SequenceEncoder::Rnn;
    c.use_run_gru = false;
  }
  check_against_oracle<double>(c, 12, training, 1e-9);
}

// EMBSR-R (docs/REPEAT.md): the repeat bonus on the logits of the session's items, its five
// parameters (repeat.*) compared like every other entry. 4 recency buckets make bucket(D) =
// min(D, R - 1) clamp on these sessions (up to 30 micro-behaviors); one section keeps the default.
TEST_CASE("oracle: the repeat path (EMBSR-R) to 1e-9", "[oracle][shared-data]") {
  auto c = oracle_config();
  c.use_repeat = true;
  c.repeat_buckets = 4;
  bool training = true;
  SECTION("given next operation, eval mode (scores compared)") { training = false; }
  SECTION("given next operation, dropout on, default 10 buckets") { c.repeat_buckets = 10; }
  SECTION("learned [NEXT] operation") { c.next_op = embsr::NextOpMode::Learned; }
  SECTION("learned [NEXT] operation, eval mode") {
    c.next_op = embsr::NextOpMode::Learned;
    training = false;
  }
  SECTION("NG: node state = item embedding") {
    c.use_gnn = false;
    training = false;
  }
  SECTION("one GNN step, NS, one bucket") {
    c.gnn_steps = 1;
    c.use_attention = false;
    c.repeat_buckets = 1;
  }
  check_against_oracle<double>(c, 24, training, 1e-9);
}

// EMBSR-R's repeat/explore mixture (repeat_mixture, layers/repeat_mixture.hpp): the scores are log P
// of the gated mixture, the loss is mean -log P(target), and the gate's two parameters
// (repeat.gate, repeat.gate_op) are compared like every other entry. The 24 sessions hold both
// kinds of target (in the session: the repeat decoder and the gate learn; not: the explore decoder
// and the gate), which is checked first. repeat.bias has no gradient in this mode (the softmax over
// the session's r is shift-invariant): the oracle's is 0 up to rounding, and compare() holds the
// model's to it.
TEST_CASE("oracle: the repeat/explore mixture (EMBSR-R) to 1e-9", "[oracle][shared-data]") {
  {
    const auto host = embsr::test::oracle::first_examples(jd_computers().test, 24);
    int repeat_targets = 0, explore_targets = 0;
    for (std::size_t b = 0; b + 1 < host.node_offsets.size(); ++b) {
      bool in_session = false;
      for (auto c = host.node_offsets[b]; c < host.node_offsets[b + 1]; ++c)
        in_session = in_session || host.node_items[static_cast<std::size_t>(c)] == host.targets[b];
      ++(in_session ? repeat_targets : explore_targets);
    }
    INFO(repeat_targets << " repeat targets, " << explore_targets << " explore targets");
    REQUIRE(repeat_targets > 0);
    REQUIRE(explore_targets > 0);
  }
  auto c = oracle_config();
  c.use_repeat = true;
  c.repeat_mixture = true;
  c.repeat_buckets = 4;
  bool training = true;
  SECTION("given next operation, eval mode (scores compared)") { training = false; }
  SECTION("given next operation, dropout on") {}
  SECTION("learned [NEXT] operation") { c.next_op = embsr::NextOpMode::Learned; }
  SECTION("learned [NEXT] operation, eval mode") {
    c.next_op = embsr::NextOpMode::Learned;
    training = false;
  }
  SECTION("NG: node state = item embedding, learned [NEXT]") {
    c.use_gnn = false;
    c.next_op = embsr::NextOpMode::Learned;
    training = false;
  }
  SECTION("one GNN step, NS, one bucket") {
    c.gnn_steps = 1;
    c.use_attention = false;
    c.repeat_buckets = 1;
  }
  const std::string dir = check_against_oracle<double>(c, 24, training, 1e-9);
  const auto bias = embsr::test::read_npy_f64(dir + "/out/grad_repeat.bias.npy").data;
  REQUIRE(bias.size() == 1);
  CHECK(std::abs(bias[0]) <= 1e-12);
}

TEST_CASE("oracle: single precision to 1e-4", "[oracle][shared-data]") {
  check_against_oracle<float>(oracle_config(), 24, /*training=*/true, 1e-4);
  auto c = oracle_config();
  c.use_repeat = true;
  c.repeat_buckets = 4;
  check_against_oracle<float>(c, 24, /*training=*/true, 1e-4);
  c.repeat_mixture = true;
  check_against_oracle<float>(c, 24, /*training=*/true, 1e-4);
}

// benchmarks/torch_embsr.py (the batched PyTorch model the benchmarks time against) computes the
// oracle's function: its own --check compares scores, loss and every gradient on an exchange
// directory in double precision (relative error <= 1e-8 per tensor).
TEST_CASE("oracle: the batched PyTorch model of the benchmarks matches the oracle", "[oracle][shared-data]") {
  auto c = oracle_config();
  const std::string train_dir = check_against_oracle<double>(c, 24, /*training=*/true, 1e-9);
  c.fusion = embsr::FusionMode::Mlp;
  c.next_op = embsr::NextOpMode::Learned;
  const std::string eval_dir = check_against_oracle<double>(c, 12, /*training=*/false, 1e-9);
  const std::string cmd = setting("EMBSR_PYTHON", EMBSR_PYTHON) + " " + setting("EMBSR_SOURCE_DIR", EMBSR_SOURCE_DIR) +
                          "/benchmarks/torch_embsr.py --threads 1 --check " + train_dir + " " + eval_dir + " > " +
                          train_dir + "/torch_check.log 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream log(train_dir + "/torch_check.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  INFO(cmd << "\n" << text);
  CHECK(rc == 0);
  CHECK(text.find("check: PASS") != std::string::npos);
}

}  // namespace test_oracle
