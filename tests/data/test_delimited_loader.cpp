// Generic delimited-log loader: sessions by id or by user + inactivity gap, operation vocabularies,
// time formats, and every bad-input case; plus the real trivago file read through it.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <embsr/data/delimited_loader.hpp>
#include <embsr/data/trivago_loader.hpp>

#include "data_paths.hpp"
#include "dataset_helpers.hpp"

namespace test_delimited_loader {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using namespace embsr::test;  // expect_error, item_tokens, op_names, ops_of, times_of, head

using Options = embsr::DelimitedOptions;

Options session_options() {
  Options o;
  o.session_column = "sid";
  o.time_column = "ts";
  o.item_column = "item";
  o.operation_column = "op";
  return o;
}

Options user_options(double gap = 1800) {
  Options o = session_options();
  o.session_column.clear();
  o.user_column = "user";
  o.session_gap_seconds = gap;
  return o;
}

embsr::SessionDataset load_text(const std::string& text, const Options& options, embsr::LoadReport* report = nullptr) {
  std::istringstream in(text);
  return embsr::load_delimited(in, "log.csv", options, report);
}

embsr::DataError strict_error(const std::string& text, const Options& options = session_options()) {
  auto e = expect_error([&] { load_text(text, options); });
  CHECK(e.file() == "log.csv");
  return e;
}

}  // namespace

TEST_CASE("delimited: sessions by id, sorted by time stably, vocabularies in first-appearance order",
          "[data][delimited]") {
  const std::string text =
      "sid,ts,item,op\n"
      "s1,10,a,view\n"
      "s2,5,b,click\n"
      "s1,5,c,view\n"
      "s1,10,d,cart\n"          // same time as 'a': file order
      "s1,100000.5,e,view\n";  // far later: with session_column no gap split
  embsr::LoadReport rep;
  const auto ds = load_text(text, session_options(), &rep);
  REQUIRE(ds.num_sessions() == 2);
  CHECK(*ds.session(0).key == "s1");
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"c", "a", "d", "e"});
  CHECK(op_names(ds, 0) == std::vector<std::string>{"view", "view", "cart", "view"});
  CHECK(times_of(ds, 0) == std::vector<double>{5, 10, 10, 100000.5});
  CHECK(ds.session(0).order_key == 100000.5);
  CHECK(*ds.session(1).key == "s2");
  CHECK(ds.session(1).order_key == 5);
  CHECK(ds.op_vocab.tokens() == std::vector<std::string>{"view", "click", "cart"});
  CHECK(ds.item_vocab.tokens() == std::vector<std::string>{"a", "b", "c", "d", "e"});
  CHECK(rep.records_read == 5);
  CHECK(rep.lines_read == 6);
  CHECK(rep.sessions == 2);
  CHECK(rep.events == 5);
}

TEST_CASE("delimited: long, interleaved session ids", "[data][delimited]") {
  const std::string a = "session-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", b = "session-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
  std::string text = "sid,ts,item,op\n";
  for (int i = 0; i < 6; ++i) text += (i % 3 == 1 ? b : a) + "," + std::to_string(10 - i) + ",i" + std::to_string(i) + ",v\n";
  const auto ds = load_text(text, session_options());
  REQUIRE(ds.num_sessions() == 2);
  CHECK(*ds.session(0).key == a);
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"i5", "i3", "i2", "i0"});
  CHECK(*ds.session(1).key == b);
  CHECK(item_tokens(ds, 1) == std::vector<std::string>{"i4", "i1"});
}

