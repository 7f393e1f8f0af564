// Learning: the model and each of the paper's Section V variants can memorise 64 real sessions
// (training loss below 5% of its start within a few hundred Adam steps, at the paper's d = 100 and
// learning rate).
#include <catch2/catch.hpp>

#include <vector>

#include <embsr/data/jd_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/batch/batch_builder.hpp>
#include <embsr/model/embsr.hpp>
#include <embsr/model/embsr_spec.hpp>
#include <embsr/optim/adam.hpp>

#include "data_paths.hpp"

namespace test_training {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

TEST_CASE("training: 64 real JD sessions are memorised (loss < 5% of its start)", "[model][training]") {
  using Exec = Kokkos::DefaultExecutionSpace;  // the GPU in a CUDA build
  const auto raw = embsr::load_jd({embsr::test::repo_data("jd_appliances/HUP_Data/JD_Applicances_sample"),
                                   embsr::test::repo_data("jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample")});
  embsr::PreprocessOptions pre;
  pre.min_item_support = 5;
  pre.max_length = 40;
  const auto data = embsr::preprocess(raw, pre);
  REQUIRE(data.train.size() >= 64);

  embsr::Config config;
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  config.d = 100;
  config.max_length = 40;
  config.dropout = 0.0;
  config.seed = 3;
  // The full model, and the paper's Section V variants (presets of model/embsr_spec.hpp).
  namespace presets = embsr::embsr_presets;
  SECTION("EMBSR") {}
  SECTION("SGNN-Dyadic") { presets::SgnnDyadic::apply(config); }
  SECTION("SGNN-Abs-Self") { presets::SgnnAbsSelf::apply(config); }
  SECTION("SGNN-Self") { presets::SgnnSelf::apply(config); }
  SECTION("SGNN-Seq-Self") { presets::SgnnSeqSelf::apply(config); }
  SECTION("RNN-Self") { presets::RnnSelf::apply(config); }
  embsr::EMBSR<Exec, float> model(config);
  embsr::AdamOptions adam_options;
  adam_options.lr = 0.001;  // the paper's JD-Appliances rate
  embsr::Adam<Exec, float> adam(model.num_parameters(), adam_options);

  std::vector<embsr::index_t> ids(64);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<embsr::index_t>(i);
  embsr::BatchBuilder builder;
  const auto batch = embsr::to_memory_space<Exec::memory_space>(
      builder.build(data.train, embsr::Span<const embsr::index_t>(ids.data(), ids.size())));

  const double first = model.loss_and_backward(batch, 0, true);
  adam.step(Exec(), model.parameters().values(), model.parameters().grads());
  double last = first;
  int steps = 1;
  for (; steps < 400 && last > 0.05 * first; ++steps) {
    last = model.loss_and_backward(batch, static_cast<std::uint64_t>(steps), true);
    adam.step(Exec(), model.parameters().values(), model.parameters().grads());
  }
  INFO("loss " << first << " -> " << last << " after " << steps << " steps");
  CHECK(last < 0.05 * first);
}

}  // namespace test_training
