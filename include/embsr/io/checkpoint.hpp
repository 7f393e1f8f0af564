#pragma once
// Checkpoints: a model's configuration, vocabularies, parameters, optionally the Adam state, and the
// training loop's position, in one binary file that a later run (or the recommender) reads back.
//
// File layout (version 1). Every integer is little-endian and fixed-width, floats are IEEE-754
// binary32 / doubles binary64 stored as their little-endian bit patterns, a string is a u64 length
// followed by its bytes, a float array a u64 count followed by the values:
//
//   header      "EMBSRCKP" (8 bytes), u32 version, u32 reserved (0), u64 total file size
//   config      i32 num_items, num_ops, d, max_length, gnn_steps; f64 dropout, w_k, init_std;
//               u64 seed; u8 next_op; u8 use_attention, use_gnn, use_run_gru, use_relations;
//               u8 fusion; f64 fixed_beta
//   vocabulary  items: u64 count, count strings;  operations: the same
//   parameters  u64 count, per entry: string name, u64 offset, rows, cols;  values (float array)
//   optimizer   u8 present; if 1: f64 lr, beta1, beta2, eps, weight_decay; u8 amsgrad; u64 steps;
//               m, v, v_max (float arrays)
//   training    u64 epoch, global_step, shuffle_seed; i64 best_epoch; f64 best_hit20, best_mrr20;
//               i64 epochs_without_gain
//   trailer     u64 FNV-1a 64 checksum of every byte before it
//
// save_checkpoint writes "<path>.tmp.<pid>", fsyncs it, renames it over `path` and fsyncs the
// directory: a crash leaves either the old file or the new one under `path`, never half a file.
// load_checkpoint checks the magic, the version, the size, the checksum, then every length and the
// consistency of the contents, and throws DataError(path, 0, reason) naming the first problem.

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/data/vocabulary.hpp>
#include <embsr/model/config.hpp>
#include <embsr/model/embsr.hpp>
#include <embsr/model/parameters.hpp>
#include <embsr/train/adam.hpp>