TEST_CASE("delimited: sessions by user split at gaps larger than session_gap_seconds", "[data][delimited]") {
  const std::string text =
      "user,ts,item,op\n"
      "u1,0,a,v\n"
      "u2,100,b,v\n"
      "u1,1800,b,v\n"  // gap exactly 1800: same session
      "u1,3601,c,v\n"  // gap 1801: new session
      "u2,50,c,v\n"
      "u1,3601,d,w\n";
  const auto ds = load_text(text, user_options());
  REQUIRE(ds.num_sessions() == 3);
  CHECK(*ds.session(0).key == "u1#1");
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"a", "b"});
  CHECK(ds.session(0).order_key == 1800);
  CHECK(*ds.session(1).key == "u1#2");
  CHECK(item_tokens(ds, 1) == std::vector<std::string>{"c", "d"});
  CHECK(op_names(ds, 1) == std::vector<std::string>{"v", "w"});
  CHECK(ds.session(1).order_key == 3601);
  CHECK(*ds.session(2).key == "u2#1");
  CHECK(item_tokens(ds, 2) == std::vector<std::string>{"c", "b"});
  CHECK(times_of(ds, 2) == std::vector<double>{50, 100});

  // Gap 0: any time difference splits; an infinite gap never does.
  const auto fine = load_text(text, user_options(0));
  CHECK(fine.num_sessions() == 5);
  CHECK(*fine.session(3).key == "u2#1");
  const auto whole = load_text(text, user_options(std::numeric_limits<double>::infinity()));
  CHECK(whole.num_sessions() == 2);
  CHECK(whole.session(0).size() == 4);
}

TEST_CASE("delimited: a fixed operation vocabulary", "[data][delimited]") {
  Options o = session_options();
  o.operations = {"cart", "view", "order"};
  const auto ds = load_text("sid,ts,item,op\ns,1,a,view\ns,2,a,cart\n", o);
  CHECK(ds.op_vocab.tokens() == o.operations);  // all listed, even unused, in that order
  CHECK(std::vector<embsr::index_t>(ds.ops().begin(), ds.ops().end()) == std::vector<embsr::index_t>{1, 0});

  const auto e = strict_error("sid,ts,item,op\ns,1,a,view\n\ns,2,a,buy\n", o);
  CHECK(e.line() == 4);
  CHECK(e.reason() == "unknown operation 'buy' (known: cart, view, order)");
  o.operations.clear();
  for (int i = 0; i < 12; ++i) o.operations.push_back("op" + std::to_string(i));
  CHECK(strict_error("sid,ts,item,op\ns,1,a,x\n", o).reason() ==
        "unknown operation 'x' (known: op0, op1, op2, op3, op4, op5, op6, op7, op8, op9, ... (12 in all))");
}

TEST_CASE("delimited: numeric operations", "[data][delimited]") {
  Options o = session_options();
  o.operation_kind = Options::OperationKind::Number;
  const std::string text = "sid,ts,item,op\ns,1,a,07\ns,2,a,7\ns,3,b,3\ns,4,b,0\n";
  auto ds = load_text(text, o);
  CHECK(ds.op_vocab.tokens() == std::vector<std::string>{"7", "3", "0"});  // canonical decimal strings
  CHECK(std::vector<embsr::index_t>(ds.ops().begin(), ds.ops().end()) == std::vector<embsr::index_t>{0, 0, 1, 2});

  o.operations = {"0", "3", "7", "9"};
  ds = load_text(text, o);
  CHECK(ds.op_vocab.tokens() == o.operations);
  CHECK(std::vector<embsr::index_t>(ds.ops().begin(), ds.ops().end()) == std::vector<embsr::index_t>{2, 2, 1, 0});
  CHECK(strict_error("sid,ts,item,op\ns,1,a,8\n", o).reason() == "unknown operation '8' (known: 0, 3, 7, 9)");

  o.operations.clear();
  auto e = strict_error("sid,ts,item,op\ns,1,a,1\ns,2,a,x1\n", o);
  CHECK(e.line() == 3);
  CHECK(e.reason() == "operation 'x1' is not a non-negative integer (operation_kind is Number)");
  CHECK(strict_error("sid,ts,item,op\ns,1,a,-1\n", o).reason() ==
        "operation '-1' is not a non-negative integer (operation_kind is Number)");
  CHECK(strict_error("sid,ts,item,op\ns,1,a,99999999999999999999\n", o).reason() ==
        "operation '99999999999999999999' is out of range");

  o.operations = {"1", "07"};
  CHECK_THROWS_AS(load_text(text, o), embsr::InvalidArgument);
}

