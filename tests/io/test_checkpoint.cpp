// Checkpoints: exact round trips, identical scores after a restore, bit-identical resumed training,
// and rejection (with a clear reason) of every kind of damaged or mismatched file.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <embsr/io/checkpoint.hpp>
#include <embsr/model/embsr.hpp>
#include <embsr/train/adam.hpp>

#include "data_paths.hpp"
#include "../model/model_fixture.hpp"

namespace {

using Exec = Kokkos::Serial;
using Model = embsr::EMBSR<Exec, float>;
using Optimizer = embsr::Adam<Exec, float>;
namespace fs = std::filesystem;

embsr::Vocabulary tiny_items() {
  std::vector<std::string> t;
  for (int i = 0; i < 9; ++i) t.push_back("sku" + std::to_string(100 + i));
  return embsr::Vocabulary(t);
}
embsr::Vocabulary tiny_ops() { return embsr::Vocabulary({"Click", "Cart", "Order"}); }

std::vector<float> host_values(const Model& m) {
  const auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m.parameters().values());
  return std::vector<float>(h.data(), h.data() + h.extent(0));
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A checkpoint of a tiny model after two Adam steps (non-trivial optimizer state).
embsr::Checkpoint trained_checkpoint() {
  Model model(embsr::test::tiny_config());
  Optimizer adam(model.num_parameters(), embsr::AdamOptions{});
  const auto set = embsr::test::tiny_examples();
  const auto batch = embsr::test::make_batch<Exec::memory_space>(set, embsr::test::all_ids(set));
  for (std::uint64_t s = 0; s < 2; ++s) {
    model.loss_and_backward(batch, s);
    adam.step(Exec(), model.parameters().values(), model.parameters().grads());
  }
  embsr::TrainingState training;
  training.epoch = 3;
  training.global_step = 2;
  training.shuffle_seed = 0xfeedbeefcafeULL;
  training.best_epoch = 2;
  training.best_hit20 = 0.625;
  training.best_mrr20 = 0.3125;
  training.epochs_without_gain = 1;
  return embsr::make_checkpoint(model, tiny_items(), tiny_ops(), &adam, training);
}

void require_equal(const embsr::Checkpoint& a, const embsr::Checkpoint& b) {
  const auto &x = a.config, &y = b.config;
  CHECK(x.num_items == y.num_items);
  CHECK(x.num_ops == y.num_ops);
  CHECK(x.d == y.d);
  CHECK(x.max_length == y.max_length);
  CHECK(x.gnn_steps == y.gnn_steps);
  CHECK(x.dropout == y.dropout);
  CHECK(x.w_k == y.w_k);
  CHECK(x.init_std == y.init_std);
  CHECK(x.seed == y.seed);
  CHECK(x.next_op == y.next_op);
  CHECK(x.use_attention == y.use_attention);
  CHECK(x.use_gnn == y.use_gnn);
  CHECK(x.use_run_gru == y.use_run_gru);
  CHECK(x.use_relations == y.use_relations);
  CHECK(x.fusion == y.fusion);
  CHECK(x.fixed_beta == y.fixed_beta);
  CHECK(a.items == b.items);
  CHECK(a.ops == b.ops);
  REQUIRE(a.entries.size() == b.entries.size());
  for (std::size_t i = 0; i < a.entries.size(); ++i) {
    CHECK(a.entries[i].name == b.entries[i].name);
    CHECK(a.entries[i].offset == b.entries[i].offset);
    CHECK(a.entries[i].rows == b.entries[i].rows);
    CHECK(a.entries[i].cols == b.entries[i].cols);
  }
  CHECK(a.values == b.values);
  CHECK(a.has_optimizer == b.has_optimizer);
  CHECK(a.optimizer.options.lr == b.optimizer.options.lr);
  CHECK(a.optimizer.options.beta1 == b.optimizer.options.beta1);
  CHECK(a.optimizer.options.beta2 == b.optimizer.options.beta2);
  CHECK(a.optimizer.options.eps == b.optimizer.options.eps);
  CHECK(a.optimizer.options.weight_decay == b.optimizer.options.weight_decay);
  CHECK(a.optimizer.options.amsgrad == b.optimizer.options.amsgrad);
  CHECK(a.optimizer.steps == b.optimizer.steps);
  CHECK(a.optimizer.m == b.optimizer.m);
  CHECK(a.optimizer.v == b.optimizer.v);
  CHECK(a.optimizer.v_max == b.optimizer.v_max);
  CHECK(a.training.epoch == b.training.epoch);
  CHECK(a.training.global_step == b.training.global_step);
  CHECK(a.training.shuffle_seed == b.training.shuffle_seed);
  CHECK(a.training.best_epoch == b.training.best_epoch);
  CHECK(a.training.best_hit20 == b.training.best_hit20);
  CHECK(a.training.best_mrr20 == b.training.best_mrr20);
  CHECK(a.training.epochs_without_gain == b.training.epochs_without_gain);
}

std::string reason_of_load(const std::string& path) {
  try {
    embsr::load_checkpoint(path);
  } catch (const embsr::DataError& e) {
    CHECK(e.file() == path);
    CHECK(e.line() == 0);
    return e.reason();
  }
  FAIL("load_checkpoint('" << path << "') did not throw");
  return "";
}

}  // namespace

