// OTTO RecSys 2022 loader: the shipped 20-session fixture (counts from its SOURCE.md, every event
// checked against Python's json module) and every rule / bad-input case on hand-made JSON lines.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <embsr/data/otto_loader.hpp>

#include "data_paths.hpp"
#include "dataset_helpers.hpp"

namespace test_otto_loader {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using namespace embsr::test;  // expect_error, item_tokens, op_names, times_of

const std::string kFixture = "otto_recsys2022_fixture/train.jsonl";

// One event and one session line in the layout of the real files.
std::string ev(const std::string& aid, const std::string& ts, const std::string& type) {
  return "{\"aid\":" + aid + ",\"ts\":" + ts + ",\"type\":\"" + type + "\"}";
}
std::string session_line(const std::string& session, const std::vector<std::string>& events) {
  std::string s = "{\"session\":" + session + ",\"events\":[";
  for (std::size_t i = 0; i < events.size(); ++i) s += (i ? "," : "") + events[i];
  return s + "]}\n";
}
// The same without its newline.
std::string bare(const std::string& line) { return line.substr(0, line.size() - 1); }
const std::string kGood = session_line("1", {ev("10", "1659304800000", "clicks")});

embsr::SessionDataset load_text(const std::string& text, const embsr::LoadOptions& options = {},
                                embsr::LoadReport* report = nullptr) {
  std::istringstream in(text);
  return embsr::load_otto(in, "mem.jsonl", options, report);
}

embsr::DataError strict_error(const std::string& text) {
  auto e = expect_error([&] { load_text(text); });
  CHECK(e.file() == "mem.jsonl");
  return e;
}

// The reason a single bad line (after one good line, so it is line 2) is refused with, in strict
// mode; also checks that lenient mode skips it under `kind` and keeps the good line.
std::string refused(const std::string& bad_line, const std::string& kind) {
  const auto e = strict_error(kGood + bad_line + "\n");
  CHECK(e.line() == 2);
  embsr::LoadOptions lenient;
  lenient.lenient = true;
  embsr::LoadReport rep;
  const auto ds = load_text(kGood + bad_line + "\n", lenient, &rep);
  CHECK(ds.num_sessions() == 1);
  CHECK(rep.skipped_records == 1);
  CHECK(rep.skipped_reasons == std::map<std::string, std::size_t>{{kind, 1}});
  REQUIRE(rep.problems.size() == 1);
  CHECK(rep.problems[0] == "mem.jsonl:2: " + e.reason());
  return e.reason();
}

// Every event of an OTTO file, one "session aid ts type" line each, by Python's json module (an
// independent parser); a session's events sorted stably by ts (the loader's documented rule).
std::vector<std::string> python_events(const std::string& path) {
  const std::string dir = scratch_dir();
  {
    std::ofstream script(dir + "/otto_events.py");
    script << "import json, sys\n"
              "with open(sys.argv[1], encoding='utf-8') as f:\n"
              "    for line in f:\n"
              "        if not line.strip():\n"
              "            continue\n"
              "        o = json.loads(line)\n"
              "        for e in sorted(o['events'], key=lambda e: e['ts']):\n"
              "            print(o['session'], e['aid'], e['ts'], e['type'])\n";
  }
  const char* env = std::getenv("EMBSR_PYTHON");
  const std::string python = env != nullptr && *env != '\0' ? env : EMBSR_PYTHON;
  const std::string cmd = python + " " + dir + "/otto_events.py " + path + " > " + dir + "/events.txt 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(dir + "/events.txt");
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  if (rc != 0) FAIL("python failed (" << rc << "): " << cmd << "\n" << (lines.empty() ? "" : lines.front()));
  return lines;
}

}  // namespace