TEST_CASE("delimited: time formats", "[data][delimited]") {
  Options o = session_options();
  o.time_format = Options::TimeFormat::Iso8601;
  const auto ds = load_text(
      "sid,ts,item,op\n"
      "s,2018-11-07T00:02:20.5Z,b,v\n"
      "s,2018-11-07 00:02:19,a,v\n"
      "s,2018-11-07T02:02:21+02:00,c,v\n",
      o);
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"a", "b", "c"});
  CHECK(times_of(ds, 0) == std::vector<double>{1541548939, 1541548940.5, 1541548941});
  CHECK(ds.session(0).order_key == 1541548941);

  auto e = strict_error("sid,ts,item,op\ns,2018-11-07T00:02:19Z,a,v\ns,1541548939,a,v\n", o);
  CHECK(e.line() == 3);
  CHECK(e.reason() ==
        "timestamp '1541548939' is not an ISO-8601 date-time (expected YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|+HH:MM])");
  e = strict_error("sid,ts,item,op\ns,2019-02-29 10:00:00,a,v\n", o);
  CHECK(e.reason() == "timestamp '2019-02-29 10:00:00' is not a valid date and time (field out of range)");

  // Seconds: integers and decimals, negative allowed.
  const auto secs = load_text("sid,ts,item,op\ns,1.25,a,v\ns,-3,b,v\ns,1e3,c,v\n", session_options());
  CHECK(times_of(secs, 0) == std::vector<double>{-3, 1.25, 1000});
}

TEST_CASE("delimited: other delimiters, quoting, CRLF, files", "[data][delimited]") {
  Options o = session_options();
  o.delimiter = '\t';
  const std::string tsv = "sid\tts\titem\top\r\ns 1\t1\t\"item\twith tab\"\tview\r\ns 1\t2\tb\t\"add, to cart\"";
  const auto ds = load_text(tsv, o);
  CHECK(*ds.session(0).key == "s 1");
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"item\twith tab", "b"});
  CHECK(op_names(ds, 0) == std::vector<std::string>{"view", "add, to cart"});

  // Same from a file on disk.
  const std::string path = embsr::test::scratch_dir() + "/log.tsv";
  std::ofstream(path, std::ios::binary) << tsv;
  embsr::LoadReport rep;
  const auto from_file = embsr::load_delimited(path, o, &rep);
  CHECK(from_file.items() == ds.items());
  CHECK(rep.lines_read == 3);
  CHECK(rep.records_read == 2);
  const auto e = expect_error([&] { embsr::load_delimited(path + ".missing", o); });
  CHECK(e.file() == path + ".missing");
  CHECK(e.line() == 0);
  // A directory is named as such, not reported as a read error.
  const std::string directory = embsr::test::scratch_dir();
  const auto dir = expect_error([&] { embsr::load_delimited(directory, o); });
  CHECK(dir.file() == directory);
  CHECK(dir.line() == 0);
  CHECK(dir.reason() == "cannot open file: is a directory");
}

