// trivago RecSys 2019 loader: the real 100k-row slice (counts from SOURCE.md, recomputed with
// Python's csv module) and every rule / bad-input case on hand-made CSV.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <embsr/data/trivago_loader.hpp>

#include "data_paths.hpp"
#include "dataset_helpers.hpp"

namespace test_trivago_loader {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using namespace embsr::test;  // expect_error, item_tokens, op_names, ops_of, times_of, head

const std::string kHeader =
    "user_id,session_id,timestamp,step,action_type,reference,platform,city,device,current_filters,impressions,"
    "prices\n";

// One row in the standard column order.
std::string row(const std::string& session, long long ts, int step, const std::string& action,
                const std::string& reference) {
  return "U1," + session + "," + std::to_string(ts) + "," + std::to_string(step) + "," + action + "," + reference +
         ",FR,\"Marseille, France\",tablet,,,\n";
}

embsr::SessionDataset load_text(const std::string& text, const embsr::LoadOptions& options = {},
                                embsr::LoadReport* report = nullptr) {
  std::istringstream in(text);
  return embsr::load_trivago(in, "mem.csv", options, report);
}

embsr::DataError strict_error(const std::string& text) {
  auto e = expect_error([&] { load_text(text); });
  CHECK(e.file() == "mem.csv");
  return e;
}

std::size_t find_session(const embsr::SessionDataset& ds, const std::string& key) {
  for (std::size_t s = 0; s < ds.num_sessions(); ++s)
    if (*ds.session(s).key == key) return s;
  FAIL("no session " << key);
  return 0;
}

const embsr::LoadOptions kLenient = [] {
  embsr::LoadOptions o;
  o.lenient = true;
  return o;
}();

}  // namespace