TEST_CASE("checkpoint: save/load round trip keeps everything", "[checkpoint]") {
  const std::string dir = embsr::test::scratch_dir();
  auto ck = trained_checkpoint();
  REQUIRE(ck.has_optimizer);
  REQUIRE(ck.optimizer.steps == 2);
  const std::string path = dir + "/model.ckpt";
  embsr::save_checkpoint(path, ck);
  const auto back = embsr::load_checkpoint(path);
  require_equal(ck, back);

  SECTION("non-default config fields, options and an empty vocabulary") {
    ck.config.next_op = embsr::NextOpMode::Learned;
    ck.config.fusion = embsr::FusionMode::Fixed;
    ck.config.fixed_beta = 0.25;
    ck.config.dropout = 0.125;
    ck.config.w_k = 10.5;
    ck.config.init_std = 0.05;
    ck.config.seed = 0x123456789abcdefULL;
    ck.config.use_relations = false;  // entries no longer match a model, but a checkpoint stores what it is given
    ck.optimizer.options.lr = 0.003;
    ck.optimizer.options.beta1 = 0.8;
    ck.optimizer.options.beta2 = 0.99;
    ck.optimizer.options.eps = 1e-6;
    ck.optimizer.options.weight_decay = 1e-4;
    ck.optimizer.options.amsgrad = false;
    ck.items = embsr::Vocabulary();
    ck.training.best_epoch = -1;
    ck.training.epochs_without_gain = 0;
    embsr::save_checkpoint(path, ck);
    require_equal(ck, embsr::load_checkpoint(path));
  }
  SECTION("without optimizer state") {
    ck.has_optimizer = false;
    ck.optimizer = embsr::OptimizerState{};
    embsr::save_checkpoint(path, ck);
    require_equal(ck, embsr::load_checkpoint(path));
  }
  SECTION("tokens with spaces, newlines, NUL and non-ASCII bytes") {
    ck.ops = embsr::Vocabulary({"add to cart", std::string("a\0b", 3), "\xc3\xa9\ncol"});
    embsr::save_checkpoint(path, ck);
    require_equal(ck, embsr::load_checkpoint(path));
  }
  // Little-endian on disk: the version field is bytes 8..11.
  const auto bytes = read_bytes(path);
  REQUIRE(bytes.size() > 24);
  CHECK(std::memcmp(bytes.data(), "EMBSRCKP", 8) == 0);
  CHECK(bytes[8] == 1);
  CHECK(bytes[9] == 0);
  CHECK(bytes[10] == 0);
  CHECK(bytes[11] == 0);
}

TEST_CASE("checkpoint: a restored fresh model gives identical scores", "[checkpoint]") {
  const std::string dir = embsr::test::scratch_dir();
  const auto ck = trained_checkpoint();
  embsr::save_checkpoint(dir + "/m.ckpt", ck);

  auto config = ck.config;
  Model original(config);
  embsr::restore(ck, original, nullptr);
  config.seed = 99;  // a different initialisation (and dropout seed) is overwritten
  Model fresh(config);
  REQUIRE(host_values(fresh) != ck.values);
  embsr::restore(embsr::load_checkpoint(dir + "/m.ckpt"), fresh, nullptr);
  CHECK(host_values(fresh) == ck.values);

  const auto set = embsr::test::tiny_examples();
  const auto batch = embsr::test::make_batch<Exec::memory_space>(set, embsr::test::all_ids(set));
  const auto a = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), original.scores(batch));
  const auto b = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), fresh.scores(batch));
  REQUIRE(a.extent(0) == b.extent(0));
  REQUIRE(a.extent(1) == b.extent(1));
  for (std::size_t i = 0; i < a.extent(0); ++i)
    for (std::size_t j = 0; j < a.extent(1); ++j) CHECK(a(i, j) == b(i, j));
}

