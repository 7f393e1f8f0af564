// The composed model: whole-model finite differences in double, batch invariance, backend
// agreement, ablation switches, reproducibility, bad batches.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <embsr/model/embsr.hpp>
#include <embsr/model/embsr_spec.hpp>
#include <embsr/optim/adam.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"
#include "model_fixture.hpp"

namespace test_embsr {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::test::all_ids;
using embsr::test::make_batch;
using embsr::test::tiny_config;
using embsr::test::tiny_examples;

template <class Exec>
using Model = embsr::EMBSR<Exec, double>;

// d(loss)/d(theta) for sampled coordinates of every parameter, against central differences of
// the training loss with fixed dropout masks (same step).
template <class Exec>
void check_model_gradients(const embsr::Config& config, std::size_t coords_per_param = 12) {
  using M = typename Exec::memory_space;
  Model<Exec> model(config);
  const auto set = tiny_examples();
  const auto batch = make_batch<M>(set, all_ids(set));
  const std::uint64_t step = 3;
  model.loss_and_backward(batch, step, /*training=*/true);
  const auto grads = embsr::test::to_vector(model.parameters().grads());
  auto loss = [&] { return model.loss_and_backward(batch, step, true); };
  std::vector<embsr::test::GradTarget<M>> targets;
  const auto& params = model.parameters();
  for (const auto& e : params.entries()) {
    embsr::test::GradTarget<M> t;
    t.name = e.name;
    t.value = Kokkos::View<double*, M, Kokkos::MemoryTraits<Kokkos::Unmanaged>>(params.values().data() + e.offset, e.size());
    t.analytic.assign(grads.begin() + static_cast<std::ptrdiff_t>(e.offset),
                      grads.begin() + static_cast<std::ptrdiff_t>(e.offset + e.size()));
    targets.push_back(t);
  }
  // Floor 1e-3: a gradient below it must match to 1e-9 absolute, where finite differences of an
  // O(1) loss stop resolving relative error.
  embsr::test::check_gradients<M>(loss, targets, 1e-6, 1e-5, coords_per_param, 1e-3);
}

template <class Exec>
std::vector<double> session_scores(Model<Exec>& model, const embsr::ExampleSet& set, const std::vector<embsr::index_t>& ids,
                                   std::size_t row) {
  using M = typename Exec::memory_space;
  const auto batch = make_batch<M>(set, ids);
  auto scores = model.scores(batch);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), scores);
  std::vector<double> out(host.extent(1));
  for (std::size_t v = 0; v < out.size(); ++v) out[v] = host(row, v);
  return out;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("model: whole-model gradients match finite differences (full model, dropout on)",
                        "[model][gradcheck]", embsr::test::ExecutionSpaces) {
  check_model_gradients<TestType>(tiny_config());
}

TEMPLATE_LIST_TEST_CASE("model: gradients of every ablation and of the learned [NEXT] mode", "[model][gradcheck]",
                        embsr::test::ExecutionSpaces) {
  auto base = tiny_config();
  base.gnn_steps = 1;
  SECTION("learned next operation") { base.next_op = embsr::NextOpMode::Learned; }
  SECTION("NS: no self-attention") { base.use_attention = false; }
  SECTION("NG: no GNN, no operation GRU") { base.use_gnn = false; }
  SECTION("NF: MLP instead of the fusion gate") { base.fusion = embsr::FusionMode::Mlp; }
  SECTION("fixed fusion weight") {
    base.fusion = embsr::FusionMode::Fixed;
    base.fixed_beta = 0.4;
  }
  SECTION("no operation GRU") { base.use_run_gru = false; }
  SECTION("standard attention (no relations)") { base.use_relations = false; }
  // EMBSR-R (docs/REPEAT.md); 3 recency buckets so that bucket(D) = min(D, R - 1) clamps here.
  SECTION("EMBSR-R: repeat bonus, given next operation") {
    base.use_repeat = true;
    base.repeat_buckets = 3;
  }
  SECTION("EMBSR-R: repeat bonus, learned next operation, 2 GNN steps") {
    base.use_repeat = true;
    base.repeat_buckets = 3;
    base.gnn_steps = 2;
    base.next_op = embsr::NextOpMode::Learned;
  }
  SECTION("EMBSR-R without the GNN (node state = item embedding)") {
    base.use_repeat = true;
    base.use_gnn = false;
  }
  // The repeat/explore mixture (repeat_mixture, layers/repeat_mixture.hpp): the gate's two
  // parameters, the two softmaxes and the zero gradient of repeat.bias (shift-invariant softmax).
  // tiny_examples() has targets in their session (2, 3) and outside it (0, 1, 4).
  SECTION("EMBSR-R mixture, given next operation") {
    base.use_repeat = true;
    base.repeat_mixture = true;
    base.repeat_buckets = 3;
  }
  SECTION("EMBSR-R mixture, learned next operation, 2 GNN steps") {
    base.use_repeat = true;
    base.repeat_mixture = true;
    base.repeat_buckets = 3;
    base.gnn_steps = 2;
    base.next_op = embsr::NextOpMode::Learned;
  }
  SECTION("EMBSR-R mixture without the GNN") {
    base.use_repeat = true;
    base.repeat_mixture = true;
    base.use_gnn = false;
  }
  check_model_gradients<TestType>(base, 8);
}

