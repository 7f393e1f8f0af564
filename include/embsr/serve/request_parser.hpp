#pragma once
// Parsing of recommendation requests: one session per line of text, as embsr-recommend reads them,
// turned into the raw (item id, operation name) events that Recommender takes.
//
//   jsonl  {"session": [{"item": "123", "operation": "Cart"}, ...]}
//          or {"items": ["123", ...], "operations": ["Cart", ...]}   (item ids may be JSON integers:
//          123 and "123" name the same item)
//   jd     the JD micro-behavior log format, the same rules and messages as the loader (load_jd):
//          whitespace-separated tokens "sku+behavior_type+category+time_interval+dwell_time", all
//          five fields unsigned integers, behavior_type 1..10 mapped to jd_operation_names().
//
// A line that is not a request throws RequestError (an InvalidArgument) whose what() is the reason,
// without file or line: the caller knows where the line came from. Nothing else is thrown for bad
// input (std::bad_alloc aside). The parsers accept any bytes: a JSON line must be valid UTF-8 (JSON
// requires it), a JD sku is digits only; messages that quote the input may hold bytes that are not
// UTF-8, so write them into JSON with nlohmann::json::error_handler_t::replace.
//
// This header does not include Kokkos: it is compiled on its own by the fuzz harness
// (tests/fuzz/fuzz_request_parser.cpp).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <embsr/core/error.hpp>
#include <embsr/data/jd_loader.hpp>

namespace embsr {

// One micro-behavior of a session to answer: a raw item id and an operation name, as in the
// training logs. Unknown ids and names are reported by Recommender, not refused here.
struct SessionEvent {
  std::string item;
  std::string operation;
};

// A request line that cannot be parsed; what() is the reason.
class RequestError : public InvalidArgument {
 public:
  explicit RequestError(const std::string& reason) : InvalidArgument(reason) {}
};

namespace detail {

// Deeper nesting than any request needs is refused while parsing, so that no later step (a message
// that shows a value) recurses through a hostile line of a million '['.
inline constexpr int kMaxRequestDepth = 16;

// A JSON value shown in a message: short scalars in full, containers by their type only.
inline std::string describe_json(const nlohmann::json& v) {
  if (v.is_structured()) return std::string(v.type_name());
  const std::string text = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return text.size() > 60 ? text.substr(0, 60) + "..." : text;
}

inline std::string request_item_id(const nlohmann::json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return v.dump();  // 123 and "123" name the same item
  throw RequestError(where + " must be a string or an integer, got " + describe_json(v));
}

inline std::string request_operation(const nlohmann::json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  throw RequestError(where + " must be a string, got " + describe_json(v));
}

}  // namespace detail

// One JSON-lines request. Throws RequestError for a line that is not such an object.
inline std::vector<SessionEvent> parse_jsonl_request(std::string_view line) {
  using nlohmann::json;
  json j;
  try {
    const json::parser_callback_t limit_depth = [](int depth, json::parse_event_t event, json&) {
      if (depth > detail::kMaxRequestDepth &&
          (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start))
        throw RequestError("invalid request: JSON nested deeper than " + std::to_string(detail::kMaxRequestDepth) +
                           " levels");
      return true;
    };
    j = json::parse(line.begin(), line.end(), limit_depth);
  } catch (const json::exception& e) {
    // parse_error for bad syntax or UTF-8, and out_of_range.406 for a number beyond double
    // (1e400): both are bad input.
    throw RequestError(std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw RequestError("expected a JSON object with \"session\" or \"items\" and \"operations\"");
  std::vector<SessionEvent> events;
  if (j.contains("session")) {
    const json& s = j.at("session");
    if (!s.is_array()) throw RequestError("\"session\" must be an array of {\"item\", \"operation\"} objects");
    events.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
      const json& e = s[i];
      const std::string where = "session[" + std::to_string(i) + "]";
      if (!e.is_object() || !e.contains("item") || !e.contains("operation"))
        throw RequestError(where + " must be an object with \"item\" and \"operation\"");
      events.push_back({detail::request_item_id(e.at("item"), where + ".item"),
                        detail::request_operation(e.at("operation"), where + ".operation")});
    }
  } else if (j.contains("items") || j.contains("operations")) {
    if (!j.contains("items") || !j.contains("operations"))
      throw RequestError("\"items\" and \"operations\" must be given together");
    const json& items = j.at("items");
    const json& ops = j.at("operations");
    if (!items.is_array() || !ops.is_array()) throw RequestError("\"items\" and \"operations\" must be arrays");
    if (items.size() != ops.size())
      throw RequestError("\"items\" has " + std::to_string(items.size()) + " entries, \"operations\" " +
                         std::to_string(ops.size()));
    events.reserve(items.size());
    for (std::size_t i = 0; i < items.size(); ++i)
      events.push_back({detail::request_item_id(items[i], "items[" + std::to_string(i) + "]"),
                        detail::request_operation(ops[i], "operations[" + std::to_string(i) + "]")});
  } else {
    throw RequestError("expected \"session\" or \"items\" and \"operations\"");
  }
  return events;
}

// One JD-format request: the tokens of a JD log line, checked by detail::parse_jd_token exactly as
// load_jd checks them (the reason is the loader's message, e.g. "token 1 '123+5' has 2 fields,
// expected 5 (...)"). time_interval, category and dwell_time are validated but not used.
inline std::vector<SessionEvent> parse_jd_request(std::string_view line) {
  const auto& names = jd_operation_names();
  std::vector<SessionEvent> events;
  std::size_t token_no = 0;
  std::size_t p = line.find_first_not_of(detail::kJdSpaces);
  while (p != std::string_view::npos) {
    std::size_t e = line.find_first_of(detail::kJdSpaces, p);
    if (e == std::string_view::npos) e = line.size();
    const std::string_view token = line.substr(p, e - p);
    p = line.find_first_not_of(detail::kJdSpaces, e);
    ++token_no;
    detail::JdToken parsed;
    const detail::JdTokenProblem problem = detail::parse_jd_token(token, token_no, parsed);
    if (problem) throw RequestError(problem.reason);
    events.push_back({std::string(parsed.sku), names[static_cast<std::size_t>(parsed.behavior_type - 1)]});
  }
  return events;
}

}  // namespace embsr