TEST_CASE("checkpoint: resumed training is bit-identical to uninterrupted training", "[checkpoint]") {
  const std::string dir = embsr::test::scratch_dir();
  const auto config = embsr::test::tiny_config();
  const auto set = embsr::test::tiny_examples();
  const auto batch = embsr::test::make_batch<Exec::memory_space>(set, embsr::test::all_ids(set));
  embsr::AdamOptions options;
  options.lr = 0.01;
  options.weight_decay = 1e-3;

  std::vector<double> straight;
  {
    Model model(config);
    Optimizer adam(model.num_parameters(), options);
    for (std::uint64_t s = 0; s < 6; ++s) {
      straight.push_back(model.loss_and_backward(batch, s));
      adam.step(Exec(), model.parameters().values(), model.parameters().grads());
    }
  }

  std::vector<double> resumed;
  const std::string path = dir + "/resume.ckpt";
  {
    Model model(config);
    Optimizer adam(model.num_parameters(), options);
    for (std::uint64_t s = 0; s < 3; ++s) {
      resumed.push_back(model.loss_and_backward(batch, s));
      adam.step(Exec(), model.parameters().values(), model.parameters().grads());
    }
    embsr::TrainingState training;
    training.global_step = 3;
    embsr::save_checkpoint(path, embsr::make_checkpoint(model, tiny_items(), tiny_ops(), &adam, training));
  }
  {
    const auto ck = embsr::load_checkpoint(path);
    auto new_config = ck.config;
    new_config.init_std = 0.05;  // the new model starts elsewhere: only the checkpoint may matter
    new_config.seed = config.seed;
    Model model(new_config);
    Optimizer adam(model.num_parameters(), ck.optimizer.options);
    embsr::restore(ck, model, &adam);
    CHECK(adam.steps() == 3);
    for (std::uint64_t s = ck.training.global_step; s < 6; ++s) {
      resumed.push_back(model.loss_and_backward(batch, s));
      adam.step(Exec(), model.parameters().values(), model.parameters().grads());
    }
  }
  REQUIRE(resumed.size() == straight.size());
  for (std::size_t i = 0; i < straight.size(); ++i) {
    INFO("step " << i);
    CHECK(resumed[i] == straight[i]);  // bit-identical
  }
  CHECK(straight.back() < straight.front());
}

TEST_CASE("checkpoint: damaged files are rejected with the reason", "[checkpoint]") {
  using Catch::Matchers::Contains;
  const std::string dir = embsr::test::scratch_dir();
  auto ck = trained_checkpoint();
  const std::string good = dir + "/good.ckpt";
  embsr::save_checkpoint(good, ck);
  const auto bytes = read_bytes(good);
  const std::string bad = dir + "/bad.ckpt";

  SECTION("truncated anywhere (every position in the first and last 600 bytes, a stride between)") {
    for (std::size_t cut = 0; cut < bytes.size(); cut += (cut < 600 || cut + 600 > bytes.size()) ? 1 : 97) {
      write_bytes(bad, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)));
      const auto reason = reason_of_load(bad);
      if (reason.find("truncated at byte " + std::to_string(cut)) == std::string::npos) {
        FAIL_CHECK("cut at " << cut << ": " << reason);
        break;
      }
    }
  }
  SECTION("a flipped byte anywhere after the header fails the checksum") {
    for (std::size_t pos = 24; pos < bytes.size(); pos += 41) {
      auto copy = bytes;
      copy[pos] = static_cast<char>(copy[pos] ^ 0x10);
      write_bytes(bad, copy);
      const auto reason = reason_of_load(bad);
      if (reason != "corrupted: checksum mismatch") {
        FAIL_CHECK("flip at " << pos << ": " << reason);
        break;
      }
    }
  }
  SECTION("trailing bytes") {
    auto copy = bytes;
    copy.push_back('x');
    write_bytes(bad, copy);
    CHECK_THAT(reason_of_load(bad), Contains("corrupted"));
  }
  SECTION("wrong magic") {
    auto copy = bytes;
    copy[3] = 'X';
    write_bytes(bad, copy);
    CHECK_THAT(reason_of_load(bad), Contains("not an embsr checkpoint"));
    write_bytes(bad, std::vector<char>{'h', 'e', 'l', 'l', 'o'});
    CHECK_THAT(reason_of_load(bad), Contains("not an embsr checkpoint"));
  }
  SECTION("wrong version") {
    auto copy = bytes;
    copy[8] = 2;
    write_bytes(bad, copy);
    CHECK(reason_of_load(bad) == "checkpoint version 2, this build reads version 1");
  }
  SECTION("missing file") {
    const std::string missing = dir + "/nope.ckpt";
    CHECK_THAT(reason_of_load(missing), Contains("cannot open"));
  }
  SECTION("an inconsistent checkpoint is never written") {
    auto broken = ck;
    broken.values.pop_back();
    CHECK_THROWS_WITH(embsr::save_checkpoint(bad, broken), Contains("cover") && Contains("values"));
    broken = ck;
    broken.entries[1].offset += 1;
    CHECK_THROWS_AS(embsr::save_checkpoint(bad, broken), embsr::InvalidArgument);
    broken = ck;
    broken.optimizer.v.resize(3);
    CHECK_THROWS_WITH(embsr::save_checkpoint(bad, broken), Contains("optimizer state 'v'"));
    broken = ck;
    broken.config.d = 0;
    CHECK_THROWS_WITH(embsr::save_checkpoint(bad, broken), Contains("invalid config"));
    CHECK_FALSE(fs::exists(bad));
  }
}

