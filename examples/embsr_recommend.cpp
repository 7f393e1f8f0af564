// embsr-recommend: next-item recommendations from a trained checkpoint.
//
//   embsr-recommend --model ckpt.bin [--input FILE|-] [--format jsonl|jd] [--k 20] [--exclude-seen]
//                   [--next-op NAME] [--lenient]
//
// Input, one session per line (blank lines are ignored):
//   jsonl  {"session": [{"item": "123", "operation": "Cart"}, ...]}
//          or {"items": ["123", ...], "operations": ["Cart", ...]}   (item ids may be JSON integers)
//   jd     the JD micro-behavior log format: tokens "sku+behavior_type+..." separated by whitespace,
//          behavior_type 1..10 mapped to the JD operation names (embsr::jd_operation_names()).
// Output, one JSON line per input session, in input order:
//   {"items": [...], "scores": [...], "unknown_items": [...], "unknown_operations": [...]}
// A malformed line (or a session without any known item and operation) stops the run with
// "input:LINE: reason" on stderr and exit status 1. With --lenient the line is reported on stderr
// and answered with {"line": LINE, "error": "reason"} so that outputs stay aligned with inputs.
#include <embsr/data/jd_loader.hpp>
#include <embsr/io/checkpoint.hpp>
#include <embsr/serve/recommender.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

struct Args {
  std::string model;
  std::string input = "-";
  std::string format = "jsonl";
  int k = 20;
  bool exclude_seen = false;
  std::string next_op;
  bool lenient = false;
};

// A problem with one input line (reported as "input:LINE: reason").
struct LineError {
  std::string reason;
};

std::string item_id(const nlohmann::json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return v.dump();  // 123 and "123" name the same item
  throw LineError{where + " must be a string or an integer, got " + v.dump()};
}
std::string operation_name(const nlohmann::json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  throw LineError{where + " must be a string, got " + v.dump()};
}

std::vector<embsr::SessionEvent> parse_jsonl(const std::string& line) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    throw LineError{std::string("invalid JSON: ") + e.what()};
  }
  if (!j.is_object()) throw LineError{"expected a JSON object with \"session\" or \"items\" and \"operations\""};
  std::vector<embsr::SessionEvent> events;
  if (j.contains("session")) {
    const auto& s = j["session"];
    if (!s.is_array()) throw LineError{"\"session\" must be an array of {\"item\", \"operation\"} objects"};
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto& e = s[i];
      const std::string where = "session[" + std::to_string(i) + "]";
      if (!e.is_object() || !e.contains("item") || !e.contains("operation"))
        throw LineError{where + " must be an object with \"item\" and \"operation\""};
      events.push_back({item_id(e["item"], where + ".item"), operation_name(e["operation"], where + ".operation")});
    }
  } else if (j.contains("items") || j.contains("operations")) {
    if (!j.contains("items") || !j.contains("operations"))
      throw LineError{"\"items\" and \"operations\" must be given together"};
    const auto &items = j["items"], &ops = j["operations"];
    if (!items.is_array() || !ops.is_array()) throw LineError{"\"items\" and \"operations\" must be arrays"};
    if (items.size() != ops.size())
      throw LineError{"\"items\" has " + std::to_string(items.size()) + " entries, \"operations\" " +
                      std::to_string(ops.size())};
    for (std::size_t i = 0; i < items.size(); ++i)
      events.push_back({item_id(items[i], "items[" + std::to_string(i) + "]"),
                        operation_name(ops[i], "operations[" + std::to_string(i) + "]")});
  } else {
    throw LineError{"expected \"session\" or \"items\" and \"operations\""};
  }
  return events;
}

std::vector<embsr::SessionEvent> parse_jd(const std::string& line) {
  static constexpr const char* kSpaces = " \t\r\v\f";
  const auto& names = embsr::jd_operation_names();
  std::vector<embsr::SessionEvent> events;
  const std::string_view text(line);
  std::size_t p = text.find_first_not_of(kSpaces);
  std::size_t token_no = 0;
  while (p != std::string_view::npos) {
    std::size_t e = text.find_first_of(kSpaces, p);
    if (e == std::string_view::npos) e = text.size();
    const std::string_view token = text.substr(p, e - p);
    p = text.find_first_not_of(kSpaces, e);
    ++token_no;
    const std::string where = "token " + std::to_string(token_no) + " '" + std::string(token) + "'";
    const std::size_t plus = token.find('+');
    if (plus == std::string_view::npos || plus == 0)
      throw LineError{where + ": expected sku+behavior_type+..."};
    const std::string_view sku = token.substr(0, plus);
    std::string_view type = token.substr(plus + 1);
    type = type.substr(0, type.find('+'));
    int bt = 0;
    for (const char c : type) {
      if (c < '0' || c > '9' || bt > 100) {
        bt = -1;
        break;
      }
      bt = bt * 10 + (c - '0');
    }
    if (type.empty() || bt < 1 || bt > static_cast<int>(names.size()))
      throw LineError{where + ": behavior_type '" + std::string(type) + "' must be 1.." + std::to_string(names.size())};
    events.push_back({std::string(sku), names[static_cast<std::size_t>(bt - 1)]});
  }
  return events;
}