TEST_CASE("delimited: implausible timestamps are loaded, counted and reported", "[data][delimited]") {
  const std::string text =
      "sid,ts,item,op\n"
      "s,1541548939,a,v\n"         // 2  2018: fine
      "s,-5,b,v\n"                 // 3  before 1990
      "s,1e20,c,v\n"               // 4  after 2100
      "t,1659304800025000,d,v\n"   // 5  microseconds
      "t,1659304800025,e,v\n"      // 6  milliseconds (counted, no message: three are kept)
      "t,631152000,f,v\n"          // 7  1990-01-01T00:00:00Z: the first plausible second
      "t,4102444799.5,g,v\n"       // 8  just before 2100: fine
      "t,4102444800,h,v\n"         // 9  2100-01-01T00:00:00Z: the first implausible second
      "t,x,i,v\n";                 // 10 not a number: skipped, and its message still fits
  embsr::LoadReport rep;
  Options lenient = session_options();
  lenient.lenient = true;
  const auto ds = load_text(text, lenient, &rep);
  CHECK(ds.num_events() == 8);  // loaded anyway
  CHECK(times_of(ds, 0) == std::vector<double>{-5, 1541548939, 1e20});
  CHECK(rep.implausible_timestamps == 5);
  CHECK(rep.skipped_records == 1);
  REQUIRE(rep.problems.size() == 4);
  CHECK(rep.problems[0] ==
        "log.csv:3: implausible timestamp '-5' (before 1990 or after 2100 as unix seconds); loaded anyway");
  CHECK(rep.problems[1] ==
        "log.csv:4: implausible timestamp '1e20' (before 1990 or after 2100 as unix seconds); loaded anyway");
  CHECK(rep.problems[2] == "log.csv:5: implausible timestamp '1659304800025000' (before 1990 or after 2100 as unix "
                           "seconds); loaded anyway (microseconds?)");
  CHECK(rep.problems[3].rfind("log.csv:10: timestamp 'x' is not a number", 0) == 0);
  CHECK(rep.summary().find("implausible timestamps (before 1990 or after 2100 as unix seconds; loaded anyway): 5\n") !=
        std::string::npos);

  // Never an error, in strict mode either; the milliseconds hint; nothing said about a clean file.
  rep = {};
  load_text("sid,ts,item,op\ns,1659304800025,a,v\n", session_options(), &rep);
  CHECK(rep.implausible_timestamps == 1);
  REQUIRE(rep.problems.size() == 1);
  CHECK(rep.problems[0] == "log.csv:2: implausible timestamp '1659304800025' (before 1990 or after 2100 as unix "
                           "seconds); loaded anyway (milliseconds?)");
  load_text("sid,ts,item,op\ns,1541548939,a,v\n", session_options(), &rep);
  CHECK(rep.implausible_timestamps == 0);
  CHECK(rep.summary().find("implausible") == std::string::npos);

  // ISO-8601 times are absolute too.
  Options iso = session_options();
  iso.time_format = Options::TimeFormat::Iso8601;
  load_text("sid,ts,item,op\ns,0001-01-01T00:00:00Z,a,v\ns,2019-03-01T10:00:00Z,b,v\ns,2100-01-01 00:00:00,c,v\n", iso,
            &rep);
  CHECK(rep.implausible_timestamps == 2);
}

TEST_CASE("delimited: sessions split correctly at huge and extreme timestamps", "[data][delimited]") {
  // Near 1e20 a double has a resolution of 16384 s, so 1e20 and 1e20 + 1000 are the same time (one
  // session); 1e20 and 1.0000000000001e20 are 1e7 s apart (two). The gap between -1.5e308 and
  // 1.5e308 overflows to +inf, which must still split, never give NaN or merge.
  const std::string text =
      "user,ts,item,op\n"
      "u,1e20,a,v\n"
      "u,100000000000000001000,b,v\n"
      "u,1.0000000000001e20,c,v\n"
      "u,1541548940,d,v\n"
      "u,1541548939,e,v\n"
      "u,-1e308,f,v\n"
      "u,1e308,g,v\n"
      "w,-1.5e308,h,v\n"
      "w,1.5e308,i,v\n"
      "w,1.5e308,j,v\n";
  embsr::LoadReport rep;
  const auto ds = load_text(text, user_options(1800), &rep);
  REQUIRE(ds.num_sessions() == 7);
  const std::vector<std::vector<std::string>> expected{{"f"}, {"e", "d"}, {"a", "b"}, {"c"}, {"g"}, {"h"}, {"i", "j"}};
  for (std::size_t s = 0; s < ds.num_sessions(); ++s) {
    CAPTURE(s);
    CHECK(item_tokens(ds, s) == expected[s]);
    CHECK(std::isfinite(ds.session(s).order_key));
  }
  CHECK(*ds.session(4).key == "u#5");
  CHECK(*ds.session(6).key == "w#2");
  CHECK(rep.implausible_timestamps == 8);
}