// The paper's Sec. V-D variants (model/config.hpp: use_attention_ops, encoder), each a preset of
// model/embsr_spec.hpp: the attention over the macro items without operations, and the GRU over
// [item ; operation] rows in place of the GNN. tiny_examples() repeats items within a session
// (runs of several operations), so macro and micro positions differ.
TEMPLATE_LIST_TEST_CASE("model: gradients of the Sec. V-D variants SGNN-Self / SGNN-Seq-Self / RNN-Self",
                        "[model][gradcheck]", embsr::test::ExecutionSpaces) {
  auto base = tiny_config();
  base.gnn_steps = 1;
  auto apply = [&](auto preset) { decltype(preset)::apply(base); };
  SECTION("SGNN-Self") { apply(embsr::embsr_presets::SgnnSelf{}); }
  SECTION("SGNN-Seq-Self, learned next operation, 2 GNN steps") {
    apply(embsr::embsr_presets::SgnnSeqSelf{});
    base.next_op = embsr::NextOpMode::Learned;
    base.gnn_steps = 2;
  }
  SECTION("RNN-Self") { apply(embsr::embsr_presets::RnnSelf{}); }
  SECTION("RNN encoder with the dyadic attention (attention_ops and relations on)") {
    base.encoder = embsr::SequenceEncoder::Rnn;
    base.use_run_gru = false;
  }
  SECTION("no GNN, attention over the macro items without operations") {
    base.use_gnn = false;
    base.use_relations = false;
    base.use_attention_ops = false;
  }
  check_model_gradients<TestType>(base, 8);
}

TEMPLATE_LIST_TEST_CASE("model: a session's scores do not depend on the rest of its batch", "[model][invariance]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  auto config = tiny_config();
  SECTION("EMBSR") {}
  SECTION("EMBSR-R repeat/explore mixture (log P: per-row softmaxes over the session's and the other items)") {
    config.use_repeat = true;
    config.repeat_mixture = true;
  }
  SECTION("SGNN-Self (the attention over the batch seen over its macro items)") {
    embsr::embsr_presets::SgnnSelf::apply(config);
  }
  SECTION("RNN-Self (a GRU over each session's rows)") { embsr::embsr_presets::RnnSelf::apply(config); }
  Model<Exec> model(config);
  const auto set = tiny_examples();
  for (embsr::index_t s = 0; s < static_cast<embsr::index_t>(set.size()); ++s) {
    const auto alone = session_scores(model, set, {s}, 0);
    const auto first = session_scores(model, set, {s, 4, 2, 0}, 0);
    const auto last = session_scores(model, set, {1, 3, 4, s}, 3);
    for (std::size_t v = 0; v < alone.size(); ++v) {
      CHECK(first[v] == Approx(alone[v]).epsilon(1e-12).margin(1e-12));
      CHECK(last[v] == Approx(alone[v]).epsilon(1e-12).margin(1e-12));
    }
  }
}

