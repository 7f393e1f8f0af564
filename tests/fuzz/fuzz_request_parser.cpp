// libFuzzer harness for the request parsers of embsr-recommend (embsr/serve/request_parser.hpp).
// Build and run: scripts/fuzz.sh request_parser (see tests/fuzz/README.md).
//
// Byte 0 picks the mode: bit 0 clear: the rest is one line; set: the rest is split at '\n' and each
// line parsed on its own, as embsr-recommend reads its input. Every line goes to both parsers
// (JSON lines and JD). RequestError is the parsers' documented answer to bad input; anything else
// (another exception, a crash, a sanitizer report) escapes and libFuzzer reports it. Checked on top:
//  - the events and the error messages dump through nlohmann::json with the replace handler, and
//    the dump parses back (what embsr-recommend writes is always valid JSON);
//  - a JD line gives the same verdict as the loader, load_jd, on the same line: accepted with the
//    same number of events, or refused with the same reason.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <embsr/core/error.hpp>
#include <embsr/data/jd_loader.hpp>
#include <embsr/serve/request_parser.hpp>

namespace {

using nlohmann::json;

// The dump must succeed (no type_error.316) and be JSON again.
void check_dumps(const json& j) {
  const std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (json::parse(text, nullptr, /*allow_exceptions=*/false).is_discarded()) __builtin_trap();
}

void check_events(const std::vector<embsr::SessionEvent>& events) {
  json j = json::array();
  for (const auto& e : events) j.push_back({{"item", e.item}, {"operation", e.operation}});
  check_dumps(j);
}

// parse_jd_request and load_jd share detail::parse_jd_token: same verdict, same words.
void check_jd_agrees_with_loader(std::string_view line, const std::vector<embsr::SessionEvent>* events,
                                 const std::string* reason) {
  // The loader reads a file: it drops a leading byte order mark and ends lines at '\n'; a line that
  // is blank is not a session for the loader (it reports "no sessions loaded" instead).
  if (line.find('\n') != std::string_view::npos || line.substr(0, 3) == "\xEF\xBB\xBF" ||
      line.find_first_not_of(embsr::detail::kJdSpaces) == std::string_view::npos)
    return;
  std::istringstream in{std::string(line)};
  try {
    const embsr::SessionDataset ds = embsr::load_jd(in, "fuzz.jd");
    if (events == nullptr || ds.num_sessions() != 1 || ds.num_events() != events->size()) __builtin_trap();
  } catch (const embsr::DataError& e) {
    if (reason == nullptr || e.reason() != *reason) __builtin_trap();
  }
}

void parse_line(std::string_view line) {
  try {
    check_events(embsr::parse_jsonl_request(line));
  } catch (const embsr::RequestError& e) {
    check_dumps(json{{"line", 1}, {"error", e.what()}});
  }
  try {
    const auto events = embsr::parse_jd_request(line);
    check_events(events);
    check_jd_agrees_with_loader(line, &events, nullptr);
  } catch (const embsr::RequestError& e) {
    check_dumps(json{{"line", 1}, {"error", e.what()}});
    const std::string reason = e.what();
    check_jd_agrees_with_loader(line, nullptr, &reason);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool split_lines = (data[0] & 1) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (!split_lines) {
    parse_line(text);
    return 0;
  }
  std::size_t begin = 0;
  while (begin <= text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    parse_line(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return 0;
}
