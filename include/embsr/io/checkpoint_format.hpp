#pragma once
// The checkpoint file: a model's name and options, the vocabularies, what the model learned
// (float parameters and int64 tables), optionally the Adam state, and the training loop's position,
// in one binary file. This header is the codec alone (no Kokkos, no model classes: it is fuzzed on
// its own, tests/fuzz/fuzz_checkpoint.cpp); io/checkpoint.hpp checks a file against the model it
// names (model/registry.hpp) and binds it to a live model (make_checkpoint, restore).
//
// File layout, version 3. Every integer is little-endian and fixed-width, floats are IEEE-754
// binary32 / doubles binary64 stored as their little-endian bit patterns, a string is a u64 length
// followed by its bytes, a float array a u64 count followed by the values, an int64 array the same:
//
//   header      "EMBSRCKP" (8 bytes), u32 version, u32 reserved (0), u64 total file size
//   model       string name (the registry's, e.g. "embsr-ns"); u64 count, count x (string key,
//               string value): every option of the model, data sizes included (model/model_options.hpp)
//   vocabulary  items: u64 count, count strings;  operations: the same
//   parameters  u64 count, per entry: string name, u64 offset, rows, cols;  values (float array).
//               Entries are contiguous: the first at offset 0, each next one right after.
//   tables      u64 count, per table: string name, u64 rows, cols, values (int64 array of rows x cols)
//   optimizer   u8 present; if 1: f64 lr, beta1, beta2, eps, weight_decay; u8 amsgrad; u64 steps;
//               m, v, v_max (float arrays of the parameters' size)
//   training    u64 epoch, global_step, shuffle_seed; i64 best_epoch; f64 best_hit20, best_mrr20;
//               i64 epochs_without_gain; u64 best_checksum
//   trailer     u64 FNV-1a 64 checksum of every byte before it
//
// Versions 1 and 2 held EMBSR only: instead of the model section an EMBSR Config (i32 num_items,
// num_ops, d, max_length, gnn_steps; f64 dropout, w_k, init_std; u64 seed; u8 next_op; u8
// use_attention, use_gnn, use_run_gru, use_relations; u8 fusion; f64 fixed_beta), no tables, and
// (version 1) no best_checksum. They still load, as the model "embsr" with that Config's options.
//
// Writing goes through write_file_atomically (io/atomic_file.hpp): a crash leaves the old file or
// the new one under the path, never half a file.
//
// Reading trusts nothing, the checksum included (anyone can recompute an FNV): decode_checkpoint_bytes allocates
// nothing that the bytes of the file do not hold, in this order:
//   1. the file's size against the memory limit, the magic, the version, the size field, the checksum;
//   2. every count (options, vocabularies, entries, tables, arrays) against the bytes that remain,
//      compared by division, and every size product checked for overflow; entries contiguous;
//   3. every value finite, Adam's second moments >= 0, the training state in range.
// For versions 1 and 2, the Config is validated and its implied layout and memory are checked
// before the arrays are read, as before. Then io/checkpoint.hpp's load_checkpoint checks the file
// against the model it names, before anything is built from it: a known model, options it takes
// and accepts, the state layout those options imply, and the memory such a model needs.
// Every failure is a DataError(path, 0, reason) naming the first problem.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <sys/stat.h>

#include <embsr/core/error.hpp>
#include <embsr/core/memory.hpp>
#include <embsr/data/vocabulary.hpp>
#include <embsr/io/atomic_file.hpp>
#include <embsr/model/config.hpp>
#include <embsr/model/embsr_spec.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/parameter_layout.hpp>
#include <embsr/optim/adam_options.hpp>