TEST_CASE("trivago: the real 100k-row slice", "[shared-data][data][trivago]") {
  embsr::LoadReport rep;
  const auto ds = embsr::load_trivago(embsr::test::trivago_csv(), {}, &rep);
  // SOURCE.md: with the 6 item types, 87,612 events / 7,513 sessions / 13,950 items. Four of those
  // rows ("interaction item info" with reference "unknown") are not item ids and are dropped here, so
  // 87,608 events and 13,949 items (the 13,950th is the string "unknown"); every session keeps events.
  CHECK(ds.num_sessions() == 7513);
  CHECK(ds.num_events() == 87612 - 4);
  CHECK(ds.item_vocab.size() == 13950 - 1);
  CHECK_FALSE(ds.item_vocab.contains("unknown"));
  CHECK(rep.implausible_timestamps == 0);  // November 2018: the plausibility range flags no real log
  CHECK(ds.op_vocab.tokens() == embsr::trivago_item_actions());
  CHECK(ds.op_vocab.tokens() == std::vector<std::string>{"clickout item", "interaction item rating",
                                                         "interaction item info", "interaction item image",
                                                         "interaction item deals", "search for item"});
  std::map<std::string, std::size_t> ops;
  for (const auto o : ds.ops()) ++ops[ds.op_vocab.token(o)];
  CHECK(ops == std::map<std::string, std::size_t>{{"interaction item image", 68538},
                                                  {"clickout item", 13597},
                                                  {"interaction item info", 1829 - 4},
                                                  {"interaction item rating", 1445},
                                                  {"interaction item deals", 1159},
                                                  {"search for item", 1044}});
  std::size_t at_least_two = 0;
  for (std::size_t s = 0; s < ds.num_sessions(); ++s) at_least_two += ds.session(s).size() >= 2;
  CHECK(at_least_two == 4907);

  CHECK(rep.files == 1);
  CHECK(rep.lines_read == 100004);
  CHECK(rep.records_read == 100003);
  CHECK(rep.blank_lines == 0);
  CHECK(rep.sessions == 7513);
  CHECK(rep.events == 87608);
  CHECK(rep.skipped_records == 0);
  CHECK(rep.dropped_rows == 5303 + 3060 + 2948 + 1080 + 4);
  CHECK(rep.dropped_reasons == std::map<std::string, std::size_t>{
                                   {"action type 'filter selection' is not an item action", 5303},
                                   {"action type 'search for destination' is not an item action", 3060},
                                   {"action type 'change of sort order' is not an item action", 2948},
                                   {"action type 'search for poi' is not an item action", 1080},
                                   {"reference is not an item", 4}});
  CHECK(rep.empty_sessions == 7612 - 7513);  // sessions with only non-item rows

  // First session: rows 2..36 of the file, all item actions.
  const auto first = ds.session(0);
  CHECK(*first.key == "82cafdca18b3c");
  CHECK(first.size() == 35);
  CHECK(head(item_tokens(ds, 0), 4) ==
        std::vector<std::string>{"5967314", "5967314", "5967314", "913787"});
  CHECK(head(op_names(ds, 0), 3) ==
        std::vector<std::string>{"interaction item image", "interaction item rating", "clickout item"});
  CHECK(head(times_of(ds, 0), 4) ==
        std::vector<double>{1541599523, 1541599538, 1541599553, 1541601736});
  CHECK(first.order_key == 1541601868.0);
  CHECK(ds.item_vocab.token(0) == "5967314");

  // 2a181b2125efe: its rows are in the file as steps 1-3 (Nov 8) then 1-6 (Nov 7): sorted by time,
  // non-item rows dropped, order_key = last timestamp.
  const auto s = find_session(ds, "2a181b2125efe");
  CHECK(item_tokens(ds, s) == std::vector<std::string>{"101278", "101278", "101278", "1390332", "45643", "104016",
                                                       "1694719"});
  CHECK(times_of(ds, s) == std::vector<double>{1541592713, 1541592713, 1541592717, 1541592794, 1541683876,
                                               1541683994, 1541684131});
  CHECK(ds.session(s).order_key == 1541684131.0);

  // The last session of the file has 324 item events.
  const auto last = ds.session(ds.num_sessions() - 1);
  CHECK(*last.key == "695b74e233a80");
  CHECK(last.size() == 324);
  CHECK(last.order_key == 1541625833.0);
  for (std::size_t i = 0; i < ds.num_sessions(); ++i) {
    const auto v = ds.session(i);
    REQUIRE(v.order_key == v.times.back());
    for (std::size_t j = 1; j < v.size(); ++j) REQUIRE(v.times[j - 1] <= v.times[j]);
  }
}

TEST_CASE("trivago: columns by name, grouping, sorting, keys", "[data][trivago]") {
  // Columns in another order, an extra column, and a session whose rows are not contiguous.
  const std::string text =
      "reference,action_type,step,timestamp,session_id,extra\n"
      "100,clickout item,2,1000,s1,x\n"            // line 2
      "200,search for item,1,1000,s1,x\n"          // line 3: same time, lower step: first
      "300,interaction item image,1,500,s2,x\n"    // line 4
      "Paris,search for destination,3,1001,s1,x\n"  // line 5: dropped
      "400,interaction item deals,4,1002,s1,x\n"   // line 6
      "500,interaction item info,2,500,s2,x\n"     // line 7: tie (500, 2)... 
      "501,interaction item info,2,500,s2,x\n"     // line 8: ... with line 7: file order
      "600,interaction item rating,5,900,s1,x\n";  // line 9: s1 again, earlier time
  embsr::LoadReport rep;
  const auto ds = load_text(text, {}, &rep);
  REQUIRE(ds.num_sessions() == 2);
  CHECK(*ds.session(0).key == "s1");
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"600", "200", "100", "400"});
  CHECK(op_names(ds, 0) ==
        std::vector<std::string>{"interaction item rating", "search for item", "clickout item", "interaction item deals"});
  CHECK(times_of(ds, 0) == std::vector<double>{900, 1000, 1000, 1002});
  CHECK(ds.session(0).order_key == 1002);
  CHECK(*ds.session(1).key == "s2");
  CHECK(item_tokens(ds, 1) == std::vector<std::string>{"300", "500", "501"});
  CHECK(ds.session(1).order_key == 500);
  CHECK(ds.item_vocab.tokens() == std::vector<std::string>{"100", "200", "300", "400", "500", "501", "600"});
  CHECK(rep.records_read == 8);
  CHECK(rep.dropped_rows == 1);
  CHECK(rep.empty_sessions == 0);
}

