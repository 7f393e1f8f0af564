// The training loop: resuming from last.ckpt gives bit-identical losses to an uninterrupted run
// (Serial backend), best.ckpt holds the best validation epoch, the model ends on the best epoch.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include <embsr/data/jd_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/train/trainer.hpp>

#include "data_paths.hpp"

namespace test_trainer {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

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

namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void copy_file(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

}  // namespace

TEST_CASE("trainer: a step that leaves a parameter non-finite stops training, and nothing is saved", "[train][trainer]") {
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const auto data = small_jd();
  const std::string dir = embsr::test::scratch_dir();
  auto o = options(3, dir);
  o.batch_size = 1000;     // one batch per epoch: the step that diverges is the epoch's last one,
                           // which used to be saved unchecked
  o.adam.lr = 1e38;        // lr / (1 - beta1) overflows float: the first update is +-inf
  embsr::EMBSR<Exec, float> model(small_config(data));
  embsr::Trainer<Exec> trainer(model, data, o);
  try {
    trainer.run();
    FAIL("training with lr 1e38 did not stop");
  } catch (const embsr::TrainingDiverged& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("epoch 1, after the update of batch 1 of 1") && Catch::Contains("parameter '") &&
                         Catch::Contains("non-finite"));
  }
  CHECK_FALSE(std::filesystem::exists(dir + "/best.ckpt"));
  CHECK_FALSE(std::filesystem::exists(dir + "/last.ckpt"));

  SECTION("a step in the middle of an epoch") {
    const std::string dir2 = embsr::test::scratch_dir();
    auto o2 = options(3, dir2);
    o2.adam.lr = 1e38;
    embsr::EMBSR<Exec, float> model2(small_config(data));
    embsr::Trainer<Exec> trainer2(model2, data, o2);
    CHECK_THROWS_WITH(trainer2.run(), Catch::Contains("epoch 1, after the update of batch 1 of 5"));
    CHECK_FALSE(std::filesystem::exists(dir2 + "/last.ckpt"));
  }
}

TEST_CASE("trainer: the checkpoint pair survives a crash between its two writes", "[train][trainer]") {
#if defined(KOKKOS_ENABLE_SERIAL)
  using Exec = Kokkos::Serial;
  const auto data = small_jd();
  const auto config = small_config(data);
  // The reference: five epochs without interruption; the crash is simulated at the first epoch
  // k >= 2 that improved (both files written), after last.ckpt was renamed and before best.ckpt was.
  // (At the default rate this small model's validation H@20 stays 0 for five epochs.)
  constexpr int kEpochs = 5;
  auto options = [](int epochs, const std::string& dir) {
    auto o = test_trainer::options(epochs, dir);
    o.adam.lr = 0.02;
    return o;
  };
  const std::string straight_dir = embsr::test::scratch_dir();
  embsr::EMBSR<Exec, float> straight_model(config);
  const auto straight = embsr::Trainer<Exec>(straight_model, data, options(kEpochs, straight_dir)).run();
  for (const auto& r : straight.history) UNSCOPED_INFO("epoch " << r.epoch << " valid H@20 " << r.valid.hit(20) << (r.improved ? " improved" : ""));
  int k = 0;
  for (const auto& r : straight.history)
    if (r.epoch >= 2 && r.improved && k == 0) k = r.epoch;
  REQUIRE(k >= 2);  // the case under test exists in this run

  // The crashed state: last.ckpt of epoch k beside the best.ckpt written before epoch k.
  const std::string before_dir = embsr::test::scratch_dir(), dir = embsr::test::scratch_dir();
  {
    embsr::EMBSR<Exec, float> model(config);
    embsr::Trainer<Exec>(model, data, options(k - 1, before_dir)).run();
    embsr::EMBSR<Exec, float> model2(config);
    REQUIRE(embsr::Trainer<Exec>(model2, data, options(k, dir)).run().best_epoch == k);
  }
  const std::string best_of_k = file_bytes(dir + "/best.ckpt");
  copy_file(before_dir + "/best.ckpt", dir + "/best.ckpt");
  const std::string one_dir = before_dir;

  embsr::EMBSR<Exec, float> model(config);
  embsr::Trainer<Exec> resumed(model, data, options(kEpochs, dir));
  resumed.resume(dir + "/last.ckpt");
  CHECK(file_bytes(dir + "/best.ckpt") == best_of_k);  // repaired from last.ckpt
  const auto rest = resumed.run();
  CHECK(rest.best_epoch == straight.best_epoch);
  CHECK(rest.test.hit(20) == straight.test.hit(20));
  CHECK(rest.test.mrr(20) == straight.test.mrr(20));
  CHECK(file_bytes(dir + "/best.ckpt") == file_bytes(straight_dir + "/best.ckpt"));

  SECTION("a best.ckpt that last.ckpt does not refer to is refused") {
    // last.ckpt says: best epoch B of B + 1 epochs (so best.ckpt must be epoch B's file).
    auto last = embsr::load_checkpoint(dir + "/last.ckpt");
    const auto best = embsr::load_checkpoint(dir + "/best.ckpt");
    last.training.best_epoch = best.training.best_epoch;
    last.training.epoch = static_cast<std::uint64_t>(best.training.best_epoch) + 1;
    last.training.best_checksum = best.file_checksum;
    const std::string crafted = embsr::test::scratch_dir();
    embsr::save_checkpoint(crafted + "/last.ckpt", last);
    copy_file(one_dir + "/best.ckpt", crafted + "/best.ckpt");  // another run's, or an older, best
    embsr::EMBSR<Exec, float> m(config);
    embsr::Trainer<Exec> t(m, data, options(kEpochs + 2, crafted));
    CHECK_THROWS_WITH(t.resume(crafted + "/last.ckpt"), Catch::Contains("is not the best.ckpt that"));
    std::filesystem::remove(crafted + "/best.ckpt");
    CHECK_THROWS_WITH(t.resume(crafted + "/last.ckpt"), Catch::Contains("best.ckpt: missing"));
    copy_file(dir + "/best.ckpt", crafted + "/best.ckpt");
    CHECK_NOTHROW(t.resume(crafted + "/last.ckpt"));
  }
#else
  WARN("Serial backend not enabled");
#endif
}

TEST_CASE("trainer: an unwritable checkpoint directory is found before the first epoch", "[train][trainer]") {
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const auto data = small_jd();
  const std::string dir = embsr::test::scratch_dir();
  const std::string file = dir + "/a-file";
  std::ofstream(file) << "x";
  embsr::EMBSR<Exec, float> model(small_config(data));
  embsr::Trainer<Exec> trainer(model, data, options(1, file));
  CHECK_THROWS_WITH(trainer.run(), Catch::Contains("a-file' is not a directory"));
  CHECK(trainer.state().global_step == 0);
}

}  // namespace test_trainer
