// model_memory_bytes (model/parameter_layout.hpp), the estimate that checkpoints and embsr-train
// check against the memory limit before building a model, bounds what a model really allocates:
// every Kokkos View is counted through Kokkos' tool callbacks while a model of that config is
// built, trains one step with Adam on sessions of the full max_length, and serves top-k.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/model/embsr.hpp>
#include <embsr/model/parameter_layout.hpp>
#include <embsr/optim/adam.hpp>

#include "../model/model_fixture.hpp"

namespace test_parameter_layout {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

struct LiveBytes {
  std::unordered_map<const void*, std::uint64_t> sizes;
  std::uint64_t live = 0, peak = 0;
};
LiveBytes& live_bytes() {
  static LiveBytes l;
  return l;
}
void on_allocate(const Kokkos::Tools::SpaceHandle, const char*, const void* ptr, const std::uint64_t bytes) {
  auto& l = live_bytes();
  l.sizes[ptr] = bytes;
  l.live += bytes;
  l.peak = std::max(l.peak, l.live);
}
void on_deallocate(const Kokkos::Tools::SpaceHandle, const char*, const void* ptr, const std::uint64_t) {
  auto& l = live_bytes();
  const auto it = l.sizes.find(ptr);
  if (it == l.sizes.end()) return;  // allocated before counting began
  l.live -= it->second;
  l.sizes.erase(it);
}

// Sessions of exactly max_length micro-behaviors, items and operations spread over the vocabularies.
embsr::ExampleSet full_length_sessions(const embsr::Config& c, std::size_t sessions) {
  embsr::ExampleSet set;
  std::uint64_t x = 12345;
  auto next = [&](int n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<embsr::index_t>((x >> 33) % static_cast<std::uint64_t>(n));
  };
  for (std::size_t s = 0; s < sessions; ++s) {
    std::vector<embsr::index_t> items, ops;
    for (int i = 0; i < c.max_length; ++i) {
      items.push_back(next(c.num_items));
      ops.push_back(next(c.num_ops));
    }
    set.add(embsr::Span<const embsr::index_t>(items.data(), items.size()),
            embsr::Span<const embsr::index_t>(ops.data(), ops.size()), next(c.num_items), next(c.num_ops),
            static_cast<embsr::offset_t>(s), 0.0);
  }
  return set;
}

}  // namespace

TEST_CASE("parameter layout: model_memory_bytes bounds the Views a model allocates", "[model][memory]") {
  using Exec = Kokkos::DefaultHostExecutionSpace;
  embsr::Config c;
  c.num_items = 3000;
  c.num_ops = 10;
  c.d = 32;
  c.max_length = 30;
  const std::size_t B = 96;
  for (const int steps : {0, 1, 3, -1}) {  // 0: the EMBSR-NG ablation (no GNN); -1: RNN-Self's GRU encoder
    c.use_gnn = steps != 0;
    c.gnn_steps = std::max(steps, 1);
    c.encoder = steps < 0 ? embsr::SequenceEncoder::Rnn : embsr::SequenceEncoder::Gnn;
    c.use_run_gru = steps >= 0;
    c.use_attention_ops = c.use_relations = steps >= 0;
    const auto set = full_length_sessions(c, B);
    const auto batch = embsr::test::make_batch<Exec::memory_space>(set, embsr::test::all_ids(set));
    namespace tools = Kokkos::Tools::Experimental;
    live_bytes() = LiveBytes{};
    tools::set_allocate_data_callback(on_allocate);
    tools::set_deallocate_data_callback(on_deallocate);
    std::uint64_t serving_peak = 0, training_peak = 0;
    {
      embsr::EMBSR<Exec, float> model(c);
      Kokkos::View<int**, Kokkos::LayoutRight, Exec::memory_space> ids;
      Kokkos::View<float**, Kokkos::LayoutRight, Exec::memory_space> values;
      model.top_k(batch, 20, ids, values);
      serving_peak = live_bytes().peak;
      embsr::Adam<Exec, float> adam(model.num_parameters(), embsr::AdamOptions{});
      model.loss_and_backward(batch, 0);
      adam.step(Exec(), model.parameters().values(), model.parameters().grads());
      training_peak = live_bytes().peak;
    }
    tools::set_allocate_data_callback(nullptr);
    tools::set_deallocate_data_callback(nullptr);
    const std::uint64_t serving_estimate = embsr::model_memory_bytes(c, B, false);
    const std::uint64_t training_estimate = embsr::model_memory_bytes(c, B, true);
    INFO("gnn_steps " << steps << ": serving " << serving_peak << " bytes allocated, estimate " << serving_estimate
                      << "; training " << training_peak << ", estimate " << training_estimate);
    CHECK(serving_peak > 0);
    CHECK(serving_peak <= serving_estimate);
    CHECK(training_peak <= training_estimate);
    // An estimate, not a blanket refusal: within a small factor of what is really used.
    CHECK(training_estimate < 4 * training_peak);
  }
}

TEST_CASE("parameter layout: counts of hostile configs saturate instead of wrapping", "[model][memory]") {
  embsr::Config c;
  c.num_items = 2147483647;
  c.num_ops = 2147483646;
  c.d = 2147483647;
  c.max_length = 2147483647;
  c.gnn_steps = 2147483647;
  const auto count = embsr::parameter_count(c);
  CHECK(count.values == std::numeric_limits<std::uint64_t>::max());
  CHECK(count.entries > 30000000000ULL);
  CHECK(embsr::model_memory_bytes(c, 1ULL << 40, true) == std::numeric_limits<std::uint64_t>::max());
  c = embsr::test::tiny_config();
  CHECK(embsr::model_memory_bytes(c, 64, true) > embsr::model_memory_bytes(c, 64, false));
  CHECK(embsr::model_memory_bytes(c, 128, false) > embsr::model_memory_bytes(c, 64, false));
}

}  // namespace test_parameter_layout
