// Checkpoints: exact round trips, identical scores after a restore, bit-identical resumed training,
// and rejection (with a clear reason) of every kind of damaged or mismatched file.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <embsr/io/checkpoint.hpp>
#include <embsr/model/embsr.hpp>
#include <embsr/optim/adam.hpp>

#include "data_paths.hpp"
#include "../model/model_fixture.hpp"

namespace test_checkpoint {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

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

// The EMBSR Config a checkpoint's options describe.
embsr::Config config_of(const embsr::Checkpoint& ck) { return embsr::embsr_config(ck.options); }

void require_equal(const embsr::Checkpoint& a, const embsr::Checkpoint& b) {
  CHECK(a.model == b.model);
  CHECK(a.options == b.options);
  const auto x = config_of(a), y = config_of(b);
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
  REQUIRE(a.tables.size() == b.tables.size());
  for (std::size_t i = 0; i < a.tables.size(); ++i) {
    CHECK(a.tables[i].name == b.tables[i].name);
    CHECK(a.tables[i].rows == b.tables[i].rows);
    CHECK(a.tables[i].cols == b.tables[i].cols);
    CHECK(a.tables[i].values == b.tables[i].values);
  }
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
    auto config = config_of(ck);
    config.next_op = embsr::NextOpMode::Learned;
    config.fusion = embsr::FusionMode::Fixed;
    config.fixed_beta = 0.25;
    config.dropout = 0.125;
    config.w_k = 10.5;
    config.init_std = 0.05;
    config.seed = 0x123456789abcdefULL;
    config.use_relations = false;
    const Model other(config);  // the entries must be this config's layout
    ck = embsr::make_checkpoint<Exec>(other, tiny_items(), tiny_ops(), nullptr, ck.training);
    ck.has_optimizer = true;
    ck.optimizer.m.assign(ck.values.size(), 0.5f);
    ck.optimizer.v.assign(ck.values.size(), 0.25f);
    ck.optimizer.v_max.assign(ck.values.size(), 0.25f);
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
  CHECK(bytes[8] == 3);
  CHECK(bytes[9] == 0);
  CHECK(bytes[10] == 0);
  CHECK(bytes[11] == 0);
}

TEST_CASE("checkpoint: a restored fresh model gives identical scores", "[checkpoint]") {
  const std::string dir = embsr::test::scratch_dir();
  const auto ck = trained_checkpoint();
  embsr::save_checkpoint(dir + "/m.ckpt", ck);

  auto config = config_of(ck);
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
    auto new_config = config_of(ck);
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
    copy[8] = 4;  // a newer version than this build writes
    write_bytes(bad, copy);
    CHECK(reason_of_load(bad) == "checkpoint version 4, this build reads versions 1 to 3");
    copy[8] = 0;
    write_bytes(bad, copy);
    CHECK(reason_of_load(bad) == "checkpoint version 0, this build reads versions 1 to 3");
  }
  SECTION("missing file") {
    const std::string missing = dir + "/nope.ckpt";
    CHECK_THAT(reason_of_load(missing), Contains("cannot open"));
  }
  SECTION("an inconsistent checkpoint is never written") {
    auto broken = ck;
    broken.values.pop_back();
    CHECK_THROWS_WITH(embsr::save_checkpoint(bad, broken), Contains("implies") && Contains("values"));
    broken = ck;
    broken.entries[1].offset += 1;
    CHECK_THROWS_AS(embsr::save_checkpoint(bad, broken), embsr::InvalidArgument);
    broken = ck;
    broken.optimizer.v.resize(3);
    CHECK_THROWS_WITH(embsr::save_checkpoint(bad, broken), Contains("optimizer state 'v'"));
    broken = ck;
    broken.options.set("d", "0");
    CHECK_THROWS_WITH(embsr::save_checkpoint(bad, broken), Contains("invalid config"));
    broken = ck;
    broken.model = "no-such-model";
    CHECK_THROWS_WITH(embsr::save_checkpoint(bad, broken), Contains("does not know") && Contains("s-pop"));
    broken = ck;
    broken.options.set("neighbours", "100");
    CHECK_THROWS_WITH(embsr::save_checkpoint(bad, broken), Contains("does not take option 'neighbours'"));
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
    auto config = config_of(ck);
    config.use_relations = false;
    Model other(config);
    CHECK_THROWS_WITH(embsr::restore(ck, other, nullptr),
                      Contains("is 'attention.relations' in the checkpoint, 'fusion.W_f' in the model"));
  }
  {
    auto config = config_of(ck);
    config.w_k = 5;
    Model other(config);
    CHECK_THROWS_WITH(embsr::restore(ck, other, nullptr), Contains("config.w_k"));
  }
  {
    auto config = config_of(ck);
    config.next_op = embsr::NextOpMode::Learned;
    Model other(config);
    CHECK_THROWS_WITH(embsr::restore(ck, other, nullptr), Contains("config.next_op"));
  }
  {
    auto renamed = ck;
    renamed.entries[0].name = "items";
    Model model(config_of(ck));
    const auto before = host_values(model);
    CHECK_THROWS_WITH(embsr::restore(renamed, model, nullptr),
                      Contains("parameter 0 is 'items'") && Contains("implies 'item_embedding'"));
    CHECK(host_values(model) == before);  // nothing written on failure
  }
  {
    auto no_opt = ck;
    no_opt.has_optimizer = false;
    Model model(config_of(ck));
    Optimizer adam(model.num_parameters(), embsr::AdamOptions{});
    CHECK_THROWS_WITH(embsr::restore(no_opt, model, &adam), Contains("no optimizer state"));
  }
  CHECK_THROWS_WITH(embsr::make_checkpoint(Model(config_of(ck)), embsr::Vocabulary({"a", "b"}), tiny_ops(),
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
    CHECK_THROWS_WITH(embsr::save_checkpoint(target, other), Catch::Matchers::Contains("renaming"));
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

// ---- issue 11: hostile contents behind a valid checksum -----------------------------------------

namespace {

// An attacker's edit: fields changed, then the size field and the FNV-1a trailer recomputed.
void repatch(std::vector<char>& b) {
  const std::uint64_t size = b.size();
  for (int i = 0; i < 8; ++i) b[16 + static_cast<std::size_t>(i)] = static_cast<char>((size >> (8 * i)) & 0xff);
  const std::size_t body = b.size() - 8;
  const std::uint64_t h = embsr::detail::fnv1a64(reinterpret_cast<const unsigned char*>(b.data()), body);
  for (int i = 0; i < 8; ++i) b[body + static_cast<std::size_t>(i)] = static_cast<char>((h >> (8 * i)) & 0xff);
}
void put_i32(std::vector<char>& b, std::size_t at, std::int32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<char>((static_cast<std::uint32_t>(v) >> (8 * i)) & 0xff);
}
// Config field offsets (see io/checkpoint_format.hpp): after the 24-byte header.
constexpr std::size_t kNumItemsAt = 24, kDAt = 32, kMaxLengthAt = 36, kGnnStepsAt = 40;

// The bytes of a checkpoint, written without the writer's checks (as a hostile tool would).
std::vector<char> raw_bytes(const embsr::Checkpoint& ck) {
  const std::string s = embsr::detail::encode_checkpoint_bytes(ck);
  return std::vector<char>(s.begin(), s.end());
}

// An EMBSR checkpoint in the layout of version 2 (the Config in place of the model's name and
// options, no tables), written here independently of the library, which only reads it now.
std::vector<char> encode_version2(const embsr::Checkpoint& ck) {
  const embsr::Config c = config_of(ck);
  embsr::detail::CheckpointWriter w;
  w.bytes("EMBSRCKP", 8);
  w.u32(2);
  w.u32(0);
  w.u64(0);
  w.i32(c.num_items);
  w.i32(c.num_ops);
  w.i32(c.d);
  w.i32(c.max_length);
  w.i32(c.gnn_steps);
  w.f64(c.dropout);
  w.f64(c.w_k);
  w.f64(c.init_std);
  w.u64(c.seed);
  w.u8(static_cast<std::uint8_t>(c.next_op));
  w.boolean(c.use_attention);
  w.boolean(c.use_gnn);
  w.boolean(c.use_run_gru);
  w.boolean(c.use_relations);
  w.u8(static_cast<std::uint8_t>(c.fusion));
  w.f64(c.fixed_beta);
  w.vocabulary(ck.items);
  w.vocabulary(ck.ops);
  w.u64(ck.entries.size());
  for (const auto& e : ck.entries) {
    w.str(e.name);
    w.u64(e.offset);
    w.u64(e.rows);
    w.u64(e.cols);
  }
  w.floats(ck.values);
  w.boolean(ck.has_optimizer);
  if (ck.has_optimizer) {
    const auto& o = ck.optimizer;
    w.f64(o.options.lr);
    w.f64(o.options.beta1);
    w.f64(o.options.beta2);
    w.f64(o.options.eps);
    w.f64(o.options.weight_decay);
    w.boolean(o.options.amsgrad);
    w.u64(o.steps);
    w.floats(o.m);
    w.floats(o.v);
    w.floats(o.v_max);
  }
  const auto& t = ck.training;
  w.u64(t.epoch);
  w.u64(t.global_step);
  w.u64(t.shuffle_seed);
  w.i64(t.best_epoch);
  w.f64(t.best_hit20);
  w.f64(t.best_mrr20);
  w.i64(t.epochs_without_gain);
  w.u64(t.best_checksum);
  w.u64(0);  // trailer, patched by repatch
  std::vector<char> b(w.buffer().begin(), w.buffer().end());
  repatch(b);
  return b;
}

// load_checkpoint's reason, and that it came fast (nothing big was allocated or computed first).
std::string quick_reason(const std::string& path, const embsr::CheckpointLimits& limits = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string reason;
  try {
    embsr::load_checkpoint(path, limits);
    FAIL("load_checkpoint('" << path << "') did not throw");
  } catch (const embsr::DataError& e) {
    CHECK(e.file() == path);
    reason = e.reason();
  }
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 2.0);
  return reason;
}

}  // namespace

TEST_CASE("checkpoint: hostile sizes behind a valid checksum are refused before any allocation", "[checkpoint][hostile]") {
  using Catch::Matchers::Contains;
  const std::string dir = embsr::test::scratch_dir();
  const auto good = raw_bytes(trained_checkpoint());
  // The byte edits below are at the Config's offsets of versions 1 and 2 (still read).
  const auto good_v2 = encode_version2(trained_checkpoint());
  const std::string path = dir + "/hostile.ckpt";
  struct Edit {
    const char* what;
    std::size_t at;
    std::int32_t value;
  };
  // The audit's cases: gnn_steps 10^6 grew to 20.7 GB, d 3000 allocated 2.16 GB, max_length 10^7
  // ran for minutes, d 100000 asked Kokkos for 1119 GB.
  for (const Edit& e : {Edit{"gnn_steps", kGnnStepsAt, 1000000}, Edit{"d", kDAt, 3000}, Edit{"d", kDAt, 100000},
                        Edit{"max_length", kMaxLengthAt, 10000000}, Edit{"num_items", kNumItemsAt, 2147483647},
                        Edit{"d", kDAt, 2147483647}, Edit{"gnn_steps", kGnnStepsAt, 2147483647}}) {
    INFO(e.what << " = " << e.value);
    auto b = good_v2;
    put_i32(b, e.at, e.value);
    repatch(b);
    write_bytes(path, b);
    const std::string reason = quick_reason(path);
    // num_items is caught by the vocabulary count or the size check, the rest by the size check.
    CHECK_THAT(reason, Contains("implies") || Contains("tokens, the config has"));
    // The same in version 3, where the sizes are the model's options.
    auto ck = trained_checkpoint();
    ck.options.set(e.what, static_cast<int>(e.value));
    write_bytes(path, raw_bytes(ck));
    CHECK_THAT(quick_reason(path), Contains("implies") || Contains("tokens, the config has"));
  }
  SECTION("a config that fits the file but not the memory limit") {
    for (const auto& bytes : {good, good_v2}) {
      write_bytes(path, bytes);
      embsr::CheckpointLimits limits;
      limits.memory_bytes = 4096;
      CHECK_THAT(quick_reason(path, limits), Contains("more than the memory limit of 4.0 KiB"));
      limits.memory_bytes = 1ULL << 30;
      CHECK_NOTHROW(embsr::load_checkpoint(path, limits));
    }
  }
  SECTION("invalid config values") {
    for (const double w_k : {std::numeric_limits<double>::infinity(), -1.0, 0.0, std::nan("")}) {
      auto ck = trained_checkpoint();
      ck.options.set("w_k", w_k);
      write_bytes(path, raw_bytes(ck));
      CHECK_THAT(quick_reason(path), Contains("invalid config") && Contains("w_k must be finite and > 0"));
    }
  }
}

TEST_CASE("checkpoint: the audit's reproducers are refused with a DataError", "[checkpoint][hostile]") {
  // ../shared/reliability, copied into tests/io/data: valid size and checksum, huge counts that
  // made std::length_error escape (vector sizes computed from n * 8 wrapped around).
  for (const char* name : {"repro_entry_count_overflow.ckpt", "repro_vocab_count_overflow.ckpt",
                           "repro_float_count_overflow.ckpt"}) {
    INFO(name);
    const std::string path = std::string(EMBSR_SOURCE_DIR) + "/tests/io/data/" + name;
    REQUIRE(fs::exists(path));
    CHECK_FALSE(quick_reason(path).empty());
  }
}

TEST_CASE("checkpoint: non-finite values are never saved nor loaded", "[checkpoint][hostile]") {
  using Catch::Matchers::Contains;
  const std::string dir = embsr::test::scratch_dir();
  const std::string path = dir + "/nan.ckpt";
  const auto ck = trained_checkpoint();
  SECTION("a NaN weight") {
    auto bad = ck;
    bad.values[ck.entries[2].offset + 5] = std::nanf("");
    CHECK_THROWS_WITH(embsr::save_checkpoint(path, bad), Contains("parameter '" + ck.entries[2].name + "' has a non-finite value"));
    CHECK_FALSE(fs::exists(path));
    write_bytes(path, raw_bytes(bad));
    CHECK_THAT(quick_reason(path), Contains("parameter '" + ck.entries[2].name + "' has a non-finite value") &&
                                       Contains("row " + std::to_string(5 / ck.entries[2].cols)));
  }
  SECTION("an infinite weight") {
    auto bad = ck;
    bad.values.back() = -std::numeric_limits<float>::infinity();
    write_bytes(path, raw_bytes(bad));
    CHECK_THAT(quick_reason(path), Contains("non-finite value (-inf)"));
  }
  SECTION("optimizer state: NaN moment, negative second moment") {
    auto bad = ck;
    bad.optimizer.m[3] = std::nanf("");
    write_bytes(path, raw_bytes(bad));
    CHECK_THAT(quick_reason(path), Contains("optimizer state 'm' has an invalid value"));
    bad = ck;
    bad.optimizer.v_max[7] = -1.0f;
    write_bytes(path, raw_bytes(bad));
    CHECK_THAT(quick_reason(path), Contains("optimizer state 'v_max' has an invalid value"));
  }
  SECTION("a best epoch after the last epoch") {
    auto bad = ck;
    bad.training.best_epoch = static_cast<int>(bad.training.epoch) + 1;
    write_bytes(path, raw_bytes(bad));
    CHECK_THAT(quick_reason(path), Contains("best epoch 4 comes after the last finished epoch 3"));
  }
}

TEST_CASE("checkpoint: version-1 files still load", "[checkpoint]") {
  // Version 1 is version 2 without training.best_checksum (the 8 bytes before the trailer).
  const std::string dir = embsr::test::scratch_dir();
  auto ck = trained_checkpoint();
  ck.training.best_checksum = 0;
  auto b = encode_version2(ck);
  write_bytes(dir + "/v2.ckpt", b);
  require_equal(ck, embsr::load_checkpoint(dir + "/v2.ckpt"));
  b.erase(b.end() - 16, b.end() - 8);
  b[8] = 1;
  repatch(b);
  const std::string path = dir + "/v1.ckpt";
  write_bytes(path, b);
  const auto back = embsr::load_checkpoint(path);
  require_equal(ck, back);
  CHECK(back.training.best_checksum == 0);
  // The committed fixture: best.ckpt of embsr-train before version 2 (JD sample, --min-support 20 --d 4).
  const auto fixture = embsr::load_checkpoint(std::string(EMBSR_SOURCE_DIR) + "/tests/io/data/version1.ckpt");
  CHECK(fixture.model == "embsr");
  CHECK(config_of(fixture).d > 0);
  CHECK(fixture.values.size() == embsr::parameter_count(config_of(fixture)).values);
}

TEST_CASE("checkpoint: the parameter layout of a config is the model's", "[checkpoint]") {
  for (const bool gnn : {true, false})
    for (const bool attention : {true, false})
      for (const bool relations : {true, false})
        for (const auto fusion : {embsr::FusionMode::Gate, embsr::FusionMode::Mlp, embsr::FusionMode::Fixed}) {
          auto config = embsr::test::tiny_config();
          config.use_gnn = gnn;
          config.use_attention = attention || !gnn;  // the model needs one of the two
          config.use_relations = relations;
          config.fusion = fusion;
          config.gnn_steps = gnn ? 2 : 1;
          const Model model(config);
          const auto layout = embsr::parameter_layout(config);
          const auto& entries = model.parameters().entries();
          REQUIRE(layout.size() == entries.size());
          for (std::size_t i = 0; i < layout.size(); ++i) {
            CHECK(layout[i].name == entries[i].name);
            CHECK(layout[i].offset == entries[i].offset);
            CHECK(layout[i].rows == entries[i].rows);
            CHECK(layout[i].cols == entries[i].cols);
          }
          const auto count = embsr::parameter_count(config);
          CHECK(count.entries == entries.size());
          CHECK(count.values == model.num_parameters());
        }
  // The Sec. V-D variants: the RNN encoder's layout replaces the GNN's (attention_ops changes none).
  for (const bool attention_ops : {true, false}) {
    auto config = embsr::test::tiny_config();
    config.encoder = embsr::SequenceEncoder::Rnn;
    config.use_run_gru = false;
    config.use_attention_ops = attention_ops;
    config.use_relations = attention_ops;
    const Model model(config);
    const auto layout = embsr::parameter_layout(config);
    REQUIRE(layout.size() == model.parameters().entries().size());
    for (std::size_t i = 0; i < layout.size(); ++i) CHECK(layout[i].name == model.parameters().entries()[i].name);
    CHECK(model.parameters().contains("rnn.W_ih"));
    CHECK_FALSE(model.parameters().contains("ggnn0.W_in"));
    const auto count = embsr::parameter_count(config);
    CHECK(count.entries == layout.size());
    CHECK(count.values == model.num_parameters());
  }
}

TEST_CASE("checkpoint: stale temporary files of crashed writers are removed", "[checkpoint]") {
  const std::string dir = embsr::test::scratch_dir();
  const std::string path = dir + "/model.ckpt";
  // A pid that cannot be running (above the kernel's pid_max of 2^22), one of ours that is, and
  // files of other names and patterns that must stay.
  write_bytes(path + ".tmp.99999999", {'x'});
  write_bytes(path + ".tmp." + std::to_string(static_cast<long long>(::getppid())), {'x'});
  write_bytes(path + ".tmp.12ab", {'x'});
  write_bytes(dir + "/other.ckpt.tmp.99999999", {'x'});
  embsr::save_checkpoint(path, trained_checkpoint());
  CHECK_FALSE(fs::exists(path + ".tmp.99999999"));
  CHECK(fs::exists(path + ".tmp." + std::to_string(static_cast<long long>(::getppid()))));
  CHECK(fs::exists(path + ".tmp.12ab"));
  CHECK(fs::exists(dir + "/other.ckpt.tmp.99999999"));
}

}  // namespace test_checkpoint