TEST_CASE("otto: the shipped 20-session fixture", "[data][otto]") {
  embsr::LoadReport rep;
  const auto ds = embsr::load_otto(repo_data(kFixture), {}, &rep);
  // SOURCE.md: 20 sessions, 862 events, 510 distinct items; clicks 800, carts 52, orders 10.
  CHECK(ds.num_sessions() == 20);
  CHECK(ds.num_events() == 862);
  CHECK(ds.item_vocab.size() == 510);
  CHECK(ds.op_vocab.tokens() == std::vector<std::string>{"clicks", "carts", "orders"});
  CHECK(ds.op_vocab.tokens() == embsr::otto_operation_names());
  std::map<std::string, std::size_t> ops;
  for (const auto o : ds.ops()) ++ops[ds.op_vocab.token(o)];
  CHECK(ops == std::map<std::string, std::size_t>{{"clicks", 800}, {"carts", 52}, {"orders", 10}});
  CHECK(rep.files == 1);
  CHECK(rep.lines_read == 20);
  CHECK(rep.records_read == 20);
  CHECK(rep.sessions == 20);
  CHECK(rep.events == 862);
  CHECK(rep.skipped_records == 0);
  CHECK(rep.dropped_rows == 0);
  CHECK(rep.empty_sessions == 0);
  CHECK(rep.implausible_timestamps == 0);  // August 2022

  // Every event, in order, against Python's json module.
  const std::vector<std::string> expected = python_events(repo_data(kFixture));
  REQUIRE(expected.size() == 862);
  std::size_t k = 0;
  for (std::size_t s = 0; s < ds.num_sessions(); ++s) {
    const auto v = ds.session(s);
    for (std::size_t i = 0; i < v.size(); ++i, ++k) {
      std::istringstream fields(expected[k]);
      std::string session, aid, type;
      std::int64_t ts = 0;
      REQUIRE(static_cast<bool>(fields >> session >> aid >> ts >> type));
      INFO("event " << k << ": " << expected[k]);
      CHECK(*v.key == session);
      CHECK(ds.item_vocab.token(v.items[i]) == aid);
      CHECK(ds.op_vocab.token(v.ops[i]) == type);
      CHECK(v.times[i] == static_cast<double>(ts) / 1000.0);
    }
    CHECK(v.order_key == v.times[v.size() - 1]);
  }
  CHECK(k == expected.size());
  CHECK(*ds.session(0).key == "0");
  CHECK(*ds.session(19).key == "12899778");
  CHECK(ds.session(0).times[0] == 1659304800.025);  // the first line's first ts, 1659304800025 ms
}

TEST_CASE("otto: the shipped fixture is byte-identical to the shared original", "[shared-data][data][otto]") {
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string shipped = read(repo_data(kFixture));
  CHECK(shipped.size() == 43944);  // SOURCE.md
  CHECK(shipped == read(shared_data(kFixture)));
}

TEST_CASE("otto: sessions, items, operations, times and keys of a hand-made log", "[data][otto]") {
  const std::string text = session_line("7", {ev("300", "1659304800000", "clicks"), ev("100", "1659304801500", "carts"),
                                              ev("300", "1659304802000", "orders")}) +   // line 1
                           session_line("3", {}) +                                          // line 2: empty
                           session_line("18446744073709551615", {ev("100", "1659304900999", "clicks"),
                                                                 ev("0", "1659304901000", "clicks")});  // line 3
  embsr::LoadReport rep;
  const auto ds = load_text(text, {}, &rep);
  REQUIRE(ds.num_sessions() == 2);
  CHECK(*ds.session(0).key == "7");
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"300", "100", "300"});
  CHECK(op_names(ds, 0) == std::vector<std::string>{"clicks", "carts", "orders"});
  CHECK(times_of(ds, 0) == std::vector<double>{1659304800.0, 1659304801.5, 1659304802.0});
  CHECK(ds.session(0).order_key == 1659304802.0);
  CHECK(*ds.session(1).key == "18446744073709551615");
  CHECK(item_tokens(ds, 1) == std::vector<std::string>{"100", "0"});
  CHECK(times_of(ds, 1) == std::vector<double>{1659304900.999, 1659304901.0});
  CHECK(ds.session(1).order_key == 1659304901.0);
  CHECK(ds.item_vocab.tokens() == std::vector<std::string>{"300", "100", "0"});  // first appearance
  CHECK(rep.records_read == 3);
  CHECK(rep.empty_sessions == 1);
  CHECK(rep.sessions == 2);
  CHECK(rep.events == 5);
  CHECK(rep.sessions + rep.empty_sessions + rep.skipped_records == rep.records_read);
}