TEST_CASE("model: every enabled backend computes the same function (float)", "[model][invariance]") {
  using Host = Kokkos::DefaultHostExecutionSpace;
  using Spaces = embsr::test::ExecutionSpaces;
  auto config = tiny_config();
  config.d = 16;
  SECTION("EMBSR") {}
  SECTION("EMBSR-R repeat/explore mixture") {
    config.use_repeat = true;
    config.repeat_mixture = true;
  }
  SECTION("SGNN-Self") { embsr::embsr_presets::SgnnSelf::apply(config); }
  SECTION("RNN-Self") { embsr::embsr_presets::RnnSelf::apply(config); }
  const auto set = tiny_examples();
  embsr::EMBSR<Host, float> reference(config);
  const auto ref_batch = make_batch<Host::memory_space>(set, all_ids(set));
  const auto ref_scores = embsr::test::to_vector(reference.scores(ref_batch));  // a copy: the buffer is reused
  const double ref_loss = reference.loss_and_backward(ref_batch, 1, true);
  const auto ref_grads = embsr::test::to_vector(reference.parameters().grads());
  auto compare = [&](auto exec_tag) {
    using Exec = decltype(exec_tag);
    embsr::EMBSR<Exec, float> model(config);
    const auto batch = make_batch<typename Exec::memory_space>(set, all_ids(set));
    const auto scores = embsr::test::to_vector(model.scores(batch));
    REQUIRE(scores.size() == ref_scores.size());
    for (std::size_t i = 0; i < scores.size(); ++i) CHECK(scores[i] == Approx(ref_scores[i]).margin(1e-4));
    CHECK(model.loss_and_backward(batch, 1, true) == Approx(ref_loss).epsilon(1e-5));
    const auto grads = embsr::test::to_vector(model.parameters().grads());
    for (std::size_t i = 0; i < grads.size(); ++i) CHECK(grads[i] == Approx(ref_grads[i]).margin(1e-4));
  };
  std::apply([&](auto... spaces) { (compare(spaces), ...); }, Spaces{});
}

TEMPLATE_LIST_TEST_CASE("model: every ablation switch changes the function", "[model][ablation]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const auto set = tiny_examples();
  const auto batch = make_batch<M>(set, all_ids(set));
  auto base = tiny_config();
  base.dropout = 0.0;
  Model<Exec> full(base);
  const auto full_scores = embsr::test::to_vector(full.scores(batch));
  std::vector<std::pair<const char*, embsr::Config>> variants;
  auto v = base;
  v.use_attention = false;
  variants.emplace_back("NS", v);
  v = base;
  v.use_gnn = false;
  variants.emplace_back("NG", v);
  v = base;
  v.fusion = embsr::FusionMode::Mlp;
  variants.emplace_back("NF", v);
  v = base;
  v.fusion = embsr::FusionMode::Fixed;
  v.fixed_beta = 0.3;
  variants.emplace_back("fixed beta", v);
  v = base;
  v.use_run_gru = false;
  variants.emplace_back("no operation GRU", v);
  v = base;
  v.use_relations = false;
  variants.emplace_back("no relations", v);
  v = base;
  v.next_op = embsr::NextOpMode::Learned;
  variants.emplace_back("learned next op", v);
  v = base;
  v.use_relations = false;
  v.use_attention_ops = false;
  variants.emplace_back("no operations in the attention (over the macro items)", v);
  v = base;
  v.use_run_gru = false;
  v.encoder = embsr::SequenceEncoder::Rnn;
  variants.emplace_back("RNN encoder", v);
  v = base;
  v.use_repeat = true;
  variants.emplace_back("repeat bonus (EMBSR-R)", v);
  v.repeat_mixture = true;
  variants.emplace_back("repeat/explore mixture (EMBSR-R)", v);
  for (const auto& [name, config] : variants) {
    Model<Exec> model(config);
    // Same values for the parameters both models have, so only the switch differs.
    const auto& src = full.parameters();
    auto& dst = model.parameters();
    for (const auto& e : dst.entries())
      if (src.contains(e.name)) Kokkos::deep_copy(dst.value_vec(dst.id(e.name)), src.value_vec(src.id(e.name)));
    const auto scores = embsr::test::to_vector(model.scores(batch));
    double diff = 0;
    for (std::size_t i = 0; i < scores.size(); ++i) diff = std::max(diff, std::abs(scores[i] - full_scores[i]));
    INFO(name);
    CHECK(diff > 1e-6);
  }
}

