#pragma once
// What the library knows about a model without building it (free of Kokkos: the checkpoint reader
// and the command-line tools use it):
//   ModelOptions  a model's configuration as ordered (key, text) pairs: what a checkpoint records,
//                 what the tools set from their flags, read back with typed, checked getters;
//   OptionSpec    one option a model takes: key, kind, default, help, and whether it comes from the
//                 data (num_items, num_ops, max_length) rather than from the user;
//   ModelInfo     name, family, one-line description, the paper it comes from;
//   StateLayout   the arrays a trained model holds (float parameters, in the order of the flat
//                 parameter store; integer tables for models that learn by counting or indexing),
//                 which a checkpoint must match exactly;
//   ModelSpec     all of the above for one registered model (model/registry.hpp lists them).

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <embsr/core/error.hpp>

namespace embsr {

// A double as text that reads back to the same double (17 significant digits).
inline std::string format_option_double(double x) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", x);
  return buf;
}

class ModelOptions {
 public:
  using Item = std::pair<std::string, std::string>;

  ModelOptions() = default;
  ModelOptions(std::initializer_list<Item> items) {
    for (const auto& [k, v] : items) set(k, v);
  }

  // Sets `key` (replacing an earlier value, keeping its position).
  ModelOptions& set(const std::string& key, const std::string& value) {
    for (auto& item : items_)
      if (item.first == key) {
        item.second = value;
        return *this;
      }
    items_.emplace_back(key, value);
    return *this;
  }
  ModelOptions& set(const std::string& key, const char* value) { return set(key, std::string(value)); }
  ModelOptions& set(const std::string& key, bool value) { return set(key, std::string(value ? "true" : "false")); }
  ModelOptions& set(const std::string& key, int value) { return set(key, std::to_string(value)); }
  ModelOptions& set(const std::string& key, long long value) { return set(key, std::to_string(value)); }
  ModelOptions& set(const std::string& key, std::uint64_t value) { return set(key, std::to_string(value)); }
  ModelOptions& set(const std::string& key, double value) { return set(key, format_option_double(value)); }

  const std::string* find(const std::string& key) const {
    for (const auto& item : items_)
      if (item.first == key) return &item.second;
    return nullptr;
  }
  bool has(const std::string& key) const { return find(key) != nullptr; }
  const std::vector<Item>& items() const { return items_; }
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

  // Typed reads: `fallback` when the key is absent; InvalidArgument naming the option when its text
  // is not a value of the type (the whole text must parse).
  long long get_int(const std::string& key, long long fallback) const {
    const std::string* text = find(key);
    if (text == nullptr) return fallback;
    errno = 0;
    char* end = nullptr;
    const long long x = std::strtoll(text->c_str(), &end, 10);
    if (text->empty() || end != text->c_str() + text->size() || errno == ERANGE) bad(key, *text, "an integer");
    return x;
  }
  // An integer that fits an int (the model configs' sizes).
  int get_int32(const std::string& key, int fallback) const {
    const long long x = get_int(key, fallback);
    if (x < -2147483647LL - 1 || x > 2147483647LL)
      throw InvalidArgument("option '" + key + "': " + std::to_string(x) + " is out of range");
    return static_cast<int>(x);
  }
  std::uint64_t get_uint(const std::string& key, std::uint64_t fallback) const {
    const std::string* text = find(key);
    if (text == nullptr) return fallback;
    errno = 0;
    char* end = nullptr;
    const unsigned long long x = std::strtoull(text->c_str(), &end, 10);
    if (text->empty() || (*text)[0] == '-' || end != text->c_str() + text->size() || errno == ERANGE)
      bad(key, *text, "a non-negative integer");
    return x;
  }
  double get_double(const std::string& key, double fallback) const {
    const std::string* text = find(key);
    if (text == nullptr) return fallback;
    errno = 0;
    char* end = nullptr;
    const double x = std::strtod(text->c_str(), &end);
    if (text->empty() || end != text->c_str() + text->size()) bad(key, *text, "a number");
    return x;
  }
  bool get_bool(const std::string& key, bool fallback) const {
    const std::string* text = find(key);
    if (text == nullptr) return fallback;
    if (*text == "true" || *text == "1") return true;
    if (*text == "false" || *text == "0") return false;
    bad(key, *text, "true or false");
  }
  // One of `choices`.
  std::string get_choice(const std::string& key, const std::string& fallback,
                         const std::vector<std::string>& choices) const {
    const std::string* text = find(key);
    if (text == nullptr) return fallback;
    for (const auto& c : choices)
      if (*text == c) return c;
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    bad(key, *text, "one of " + list);
  }

  friend bool operator==(const ModelOptions& a, const ModelOptions& b) { return a.items_ == b.items_; }
  friend bool operator!=(const ModelOptions& a, const ModelOptions& b) { return !(a == b); }

 private:
  [[noreturn]] static void bad(const std::string& key, const std::string& text, const std::string& what) {
    throw InvalidArgument("option '" + key + "': '" + text + "' is not " + what);
  }
  std::vector<Item> items_;
};

enum class OptionKind { Integer, Number, Boolean, Choice };

