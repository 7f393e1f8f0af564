// Request parsing for embsr-recommend: JSON lines and JD lines in, raw (item, operation) events out,
// RequestError with a reason for anything else; JD lines follow the loader's rules word for word.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <embsr/data/jd_loader.hpp>
#include <embsr/serve/request_parser.hpp>

namespace test_request_parser {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using nlohmann::json;

// The reason a parser gives for a line, or "" when it accepts it.
template <class Parse>
std::string refusal(Parse parse, const std::string& line) {
  try {
    parse(line);
    return "";
  } catch (const embsr::RequestError& e) {
    return e.what();
  }
}
std::string jd_refusal(const std::string& line) { return refusal(embsr::parse_jd_request, line); }
std::string jsonl_refusal(const std::string& line) { return refusal(embsr::parse_jsonl_request, line); }

// The reason load_jd gives for the same line in a file.
std::string loader_refusal(const std::string& line) {
  std::istringstream in(line + "\n");
  try {
    embsr::load_jd(in, "mem.jd");
    return "";
  } catch (const embsr::DataError& e) {
    return e.reason();
  }
}

// What embsr-recommend does with every JSON value it writes.
std::string dump_replacing(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

const std::string kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("request parser: both JSON-lines shapes give the same events", "[serve][request]") {
  const auto a = embsr::parse_jsonl_request(
      R"({"session": [{"item": "1169504", "operation": "SearchList2Product"}, {"item": 3170510, "operation": "Cart"}]})");
  const auto b =
      embsr::parse_jsonl_request(R"({"items": [1169504, "3170510"], "operations": ["SearchList2Product", "Cart"]})");
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(a[i].item == b[i].item);
    CHECK(a[i].operation == b[i].operation);
  }
  CHECK(a[1].item == "3170510");  // an integer id names the same item as its digits
  CHECK(a[1].operation == "Cart");
  CHECK(embsr::parse_jsonl_request(R"({"items": [], "operations": []})").empty());
}

TEST_CASE("request parser: malformed JSON lines are refused with a reason", "[serve][request]") {
  CHECK_THROWS_AS(embsr::parse_jsonl_request("{"), embsr::InvalidArgument);  // RequestError is an InvalidArgument
  CHECK_THAT(jsonl_refusal("{"), StartsWith("invalid JSON: "));
  CHECK_THAT(jsonl_refusal("[1, 2]"), StartsWith("expected a JSON object"));
  CHECK(jsonl_refusal(R"({"x": 1})") == "expected \"session\" or \"items\" and \"operations\"");
  CHECK(jsonl_refusal(R"({"session": 3})") == "\"session\" must be an array of {\"item\", \"operation\"} objects");
  CHECK(jsonl_refusal(R"({"session": [{"item": "1"}]})") == "session[0] must be an object with \"item\" and \"operation\"");
  CHECK(jsonl_refusal(R"({"session": [{"item": 1.5, "operation": "Cart"}]})") ==
        "session[0].item must be a string or an integer, got 1.5");
  CHECK(jsonl_refusal(R"({"items": ["1"]})") == "\"items\" and \"operations\" must be given together");
  CHECK(jsonl_refusal(R"({"items": "1", "operations": "Cart"})") == "\"items\" and \"operations\" must be arrays");
  CHECK(jsonl_refusal(R"({"items": ["1", "2"], "operations": ["Cart"]})") ==
        "\"items\" has 2 entries, \"operations\" 1");
  CHECK(jsonl_refusal(R"({"items": [[1]], "operations": ["Cart"]})") ==
        "items[0] must be a string or an integer, got array");
  CHECK(jsonl_refusal(R"({"items": ["1"], "operations": [7]})") == "operations[0] must be a string, got 7");
  // Found by the fuzzer: a number beyond double is nlohmann's out_of_range.406, not a parse_error.
  CHECK_THAT(jsonl_refusal(R"({"items": [1e400], "operations": ["Cart"]})"),
             StartsWith("invalid JSON: ") && Contains("number overflow"));
  // Nesting no request needs is refused while parsing (nothing later recurses through it).
  CHECK_THAT(jsonl_refusal(std::string(100000, '[') + std::string(100000, ']')), Contains("nested deeper than"));
}

TEST_CASE("request parser: JD lines map behavior types to the JD operation names", "[serve][request][jd]") {
  const auto events = embsr::parse_jd_request(" 1169504+5+753+1+1\t3170510+9+753+12+3  435168+10+753+0+0\r");
  REQUIRE(events.size() == 3);
  CHECK(events[0].item == "1169504");
  CHECK(events[0].operation == "SearchList2Product");
  CHECK(events[1].operation == "Cart");
  CHECK(events[2].item == "435168");
  CHECK(events[2].operation == "Order");
  CHECK(embsr::parse_jd_request(" \t ").empty());
}

TEST_CASE("request parser: JD lines follow the loader's rules and messages", "[serve][request][jd]") {
  // The old reader of embsr-recommend took "123+5" (two fields); the loader never did.
  CHECK(jd_refusal("123+5") ==
        "token 1 '123+5' has 2 fields, expected 5 (sku+behavior_type+category+time_interval+dwell_time)");
  const std::vector<std::string> bad{
      "123+5",           "1+1+1+1+1 123+5+7",       "1+1+1+1+1+1",  "12a+5+1+2+3",  "1+x+1+2+3",
      "1+1+1+-2+3",      "1+1+c7+2+3",              "1+1+1+2+3.5",  "1++1+2+3",     "+1+1+2+3",
      "1+11+7+1+1",      "1+0+7+1+1",               "1+1+1+99999999999999999999+1", "1\x01+1+1+1+1",
      "\xff+5+753+1+1",  std::string(100, 'x')};
  for (const auto& line : bad) {
    INFO(line);
    const std::string reason = jd_refusal(line);
    CHECK_FALSE(reason.empty());
    CHECK(reason == loader_refusal(line));
  }
  const std::vector<std::string> good{"1+1+1+1+1", "007+10+0+0+0  8+1+18446744073709551615+0+0"};
  for (const auto& line : good) {
    INFO(line);
    CHECK(jd_refusal(line).empty());
    CHECK(loader_refusal(line).empty());
  }
}

TEST_CASE("request parser: bytes that are not UTF-8 still give valid JSON out", "[serve][request]") {
  SECTION("a JD sku that is not digits is refused, and the reason quoting it dumps with replace") {
    const std::string reason = jd_refusal("879089+5+753+1+1 \xff+5+753+1+1");
    CHECK(reason == "token 2 '\xff+5+753+1+1': sku '\xff' is not an unsigned integer");
    CHECK_THROWS_AS(json(reason).dump(), json::type_error);  // what used to end embsr-recommend
    const std::string out = dump_replacing(json{{"line", 101}, {"error", reason}});
    const json back = json::parse(out);
    CHECK(back["error"].get<std::string>() ==
          "token 2 '" + kReplacementCharacter + "+5+753+1+1': sku '" + kReplacementCharacter + "' is not an unsigned integer");
  }
  SECTION("a JSON line with invalid UTF-8 in a string is refused with a reason that dumps with replace") {
    const std::string reason = jsonl_refusal("{\"items\": [\"a\xff\"], \"operations\": [\"Cart\"]}");
    CHECK_THAT(reason, StartsWith("invalid JSON: ") && Contains("UTF-8"));
    CHECK_NOTHROW(json::parse(dump_replacing(json{{"error", reason}})));
  }
  SECTION("an item id that is not UTF-8 (from the library API) round-trips as U+FFFD") {
    const embsr::SessionEvent event{"12\xfe\xff", "Cart"};
    const std::string out = dump_replacing(json{{"unknown_items", {event.item}}});
    CHECK(json::parse(out)["unknown_items"][0].get<std::string>() ==
          "12" + kReplacementCharacter + kReplacementCharacter);
  }
}

TEST_CASE("request parser: every line of the invalid-UTF-8 reproducer is parsed or refused with a reason",
          "[serve][request][jd]") {
  // A copy of ../shared/reliability/repro_recommend_invalid_utf8_jd.txt (issue 11), kept in the
  // repository so that the test runs in any clone.
  const auto lines = read_lines(std::string(EMBSR_SOURCE_DIR) + "/tests/serve/data/recommend_invalid_utf8.jd");
  REQUIRE(lines.size() == 201);
  std::size_t parsed = 0, refused = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    INFO("line " << i + 1);
    try {
      const auto events = embsr::parse_jd_request(lines[i]);
      CHECK_FALSE(events.empty());
      json j = json::array();
      for (const auto& e : events) j.push_back(json::array({e.item, e.operation}));
      CHECK_NOTHROW(json::parse(dump_replacing(j)));
      ++parsed;
    } catch (const embsr::RequestError& e) {
      CHECK(std::string(e.what()) == loader_refusal(lines[i]));
      CHECK_NOTHROW(json::parse(dump_replacing(json{{"line", i + 1}, {"error", e.what()}})));
      ++refused;
    }
  }
  CHECK(parsed == 200);
  CHECK(refused == 1);  // line 101: sku "\xff"
  CHECK_THAT(jd_refusal(lines[100]), StartsWith("token 2 '\xff+5"));
}

}  // namespace test_request_parser