namespace embsr {

inline constexpr std::uint32_t kCheckpointVersion = 3;
inline constexpr std::uint32_t kOldestReadableCheckpointVersion = 1;

// Where the training loop stands (what a resumed run needs besides parameters and optimizer).
struct TrainingState {
  std::uint64_t epoch = 0;
  std::uint64_t global_step = 0;
  std::uint64_t shuffle_seed = 0;
  int best_epoch = -1;
  double best_hit20 = 0, best_mrr20 = 0;
  int epochs_without_gain = 0;
  // The checksum (trailer) of the best.ckpt written for best_epoch, so that a resumed run can tell
  // that the best.ckpt beside it is that file and not an older one (0: not recorded; version 1).
  std::uint64_t best_checksum = 0;
};

// Adam's options and state (host copies of its flat moment buffers).
struct OptimizerState {
  AdamOptions options;
  std::uint64_t steps = 0;
  std::vector<float> m, v, v_max;
};

// A named int64 array of what a model learned by counting or indexing (rows x cols, row-major).
struct StateTable {
  std::string name;
  std::uint64_t rows = 0, cols = 0;
  std::vector<std::int64_t> values;
};

struct Checkpoint {
  std::string model = "embsr";          // the registry's name of the model
  ModelOptions options;                 // every option of the model, data sizes included
  Vocabulary items, ops;                // raw item ids and operation names (the caller's vocabulary)
  std::vector<ParameterEntry> entries;  // name, offset, rows, cols: in the model's layout
  std::vector<float> values;            // flat parameters (models that learn by gradients)
  std::vector<StateTable> tables;       // counts, indexes (models that learn by counting)
  bool has_optimizer = false;
  OptimizerState optimizer;
  TrainingState training;
  std::uint32_t file_version = kCheckpointVersion;  // set by decode_checkpoint_bytes: the version read (not stored)
  std::uint64_t file_checksum = 0;  // set by decode_checkpoint_bytes: the file's trailer (not stored)
};

// What load_checkpoint may let a checkpoint cost, checked before anything is built from it.
struct CheckpointLimits {
  // Bytes the file and a model of its configuration may need together; 0: the machine's available
  // memory (available_memory_bytes()), read at load time.
  std::uint64_t memory_bytes = 0;
  // The use the model is loaded for: sessions per forward pass, and whether it trains (gradients
  // and optimizer state) or only serves.
  std::uint64_t batch_sessions = 64;
  bool training = false;
};

namespace detail {

inline constexpr char kCheckpointMagic[8] = {'E', 'M', 'B', 'S', 'R', 'C', 'K', 'P'};
inline constexpr std::size_t kCheckpointHeaderBytes = 8 + 4 + 4 + 8;
inline constexpr std::size_t kCheckpointTrailerBytes = 8;
inline constexpr std::size_t kCheckpointMinEntryBytes = 4 * 8;  // name length, offset, rows, cols
inline constexpr std::size_t kCheckpointMinTableBytes = 4 * 8;  // name length, rows, cols, value count
inline constexpr std::size_t kCheckpointMinOptionBytes = 2 * 8; // key length, value length
inline constexpr std::uint64_t kCheckpointAnyCount = ~std::uint64_t(0);

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
class CheckpointWriter {
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
  void bytes(const char* p, std::size_t n) {
    if (n > 0) buf_.append(p, n);
  }
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
  void int64s(const std::vector<std::int64_t>& v) {
    u64(v.size());
    for (const std::int64_t x : v) i64(x);
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

// Reads fields back from [data, data + end), checking every length against what is left. Counts
// are compared by division (n > remaining / size), never by multiplying an untrusted n.
class CheckpointReader {
 public:
  CheckpointReader(const std::string& path, const unsigned char* data, std::size_t end) : path_(path), data_(data), end_(end) {}

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
  // A float array whose count must be `expected` (read before the values, so that a hostile count
  // allocates nothing).
  std::vector<float> floats(const char* what, std::uint64_t expected) {
    const std::size_t at = pos_;
    const std::uint64_t n = u64(what);
    if (n != expected)
      fail(std::string(what) + " at byte " + std::to_string(at) + ": " + std::to_string(n) + " values, expected " +
           std::to_string(expected));
    need_count(n, sizeof(float), what);
    std::vector<float> v(static_cast<std::size_t>(n));
    if (n == 0) return v;
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
  // An int64 array whose count must be `expected`.
  std::vector<std::int64_t> int64s(const char* what, std::uint64_t expected) {
    const std::size_t at = pos_;
    const std::uint64_t n = u64(what);
    if (n != expected)
      fail(std::string(what) + " at byte " + std::to_string(at) + ": " + std::to_string(n) + " values, expected " +
           std::to_string(expected));
    need_count(n, 8, what);
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = static_cast<std::int64_t>(le(8, what));
    return v;
  }
  // A vocabulary of exactly `expected` tokens (kCheckpointAnyCount: any number), or none (a checkpoint may carry no vocabulary).
  Vocabulary vocabulary(const char* what, std::uint64_t expected) {
    const std::size_t at = pos_;
    const std::uint64_t n = u64(what);
    if (n != 0 && expected != kCheckpointAnyCount && n != expected)
      fail(std::string(what) + " at byte " + std::to_string(at) + ": " + std::to_string(n) + " tokens, the config has " +
           std::to_string(expected));
    need_count(n, 8, what);  // every token needs at least its 8-byte length
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
  // `count` items of at least `each` bytes must fit in what remains.
  void need_count(std::uint64_t count, std::size_t each, const char* what) const {
    if (count > remaining() / each)
      fail("truncated at byte " + std::to_string(end_) + ": " + std::to_string(count) + " " + what +
           " need at least " + (count > std::numeric_limits<std::uint64_t>::max() / each
                                     ? std::string("2^64")
                                     : std::to_string(count * each)) +
           " bytes, " + std::to_string(remaining()) + " remain at byte " + std::to_string(pos_));
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

// "" when the entries are exactly the layout of `config` (which must be valid), else the first
// difference. Sizes are compared arithmetically first, so a hostile config names no entries.
inline std::string checkpoint_layout_problem(const Config& config, const std::vector<ParameterEntry>& entries,
                                  std::size_t num_values) {
  const ParameterCount count = parameter_count(config);
  if (count.entries != entries.size())
    return "the config implies " + std::to_string(count.entries) + " parameter entries, the checkpoint has " +
           std::to_string(entries.size());
  if (count.values != num_values)
    return "the config implies " + std::to_string(count.values) + " parameter values, the checkpoint has " +
           std::to_string(num_values);
  const std::vector<ParameterEntry> expected = parameter_layout(config);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto &e = entries[i], &x = expected[i];
    if (e.name != x.name || e.offset != x.offset || e.rows != x.rows || e.cols != x.cols)
      return "parameter " + std::to_string(i) + " is '" + e.name + "' [" + std::to_string(e.rows) + " x " +
             std::to_string(e.cols) + "] at offset " + std::to_string(e.offset) + ", the config implies '" + x.name +
             "' [" + std::to_string(x.rows) + " x " + std::to_string(x.cols) + "] at offset " + std::to_string(x.offset);
  }
  return "";
}

// "" when every value is finite, else where the first non-finite one is (entry, row, column).
inline std::string checkpoint_first_non_finite(const std::vector<ParameterEntry>& entries, const std::vector<float>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) continue;
    for (const auto& e : entries)
      if (i >= e.offset && i - e.offset < e.size())
        return "parameter '" + e.name + "' has a non-finite value (" + std::to_string(values[i]) + ") at row " +
               std::to_string((i - e.offset) / e.cols) + ", column " + std::to_string((i - e.offset) % e.cols);
    return "parameter value " + std::to_string(i) + " is not finite";
  }
  return "";
}

// The first inconsistency of the optimizer state and the training state ("" if none); the parts
// of checkpoint_contents_problem that decode_checkpoint_bytes has not already checked while reading.
inline std::string checkpoint_state_problem(const Checkpoint& c) {
  if (c.has_optimizer) {
    try {
      c.optimizer.options.validate();
    } catch (const InvalidArgument& e) {
      return std::string("invalid optimizer options: ") + e.what();
    }
    const std::pair<const char*, const std::vector<float>*> moments[] = {
        {"m", &c.optimizer.m}, {"v", &c.optimizer.v}, {"v_max", &c.optimizer.v_max}};
    for (const auto& [name, vec] : moments) {
      if (vec->size() != c.values.size())
        return std::string("optimizer state '") + name + "' has " + std::to_string(vec->size()) + " values, the model " +
               std::to_string(c.values.size());
      const bool second_moment = vec != &c.optimizer.m;  // v and v_max are averages of squares
      for (std::size_t i = 0; i < vec->size(); ++i)
        if (!std::isfinite((*vec)[i]) || (second_moment && (*vec)[i] < 0))
          return std::string("optimizer state '") + name + "' has an invalid value (" + std::to_string((*vec)[i]) +
                 ") at index " + std::to_string(i);
    }
  }
  const TrainingState& t = c.training;
  if (t.best_epoch > 0 && static_cast<std::uint64_t>(t.best_epoch) > t.epoch)
    return "training state: best epoch " + std::to_string(t.best_epoch) + " comes after the last finished epoch " +
           std::to_string(t.epoch);
  if (!(std::isfinite(t.best_hit20) && std::isfinite(t.best_mrr20)))
    return "training state: the best validation metrics are not finite";
  return "";
}

// "" when the entries tile [0, num_values) in order (each right after the previous one, no empty
// one), else the first problem. Sizes are multiplied only after an overflow check.
inline std::string checkpoint_entries_problem(const std::vector<ParameterEntry>& entries, std::size_t num_values) {
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (e.name.empty()) return "parameter " + std::to_string(i) + " has no name";
    if (e.rows == 0 || e.cols == 0 || e.rows > UINT64_MAX / e.cols)
      return "parameter '" + e.name + "' has an invalid shape [" + std::to_string(e.rows) + " x " +
             std::to_string(e.cols) + "]";
    if (e.offset != offset)
      return "parameter '" + e.name + "' is at offset " + std::to_string(e.offset) + ", expected " + std::to_string(offset) +
             " (entries are contiguous)";
    if (e.rows * e.cols > UINT64_MAX - offset) return "parameter '" + e.name + "' overflows the parameter count";
    offset += e.rows * e.cols;
  }
  if (offset != num_values)
    return "the parameter entries hold " + std::to_string(offset) + " values, the checkpoint has " +
           std::to_string(num_values);
  return "";
}

// The size a checkpoint's options give an option holding a count (num_items, num_ops), or kCheckpointAnyCount.
inline std::uint64_t checkpoint_option_count(const ModelOptions& options, const char* key) {
  const std::string* text = options.find(key);
  if (text == nullptr) return kCheckpointAnyCount;
  try {
    return options.get_uint(key, 0);
  } catch (const InvalidArgument&) {
    return kCheckpointAnyCount;  // the model's own validation names it
  }
}

// The first inconsistency of a checkpoint's contents as a container ("" if none): model name and
// options, vocabulary sizes against the num_items / num_ops options, contiguous parameter entries,
// table sizes, non-finite values, optimizer state, training state. (Whether the options and the
// layout fit the model they name is io/checkpoint.hpp's check_against_model.)
inline std::string checkpoint_contents_problem(const Checkpoint& c) {
  if (c.model.empty()) return "no model name";
  for (std::size_t i = 0; i < c.options.items().size(); ++i) {
    const auto& key = c.options.items()[i].first;
    if (key.empty()) return "option " + std::to_string(i) + " has no name";
  }
  const std::uint64_t num_items = checkpoint_option_count(c.options, "num_items"), num_ops = checkpoint_option_count(c.options, "num_ops");
  if (!c.items.empty() && num_items != kCheckpointAnyCount && static_cast<std::uint64_t>(c.items.size()) != num_items)
    return "the item vocabulary has " + std::to_string(c.items.size()) + " tokens, option num_items is " +
           std::to_string(num_items);
  if (!c.ops.empty() && num_ops != kCheckpointAnyCount && static_cast<std::uint64_t>(c.ops.size()) != num_ops)
    return "the operation vocabulary has " + std::to_string(c.ops.size()) + " tokens, option num_ops is " +
           std::to_string(num_ops);
  if (std::string p = checkpoint_entries_problem(c.entries, c.values.size()); !p.empty()) return p;
  for (const auto& t : c.tables) {
    if (t.name.empty()) return "a table has no name";
    if (t.cols != 0 && t.rows > UINT64_MAX / t.cols) return "table '" + t.name + "' overflows";
    if (t.values.size() != t.rows * t.cols)
      return "table '" + t.name + "' holds " + std::to_string(t.values.size()) + " values, its shape [" +
             std::to_string(t.rows) + " x " + std::to_string(t.cols) + "] needs " + std::to_string(t.rows * t.cols);
  }
  if (std::string p = checkpoint_first_non_finite(c.entries, c.values); !p.empty()) return p;
  return checkpoint_state_problem(c);
}

// The bytes of a checkpoint file, trailer included (version kCheckpointVersion).
inline std::string encode_checkpoint_bytes(const Checkpoint& ckpt) {
  CheckpointWriter w;
  w.bytes(kCheckpointMagic, sizeof(kCheckpointMagic));
  w.u32(kCheckpointVersion);
  w.u32(0);
  w.u64(0);  // total size, patched below
  w.str(ckpt.model);
  w.u64(ckpt.options.size());
  for (const auto& [key, value] : ckpt.options.items()) {
    w.str(key);
    w.str(value);
  }
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
  w.u64(ckpt.tables.size());
  for (const auto& t : ckpt.tables) {
    w.str(t.name);
    w.u64(t.rows);
    w.u64(t.cols);
    w.int64s(t.values);
  }
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
  w.u64(t.best_checksum);

  std::string& buf = w.buffer();
  const std::uint64_t total = buf.size() + kCheckpointTrailerBytes;
  for (int i = 0; i < 8; ++i) buf[16 + static_cast<std::size_t>(i)] = static_cast<char>((total >> (8 * i)) & 0xffU);
  w.u64(fnv1a64(reinterpret_cast<const unsigned char*>(buf.data()), buf.size()));
  return std::move(buf);
}

inline std::uint64_t checkpoint_trailer_of(const std::string& bytes) {
  std::uint64_t stored = 0;
  const std::size_t body = bytes.size() - kCheckpointTrailerBytes;
  for (std::size_t i = 0; i < 8; ++i)
    stored |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[body + i])) << (8 * i);
  return stored;
}

// Versions 1 and 2 (EMBSR only): the Config, validated, its implied sizes against the bytes left and
// its model against the memory limit, then the vocabularies, the entries (against the Config's
// layout) and the values. Returns the number of parameter values.
inline std::uint64_t decode_checkpoint_embsr_legacy(const std::string& path, CheckpointReader& r, std::size_t size,
                                         const CheckpointLimits& limits, std::uint64_t limit, Checkpoint& ck) {
  auto fail = [&](const std::string& reason) -> void { throw DataError(path, 0, reason); };
  Config c;
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
  try {
    c.validate();
  } catch (const InvalidArgument& e) {
    fail(std::string("invalid config: ") + e.what());
  }

  // What the config implies must fit in the file, and the model it describes in memory, before a
  // single vector is sized from the file.
  const ParameterCount implied = parameter_count(c);
  if (implied.values > r.remaining() / sizeof(float) || implied.entries > r.remaining() / kCheckpointMinEntryBytes)
    fail("the config (" + std::to_string(c.num_items) + " items, d " + std::to_string(c.d) + ", max_length " +
         std::to_string(c.max_length) + ", gnn_steps " + std::to_string(c.gnn_steps) + ") implies " +
         std::to_string(implied.entries) + " parameter entries with " + std::to_string(implied.values) +
         " values, more than the " + std::to_string(r.remaining()) + " bytes left in the file can hold");
  const std::uint64_t model_bytes = model_memory_bytes(c, limits.batch_sessions, limits.training);
  const std::uint64_t need = detail::saturating_mul_add(1, model_bytes, size);
  if (need > limit)
    fail("a model of this config (" + std::to_string(c.num_items) + " items, d " + std::to_string(c.d) +
         ", max_length " + std::to_string(c.max_length) + ", gnn_steps " + std::to_string(c.gnn_steps) +
         ") needs about " + format_bytes(need) + " for batches of " + std::to_string(limits.batch_sessions) +
         " sessions" + (limits.training ? " in training" : "") + ", more than the memory limit of " +
         format_bytes(limit) + (limits.memory_bytes == 0 ? " (the memory available now)" : ""));

  ck.items = r.vocabulary("item vocabulary", static_cast<std::uint64_t>(c.num_items));
  ck.ops = r.vocabulary("operation vocabulary", static_cast<std::uint64_t>(c.num_ops));
  const std::size_t entries_at = r.position();
  const std::uint64_t num_entries = r.u64("parameter count");
  if (num_entries != implied.entries)
    fail("parameter count at byte " + std::to_string(entries_at) + ": " + std::to_string(num_entries) +
         " entries, the config implies " + std::to_string(implied.entries));
  r.need_count(num_entries, kCheckpointMinEntryBytes, "parameter entries");
  ck.entries.resize(static_cast<std::size_t>(num_entries));
  for (std::size_t i = 0; i < ck.entries.size(); ++i) {
    auto& e = ck.entries[i];
    e.name = r.str("parameter " + std::to_string(i) + " name");
    e.offset = static_cast<std::size_t>(r.u64("parameter offset"));
    e.rows = static_cast<std::size_t>(r.u64("parameter rows"));
    e.cols = static_cast<std::size_t>(r.u64("parameter cols"));
  }
  if (std::string p = checkpoint_layout_problem(c, ck.entries, static_cast<std::size_t>(implied.values)); !p.empty()) fail(p);
  ck.values = r.floats("parameter values", implied.values);
  if (std::string p = checkpoint_first_non_finite(ck.entries, ck.values); !p.empty()) fail(p);
  ck.model = "embsr";
  ck.options = embsr_options(c);
  return implied.values;
}

// Version 3: the model's name and options, the vocabularies, the parameters and the tables, every
// count against the bytes left. Returns the number of parameter values.
inline std::uint64_t decode_checkpoint_model_state(CheckpointReader& r, Checkpoint& ck) {
  ck.model = r.str("model name");
  if (ck.model.empty()) r.fail("no model name");
  const std::size_t options_at = r.position();
  const std::uint64_t num_options = r.u64("option count");
  r.need_count(num_options, kCheckpointMinOptionBytes, "options");
  for (std::uint64_t i = 0; i < num_options; ++i) {
    std::string key = r.str("option " + std::to_string(i) + " key");
    std::string value = r.str("option '" + key + "' value");
    if (key.empty()) r.fail("option " + std::to_string(i) + " at byte " + std::to_string(options_at) + " has no name");
    if (ck.options.has(key)) r.fail("option '" + key + "' appears twice");
    ck.options.set(key, value);
  }
  ck.items = r.vocabulary("item vocabulary", checkpoint_option_count(ck.options, "num_items"));
  ck.ops = r.vocabulary("operation vocabulary", checkpoint_option_count(ck.options, "num_ops"));

  const std::uint64_t num_entries = r.u64("parameter count");
  r.need_count(num_entries, kCheckpointMinEntryBytes, "parameter entries");
  ck.entries.resize(static_cast<std::size_t>(num_entries));
  std::uint64_t num_values = 0;
  for (std::size_t i = 0; i < ck.entries.size(); ++i) {
    auto& e = ck.entries[i];
    e.name = r.str("parameter " + std::to_string(i) + " name");
    e.offset = static_cast<std::size_t>(r.u64("parameter offset"));
    e.rows = static_cast<std::size_t>(r.u64("parameter rows"));
    e.cols = static_cast<std::size_t>(r.u64("parameter cols"));
    if (e.rows == 0 || e.cols == 0 || e.rows > UINT64_MAX / e.cols || e.rows * e.cols > UINT64_MAX - num_values)
      r.fail("parameter '" + e.name + "' has an invalid shape [" + std::to_string(e.rows) + " x " + std::to_string(e.cols) + "]");
    num_values += e.rows * e.cols;
  }
  if (std::string p = checkpoint_entries_problem(ck.entries, static_cast<std::size_t>(num_values)); !p.empty()) r.fail(p);
  ck.values = r.floats("parameter values", num_values);
  if (std::string p = checkpoint_first_non_finite(ck.entries, ck.values); !p.empty()) r.fail(p);

  const std::uint64_t num_tables = r.u64("table count");
  r.need_count(num_tables, kCheckpointMinTableBytes, "tables");
  ck.tables.resize(static_cast<std::size_t>(num_tables));
  for (std::size_t i = 0; i < ck.tables.size(); ++i) {
    auto& t = ck.tables[i];
    t.name = r.str("table " + std::to_string(i) + " name");
    if (t.name.empty()) r.fail("table " + std::to_string(i) + " has no name");
    t.rows = r.u64("table rows");
    t.cols = r.u64("table cols");
    if (t.cols != 0 && t.rows > UINT64_MAX / t.cols)
      r.fail("table '" + t.name + "' has an invalid shape [" + std::to_string(t.rows) + " x " + std::to_string(t.cols) + "]");
    t.values = r.int64s(("table '" + t.name + "' values").c_str(), t.rows * t.cols);
  }
  return num_values;
}

// Decodes and verifies the bytes of a checkpoint file (see the top of this file for the order of
// the checks). `limit` is the memory the file and the model may need together.
inline Checkpoint decode_checkpoint_bytes(const std::string& path, const unsigned char* data, std::size_t size,
                         const CheckpointLimits& limits, std::uint64_t limit) {
  auto fail = [&](const std::string& reason) -> void { throw DataError(path, 0, reason); };

  if (size < sizeof(kCheckpointMagic) || std::memcmp(data, kCheckpointMagic, sizeof(kCheckpointMagic)) != 0) {
    if (size < sizeof(kCheckpointMagic) && (size == 0 || std::memcmp(data, kCheckpointMagic, size) == 0))
      fail("truncated at byte " + std::to_string(size) + ", expected at least " +
           std::to_string(kCheckpointHeaderBytes + kCheckpointTrailerBytes) + " bytes");
    fail("not an embsr checkpoint (the file does not start with \"EMBSRCKP\")");
  }
  CheckpointReader header(path, data, size);
  header.need(kCheckpointHeaderBytes, "header");
  for (std::size_t i = 0; i < sizeof(kCheckpointMagic); ++i) header.u8("magic");
  const std::uint32_t version = header.u32("version");
  if (version < kOldestReadableCheckpointVersion || version > kCheckpointVersion)
    fail("checkpoint version " + std::to_string(version) + ", this build reads versions " +
         std::to_string(kOldestReadableCheckpointVersion) + " to " + std::to_string(kCheckpointVersion));
  (void)header.u32("reserved");
  const std::uint64_t declared = header.u64("file size");
  if (declared != size) {
    if (size < declared)
      fail("truncated at byte " + std::to_string(size) + ", expected " + std::to_string(declared) + " bytes");
    fail("corrupted: the file has " + std::to_string(size) + " bytes, its header says " + std::to_string(declared));
  }
  if (size < kCheckpointHeaderBytes + kCheckpointTrailerBytes)
    fail("truncated at byte " + std::to_string(size) + ", expected at least " +
         std::to_string(kCheckpointHeaderBytes + kCheckpointTrailerBytes) + " bytes");
  const std::size_t body = size - kCheckpointTrailerBytes;
  std::uint64_t stored = 0;
  for (std::size_t i = 0; i < 8; ++i) stored |= static_cast<std::uint64_t>(data[body + i]) << (8 * i);
  if (stored != fnv1a64(data, body)) fail("corrupted: checksum mismatch");

  CheckpointReader r(path, data, body);
  for (std::size_t i = 0; i < kCheckpointHeaderBytes; ++i) r.u8("header");
  Checkpoint ck;
  ck.file_checksum = stored;
  ck.file_version = version;
  const std::uint64_t num_values =
      version <= 2 ? decode_checkpoint_embsr_legacy(path, r, size, limits, limit, ck) : decode_checkpoint_model_state(r, ck);
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
    o.m = r.floats("optimizer m", num_values);
    o.v = r.floats("optimizer v", num_values);
    o.v_max = r.floats("optimizer v_max", num_values);
  }
  TrainingState& t = ck.training;
  t.epoch = r.u64("training.epoch");
  t.global_step = r.u64("training.global_step");
  t.shuffle_seed = r.u64("training.shuffle_seed");
  const std::int64_t best_epoch = r.i64("training.best_epoch");
  t.best_hit20 = r.f64("training.best_hit20");
  t.best_mrr20 = r.f64("training.best_mrr20");
  const std::int64_t without_gain = r.i64("training.epochs_without_gain");
  if (version >= 2) t.best_checksum = r.u64("training.best_checksum");
  if (best_epoch < std::numeric_limits<int>::min() || best_epoch > std::numeric_limits<int>::max() ||
      without_gain < std::numeric_limits<int>::min() || without_gain > std::numeric_limits<int>::max())
    fail("training state out of range");
  t.best_epoch = static_cast<int>(best_epoch);
  t.epochs_without_gain = static_cast<int>(without_gain);
  if (r.remaining() != 0)
    fail("corrupted: " + std::to_string(r.remaining()) + " unexpected bytes after the training state at byte " +
         std::to_string(r.position()));
  // The counts, the layout and the values were checked as they were read.
  if (const std::string problem = checkpoint_state_problem(ck); !problem.empty()) fail(problem);
  return ck;
}

}  // namespace detail

