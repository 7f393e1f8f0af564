// The training loop: resuming from last.ckpt gives bit-identical losses to an uninterrupted run
// (Serial backend), best.ckpt holds the best validation epoch, the model ends on the best epoch.
#include <catch2/catch.hpp>

#include <vector>

#include <embsr/data/jd_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/train/trainer.hpp>

#include "data_paths.hpp"

namespace {

// The shipped JD Appliances sample, cut to 300 training sessions so that an epoch is quick.
embsr::PreparedData small_jd() {
  const auto raw = embsr::load_jd({embsr::test::repo_data("jd_appliances/HUP_Data/JD_Applicances_sample"),
                                   embsr::test::repo_data("jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample")});
  embsr::PreprocessOptions pre;
  pre.min_item_support = 5;
  pre.max_length = 40;
  embsr::PreparedData data = embsr::preprocess(raw, pre);
  embsr::ExampleSet train;
  for (std::size_t e = 0; e < 300; ++e)
    train.add(data.train.input_items(e), data.train.input_ops(e), data.train.targets[e], data.train.next_ops[e],
              data.train.sources[e], data.train.order_keys[e]);
  data.train = std::move(train);
  return data;
}

embsr::Config small_config(const embsr::PreparedData& data) {
  embsr::Config c;
  c.num_items = data.item_vocab.size();
  c.num_ops = data.op_vocab.size();
  c.d = 8;
  c.max_length = 40;
  c.dropout = 0.2;
  c.seed = 5;
  return c;
}

embsr::TrainOptions options(int epochs, const std::string& dir) {
  embsr::TrainOptions o;
  o.epochs = epochs;
  o.patience = 100;
  o.batch_size = 64;
  o.progress = false;
  o.checkpoint_dir = dir;
  o.shuffle_seed = 9;
  return o;
}

}  // namespace

TEST_CASE("trainer: resume from last.ckpt gives the same losses as an uninterrupted run", "[train][trainer]") {
#if defined(KOKKOS_ENABLE_SERIAL)
  using Exec = Kokkos::Serial;
  const auto data = small_jd();
  const auto config = small_config(data);

  const std::string full_dir = embsr::test::scratch_dir();
  embsr::EMBSR<Exec, float> full_model(config);
  embsr::Trainer<Exec> full(full_model, data, options(4, full_dir));
  const auto uninterrupted = full.run();
  REQUIRE(uninterrupted.history.size() == 4);

  const std::string dir = embsr::test::scratch_dir();
  {
    embsr::EMBSR<Exec, float> model(config);
    embsr::Trainer<Exec> first(model, data, options(2, dir));
    const auto part = first.run();
    REQUIRE(part.history.size() == 2);
    for (std::size_t e = 0; e < 2; ++e) CHECK(part.history[e].train_loss == uninterrupted.history[e].train_loss);
  }
  auto other = config;
  other.seed = 77;  // different initial values: everything must come from the checkpoint
  embsr::EMBSR<Exec, float> model(other);
  embsr::Trainer<Exec> second(model, data, options(4, dir));
  second.resume(dir + "/last.ckpt");
  CHECK(second.state().epoch == 2);
  const auto rest = second.run();
  REQUIRE(rest.history.size() == 2);
  for (std::size_t e = 0; e < 2; ++e) {
    CHECK(rest.history[e].epoch == uninterrupted.history[e + 2].epoch);
    CHECK(rest.history[e].train_loss == uninterrupted.history[e + 2].train_loss);
    CHECK(rest.history[e].valid.hit(20) == uninterrupted.history[e + 2].valid.hit(20));
  }
  CHECK(rest.best_epoch == uninterrupted.best_epoch);
  CHECK(rest.test.hit(20) == uninterrupted.test.hit(20));
  CHECK(rest.test.mrr(20) == uninterrupted.test.mrr(20));
#else
  WARN("Serial backend not enabled");
#endif
}

TEST_CASE("trainer: the model ends on the best validation epoch, saved as best.ckpt", "[train][trainer]") {
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const auto data = small_jd();
  const std::string dir = embsr::test::scratch_dir();
  embsr::EMBSR<Exec, float> model(small_config(data));
  embsr::Trainer<Exec> trainer(model, data, options(3, dir));
  const auto result = trainer.run();
  REQUIRE(result.best_epoch >= 1);
  // The validation metrics of the final model are those of the best epoch.
  const auto valid = embsr::evaluate(model, data.valid);
  CHECK(valid.hit(20) == Approx(result.best_valid.hit(20)));
  CHECK(valid.mrr(20) == Approx(result.best_valid.mrr(20)));
  const auto best = embsr::load_checkpoint(dir + "/best.ckpt");
  CHECK(best.training.best_epoch == result.best_epoch);
  CHECK_FALSE(best.has_optimizer);
  const auto last = embsr::load_checkpoint(dir + "/last.ckpt");
  CHECK(last.has_optimizer);
  CHECK(last.training.epoch == 3);
}

TEST_CASE("trainer: invalid options are rejected", "[train][trainer]") {
  embsr::TrainOptions o;
  o.epochs = 0;
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("epochs"));
  o = embsr::TrainOptions{};
  o.patience = 0;
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("patience"));
}