TEST_CASE("otto: any JSON spelling of the same data loads the same", "[data][otto]") {
  const std::string line5 =
      session_line("5", {ev("11", "1659304800000", "clicks"), ev("22", "1659304800001", "carts")});
  const std::string line6 = session_line("6", {ev("11", "1659304800002", "orders")});
  const std::string compact = line5 + line6;
  const auto reference = load_text(compact);
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"spaces everywhere JSON allows them",
       " \t{ \"session\" : 5 ,\r\"events\" :\t[ { \"aid\" : 11 , \"ts\" : 1659304800000 , \"type\" : \"clicks\" } ,"
       "{\"aid\":22,\"ts\":1659304800001,\"type\":\"carts\"} ] } \t\n"
       "{\"session\":6,\"events\":[{\"aid\":11,\"ts\":1659304800002,\"type\":\"orders\"}]}\n"},
      {"keys in another order",
       "{\"events\":[{\"type\":\"clicks\",\"ts\":1659304800000,\"aid\":11},{\"ts\":1659304800001,\"aid\":22,"
       "\"type\":\"carts\"}],\"session\":5}\n"
       "{\"events\":[{\"ts\":1659304800002,\"type\":\"orders\",\"aid\":11}],\"session\":6}\n"},
      {"unknown keys with any JSON value, skipped",
       "{\"session\":5,\"user\":{\"a\":[1,2.5e-3,-0,true,false,null,\"x\\\"y\",{}],\"b\":[]},\"events\":[{\"aid\":11,"
       "\"ts\":1659304800000,\"type\":\"clicks\",\"source\":\"app\"},{\"aid\":22,\"ts\":1659304800001,\"type\":"
       "\"carts\",\"\":null}]}\n"
       "{\"session\":6,\"events\":[{\"aid\":11,\"ts\":1659304800002,\"type\":\"orders\"}],\"z\":[[[[]]]]}\n"},
      {"escapes in keys and strings",
       "{\"s\\u0065ssion\":5,\"events\":[{\"aid\":11,\"ts\":1659304800000,\"type\":\"cl\\u0069cks\"},{\"\\u0061id\":22,"
       "\"ts\":1659304800001,\"type\":\"carts\",\"note\":\"\\\\ \\/ \\b\\f\\n\\r\\t \\ud83d\\ude00 \\u00e9\"}]}\n"
       "{\"session\":6,\"events\":[{\"aid\":11,\"ts\":1659304800002,\"type\":\"orders\",\"n\":\"\xc3\xa9\xe2\x82\xac"
       "\xf0\x9f\x98\x80\"}]}\n"},
      {"CRLF, a BOM, blank lines and no newline at the end",
       "\xEF\xBB\xBF" + bare(line5) + "\r\n\r\n   \t\r\n" + bare(line6)},
  };
  for (const auto& [what, text] : variants) {
    INFO(what);
    embsr::LoadReport rep;
    const auto ds = load_text(text, {}, &rep);
    CHECK(ds.keys() == reference.keys());
    CHECK(ds.items() == reference.items());
    CHECK(ds.ops() == reference.ops());
    CHECK(ds.times() == reference.times());
    CHECK(ds.order_keys() == reference.order_keys());
    CHECK(ds.offsets() == reference.offsets());
    CHECK(ds.item_vocab == reference.item_vocab);
    CHECK(rep.records_read == 2);
    CHECK(rep.skipped_records == 0);
  }
  embsr::LoadReport rep;
  load_text(variants.back().second, {}, &rep);
  CHECK(rep.blank_lines == 2);
  CHECK(rep.lines_read == 4);
}

TEST_CASE("otto: a session whose ts go backwards is sorted stably by ts", "[data][otto]") {
  const std::string text = session_line(
      "1", {ev("1", "1659304800005", "clicks"), ev("2", "1659304800001", "carts"), ev("3", "1659304800005", "orders"),
            ev("4", "1659304800001", "clicks"), ev("5", "1659304800009", "clicks")});
  const auto ds = load_text(text);
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"2", "4", "1", "3", "5"});  // ties keep file order
  CHECK(op_names(ds, 0) == std::vector<std::string>{"carts", "clicks", "clicks", "orders", "clicks"});
  CHECK(times_of(ds, 0) ==
        std::vector<double>{1659304800.001, 1659304800.001, 1659304800.005, 1659304800.005, 1659304800.009});
  CHECK(ds.session(0).order_key == 1659304800.009);
  // The item ids follow the order of appearance in the file, not the sorted order.
  CHECK(ds.item_vocab.tokens() == std::vector<std::string>{"1", "2", "3", "4", "5"});
}