TEST_CASE("delimited: invalid options", "[data][delimited]") {
  Options o = session_options();
  o.user_column = "user";
  CHECK_THROWS_AS(load_text("x\n", o), embsr::InvalidArgument);  // both
  o = session_options();
  o.session_column.clear();
  CHECK_THROWS_AS(load_text("x\n", o), embsr::InvalidArgument);  // neither
  for (auto field : {&Options::time_column, &Options::item_column, &Options::operation_column}) {
    o = session_options();
    (o.*field).clear();
    CHECK_THROWS_AS(load_text("x\n", o), embsr::InvalidArgument);
  }
  CHECK_THROWS_AS(load_text("x\n", user_options(-1)), embsr::InvalidArgument);
  CHECK_THROWS_AS(load_text("x\n", user_options(std::nan(""))), embsr::InvalidArgument);
  o = session_options();
  o.delimiter = '"';
  CHECK_THROWS_AS(load_text("x\n", o), embsr::InvalidArgument);
  o = session_options();
  o.operations = {"a", "a"};
  CHECK_THROWS_AS(load_text("x\n", o), embsr::InvalidArgument);
  o.operations = {"a", ""};
  CHECK_THROWS_AS(load_text("x\n", o), embsr::InvalidArgument);
}

TEST_CASE("delimited: every bad input is a DataError naming file, line and problem", "[data][delimited]") {
  const std::string header = "sid,ts,item,op\n";
  SECTION("missing column names itself and lists the header") {
    auto e = strict_error("sid,time,item,op\ns,1,a,v\n");
    CHECK(e.line() == 1);
    CHECK(e.reason() == "missing time column 'ts' (header: sid,time,item,op)");
    e = strict_error("session,ts,item,op\n");
    CHECK(e.reason() == "missing session column 'sid' (header: session,ts,item,op)");
    e = strict_error("sid,ts,item,op\n", user_options());
    CHECK(e.reason() == "missing user column 'user' (header: sid,ts,item,op)");
    e = strict_error("sid,ts,op\n");
    CHECK(e.reason() == "missing item column 'item' (header: sid,ts,op)");
    e = strict_error("sid,ts,item\n");
    CHECK(e.reason() == "missing operation column 'op' (header: sid,ts,item)");
  }
  SECTION("wrong field count") {
    const auto e = strict_error(header + "s,1,a,v\ns,2,a\n");
    CHECK(e.line() == 3);
    CHECK(e.reason() == "expected 4 fields, found 3");
  }
  SECTION("non-numeric or empty timestamp") {
    auto e = strict_error(header + "s,1,a,v\ns,\"1,5\",a,v\n");
    CHECK(e.line() == 3);
    CHECK(e.reason() == "timestamp '1,5' is not a number (expected unix seconds)");
    CHECK(strict_error(header + "s,2018-11-07,a,v\n").reason() ==
          "timestamp '2018-11-07' is not a number (expected unix seconds)");
    CHECK(strict_error(header + "s,nan,a,v\n").reason() == "timestamp 'nan' is not a number (expected unix seconds)");
    CHECK(strict_error(header + "s,1e999,a,v\n").reason() == "timestamp '1e999' is out of range");
    CHECK(strict_error(header + "s,,a,v\n").reason() == "empty timestamp (column 'ts')");
  }
  SECTION("empty item, operation, session or user id") {
    auto e = strict_error(header + "s,1,a,v\n\ns,2,,v\n");
    CHECK(e.line() == 4);
    CHECK(e.reason() == "empty item (column 'item')");
    CHECK(strict_error(header + "s,1,a,\n").reason() == "empty operation (column 'op')");
    CHECK(strict_error(header + ",1,a,v\n").reason() == "empty session id (column 'sid')");
    CHECK(strict_error("user,ts,item,op\n,1,a,v\n", user_options()).reason() == "empty user id (column 'user')");
  }
  SECTION("empty file, header only") {
    auto e = strict_error("");
    CHECK(e.line() == 0);
    CHECK(e.reason() == "empty file");
    e = strict_error(header);
    CHECK(e.line() == 0);
    CHECK(e.reason() == "empty file (no data rows after the header)");
  }
  SECTION("unterminated quote") {
    const auto e = strict_error(header + "s,1,a,v\ns,2,\"a,v\ns,3,b,v\n");
    CHECK(e.line() == 3);
    CHECK(e.reason() == "unterminated quoted field (opened on line 3, column 3): no closing quote before the end of the file");
  }
}