TEST_CASE("checkpoint: restore rejects a model of another shape", "[checkpoint]") {
  using Catch::Matchers::Contains;
  const auto ck = trained_checkpoint();
  {
    Model other(embsr::test::tiny_config(/*num_items=*/12));
    CHECK_THROWS_WITH(embsr::restore(ck, other, nullptr),
                      Contains("parameter 'item_embedding' is 9 x 4 in the checkpoint, 12 x 4 in the model"));
  }
  {
    auto config = ck.config;
    config.use_relations = false;
    Model other(config);
    CHECK_THROWS_WITH(embsr::restore(ck, other, nullptr),
                      Contains("is 'attention.relations' in the checkpoint, 'fusion.W_f' in the model"));
  }
  {
    auto config = ck.config;
    config.w_k = 5;
    Model other(config);
    CHECK_THROWS_WITH(embsr::restore(ck, other, nullptr), Contains("config.w_k"));
  }
  {
    auto config = ck.config;
    config.next_op = embsr::NextOpMode::Learned;
    Model other(config);
    CHECK_THROWS_WITH(embsr::restore(ck, other, nullptr), Contains("config.next_op"));
  }
  {
    auto renamed = ck;
    renamed.entries[0].name = "items";
    Model model(ck.config);
    const auto before = host_values(model);
    CHECK_THROWS_WITH(embsr::restore(renamed, model, nullptr),
                      Contains("parameter 0 is 'items' in the checkpoint, 'item_embedding' in the model"));
    CHECK(host_values(model) == before);  // nothing written on failure
  }
  {
    auto no_opt = ck;
    no_opt.has_optimizer = false;
    Model model(ck.config);
    Optimizer adam(model.num_parameters(), embsr::AdamOptions{});
    CHECK_THROWS_WITH(embsr::restore(no_opt, model, &adam), Contains("no optimizer state"));
  }
  CHECK_THROWS_WITH(embsr::make_checkpoint(Model(ck.config), embsr::Vocabulary({"a", "b"}), tiny_ops(),
                                           nullptr, embsr::TrainingState{}),
                    Contains("item vocabulary has 2 tokens"));
}

TEST_CASE("checkpoint: writes are atomic", "[checkpoint]") {
  const std::string dir = embsr::test::scratch_dir();
  const auto ck = trained_checkpoint();
  const std::string path = dir + "/model.ckpt";
  embsr::save_checkpoint(path, ck);
  embsr::save_checkpoint(path, ck);  // overwriting works too
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  CHECK(names == std::vector<std::string>{"model.ckpt"});  // no temporary file left behind
  const auto before = read_bytes(path);

  auto other = ck;
  other.training.epoch = 42;
  SECTION("the temporary file cannot be created") {
    // A directory squatting on the temporary name makes the write fail even for root.
    const std::string tmp = path + ".tmp." + std::to_string(static_cast<long long>(::getpid()));
    fs::create_directory(tmp);
    CHECK_THROWS_AS(embsr::save_checkpoint(path, other), embsr::Error);
    fs::remove(tmp);
  }
  SECTION("the rename fails (the target is a directory)") {
    const std::string target = dir + "/sub";
    fs::create_directory(target);
    write_bytes(target + "/keep", {'k'});
    CHECK_THROWS_WITH(embsr::save_checkpoint(target, other), Catch::Matchers::Contains("cannot rename"));
    CHECK_FALSE(fs::exists(target + ".tmp." + std::to_string(static_cast<long long>(::getpid()))));
    CHECK(fs::is_directory(target));
    fs::remove_all(target);
  }
  SECTION("unwritable directory") {
    if (::geteuid() == 0) {
      SUCCEED("running as root: permissions do not stop writes");
    } else {
      fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
      CHECK_THROWS_AS(embsr::save_checkpoint(path, other), embsr::Error);
      fs::permissions(dir, fs::perms::owner_all);
    }
  }
  CHECK(read_bytes(path) == before);
  CHECK(embsr::load_checkpoint(path).training.epoch == ck.training.epoch);
  names.clear();
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  CHECK(names == std::vector<std::string>{"model.ckpt"});
}