namespace embsr {

inline constexpr std::uint32_t kCheckpointVersion = 1;

// Where the training loop stands (what a resumed run needs besides parameters and optimizer).
struct TrainingState {
  std::uint64_t epoch = 0;
  std::uint64_t global_step = 0;
  std::uint64_t shuffle_seed = 0;
  int best_epoch = -1;
  double best_hit20 = 0, best_mrr20 = 0;
  int epochs_without_gain = 0;
};

// Adam's options and state (host copies of its flat moment buffers).
struct OptimizerState {
  AdamOptions options;
  std::uint64_t steps = 0;
  std::vector<float> m, v, v_max;
};

struct Checkpoint {
  Config config;
  Vocabulary items, ops;                // raw item ids and operation names (the caller's vocabulary)
  std::vector<ParameterEntry> entries;  // name, offset, rows, cols: in the model's layout
  std::vector<float> values;            // flat parameters
  bool has_optimizer = false;
  OptimizerState optimizer;
  TrainingState training;
};

namespace checkpoint_detail {

inline constexpr char kMagic[8] = {'E', 'M', 'B', 'S', 'R', 'C', 'K', 'P'};
inline constexpr std::size_t kHeaderBytes = 8 + 4 + 4 + 8;
inline constexpr std::size_t kChecksumBytes = 8;

inline std::uint64_t fnv1a64(const unsigned char* data, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline bool host_is_little_endian() {
  const std::uint32_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

// Appends little-endian fixed-width fields to a byte buffer.
class Writer {
 public:
  void u8(std::uint8_t x) { buf_.push_back(static_cast<char>(x)); }
  void u32(std::uint32_t x) { le(x, 4); }
  void u64(std::uint64_t x) { le(x, 8); }
  void i32(std::int32_t x) { u32(static_cast<std::uint32_t>(x)); }
  void i64(std::int64_t x) { u64(static_cast<std::uint64_t>(x)); }
  void f64(double x) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &x, 8);
    u64(bits);
  }
  void boolean(bool b) { u8(b ? 1 : 0); }
  void bytes(const char* p, std::size_t n) { buf_.append(p, n); }
  void str(const std::string& s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  void floats(const std::vector<float>& v) {
    u64(v.size());
    if (host_is_little_endian()) {
      bytes(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    } else {
      for (float x : v) {
        std::uint32_t bits = 0;
        std::memcpy(&bits, &x, 4);
        u32(bits);
      }
    }
  }
  void vocabulary(const Vocabulary& voc) {
    u64(voc.tokens().size());
    for (const auto& t : voc.tokens()) str(t);
  }
  std::string& buffer() { return buf_; }

 private:
  void le(std::uint64_t x, int n) {
    for (int i = 0; i < n; ++i) buf_.push_back(static_cast<char>((x >> (8 * i)) & 0xffU));
  }
  std::string buf_;
};

// Reads fields back from [data, data + end), checking every length against what is left.
class Reader {
 public:
  Reader(const std::string& path, const unsigned char* data, std::size_t end) : path_(path), data_(data), end_(end) {}

  std::size_t position() const { return pos_; }
  std::size_t remaining() const { return end_ - pos_; }

  std::uint8_t u8(const char* what) {
    need(1, what);
    return data_[pos_++];
  }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(le(4, what)); }
  std::uint64_t u64(const char* what) { return le(8, what); }
  std::int32_t i32(const char* what) { return static_cast<std::int32_t>(u32(what)); }
  std::int64_t i64(const char* what) { return static_cast<std::int64_t>(u64(what)); }
  double f64(const char* what) {
    const std::uint64_t bits = u64(what);
    double x = 0;
    std::memcpy(&x, &bits, 8);
    return x;
  }
  bool boolean(const char* what) {
    const std::size_t at = pos_;
    const std::uint8_t b = u8(what);
    if (b > 1) fail("byte " + std::to_string(at) + ": " + what + " must be 0 or 1, got " + std::to_string(b));
    return b == 1;
  }
  std::string str(const std::string& what) {
    const std::uint64_t n = u64(what.c_str());
    need(n, what.c_str());
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  std::vector<float> floats(const char* what) {
    const std::uint64_t n = u64(what);
    if (n > remaining() / sizeof(float)) need(n * sizeof(float), what);  // throws (no overflow: checked first)
    std::vector<float> v(static_cast<std::size_t>(n));
    if (host_is_little_endian()) {
      std::memcpy(v.data(), data_ + pos_, v.size() * sizeof(float));
      pos_ += v.size() * sizeof(float);
    } else {
      for (auto& x : v) {
        const auto bits = static_cast<std::uint32_t>(le(4, what));
        std::memcpy(&x, &bits, 4);
      }
    }
    return v;
  }
  Vocabulary vocabulary(const char* what) {
    const std::uint64_t n = u64(what);
    // Every token needs at least its 8-byte length: a count beyond that is a corrupted file.
    if (n > remaining() / 8) need(n * 8, what);
    std::vector<std::string> tokens;
    tokens.reserve(static_cast<std::size_t>(n));
    for (std::uint64_t i = 0; i < n; ++i) tokens.push_back(str(std::string(what) + " token " + std::to_string(i)));
    try {
      return Vocabulary(tokens);
    } catch (const InvalidArgument& e) {
      fail(std::string(what) + ": " + e.what());
    }
  }

  [[noreturn]] void fail(const std::string& reason) const { throw DataError(path_, 0, reason); }

  void need(std::uint64_t n, const char* what) const {
    if (n > remaining())
      fail("truncated at byte " + std::to_string(end_) + ", expected " + std::to_string(n) + " bytes of " + what +
           " at byte " + std::to_string(pos_));
  }

 private:
  std::uint64_t le(int n, const char* what) {
    need(static_cast<std::uint64_t>(n), what);
    std::uint64_t x = 0;
    for (int i = 0; i < n; ++i) x |= static_cast<std::uint64_t>(data_[pos_ + static_cast<std::size_t>(i)]) << (8 * i);
    pos_ += static_cast<std::size_t>(n);
    return x;
  }

  const std::string& path_;
  const unsigned char* data_;
  std::size_t end_;
  std::size_t pos_ = 0;
};

// The first inconsistency of a checkpoint's contents ("" if none): config, vocabulary sizes,
// parameter layout, optimizer state.
inline std::string check_contents(const Checkpoint& c) {
  try {
    c.config.validate();
  } catch (const InvalidArgument& e) {
    return std::string("invalid config: ") + e.what();
  }
  if (!c.items.empty() && c.items.size() != c.config.num_items)
    return "the item vocabulary has " + std::to_string(c.items.size()) + " tokens, config.num_items is " +
           std::to_string(c.config.num_items);
  if (!c.ops.empty() && c.ops.size() != c.config.num_ops)
    return "the operation vocabulary has " + std::to_string(c.ops.size()) + " tokens, config.num_ops is " +
           std::to_string(c.config.num_ops);
  if (c.entries.empty()) return "no parameters";
  std::unordered_set<std::string> names;
  std::size_t end = 0;
  for (std::size_t i = 0; i < c.entries.size(); ++i) {
    const auto& e = c.entries[i];
    const std::string label = "parameter " + std::to_string(i) + " ('" + e.name + "')";
    if (e.name.empty()) return "parameter " + std::to_string(i) + " has an empty name";
    if (!names.insert(e.name).second) return label + " appears twice";
    if (e.rows == 0 || e.cols == 0) return label + " is empty (" + std::to_string(e.rows) + " x " + std::to_string(e.cols) + ")";
    if (e.rows > std::numeric_limits<std::size_t>::max() / e.cols) return label + " is too large";
    if (e.offset != end)
      return label + " starts at offset " + std::to_string(e.offset) + ", expected " + std::to_string(end) +
             " (the parameters must tile the value array)";
    if (e.size() > std::numeric_limits<std::size_t>::max() - end) return label + " is too large";
    end += e.size();
  }
  if (end != c.values.size())
    return "the parameters cover " + std::to_string(end) + " values, the value array has " + std::to_string(c.values.size());
  if (c.has_optimizer) {
    try {
      c.optimizer.options.validate();
    } catch (const InvalidArgument& e) {
      return std::string("invalid optimizer options: ") + e.what();
    }
    const std::pair<const char*, const std::vector<float>*> moments[] = {
        {"m", &c.optimizer.m}, {"v", &c.optimizer.v}, {"v_max", &c.optimizer.v_max}};
    for (const auto& [name, vec] : moments)
      if (vec->size() != c.values.size())
        return std::string("optimizer state '") + name + "' has " + std::to_string(vec->size()) + " values, the model " +
               std::to_string(c.values.size());
  }
  return "";
}

// Keeps a parameter out of template argument deduction (restore(ckpt, model, nullptr) compiles).
template <class T>
struct non_deduced {
  using type = T;
};

inline std::string errno_text(int err) { return std::strerror(err); }

// Writes all of `data` to `fd`; returns 0 or an errno.
inline int write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return 0;
}

inline std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace checkpoint_detail

// Serialises `ckpt` to `path` atomically (see the top of this file). Throws InvalidArgument if the
// checkpoint is inconsistent (nothing is written) and embsr::Error if the file cannot be written
// (the temporary file is removed; an existing file under `path` is left as it was).
inline void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  using namespace checkpoint_detail;
  if (const std::string problem = check_contents(ckpt); !problem.empty())
    throw InvalidArgument("save_checkpoint('" + path + "'): " + problem);

  Writer w;
  w.bytes(kMagic, sizeof(kMagic));
  w.u32(kCheckpointVersion);
  w.u32(0);
  w.u64(0);  // total size, patched below
  const Config& c = ckpt.config;
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
  w.vocabulary(ckpt.items);
  w.vocabulary(ckpt.ops);
  w.u64(ckpt.entries.size());
  for (const auto& e : ckpt.entries) {
    w.str(e.name);
    w.u64(e.offset);
    w.u64(e.rows);
    w.u64(e.cols);
  }
  w.floats(ckpt.values);
  w.boolean(ckpt.has_optimizer);
  if (ckpt.has_optimizer) {
    const auto& o = ckpt.optimizer;
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
  const TrainingState& t = ckpt.training;
  w.u64(t.epoch);
  w.u64(t.global_step);
  w.u64(t.shuffle_seed);
  w.i64(t.best_epoch);
  w.f64(t.best_hit20);
  w.f64(t.best_mrr20);
  w.i64(t.epochs_without_gain);

  std::string& buf = w.buffer();
  const std::uint64_t total = buf.size() + kChecksumBytes;
  for (int i = 0; i < 8; ++i) buf[16 + static_cast<std::size_t>(i)] = static_cast<char>((total >> (8 * i)) & 0xffU);
  w.u64(fnv1a64(reinterpret_cast<const unsigned char*>(buf.data()), buf.size()));

  const std::string tmp = path + ".tmp." + std::to_string(static_cast<long long>(::getpid()));
  auto fail = [&](const std::string& what, int err) {
    throw Error("save_checkpoint: " + what + ": " + errno_text(err));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create '" + tmp + "'", errno);
  int err = write_all(fd, buf.data(), buf.size());
  std::string step = "cannot write '" + tmp + "'";
  if (err == 0 && ::fsync(fd) != 0) {
    err = errno;
    step = "cannot fsync '" + tmp + "'";
  }
  if (::close(fd) != 0 && err == 0) {
    err = errno;
    step = "cannot close '" + tmp + "'";
  }
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    step = "cannot rename '" + tmp + "' to '" + path + "'";
  }
  if (err != 0) {
    ::unlink(tmp.c_str());
    fail(step, err);
  }
  // Make the rename itself durable (best effort: some file systems refuse fsync on directories).
  const int dir = ::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
}

// Reads and verifies a checkpoint; throws DataError(path, 0, reason) naming the first problem.
inline Checkpoint load_checkpoint(const std::string& path) {
  using namespace checkpoint_detail;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path, 0, "cannot open checkpoint: " + errno_text(errno));
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError(path, 0, "read error");
  const std::size_t size = bytes.size();
  auto fail = [&](const std::string& reason) -> void { throw DataError(path, 0, reason); };

  if (size < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    if (size < sizeof(kMagic) && (size == 0 || std::memcmp(bytes.data(), kMagic, size) == 0))
      fail("truncated at byte " + std::to_string(size) + ", expected at least " +
           std::to_string(kHeaderBytes + kChecksumBytes) + " bytes");
    fail("not an embsr checkpoint (the file does not start with \"EMBSRCKP\")");
  }
  Reader header(path, bytes.data(), size);
  header.need(kHeaderBytes, "header");
  for (std::size_t i = 0; i < sizeof(kMagic); ++i) header.u8("magic");
  const std::uint32_t version = header.u32("version");
  if (version != kCheckpointVersion)
    fail("checkpoint version " + std::to_string(version) + ", this build reads version " + std::to_string(kCheckpointVersion));
  (void)header.u32("reserved");
  const std::uint64_t declared = header.u64("file size");
  if (declared != size) {
    if (size < declared)
      fail("truncated at byte " + std::to_string(size) + ", expected " + std::to_string(declared) + " bytes");
    fail("corrupted: the file has " + std::to_string(size) + " bytes, its header says " + std::to_string(declared));
  }
  if (size < kHeaderBytes + kChecksumBytes)
    fail("truncated at byte " + std::to_string(size) + ", expected at least " +
         std::to_string(kHeaderBytes + kChecksumBytes) + " bytes");
  const std::size_t body = size - kChecksumBytes;
  std::uint64_t stored = 0;
  for (std::size_t i = 0; i < 8; ++i) stored |= static_cast<std::uint64_t>(bytes[body + i]) << (8 * i);
  if (stored != fnv1a64(bytes.data(), body)) fail("corrupted: checksum mismatch");

  Reader r(path, bytes.data(), body);
  for (std::size_t i = 0; i < kHeaderBytes; ++i) r.u8("header");
  Checkpoint ck;
  Config& c = ck.config;
  c.num_items = r.i32("config.num_items");
  c.num_ops = r.i32("config.num_ops");
  c.d = r.i32("config.d");
  c.max_length = r.i32("config.max_length");
  c.gnn_steps = r.i32("config.gnn_steps");
  c.dropout = r.f64("config.dropout");
  c.w_k = r.f64("config.w_k");
  c.init_std = r.f64("config.init_std");
  c.seed = r.u64("config.seed");
  const std::uint8_t next_op = r.u8("config.next_op");
  if (next_op > static_cast<std::uint8_t>(NextOpMode::Learned)) fail("invalid config.next_op " + std::to_string(next_op));
  c.next_op = static_cast<NextOpMode>(next_op);
  c.use_attention = r.boolean("config.use_attention");
  c.use_gnn = r.boolean("config.use_gnn");
  c.use_run_gru = r.boolean("config.use_run_gru");
  c.use_relations = r.boolean("config.use_relations");
  const std::uint8_t fusion = r.u8("config.fusion");
  if (fusion > static_cast<std::uint8_t>(FusionMode::Fixed)) fail("invalid config.fusion " + std::to_string(fusion));
  c.fusion = static_cast<FusionMode>(fusion);
  c.fixed_beta = r.f64("config.fixed_beta");
  ck.items = r.vocabulary("item vocabulary");
  ck.ops = r.vocabulary("operation vocabulary");
  const std::uint64_t num_entries = r.u64("parameter count");
  if (num_entries > r.remaining() / 32) r.need(num_entries * 32, "parameter entries");  // 32 bytes minimum each
  ck.entries.resize(static_cast<std::size_t>(num_entries));
  for (std::size_t i = 0; i < ck.entries.size(); ++i) {
    auto& e = ck.entries[i];
    e.name = r.str("parameter " + std::to_string(i) + " name");
    e.offset = static_cast<std::size_t>(r.u64("parameter offset"));
    e.rows = static_cast<std::size_t>(r.u64("parameter rows"));
    e.cols = static_cast<std::size_t>(r.u64("parameter cols"));
  }
  ck.values = r.floats("parameter values");
  ck.has_optimizer = r.boolean("optimizer flag");
  if (ck.has_optimizer) {
    auto& o = ck.optimizer;
    o.options.lr = r.f64("optimizer lr");
    o.options.beta1 = r.f64("optimizer beta1");
    o.options.beta2 = r.f64("optimizer beta2");
    o.options.eps = r.f64("optimizer eps");
    o.options.weight_decay = r.f64("optimizer weight_decay");
    o.options.amsgrad = r.boolean("optimizer amsgrad");
    o.steps = r.u64("optimizer steps");
    o.m = r.floats("optimizer m");
    o.v = r.floats("optimizer v");
    o.v_max = r.floats("optimizer v_max");
  }
  TrainingState& t = ck.training;
  t.epoch = r.u64("training.epoch");
  t.global_step = r.u64("training.global_step");
  t.shuffle_seed = r.u64("training.shuffle_seed");
  const std::int64_t best_epoch = r.i64("training.best_epoch");
  t.best_hit20 = r.f64("training.best_hit20");
  t.best_mrr20 = r.f64("training.best_mrr20");
  const std::int64_t without_gain = r.i64("training.epochs_without_gain");
  if (best_epoch < std::numeric_limits<int>::min() || best_epoch > std::numeric_limits<int>::max() ||
      without_gain < std::numeric_limits<int>::min() || without_gain > std::numeric_limits<int>::max())
    fail("training state out of range");
  t.best_epoch = static_cast<int>(best_epoch);
  t.epochs_without_gain = static_cast<int>(without_gain);
  if (r.remaining() != 0)
    fail("corrupted: " + std::to_string(r.remaining()) + " unexpected bytes after the training state at byte " +
         std::to_string(r.position()));
  if (const std::string problem = check_contents(ck); !problem.empty()) fail(problem);
  return ck;
}

// A Checkpoint of a live model (and optionally its optimizer), with the caller's vocabularies
// (each either empty or of the model's size) and training state.
template <class ExecSpace>
Checkpoint make_checkpoint(const EMBSR<ExecSpace, float>& model, const Vocabulary& items, const Vocabulary& ops,
                           const typename checkpoint_detail::non_deduced<Adam<ExecSpace, float>>::type* adam,
                           const TrainingState& training) {
  Checkpoint ck;
  ck.config = model.config();
  ck.items = items;
  ck.ops = ops;
  ck.entries = model.parameters().entries();
  auto to_vector = [](const auto& view) {
    const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
    return std::vector<float>(host.data(), host.data() + host.extent(0));
  };
  model.execution_space_instance().fence();
  ck.values = to_vector(model.parameters().values());
  if (adam != nullptr) {
    ck.has_optimizer = true;
    ck.optimizer.options = adam->options();
    ck.optimizer.steps = adam->steps();
    ck.optimizer.m = to_vector(adam->first_moment());
    ck.optimizer.v = to_vector(adam->second_moment());
    ck.optimizer.v_max = to_vector(adam->max_second_moment());
  }
  ck.training = training;
  if (const std::string problem = checkpoint_detail::check_contents(ck); !problem.empty())
    throw InvalidArgument("make_checkpoint: " + problem);
  return ck;
}

// Loads a checkpoint's parameters (and optimizer state, when `adam` is not null) into a model built
// with a matching configuration. Everything is checked before anything is written; the first
// difference is named (InvalidArgument). Checked: every parameter entry (name, shape, offset), then
// the configuration fields that change what the model computes (sizes, next-operation mode,
// ablation switches, w_k, fixed_beta); dropout, init_std and seed may differ. When `adam` is given
// (resuming training), the model also takes the checkpoint's seed, which drives its dropout masks,
// so that the resumed run continues the interrupted one exactly. The Adam keeps its own options:
// build it with ckpt.optimizer.options to resume a run exactly.
template <class ExecSpace>
void restore(const Checkpoint& ckpt, EMBSR<ExecSpace, float>& model,
             typename checkpoint_detail::non_deduced<Adam<ExecSpace, float>>::type* adam) {
  if (const std::string problem = checkpoint_detail::check_contents(ckpt); !problem.empty())
    throw InvalidArgument("restore: inconsistent checkpoint: " + problem);
  const auto& mine = model.parameters().entries();
  const auto& theirs = ckpt.entries;
  for (std::size_t i = 0; i < std::min(mine.size(), theirs.size()); ++i) {
    const auto& a = theirs[i];
    const auto& b = mine[i];
    if (a.name != b.name)
      throw InvalidArgument("restore: parameter " + std::to_string(i) + " is '" + a.name + "' in the checkpoint, '" +
                            b.name + "' in the model");
    if (a.rows != b.rows || a.cols != b.cols)
      throw InvalidArgument("restore: parameter '" + a.name + "' is " + std::to_string(a.rows) + " x " +
                            std::to_string(a.cols) + " in the checkpoint, " + std::to_string(b.rows) + " x " +
                            std::to_string(b.cols) + " in the model");
    if (a.offset != b.offset)
      throw InvalidArgument("restore: parameter '" + a.name + "' is at offset " + std::to_string(a.offset) +
                            " in the checkpoint, " + std::to_string(b.offset) + " in the model");
  }
  if (mine.size() != theirs.size()) {
    const bool more = theirs.size() > mine.size();
    const auto& extra = more ? theirs[mine.size()] : mine[theirs.size()];
    throw InvalidArgument("restore: the checkpoint has " + std::to_string(theirs.size()) + " parameters, the model " +
                          std::to_string(mine.size()) + " (first unmatched: '" + extra.name + "' in the " +
                          (more ? "checkpoint" : "model") + ")");
  }
  const Config& a = ckpt.config;
  const Config& b = model.config();
  auto differ = [](const char* field, const std::string& x, const std::string& y) {
    throw InvalidArgument(std::string("restore: config.") + field + " is " + x + " in the checkpoint, " + y +
                          " in the model");
  };
  auto check_int = [&](const char* field, long long x, long long y) {
    if (x != y) differ(field, std::to_string(x), std::to_string(y));
  };
  check_int("num_items", a.num_items, b.num_items);
  check_int("num_ops", a.num_ops, b.num_ops);
  check_int("d", a.d, b.d);
  check_int("max_length", a.max_length, b.max_length);
  check_int("gnn_steps", a.gnn_steps, b.gnn_steps);
  check_int("next_op", static_cast<int>(a.next_op), static_cast<int>(b.next_op));
  check_int("use_attention", a.use_attention, b.use_attention);
  check_int("use_gnn", a.use_gnn, b.use_gnn);
  check_int("use_run_gru", a.use_run_gru, b.use_run_gru);
  check_int("use_relations", a.use_relations, b.use_relations);
  check_int("fusion", static_cast<int>(a.fusion), static_cast<int>(b.fusion));
  if (a.w_k != b.w_k) differ("w_k", std::to_string(a.w_k), std::to_string(b.w_k));
  if (a.fusion == FusionMode::Fixed && a.fixed_beta != b.fixed_beta)
    differ("fixed_beta", std::to_string(a.fixed_beta), std::to_string(b.fixed_beta));
  if (ckpt.values.size() != model.num_parameters())
    throw InvalidArgument("restore: the checkpoint has " + std::to_string(ckpt.values.size()) + " values, the model " +
                          std::to_string(model.num_parameters()));
  if (adam != nullptr) {
    if (!ckpt.has_optimizer) throw InvalidArgument("restore: the checkpoint has no optimizer state");
    if (adam->first_moment().extent(0) != ckpt.values.size())
      throw InvalidArgument("restore: the optimizer has " + std::to_string(adam->first_moment().extent(0)) +
                            " values, the checkpoint " + std::to_string(ckpt.values.size()));
  }

  using Unmanaged = Kokkos::View<const float*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  auto upload = [](const std::vector<float>& src, const auto& dst) {
    Kokkos::deep_copy(dst, Unmanaged(src.data(), src.size()));
  };
  model.execution_space_instance().fence();
  upload(ckpt.values, model.parameters().values());
  if (adam != nullptr) {
    upload(ckpt.optimizer.m, adam->first_moment());
    upload(ckpt.optimizer.v, adam->second_moment());
    upload(ckpt.optimizer.v_max, adam->max_second_moment());
    adam->set_steps(ckpt.optimizer.steps);
    model.set_seed(ckpt.config.seed);
  }
  Kokkos::fence();
}

}  // namespace embsr