TEMPLATE_LIST_TEST_CASE("model: a frozen model scores as before, refuses training, and unfreezes", "[model][freeze]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const auto config = tiny_config();
  const auto set = tiny_examples();
  const auto batch = make_batch<M>(set, all_ids(set));
  embsr::EMBSR<Exec, double> model(config);
  const auto before = embsr::test::to_vector(model.scores(batch));
  model.freeze();
  CHECK(model.frozen());
  const auto frozen_first = embsr::test::to_vector(model.scores(batch));
  const auto frozen_again = embsr::test::to_vector(model.scores(batch));  // reuses the normalised table
  CHECK(frozen_first == before);
  CHECK(frozen_again == before);
  CHECK_THROWS_AS(model.loss_and_backward(batch, 0, true), embsr::InvalidArgument);
  // After unfreeze(), a training step (which overwrites the cached table with gradients) and new
  // parameters: scores are recomputed, and equal a fresh model with those parameters.
  model.unfreeze();
  model.loss_and_backward(batch, 0, true);
  model.initialize(config.seed + 1);
  model.freeze();
  const auto changed = embsr::test::to_vector(model.scores(batch));
  embsr::Config other_config = config;
  other_config.seed = config.seed + 1;
  embsr::EMBSR<Exec, double> fresh(other_config);
  CHECK(changed == embsr::test::to_vector(fresh.scores(batch)));
  CHECK(changed != before);
}

TEST_CASE("model: same seed, same losses, bit for bit (Serial)", "[model][reproducible]") {
#if defined(KOKKOS_ENABLE_SERIAL)
  using Exec = Kokkos::Serial;
  auto config = tiny_config();
  config.d = 8;
  const auto set = tiny_examples();
  const auto batch = make_batch<Exec::memory_space>(set, all_ids(set));
  auto run = [&] {
    embsr::EMBSR<Exec, float> model(config);
    embsr::Adam<Exec, float> adam(model.num_parameters(), embsr::AdamOptions{});
    std::vector<double> losses;
    for (std::uint64_t step = 0; step < 5; ++step) {
      losses.push_back(model.loss_and_backward(batch, step, true));
      adam.step(Exec(), model.parameters().values(), model.parameters().grads());
    }
    return losses;
  };
  const auto a = run(), b = run();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);
  config.seed = 8;
  embsr::EMBSR<Exec, float> other(config);
  CHECK(other.loss_and_backward(batch, 0, true) != a[0]);
#else
  WARN("Serial backend not enabled");
#endif
}

TEMPLATE_LIST_TEST_CASE("model: bad batches and parameters give errors naming session and field", "[model][errors]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const auto config = tiny_config();
  Model<Exec> model(config);
  const auto set = tiny_examples();
  embsr::BatchBuilder builder;
  const auto ids = all_ids(set);
  auto host = builder.build(set, embsr::Span<const embsr::index_t>(ids.data(), ids.size()));
  auto expect = [&](embsr::HostBatch h, const std::string& needle) {
    const auto batch = embsr::to_memory_space<M>(h);
    try {
      model.scores(batch);
      FAIL("no error for " << needle);
    } catch (const embsr::InvalidArgument& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
  };
  {
    auto h = host;
    h.micro_ops[static_cast<std::size_t>(h.micro_offsets[2] + 1)] = config.num_ops;  // session 2
    expect(h, "session 2 (example 2): micro_ops");
  }
  {
    auto h = host;
    h.micro_items[static_cast<std::size_t>(h.micro_offsets[3])] = config.num_items + 5;
    expect(h, "session 3 (example 3): micro_items");
  }
  {
    auto h = host;
    h.targets[1] = -1;
    expect(h, "session 1 (example 1): targets");
  }
  {
    auto h = host;
    h.next_ops[4] = 99;
    expect(h, "session 4 (example 4): next_ops");
  }
  {
    auto small = config;
    small.max_length = 5;  // example 4 has 8 micro-behaviors
    Model<Exec> short_model(small);
    const auto batch = embsr::to_memory_space<M>(host);
    CHECK_THROWS_WITH(short_model.scores(batch), Catch::Contains("session 4 (example 4)") && Catch::Contains("max_length"));
  }
  {
    auto h = host;  // session 0 made empty: its micro-behavior moves to session 1
    h.micro_offsets[1] = 0;
    expect(h, "session 0 (example 0)");
  }
  {
    // A NaN in a parameter is named.
    auto& params = model.parameters();
    const auto id = params.id("attention.W_1");
    auto w = params.value(id);
    Kokkos::deep_copy(Kokkos::subview(w, 1, 2), std::nan(""));
    const auto batch = embsr::to_memory_space<M>(host);
    CHECK_THROWS_WITH(model.loss_and_backward(batch, 0, true), Catch::Contains("attention.W_1") && Catch::Contains("row 1"));
  }
}

}  // namespace test_embsr