TEST_CASE("otto: every bad line is a DataError naming file, line, field and value", "[data][otto]") {
  const std::string t = "\"ts\":1659304800000";
  SECTION("not JSON, truncated, trailing text") {
    CHECK(refused("hello", "invalid JSON") ==
          "invalid JSON at column 1: expected '{' (each line is one JSON object), got 'hello'");
    CHECK(refused("[1,2]", "invalid JSON") ==
          "invalid JSON at column 1: expected '{' (each line is one JSON object), got '[1,2]'");
    CHECK(refused("{\"session\":1,\"events\":[]} x", "invalid JSON") ==
          "invalid JSON at column 27: text after the session object: 'x'");
    CHECK(refused("{\"session\":1,\"events\":[]}{}", "invalid JSON") ==
          "invalid JSON at column 26: text after the session object: '{}'");
    CHECK(refused("{\"session\":1,\"events\":[{\"aid\":2," + t + ",\"type\":\"clicks\"}", "invalid JSON") ==
          "invalid JSON: the line ends at column 68 where ',' or ']' after event 1 should follow (truncated?)");
    CHECK(refused("{\"session\":1,\"events\":[{\"aid\":2," + t + ",\"type\":\"cli", "invalid JSON") ==
          "invalid JSON: the line ends inside a string that starts at column 59 (truncated?)");
    CHECK(refused("{\"session\":1 \"events\":[]}", "invalid JSON") ==
          "invalid JSON at column 14: expected ',' or '}' after a field of the session, got '\"events\":[]}'");
    CHECK(refused("{\"session\":1,}", "invalid JSON") ==
          "invalid JSON at column 14: expected a key in double quotes, got '}'");
    CHECK(refused("{'session':1}", "invalid JSON") ==
          "invalid JSON at column 2: expected a key in double quotes, got ''session':1}'");
    CHECK(refused("{\"session\" 1}", "invalid JSON") ==
          "invalid JSON at column 12: expected ':' after the key, got '1}'");
    CHECK(refused("{\"session\":1,\"events\":[],\"x\":tru}", "invalid JSON") ==
          "invalid JSON at column 30: expected a JSON value, got 'tru}'");
    CHECK(refused("{\"session\":1,\"events\":[],\"x\":[1 2]}", "invalid JSON") ==
          "invalid JSON at column 33: expected ',' or ']', got '2]}'");
    CHECK(refused("{\"session\":1,\"events\":[],\"x\":{\"a\":1]}", "invalid JSON") ==
          "invalid JSON at column 36: expected ',' or '}', got ']}'");
    CHECK(refused("{\"session\":1,\"events\":[" + ev("2", "1659304800000", "clicks") + ",]}", "invalid JSON") ==
          "invalid JSON at column 69: expected a JSON value, got ']}'");
    CHECK(refused("{\"session\":1,\"events\":[],\"x\":\x0c}", "invalid JSON") ==
          "invalid JSON at column 30: expected a JSON value, got '\\x0c}'");
  }
  SECTION("bad strings: escapes, control characters, UTF-8, surrogates") {
    const std::string pre = "{\"session\":1,\"events\":[],\"x\":\"";
    CHECK(refused(pre + "a\\qb\"}", "invalid JSON") == "invalid JSON at column 32: bad escape '\\q' in a string");
    CHECK(refused(pre + "\\u12G4\"}", "invalid JSON") ==
          "invalid JSON at column 31: bad escape '\\u12G4' (\\u needs four hex digits)");
    CHECK(refused(pre + "\\u12\"}", "invalid JSON") ==
          "invalid JSON at column 31: bad escape '\\u12\"}' (\\u needs four hex digits)");
    CHECK(refused(pre + "\\udc00\"}", "invalid JSON") ==
          "invalid JSON at column 31: lone low surrogate '\\udc00' in a string");
    CHECK(refused(pre + "\\ud83dx\"}", "invalid JSON") ==
          "invalid JSON at column 31: high surrogate '\\ud83d' not followed by a low surrogate \\uDC00-\\uDFFF");
    CHECK(refused(pre + "\\ud83d\\u0041\"}", "invalid JSON") ==
          "invalid JSON at column 31: high surrogate '\\ud83d' not followed by a low surrogate \\uDC00-\\uDFFF");
    CHECK(refused(pre + "a\tb\"}", "invalid JSON") ==
          "invalid JSON at column 32: raw control character '\\x09' in a string (must be escaped)");
    CHECK(refused(pre + "\xff\"}", "invalid JSON") ==
          "invalid JSON at column 31: invalid UTF-8 byte '\xff' in a string");
    CHECK(refused(pre + "\xc0\xaf\"}", "invalid JSON") ==  // overlong '/'
          "invalid JSON at column 31: invalid UTF-8 byte '\xc0' in a string");
    CHECK(refused(pre + "\xed\xa0\x80\"}", "invalid JSON") ==  // an encoded surrogate
          "invalid JSON at column 31: invalid UTF-8 byte '\xed' in a string");
    CHECK(refused(pre + "\xe2\x82\"}", "invalid JSON") ==  // cut sequence
          "invalid JSON at column 31: invalid UTF-8 byte '\xe2' in a string");
    CHECK(refused(pre + "ab\\", "invalid JSON") ==
          "invalid JSON: the line ends inside a string that starts at column 30 (truncated?)");
  }
  SECTION("bad numbers") {
    auto line = [](const std::string& session, const std::string& aid, const std::string& ts) {
      return "{\"session\":" + session + ",\"events\":[{\"aid\":" + aid + ",\"ts\":" + ts + ",\"type\":\"clicks\"}]}";
    };
    CHECK(refused(line("1", "-5", "1659304800000"), "not a non-negative integer") ==
          "event 1: aid '-5' is negative (expected a non-negative integer)");
    CHECK(refused(line("1", "5", "1659304800000.5"), "not a non-negative integer") ==
          "event 1: ts '1659304800000.5' is not an integer (expected a non-negative integer)");
    CHECK(refused(line("1", "5", "1.6593048e12"), "not a non-negative integer") ==
          "event 1: ts '1.6593048e12' is not an integer (expected a non-negative integer)");
    CHECK(refused(line("1.0", "5", "1659304800000"), "not a non-negative integer") ==
          "session '1.0' is not an integer (expected a non-negative integer)");
    CHECK(refused(line("-0", "5", "1659304800000"), "not a non-negative integer") ==
          "session '-0' is negative (expected a non-negative integer)");
    CHECK(refused(line("1", "18446744073709551616", "1659304800000"), "numeric overflow") ==
          "event 1: aid '18446744073709551616' is out of range (max 18446744073709551615)");
    CHECK(refused(line("1", "5", "99999999999999999999999999"), "numeric overflow") ==
          "event 1: ts '99999999999999999999999999' is out of range (max 18446744073709551615)");
    CHECK(refused(line("1", "05", "1659304800000"), "invalid JSON") ==
          "invalid JSON at column 31: number '05,\"ts\":165930480000...' has a leading zero");
    CHECK(refused(line("1", "5", "+1659304800000"), "invalid JSON") ==
          "invalid JSON at column 38: expected a JSON value, got '+1659304800000,\"type...'");
    CHECK(refused(line("1", "-", "1659304800000"), "invalid JSON") ==
          "invalid JSON at column 32: expected a digit in a number, got ',\"ts\":1659304800000,...'");
    CHECK(refused(line("1", "5.", "1659304800000"), "invalid JSON") ==
          "invalid JSON at column 33: expected a digit after the decimal point, got ',\"ts\":1659304800000,...'");
    CHECK(refused(line("1", "5e", "1659304800000"), "invalid JSON") ==
          "invalid JSON at column 33: expected a digit in the exponent, got ',\"ts\":1659304800000,...'");
  }
  SECTION("wrong field types") {
    CHECK(refused("{\"session\":\"1\",\"events\":[]}", "wrong field type") ==
          "session must be a non-negative integer, got '\"1\"'");
    CHECK(refused("{\"session\":1,\"events\":{}}", "wrong field type") == "events must be an array, got '{}'");
    CHECK(refused("{\"session\":1,\"events\":null}", "wrong field type") == "events must be an array, got 'null'");
    CHECK(refused("{\"session\":1,\"events\":[" + ev("2", "1659304800000", "clicks") + ",[3]]}", "wrong field type") ==
          "event 2 must be an object, got '[3]'");
    CHECK(refused("{\"session\":1,\"events\":[{\"aid\":\"2\"," + t + ",\"type\":\"clicks\"}]}", "wrong field type") ==
          "event 1: aid must be a non-negative integer, got '\"2\"'");
    CHECK(refused("{\"session\":1,\"events\":[{\"aid\":2,\"ts\":[1],\"type\":\"clicks\"}]}", "wrong field type") ==
          "event 1: ts must be a non-negative integer, got '[1]'");
    CHECK(refused("{\"session\":1,\"events\":[{\"aid\":2," + t + ",\"type\":0}]}", "wrong field type") ==
          "event 1: type must be a string, got '0'");
  }
  SECTION("unknown event type") {
    CHECK(refused(bare(session_line("1", {ev("2", "1659304800000", "views")})), "unknown event type") ==
          "event 1: unknown event type 'views' (expected clicks, carts or orders)");
    CHECK(refused(bare(session_line("1", {ev("2", "1659304800000", "Clicks")})), "unknown event type") ==
          "event 1: unknown event type 'Clicks' (expected clicks, carts or orders)");
    CHECK(refused(bare(session_line("1", {ev("2", "1659304800000", "clicks\\u0000")})), "unknown event type") ==
          "event 1: unknown event type 'clicks\\x00' (expected clicks, carts or orders)");
  }
  SECTION("missing and duplicate keys") {
    CHECK(refused("{\"events\":[]}", "missing field") == "missing \"session\"");
    CHECK(refused("{\"session\":1}", "missing field") == "missing \"events\"");
    CHECK(refused("{\"session\":1,\"events\":[{\"aid\":2,\"type\":\"clicks\"}]}", "missing field") ==
          "event 1: missing \"ts\"");
    const std::string second_without_aid = ",{" + t + ",\"type\":\"carts\"}]}";
    CHECK(refused("{\"session\":1,\"events\":[" + ev("2", "1659304800000", "clicks") + second_without_aid,
                  "missing field") == "event 2: missing \"aid\"");
    CHECK(refused("{\"session\":1,\"events\":[{\"aid\":2," + t + "}]}", "missing field") ==
          "event 1: missing \"type\"");
    CHECK(refused("{\"session\":1,\"events\":[],\"session\":2}", "duplicate key") ==
          "duplicate key 'session' at column 26");
    CHECK(refused("{\"session\":1,\"events\":[],\"events\":[]}", "duplicate key") ==
          "duplicate key 'events' at column 26");
    CHECK(refused("{\"session\":1,\"events\":[{\"aid\":2,\"aid\":3," + t + ",\"type\":\"clicks\"}]}",
                  "duplicate key") ==
          "event 1: duplicate key 'aid' at column 33");
    CHECK(refused("{\"session\":1,\"events\":[{\"aid\":2," + t + ",\"type\":\"clicks\",\"t\\u0073\":5}]}",
                  "duplicate key") ==
          "event 1: duplicate key 'ts' at column 68");
    CHECK(refused("{\"session\":1,\"x\":1,\"events\":[],\"x\":2}", "duplicate key") ==
          "duplicate key 'x' at column 32");
    // Unknown keys are per object: the same unknown key in two events, or in an event and the
    // session, is fine.
    const auto ds = load_text("{\"session\":1,\"x\":0,\"events\":[{\"aid\":2," + t +
                              ",\"type\":\"clicks\",\"x\":1},{\"aid\":3," + t + ",\"type\":\"clicks\",\"x\":2}]}\n");
    CHECK(ds.num_events() == 2);
  }
  SECTION("duplicate session id") {
    CHECK(refused(bare(session_line("1", {ev("9", "1659304800000", "carts")})), "duplicate session id") ==
          "session 1 was already read on line 1 (one line per session)");
    // Out of order (a hash lookup), and an empty session counts as read.
    const std::string text = session_line("5", {ev("1", "1659304800000", "clicks")}) + session_line("3", {}) +
                             session_line("9", {ev("1", "1659304800000", "clicks")}) + session_line("3", {});
    const auto e = strict_error(text);
    CHECK(e.line() == 4);
    CHECK(e.reason() == "session 3 was already read on line 2 (one line per session)");
  }
  SECTION("empty file, nothing loaded, missing file, directory") {
    auto e = strict_error("");
    CHECK(e.line() == 0);
    CHECK(e.reason() == "empty file (no sessions)");
    CHECK(strict_error("\n \r\n\t\n").reason() == "empty file (no sessions)");
    e = strict_error(session_line("1", {}) + session_line("2", {}));
    CHECK(e.line() == 0);
    CHECK(e.reason() == "no sessions loaded: of 2 lines, 2 had no events and 0 were skipped");
    embsr::LoadOptions lenient;
    lenient.lenient = true;
    e = expect_error([&] { load_text("x\n" + session_line("2", {}), lenient); });
    CHECK(e.reason() == "no sessions loaded: of 2 lines, 1 had no events and 1 were skipped");
    e = expect_error([] { embsr::load_otto("/nonexistent/train.jsonl"); });
    CHECK(e.file() == "/nonexistent/train.jsonl");
    CHECK(e.line() == 0);
    CHECK(e.reason() == "cannot open file: No such file or directory");
    const std::string directory = scratch_dir();
    e = expect_error([&] { embsr::load_otto(directory); });
    CHECK(e.reason() == "cannot open file: is a directory");
  }
}