TEST_CASE("delimited: lenient mode skips and reports bad rows", "[data][delimited]") {
  Options o = session_options();
  o.lenient = true;
  o.operations = {"v"};
  const std::string text =
      "sid,ts,item,op\n"
      "s,1541548901,a,v\n"    // 2 ok
      "s,x,b,v\n"             // 3 bad timestamp
      "s,1541548902,c,w\n"    // 4 unknown operation
      "s,1541548903,,v\n"     // 5 empty item
      "s,1541548904,d\n"      // 6 field count
      "t,1541548905,e,v\n";   // 7 ok
  embsr::LoadReport rep;
  const auto ds = load_text(text, o, &rep);
  REQUIRE(ds.num_sessions() == 2);
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"a"});
  CHECK(item_tokens(ds, 1) == std::vector<std::string>{"e"});
  CHECK(ds.item_vocab.tokens() == std::vector<std::string>{"a", "e"});  // skipped rows leave no trace
  CHECK(rep.skipped_records == 4);
  CHECK(rep.skipped_reasons == std::map<std::string, std::size_t>{
                                   {"bad timestamp", 1}, {"empty item", 1}, {"unknown operation", 1}, {"wrong field count", 1}});
  REQUIRE(rep.problems.size() == 4);
  CHECK(rep.problems[0] == "log.csv:3: timestamp 'x' is not a number (expected unix seconds)");
  CHECK(rep.problems[1] == "log.csv:4: unknown operation 'w' (known: v)");
  CHECK(rep.problems[2] == "log.csv:5: empty item (column 'item')");
  CHECK(rep.problems[3] == "log.csv:6: expected 4 fields, found 3");

  o.max_reported_problems = 0;
  const auto e = expect_error([&] { load_text("sid,ts,item,op\ns,x,a,v\n", o); });
  CHECK(e.line() == 0);
  CHECK(e.reason() == "no sessions loaded: all 1 rows were skipped");
}

TEST_CASE("delimited: the real trivago file reproduces SOURCE.md's item-action counts", "[shared-data][data][delimited]") {
  // Read as a generic log with the 6 item action types as a fixed vocabulary: rows of the other 4
  // types are skipped as unknown operations; references are taken as they are (including the 4
  // "unknown" ones the trivago loader drops), which gives SOURCE.md's numbers exactly.
  Options o;
  o.session_column = "session_id";
  o.time_column = "timestamp";
  o.item_column = "reference";
  o.operation_column = "action_type";
  o.operations = embsr::trivago_item_actions();
  o.lenient = true;
  embsr::LoadReport rep;
  const auto ds = embsr::load_delimited(embsr::test::trivago_csv(), o, &rep);
  CHECK(ds.num_events() == 87612);
  CHECK(ds.num_sessions() == 7513);
  CHECK(ds.item_vocab.size() == 13950);
  CHECK(rep.skipped_reasons == std::map<std::string, std::size_t>{{"unknown operation", 5303 + 3060 + 2948 + 1080}});
  CHECK(rep.problems.size() == 10);
  CHECK(rep.records_read == 100003);

  // Same sessions as the trivago loader, in the same order.
  const auto trivago = embsr::load_trivago(embsr::test::trivago_csv());
  REQUIRE(trivago.num_sessions() == ds.num_sessions());
  for (std::size_t s = 0; s < ds.num_sessions(); ++s) {
    REQUIRE(*trivago.session(s).key == *ds.session(s).key);
    REQUIRE(trivago.session(s).order_key == ds.session(s).order_key);
  }
}

}  // namespace test_delimited_loader
