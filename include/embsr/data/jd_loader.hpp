#pragma once
// Loader for the JD micro-behavior logs (HUP samples, WSDM 2020): one session per line, tokens
// separated by whitespace, each token "sku+behavior_type+category+time_interval+dwell_time".
//
//  - Operations: the 10 behavior types, ids 0..9 in the order of behavior_type 1..10, always all 10.
//  - Items: the raw sku strings (digits only, kept as written), ids in order of first appearance.
//  - Times: relative seconds, t_0 = 0, t_{i+1} = t_i + time_interval_i. category and dwell_time are
//    validated but not stored.
//  - The log has no absolute time: order_key = the session's index in load order (files in the
//    order given), key = "<path>:<line>".
//  - dedupe_identical_sessions drops a line whose token sequence equals an earlier line's (in any of
//    the files): the two sample files of a category share such lines.
//  - The rules of one token are detail::parse_jd_token, shared with embsr-recommend's JD request
//    reader (serve/request_parser.hpp): both refuse the same tokens with the same messages.

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <istream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/line_reader.hpp>
#include <embsr/data/load_options.hpp>
#include <embsr/data/parse_fields.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/vocabulary.hpp>

namespace embsr {

struct JdOptions : LoadOptions {
  bool dedupe_identical_sessions = true;
};

// Operation names, index = behavior_type - 1 = operation id.
inline const std::vector<std::string>& jd_operation_names() {
  static const std::vector<std::string> names{"Home2Product",   "ShopList2Product",     "Sale2Product",
                                              "Cart2Product",   "SearchList2Product",   "Detail_comments",
                                              "Detail_specification", "Detail_bottom", "Cart",
                                              "Order"};
  return names;
}

namespace detail {

// What separates the tokens of a JD line (and makes a line blank).
inline constexpr const char* kJdSpaces = " \t\r\v\f";

// One token "sku+behavior_type+category+time_interval+dwell_time", parsed. `sku` is a view into the
// token (digits only, kept as written: an id, not a number).
struct JdToken {
  std::string_view sku;
  std::uint64_t behavior_type = 0;  // 1..10
  std::uint64_t category = 0, time_interval = 0, dwell_time = 0;
};

// Why a token was refused. `kind` is the short, fixed reason LoadReport::skipped_reasons counts by
// ("wrong field count", "non-numeric field", "numeric overflow", "unknown operation"); `reason` the
// full message naming the token and the bad value. A default-constructed problem (kind == nullptr)
// means the token is good.
struct JdTokenProblem {
  const char* kind = nullptr;
  std::string reason;
  explicit operator bool() const noexcept { return kind != nullptr; }
};

// The rules of a JD token, shared by the loader (load_jd) and the request reader of the serving
// side (serve/request_parser.hpp) so that both accept and refuse the same tokens with the same
// words. `token_no` (1-based) only goes into the message. Allocation-free on a good token: the
// loader calls it for every token of every line.
inline JdTokenProblem parse_jd_token(std::string_view token, std::size_t token_no, JdToken& out) {
  static constexpr const char* kFieldNames[5] = {"sku", "behavior_type", "category", "time_interval", "dwell_time"};
  std::string_view fields[5];
  std::size_t nfields = 0, start = 0;
  for (std::size_t i = 0; i <= token.size(); ++i) {
    if (i == token.size() || token[i] == '+') {
      if (nfields < 5) fields[nfields] = token.substr(start, i - start);
      ++nfields;
      start = i + 1;
    }
  }
  // Built only for a message: no allocation per token on good input.
  auto where = [&] { return "token " + std::to_string(token_no) + " " + quote_value(token); };
  if (nfields != 5)
    return {"wrong field count", where() + " has " + std::to_string(nfields) +
                                     " fields, expected 5 (sku+behavior_type+category+time_interval+dwell_time)"};
  std::uint64_t values[5] = {0, 0, 0, 0, 0};
  for (std::size_t f = 0; f < 5; ++f) {
    const std::string_view field_name = kFieldNames[f];
    if (fields[f].empty()) return {"non-numeric field", where() + ": " + std::string(field_name) + " is empty"};
    // The sku is an id (kept as text), so only its digits matter, not its magnitude.
    const ParseStatus st = f == 0 ? (all_digits(fields[f]) ? ParseStatus::Ok : ParseStatus::Invalid)
                                  : parse_integer(fields[f], values[f]);
    if (st == ParseStatus::Invalid)
      return {"non-numeric field", where() + ": " + std::string(field_name) + " " + quote_value(fields[f]) +
                                       " is not an unsigned integer"};
    if (st == ParseStatus::OutOfRange)
      return {"numeric overflow", where() + ": " + std::string(field_name) + " " + quote_value(fields[f]) +
                                      " is out of range (max 18446744073709551615)"};
  }
  if (values[1] < 1 || values[1] > 10)
    return {"unknown operation",
            where() + ": unknown operation " + std::to_string(values[1]) + " (behavior_type must be 1..10)"};
  out.sku = fields[0];
  out.behavior_type = values[1];
  out.category = values[2];
  out.time_interval = values[3];
  out.dwell_time = values[4];
  return {};
}

class JdParser {
 public:
  JdParser(const JdOptions& options, LoadReport* report) : options_(options), sink_(options, report) {
    ds_.op_vocab = Vocabulary(jd_operation_names());
  }