// Where the tuner (embsr-tune) samples an option from. Untuned options keep their value. An
// Integer or Number option is drawn uniformly from [low, high] (log-uniformly when log_scale, which
// needs low > 0); a Boolean from {false, true}; a Choice from `choices` (the option's own choices
// when empty).
struct SearchSpace {
  bool tuned = false;
  double low = 0.0, high = 0.0;
  bool log_scale = false;
  std::vector<std::string> choices;
};
inline SearchSpace search_range(double low, double high, bool log_scale = false) {
  return SearchSpace{true, low, high, log_scale, {}};
}
inline SearchSpace search_choices(std::vector<std::string> choices = {}) {
  return SearchSpace{true, 0.0, 0.0, false, std::move(choices)};
}

struct OptionSpec {
  std::string key;
  OptionKind kind = OptionKind::Number;
  std::string default_value;         // as text
  std::string help;
  std::vector<std::string> choices;  // OptionKind::Choice
  // Set by the tools from the prepared data (num_items, num_ops, max_length), not by the user.
  bool from_data = false;
  // Changes what the trained model computes: a checkpoint restored into a model must agree on it
  // (the others, such as dropout or the seed, only change how it is trained).
  bool changes_function = true;
  SearchSpace search;  // the tuner's range (not tuned by default)
};

// The options every model takes from the data: catalogue and operation vocabulary sizes, and the
// longest input (sessions are cut to their last max_length micro-behaviors, in training and serving).
inline std::vector<OptionSpec> data_option_specs() {
  return {{"num_items", OptionKind::Integer, "0", "items in the catalogue (from the data)", {}, true, true, {}},
          {"num_ops", OptionKind::Integer, "0", "operations (from the data)", {}, true, true, {}},
          {"max_length", OptionKind::Integer, "50", "longest input in micro-behaviors (from preprocessing)", {}, true,
           true, {}}};
}

struct ModelInfo {
  std::string name;         // registry name, e.g. "embsr-ns"
  std::string family;       // e.g. "popularity", "graph neural network"
  std::string description;  // one line
  std::string paper;        // where it comes from
  bool learns_by_gradients = false;
  std::string preset_of;    // the model this one is a preset of ("": none); presets share checkpoints

  // The model class this entry builds: checkpoints move freely between presets of one model.
  const std::string& base_name() const { return preset_of.empty() ? name : preset_of; }
};

struct ArraySpec {
  std::string name;
  std::uint64_t rows = 0, cols = 0;
  // The trained state decides the rows (an index over the training split): a checkpoint may hold
  // any number of rows of `cols` values, which the model checks when it loads them.
  bool rows_from_state = false;
};

// The arrays of a trained model. `parameters` are float32 and form the flat parameter store in this
// order (the first at offset 0, each next one right after); `tables` are int64 (counts, indexes).
struct StateLayout {
  std::vector<ArraySpec> parameters;
  std::vector<ArraySpec> tables;
};

// Sizes only (overflow-free: saturating at 2^64 - 1), so that a hostile checkpoint's options can be
// judged against the bytes of its file before a layout is built from them.
struct StateCount {
  std::uint64_t parameter_entries = 0, parameter_values = 0, tables = 0, table_values = 0;
  // Some table's rows come from the trained state (ArraySpec::rows_from_state): table_values is
  // then the values of the fixed-size tables only, and the file's size bounds the others.
  bool table_values_from_state = false;
};

// One registered model, without its code (model/registry.hpp lists them and builds
// them). Every function takes options that `validate` accepted.
struct ModelSpec {
  ModelInfo info;
  std::vector<OptionSpec> options;  // data options first, then the model's own, with its defaults
  // Throws InvalidArgument naming the first option out of range. Keys the model does not take are
  // detail::check_known_options' job, which every caller runs first (complete_model_options, the
  // checkpoint reader).
  void (*validate)(const ModelOptions&) = nullptr;
  StateCount (*count)(const ModelOptions&) = nullptr;
  StateLayout (*layout)(const ModelOptions&) = nullptr;
  // Bytes a model of these options needs for batches of `batch_sessions` (and its gradients and
  // optimizer state when `training`), an estimate for refusing what cannot fit before building it.
  std::uint64_t (*memory_bytes)(const ModelOptions&, std::uint64_t batch_sessions, bool training) = nullptr;

  const OptionSpec* option(const std::string& key) const {
    for (const auto& o : options)
      if (o.key == key) return &o;
    return nullptr;
  }
  // The defaults of every option, then `given` on top.
  ModelOptions with_defaults(const ModelOptions& given) const {
    ModelOptions out;
    for (const auto& o : options) out.set(o.key, o.default_value);
    for (const auto& [k, v] : given.items()) out.set(k, v);
    return out;
  }
};

// The spec (registry entry, model/registry.hpp) of a model class: each model specialises it.
template <class Model>
struct model_spec_of;

namespace detail {

// Throws InvalidArgument for the first key of `options` that `spec` does not take.
inline void check_known_options(const ModelSpec& spec, const ModelOptions& options) {
  for (const auto& [key, value] : options.items())
    if (spec.option(key) == nullptr) {
      std::string known;
      for (const auto& o : spec.options)
        if (!o.from_data) known += (known.empty() ? "" : ", ") + o.key;
      throw InvalidArgument("model '" + spec.info.name + "' does not take option '" + key + "'" +
                            (known.empty() ? " (it takes none besides the data sizes)" : " (its options: " + known + ")"));
    }
}

}  // namespace detail

}  // namespace embsr