TEST_CASE("otto: every proper prefix of a line (a truncated line) is refused", "[data][otto]") {
  const std::string line =
      "{\"session\":12,\"events\":[{\"aid\":5,\"ts\":1659304800000,\"type\":\"clicks\","
      "\"x\":[{\"y\":\"\\u00e9\"},-1.5e3,true]},{ \"type\" : \"orders\" , \"aid\" : 6 , \"ts\" : 1659304800001 }]}";
  REQUIRE(load_text(line).num_events() == 2);
  for (std::size_t n = 0; n < line.size(); ++n) {
    const std::string cut = line.substr(0, n);
    if (cut.find_first_not_of(" ") == std::string::npos) continue;  // blank
    INFO("prefix of " << n << " bytes: " << cut);
    const auto e = strict_error(kGood + cut + "\n" + kGood.substr(0, 11) + "2" + kGood.substr(12));
    CHECK(e.line() == 2);
  }
}

TEST_CASE("otto: nesting in an unknown value is limited, not recursive", "[data][otto]") {
  auto nested = [](std::size_t depth) {
    return "{\"session\":1,\"events\":[],\"x\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
  };
  embsr::LoadReport rep;
  load_text(session_line("0", {ev("1", "1659304800000", "clicks")}) + nested(embsr::detail::kOttoMaxNesting - 1) + "\n",
            {}, &rep);
  CHECK(rep.empty_sessions == 1);  // 64 levels with the session object: fine
  CHECK(refused(nested(embsr::detail::kOttoMaxNesting), "JSON nested too deep") ==
        "JSON nested deeper than 64 levels at column " + std::to_string(29 + embsr::detail::kOttoMaxNesting));
  // A million levels: the same error, no stack overflow, whether the line is closed or not.
  CHECK(refused(nested(1000000), "JSON nested too deep").rfind("JSON nested deeper than 64 levels", 0) == 0);
  CHECK(refused("{\"session\":1,\"events\":[],\"x\":" + std::string(1000000, '{'), "invalid JSON")
            .rfind("invalid JSON at column 31: expected a key in double quotes", 0) == 0);
}