  void parse(std::istream& in, const std::string& name) {
    LoadReport& rep = sink_.report();
    ++rep.files;
    if (first_name_.empty()) first_name_ = name;
    LineReader reader(in, name);
    std::string_view line;
    std::size_t records = 0;
    while (reader.next(line)) {
      if (line.find_first_not_of(kSpaces) == std::string_view::npos) {
        ++rep.blank_lines;
        continue;
      }
      ++records;
      parse_line(line, name, reader.line_number());
    }
    rep.lines_read += reader.line_number();
    rep.records_read += records;
    if (records == 0) sink_.reject(name, 0, "empty file", "empty file");
  }

  SessionDataset finish() {
    LoadReport& rep = sink_.report();
    if (ds_.empty())
      throw DataError(first_name_, 0,
                      "no sessions loaded (" + std::to_string(rep.skipped_records) + " bad lines skipped)");
    rep.sessions = ds_.num_sessions();
    rep.events = ds_.num_events();
    return std::move(ds_);
  }

 private:
  static constexpr const char* kSpaces = kJdSpaces;

  struct Pending {
    std::string_view sku;
    index_t op;
    std::uint64_t interval;
  };
  struct Fingerprint {
    std::uint64_t a, b;
    bool operator==(const Fingerprint& o) const { return a == o.a && b == o.b; }
  };
  struct FingerprintHash {
    std::size_t operator()(const Fingerprint& f) const { return static_cast<std::size_t>(f.a ^ (f.b * 31)); }
  };

  static std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }

  // Validates the whole line before touching the vocabularies, so a skipped line leaves no trace.
  void parse_line(std::string_view line, const std::string& name, std::size_t line_no) {
    pending_.clear();
    std::uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;  // two independent hashes
    std::size_t token_no = 0;
    std::size_t p = line.find_first_not_of(kSpaces);
    while (p != std::string_view::npos) {
      std::size_t e = line.find_first_of(kSpaces, p);
      if (e == std::string_view::npos) e = line.size();
      const std::string_view token = line.substr(p, e - p);
      p = line.find_first_not_of(kSpaces, e);
      ++token_no;
      for (const char c : token) {
        h1 = (h1 ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
        h2 = (h2 + static_cast<unsigned char>(c) + 1) * 0x9e3779b97f4a7c15ULL;
      }
      h1 = (h1 ^ ' ') * 0x100000001b3ULL;  // token separator: "1 23" differs from "12 3"
      h2 = (h2 + 0x100) * 0x9e3779b97f4a7c15ULL;

      JdToken parsed;
      const JdTokenProblem problem = parse_jd_token(token, token_no, parsed);
      if (problem) return sink_.reject(name, line_no, problem.kind, problem.reason);
      pending_.push_back(Pending{parsed.sku, static_cast<index_t>(parsed.behavior_type - 1), parsed.time_interval});
    }

    const Fingerprint fp{mix(h1), mix(h2 ^ token_no)};
    if (options_.dedupe_identical_sessions) {
      const auto it = seen_.find(fp);
      if (it != seen_.end() && same_as(it->second)) {
        ++sink_.report().duplicate_sessions;
        return;
      }
    }
    events_.clear();
    double t = 0;
    for (const Pending& pe : pending_) {
      events_.push_back(MicroBehavior{ds_.item_vocab.add(pe.sku), pe.op, t});
      t += static_cast<double>(pe.interval);
    }
    const std::size_t index = ds_.num_sessions();
    // A fingerprint collision between different sessions keeps both (same_as fails); only the first
    // is remembered then, which can at worst keep a later duplicate, never drop a distinct session.
    if (options_.dedupe_identical_sessions) seen_.emplace(fp, index);
    ds_.add_session(Span<const MicroBehavior>(events_.data(), events_.size()), static_cast<double>(index),
                    name + ":" + std::to_string(line_no));
  }

  // The pending line has the same events as stored session s (guards against hash collisions).
  bool same_as(std::size_t s) const {
    const SessionView v = ds_.session(s);
    if (v.size() != pending_.size()) return false;
    double t = 0;
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      const auto item = ds_.item_vocab.find(pending_[i].sku);
      if (!item || *item != v.items[i] || pending_[i].op != v.ops[i] || t != v.times[i]) return false;
      t += static_cast<double>(pending_[i].interval);
    }
    return true;
  }

  JdOptions options_;
  ProblemSink sink_;
  SessionDataset ds_;
  std::string first_name_;
  std::vector<Pending> pending_;
  std::vector<MicroBehavior> events_;
  std::unordered_map<Fingerprint, std::size_t, FingerprintHash> seen_;
};

}  // namespace detail

// Loads one JD log from a stream; `name` is used in session keys and error messages.
inline SessionDataset load_jd(std::istream& in, const std::string& name, const JdOptions& options = {},
                              LoadReport* report = nullptr) {
  detail::JdParser parser(options, report);
  parser.parse(in, name);
  return parser.finish();
}

// Loads and concatenates JD logs in the order given (duplicates removed across files).
inline SessionDataset load_jd(const std::vector<std::string>& paths, const JdOptions& options = {},
                              LoadReport* report = nullptr) {
  if (paths.empty()) throw InvalidArgument("load_jd: no input files");
  detail::JdParser parser(options, report);
  for (const auto& path : paths) {
    std::ifstream in = detail::open_input(path);
    parser.parse(in, path);
  }
  return parser.finish();
}

}  // namespace embsr