TEST_CASE("trivago: quoting, CRLF, blank lines, no trailing newline", "[data][trivago]") {
  std::string text = kHeader;
  text += "U1,s1,10,1,clickout item,7,FR,\"Paris,\nFrance\",tablet,,\"1|2\",\"3|4\"\r\n";  // lines 2-3
  text += "\r\n";                                                                          // line 4
  text += "U1,s1,11,2,interaction item image,8,FR,\"say \"\"hi\"\"\",tablet,,,";         // line 5
  embsr::LoadReport rep;
  const auto ds = load_text(text, {}, &rep);
  REQUIRE(ds.num_sessions() == 1);
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"7", "8"});
  CHECK(rep.lines_read == 5);
  CHECK(rep.records_read == 2);
  CHECK(rep.blank_lines == 1);
  // Line numbers after the quoted newline are right.
  const auto e = strict_error(text + "\nU1,s1,12,3,clickout item,9,FR\n");
  CHECK(e.line() == 6);
  CHECK(e.reason() == "expected 12 fields, found 7");
}

TEST_CASE("trivago: dropped rows and sessions left empty", "[data][trivago]") {
  const std::string text = kHeader + row("a", 1, 1, "filter selection", "4 stars") +
                           row("a", 2, 2, "change of sort order", "price") + row("b", 3, 1, "clickout item", "11") +
                           row("b", 4, 2, "interaction item info", "unknown") +
                           row("b", 5, 3, "search for poi", "Eiffel Tower") + row("c", 6, 1, "search for item", "") +
                           row("d", 7, 1, "interaction item image", "-5");
  embsr::LoadReport rep;
  const auto ds = load_text(text, {}, &rep);
  REQUIRE(ds.num_sessions() == 1);
  CHECK(*ds.session(0).key == "b");
  CHECK(ds.num_events() == 1);
  CHECK(rep.dropped_rows == 6);
  CHECK(rep.dropped_reasons == std::map<std::string, std::size_t>{
                                   {"action type 'filter selection' is not an item action", 1},
                                   {"action type 'change of sort order' is not an item action", 1},
                                   {"action type 'search for poi' is not an item action", 1},
                                   {"reference is not an item", 3}});
  CHECK(rep.empty_sessions == 3);
  CHECK(rep.skipped_records == 0);
  const std::string summary = rep.summary();
  CHECK(summary.find("dropped rows: 6") != std::string::npos);
  CHECK(summary.find("1  action type 'filter selection' is not an item action") != std::string::npos);
  CHECK(summary.find("sessions left empty after dropping (not added): 3") != std::string::npos);

  // Nothing left at all is an error.
  const auto e = strict_error(kHeader + row("a", 1, 1, "filter selection", "x"));
  CHECK(e.line() == 0);
  CHECK(e.reason() == "no sessions loaded: of 1 rows, 1 were dropped and 0 skipped");
}