TEST_CASE("otto: implausible timestamps are loaded, counted and reported", "[data][otto]") {
  const std::string text = session_line("1", {ev("1", "1659304800000", "clicks"),  // fine
                                              ev("2", "1659304800", "clicks")}) +   // seconds, not ms: 1970
                           session_line("2", {ev("3", "0", "carts")});
  embsr::LoadReport rep;
  const auto ds = load_text(text, {}, &rep);  // strict: no error
  CHECK(ds.num_events() == 3);
  CHECK(times_of(ds, 0) == std::vector<double>{1659304.8, 1659304800.0});  // sorted by ts
  CHECK(rep.implausible_timestamps == 2);
  REQUIRE(rep.problems.size() == 2);
  CHECK(rep.problems[0] == "mem.jsonl:1: implausible timestamp '1659304800 ms' (before 1990 or after 2100 as unix "
                           "seconds); loaded anyway");
  CHECK(rep.problems[1] == "mem.jsonl:2: implausible timestamp '0 ms' (before 1990 or after 2100 as unix seconds); "
                           "loaded anyway");
}

TEST_CASE("otto: lenient mode skips bad lines; every line is in exactly one bucket", "[data][otto]") {
  const std::string text = session_line("1", {ev("10", "1659304800000", "clicks")}) +  // 1 kept
                           "{\"session\":2,\"events\":[{\"aid\":-1}]}\n" +                   // 2 bad number
                           "\n" +                                                          // 3 blank
                           session_line("3", {}) +                                         // 4 empty
                           "{\"session\":4,\"events\":[" + ev("11", "1659304800001", "views") + "]}\n" +  // 5 type
                           session_line("1", {ev("12", "1659304800002", "carts")}) +       // 6 duplicate
                           "{\"session\":5,\"events\":[" + ev("13", "1659304800003", "carts") + "]} trailing\n" +  // 7
                           session_line("6", {ev("10", "1659304800004", "orders"),
                                              ev("14", "1659304800005", "clicks")});  // 8
  embsr::LoadOptions lenient;
  lenient.lenient = true;
  embsr::LoadReport rep;
  const auto ds = load_text(text, lenient, &rep);
  REQUIRE(ds.num_sessions() == 2);
  CHECK(ds.keys() == std::vector<std::string>{"1", "6"});
  CHECK(ds.item_vocab.tokens() == std::vector<std::string>{"10", "14"});  // nothing of a skipped line
  CHECK(rep.lines_read == 8);
  CHECK(rep.blank_lines == 1);
  CHECK(rep.records_read == 7);
  CHECK(rep.sessions == 2);
  CHECK(rep.events == 3);
  CHECK(rep.empty_sessions == 1);
  CHECK(rep.skipped_records == 4);
  CHECK(rep.skipped_reasons == std::map<std::string, std::size_t>{{"duplicate session id", 1},
                                                                   {"invalid JSON", 1},
                                                                   {"not a non-negative integer", 1},
                                                                   {"unknown event type", 1}});
  CHECK(rep.dropped_rows == 0);
  CHECK(rep.sessions + rep.empty_sessions + rep.skipped_records == rep.records_read);
  REQUIRE(rep.problems.size() == 4);
  CHECK(rep.problems[0] == "mem.jsonl:2: event 1: aid '-1' is negative (expected a non-negative integer)");
  CHECK(rep.problems[1] == "mem.jsonl:5: event 1: unknown event type 'views' (expected clicks, carts or orders)");
  CHECK(rep.problems[2] == "mem.jsonl:6: session 1 was already read on line 1 (one line per session)");
  CHECK(rep.problems[3] == "mem.jsonl:7: invalid JSON at column 71: text after the session object: 'trailing'");
  const std::string summary = rep.summary();
  CHECK(summary.find("skipped bad records: 4") != std::string::npos);
  CHECK(summary.find("sessions left empty after dropping (not added): 1") != std::string::npos);
}

TEST_CASE("otto: a line longer than the reader's chunk", "[data][otto]") {
  std::vector<std::string> events;
  for (int i = 0; i < 5000; ++i)
    events.push_back(ev(std::to_string(i % 700), std::to_string(1659304800000LL + i), "clicks"));
  const auto ds = load_text(kGood + session_line("2", events) + kGood.substr(0, 11) + "3" + kGood.substr(12));
  REQUIRE(ds.num_sessions() == 3);
  CHECK(ds.session(1).size() == 5000);  // ~250 KB, several 64 KB chunks
  CHECK(ds.item_vocab.size() == 700);  // "10" of kGood is among 0..699
}

}  // namespace test_otto_loader