nlohmann::json to_json(const embsr::Recommendation& r) {
  return nlohmann::json{{"items", r.items},
                        {"scores", r.scores},
                        {"unknown_items", r.unknown_items},
                        {"unknown_operations", r.unknown_operations}};
}

// Sessions waiting for one batched call, with their input line numbers.
struct Pending {
  std::vector<std::vector<embsr::SessionEvent>> sessions;
  std::vector<std::size_t> lines;
  void clear() {
    sessions.clear();
    lines.clear();
  }
};

int run(const Args& a) {
  const embsr::Recommender<> rec(a.model);
  if (!a.next_op.empty() && !rec.operations().contains(a.next_op)) {
    std::string known;
    for (const auto& t : rec.operations().tokens()) known += (known.empty() ? "" : ", ") + t;
    throw embsr::InvalidArgument("--next-op: unknown operation '" + a.next_op + "' (the model knows: " + known + ")");
  }
  embsr::RecommendOptions options;
  options.k = a.k;
  options.exclude_session_items = a.exclude_seen;
  options.next_operation = a.next_op;

  std::ifstream file;
  std::istream* in = &std::cin;
  const std::string input_name = a.input == "-" ? "<stdin>" : a.input;
  if (a.input != "-") {
    file.open(a.input);
    if (!file) throw embsr::DataError(a.input, 0, "cannot open input");
    in = &file;
  }

  std::size_t skipped = 0, answered = 0;
  // Output slots in input order: either a recommendation to fill or an error object.
  std::vector<nlohmann::json> out;
  Pending pending;
  std::vector<std::size_t> slot_of;  // pending session -> index in `out`
  auto flush = [&] {
    if (!pending.sessions.empty()) {
      const auto recs = rec.recommend_batch(pending.sessions, options);
      for (std::size_t i = 0; i < recs.size(); ++i) out[slot_of[i]] = to_json(recs[i]);
      answered += recs.size();
    }
    for (const auto& j : out) std::cout << j.dump() << '\n';
    std::cout.flush();
    out.clear();
    pending.clear();
    slot_of.clear();
  };
  auto has_usable_event = [&](const std::vector<embsr::SessionEvent>& s) {
    for (const auto& e : s)
      if (rec.items().contains(e.item) && rec.operations().contains(e.operation)) return true;
    return false;
  };

  std::string line;
  std::size_t line_no = 0;
  while (std::getline(*in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r\v\f") == std::string::npos) continue;
    try {
      auto events = a.format == "jd" ? parse_jd(line) : parse_jsonl(line);
      if (!has_usable_event(events))
        throw LineError{"empty session: none of the " + std::to_string(events.size()) +
                        " events has a known item and operation"};
      slot_of.push_back(out.size());
      out.emplace_back();
      pending.sessions.push_back(std::move(events));
      pending.lines.push_back(line_no);
    } catch (const LineError& e) {
      if (!a.lenient) {
        flush();  // everything before the bad line is answered
        std::fprintf(stderr, "embsr-recommend: %s:%zu: %s\n", input_name.c_str(), line_no, e.reason.c_str());
        return 1;
      }
      std::fprintf(stderr, "embsr-recommend: %s:%zu: %s (skipped)\n", input_name.c_str(), line_no, e.reason.c_str());
      out.push_back(nlohmann::json{{"line", line_no}, {"error", e.reason}});
      ++skipped;
    }
    if (pending.sessions.size() >= embsr::Recommender<>::kChunk) flush();
  }
  if (in->bad()) throw embsr::DataError(input_name, line_no, "read error");
  flush();
  if (skipped > 0)
    std::fprintf(stderr, "embsr-recommend: %zu sessions answered, %zu lines skipped\n", answered, skipped);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"embsr-recommend: next-item recommendations for sessions from a trained EMBSR checkpoint"};
  Args a;
  app.add_option("--model", a.model, "checkpoint file (written by training)")->required()->check(CLI::ExistingFile);
  app.add_option("--input", a.input, "sessions, one per line; '-' reads standard input")->capture_default_str();
  app.add_option("--format", a.format, "input format: jsonl or jd (JD micro-behavior log lines)")
      ->check(CLI::IsMember({"jsonl", "jd"}))
      ->capture_default_str();
  app.add_option("--k", a.k, "number of items to recommend per session")->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_flag("--exclude-seen", a.exclude_seen, "never recommend an item already in the session");
  app.add_option("--next-op", a.next_op,
                 "operation the next micro-behavior will have (models trained with the given next operation); "
                 "default: the session's last operation");
  app.add_flag("--lenient", a.lenient, "answer malformed lines with an error object instead of stopping");
  CLI11_PARSE(app, argc, argv);
  setenv("OMP_PROC_BIND", "false", 0);  // Kokkos' OpenMP backend warns on stdout otherwise

  Kokkos::ScopeGuard kokkos;
  try {
    return run(a);
  } catch (const embsr::Error& e) {
    std::fprintf(stderr, "embsr-recommend: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embsr-recommend: unexpected error: %s\n", e.what());
    return 1;
  }
}