TEST_CASE("trivago: every bad input is a DataError naming file, line and problem", "[data][trivago]") {
  const std::string ok = row("s", 1, 1, "clickout item", "5");
  SECTION("missing required column") {
    const auto e = strict_error("user_id,session_id,timestamp,action_type,reference\nU,s,1,clickout item,5\n");
    CHECK(e.line() == 1);
    CHECK(e.reason() == "missing required column 'step' (header: user_id,session_id,timestamp,action_type,reference)");
    const auto e2 = strict_error("\n\nsession_id,timestamp,step,action_type\n");
    CHECK(e2.line() == 3);  // the header is the first non-blank line
    CHECK(e2.reason() == "missing required column 'reference' (header: session_id,timestamp,step,action_type)");
    const auto e3 = strict_error("session_id,timestamp,step,action_type,reference,step\n");
    CHECK(e3.reason().rfind("column 'step' appears twice in the header", 0) == 0);
  }
  SECTION("wrong field count") {
    const auto e = strict_error(kHeader + ok + "U1,s,2,2,clickout item,5,FR,Paris,tablet,,\n");
    CHECK(e.line() == 3);
    CHECK(e.reason() == "expected 12 fields, found 11");
    CHECK(strict_error(kHeader + "U1,s,2,2,clickout item,5,FR,Paris,tablet,,,,\n").reason() ==
          "expected 12 fields, found 13");
  }
  SECTION("non-integer timestamp or step") {
    auto e = strict_error(kHeader + ok + ok + "U1,s,12.5,3,clickout item,5,FR,Paris,tablet,,,\n");
    CHECK(e.line() == 4);
    CHECK(e.reason() == "timestamp '12.5' is not an integer");
    e = strict_error(kHeader + "U1,s,,3,clickout item,5,FR,Paris,tablet,,,\n");
    CHECK(e.reason() == "timestamp '' is not an integer");
    e = strict_error(kHeader + "U1,s,99999999999999999999,3,clickout item,5,FR,Paris,tablet,,,\n");
    CHECK(e.reason() == "timestamp '99999999999999999999' is out of range (64-bit integer)");
    e = strict_error(kHeader + ok + "U1,s,12,three,filter selection,x,FR,Paris,tablet,,,\n");
    CHECK(e.line() == 3);
    CHECK(e.reason() == "step 'three' is not an integer");  // checked on dropped rows too
  }
  SECTION("unknown action type") {
    const auto e = strict_error(kHeader + ok + row("s", 2, 2, "xyz", "5"));
    CHECK(e.line() == 3);
    CHECK(e.reason() == "unknown action type 'xyz'");
    CHECK(strict_error(kHeader + row("s", 2, 2, "Clickout Item", "5")).reason() == "unknown action type 'Clickout Item'");
  }
  SECTION("empty session_id") {
    const auto e = strict_error(kHeader + ok + row("", 2, 2, "clickout item", "5"));
    CHECK(e.line() == 3);
    CHECK(e.reason() == "empty session_id");
  }
  SECTION("empty file, header only") {
    auto e = strict_error("");
    CHECK(e.line() == 0);
    CHECK(e.reason() == "empty file");
    e = strict_error("\n\r\n");
    CHECK(e.reason() == "empty file");
    e = strict_error(kHeader + "\n");
    CHECK(e.line() == 0);
    CHECK(e.reason() == "empty file (no data rows after the header)");
  }
  SECTION("unterminated quote: the line where the record began, also in lenient mode") {
    const std::string text = kHeader + ok + "U1,s,2,2,clickout item,5,FR,\"Paris\n,tablet,,,\n" +
                             "U1,s,3,3,clickout item,5,FR,Paris,tablet,,,\n";
    auto e = strict_error(text);
    CHECK(e.line() == 3);
    CHECK(e.reason() == "unterminated quoted field (opened on line 3, column 8): no closing quote before the end of the file");
    e = expect_error([&] { load_text(text, kLenient); });
    CHECK(e.line() == 3);
  }
  SECTION("character after a closing quote") {
    const auto e = strict_error(kHeader + ok + "U1,s,2,2,clickout item,5,FR,\"Paris\"x,tablet,,,\n");
    CHECK(e.line() == 3);
    CHECK(e.reason().rfind("unexpected character 'x' after the closing quote of column 8", 0) == 0);
  }
  SECTION("missing file") {
    const auto e = expect_error([] { embsr::load_trivago("/nonexistent/trivago.csv"); });
    CHECK(e.file() == "/nonexistent/trivago.csv");
    CHECK(e.line() == 0);
    CHECK(e.reason() == "cannot open file: No such file or directory");
  }
  SECTION("a directory is named as such, not reported as a read error") {
    const std::string directory = embsr::test::scratch_dir();
    const auto e = expect_error([&] { embsr::load_trivago(directory); });
    CHECK(e.file() == directory);
    CHECK(e.line() == 0);
    CHECK(e.reason() == "cannot open file: is a directory");
  }
}