// The bytes of a checkpoint file, and their checksum (the trailer), so that a caller can record a
// file's checksum before writing it (Trainer: last.ckpt names the best.ckpt it refers to). Throws
// InvalidArgument if the checkpoint is inconsistent as a container or holds a non-finite value
// (io/checkpoint.hpp's save_checkpoint and make_checkpoint also check it against its model).
inline std::string encode_checkpoint(const Checkpoint& ckpt) {
  if (const std::string problem = detail::checkpoint_contents_problem(ckpt); !problem.empty())
    throw InvalidArgument("checkpoint: " + problem);
  return detail::encode_checkpoint_bytes(ckpt);
}
inline std::uint64_t checkpoint_checksum(const std::string& encoded) { return detail::checkpoint_trailer_of(encoded); }

// Reads and verifies a checkpoint as a container (see the top of this file); throws
// DataError(path, 0, reason) naming the first problem, and only DataError. io/checkpoint.hpp's
// load_checkpoint also checks it against the model it names: use that one.
inline Checkpoint read_checkpoint(const std::string& path, const CheckpointLimits& limits = {}) {
  using namespace detail;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw DataError(path, 0, "cannot open checkpoint: " + detail::errno_text(errno));
  if (S_ISDIR(st.st_mode)) throw DataError(path, 0, "cannot open checkpoint: is a directory");
  const std::uint64_t limit = limits.memory_bytes != 0 ? limits.memory_bytes : available_memory_bytes();
  if (static_cast<std::uint64_t>(st.st_size) > limit)
    throw DataError(path, 0,
                    "the file has " + format_bytes(static_cast<std::uint64_t>(st.st_size)) +
                        ", more than the memory limit of " + format_bytes(limit));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path, 0, "cannot open checkpoint: " + detail::errno_text(errno));
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError(path, 0, "read error: " + detail::errno_text(errno));
  try {
    return decode_checkpoint_bytes(path, bytes.data(), bytes.size(), limits, limit);
  } catch (const std::bad_alloc&) {
    throw DataError(path, 0, "not enough memory to read the checkpoint (" + format_bytes(bytes.size()) + ")");
  }
}

}  // namespace embsr