TEST_CASE("trivago: implausible timestamps of kept rows are loaded, counted and reported", "[data][trivago]") {
  const std::string text = kHeader + row("s", 1541599523, 1, "clickout item", "5") +  // 2 fine
                           row("s", -5, 2, "clickout item", "6") +                     // 3 before 1990
                           row("s", 0, 3, "filter selection", "4 stars") +            // 4 dropped: not counted
                           row("t", 1541599523000, 1, "search for item", "7") +        // 5 milliseconds
                           row("t", 1541599524, 2, "clickout item", "unknown");        // 6 dropped (reference)
  embsr::LoadReport rep;
  const auto ds = load_text(text, {}, &rep);  // strict: still no error
  CHECK(ds.num_events() == 3);
  CHECK(times_of(ds, 0) == std::vector<double>{-5, 1541599523});
  CHECK(rep.implausible_timestamps == 2);
  REQUIRE(rep.problems.size() == 2);
  CHECK(rep.problems[0] ==
        "mem.csv:3: implausible timestamp '-5' (before 1990 or after 2100 as unix seconds); loaded anyway");
  CHECK(rep.problems[1] == "mem.csv:5: implausible timestamp '1541599523000' (before 1990 or after 2100 as unix "
                           "seconds); loaded anyway (milliseconds?)");
  CHECK(rep.summary().find("implausible timestamps (before 1990 or after 2100 as unix seconds; loaded anyway): 2\n") !=
        std::string::npos);
}

TEST_CASE("trivago: lenient mode skips bad rows and reports them", "[data][trivago]") {
  const std::string text = kHeader + row("s", 1541599501, 1, "clickout item", "5") +     // 2
                           "U1,s,1541599502,2,clickout item,5,FR\n" +                      // 3 field count
                           row("s", 1541599503, 3, "xyz", "6") +                           // 4 unknown type
                           row("t", 1541599504, 1, "interaction item image", "7") +        // 5 ok
                           "U1,t,x,2,clickout item,8,FR,Paris,tablet,,,\n" +               // 6 timestamp
                           "U1,t,1541599505,2,clickout item,\"9\"z,FR,Paris,tablet,,,\n" +  // 7 malformed CSV
                           row("t", 1541599506, 3, "filter selection", "3 stars") +        // 8 dropped
                           row("t", 1541599507, 4, "clickout item", "10");                 // 9 ok
  embsr::LoadReport rep;
  const auto ds = load_text(text, kLenient, &rep);
  REQUIRE(ds.num_sessions() == 2);
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"5"});
  CHECK(item_tokens(ds, 1) == std::vector<std::string>{"7", "10"});
  CHECK(ds.item_vocab.tokens() == std::vector<std::string>{"5", "7", "10"});
  CHECK(rep.records_read == 8);
  CHECK(rep.lines_read == 9);
  CHECK(rep.skipped_records == 4);
  CHECK(rep.skipped_reasons == std::map<std::string, std::size_t>{{"bad timestamp", 1},
                                                                   {"malformed CSV", 1},
                                                                   {"unknown action type", 1},
                                                                   {"wrong field count", 1}});
  CHECK(rep.dropped_rows == 1);
  REQUIRE(rep.problems.size() == 4);
  CHECK(rep.problems[0] == "mem.csv:3: expected 12 fields, found 7");
  CHECK(rep.problems[1] == "mem.csv:4: unknown action type 'xyz'");
  CHECK(rep.problems[2] == "mem.csv:6: timestamp 'x' is not an integer");
  CHECK(rep.problems[3].rfind("mem.csv:7: unexpected character 'z' after the closing quote of column 6", 0) == 0);
  CHECK(rep.sessions == 2);
  CHECK(rep.events == 3);
}

}  // namespace test_trivago_loader
