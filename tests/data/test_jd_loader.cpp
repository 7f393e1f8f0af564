// JD micro-behavior loader: the real HUP samples (counts from SOURCE.md, recomputed with a Python
// one-off) and every format rule / bad-input case on hand-made input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <embsr/data/jd_loader.hpp>

#include "data_paths.hpp"
#include "dataset_helpers.hpp"

namespace test_jd_loader {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using namespace embsr::test;  // expect_error, item_tokens, op_names, ops_of, times_of, head

embsr::SessionDataset load_text(const std::string& text, const embsr::JdOptions& options = {},
                                embsr::LoadReport* report = nullptr) {
  std::istringstream in(text);
  return embsr::load_jd(in, "mem.jd", options, report);
}

// The strict error for `text`: checks the file name and returns line + reason.
embsr::DataError strict_error(const std::string& text) {
  auto e = expect_error([&] { load_text(text); });
  CHECK(e.file() == "mem.jd");
  return e;
}

std::array<std::size_t, 10> op_counts(const embsr::SessionDataset& ds) {
  std::array<std::size_t, 10> c{};
  for (const auto op : ds.ops()) ++c.at(static_cast<std::size_t>(op));
  return c;
}

const embsr::JdOptions kNoDedupe = [] {
  embsr::JdOptions o;
  o.dedupe_identical_sessions = false;
  return o;
}();

const embsr::JdOptions kLenient = [] {
  embsr::JdOptions o;
  o.lenient = true;
  return o;
}();

}  // namespace

TEST_CASE("jd: the operation vocabulary is the 10 behavior types in order", "[data][jd]") {
  const auto ds = load_text("5+1+7+0+0\n");
  CHECK(ds.op_vocab.tokens() ==
        std::vector<std::string>{"Home2Product", "ShopList2Product", "Sale2Product", "Cart2Product",
                                 "SearchList2Product", "Detail_comments", "Detail_specification", "Detail_bottom",
                                 "Cart", "Order"});
  CHECK(ds.op_vocab.tokens() == embsr::jd_operation_names());
}

TEST_CASE("jd: real single files match SOURCE.md", "[shared-data][data][jd]") {
  struct Expect {
    std::string path;
    std::size_t events, items, min_len, max_len;
    std::array<std::size_t, 10> ops;
  };
  const std::vector<Expect> files{
      {embsr::test::jd_appliances_hup(), 28108, 6509, 7, 146,
       {286, 1244, 196, 2147, 14136, 3210, 3249, 1678, 1836, 126}},
      {embsr::test::jd_appliances_micro(), 57332, 9134, 40, 236,
       {589, 3125, 251, 5081, 27580, 5823, 7830, 3270, 3600, 183}},
      {embsr::test::jd_computers_hup(), 28130, 9373, 15, 50, {500, 1478, 150, 1329, 16071, 1836, 4161, 961, 1594, 50}},
      {embsr::test::jd_computers_micro(), 43014, 9289, 40, 50,
       {402, 2372, 151, 2598, 23028, 2688, 7435, 1495, 2743, 102}},
  };
  for (const auto& f : files) {
    CAPTURE(f.path);
    embsr::LoadReport rep;
    const auto ds = embsr::load_jd({f.path}, {}, &rep);
    CHECK(ds.num_sessions() == 1000);
    CHECK(ds.num_events() == f.events);
    CHECK(ds.item_vocab.size() == static_cast<embsr::index_t>(f.items));
    CHECK(op_counts(ds) == f.ops);
    std::size_t lo = ds.num_events(), hi = 0;
    for (std::size_t s = 0; s < ds.num_sessions(); ++s) {
      lo = std::min(lo, ds.session(s).size());
      hi = std::max(hi, ds.session(s).size());
      REQUIRE(ds.session(s).order_key == static_cast<double>(s));
      REQUIRE(*ds.session(s).key == f.path + ":" + std::to_string(s + 1));
    }
    CHECK(lo == f.min_len);
    CHECK(hi == f.max_len);
    CHECK(rep.files == 1);
    CHECK(rep.lines_read == 1000);
    CHECK(rep.records_read == 1000);
    CHECK(rep.sessions == 1000);
    CHECK(rep.events == f.events);
    CHECK(rep.duplicate_sessions == 0);
    CHECK(rep.skipped_records == 0);
  }
}

TEST_CASE("jd: spot checks of first and last sessions", "[shared-data][data][jd]") {
  const auto path = embsr::test::jd_appliances_hup();
  const auto ds = embsr::load_jd({path});
  // Line 1 starts "3176424+5+753+14+9 298082+5+753+13+19 298082+6+753+11+19 1323943+5+753+11+5".
  const auto items = item_tokens(ds, 0);
  REQUIRE(items.size() >= 4);
  CHECK(std::vector<std::string>(items.begin(), items.begin() + 4) ==
        std::vector<std::string>{"3176424", "298082", "298082", "1323943"});
  const auto ops = ops_of(ds, 0);
  CHECK(std::vector<embsr::index_t>(ops.begin(), ops.begin() + 4) == std::vector<embsr::index_t>{4, 4, 5, 4});
  const auto times = times_of(ds, 0);
  CHECK(std::vector<double>(times.begin(), times.begin() + 4) == std::vector<double>{0, 14, 27, 38});
  CHECK(ds.item_vocab.token(0) == "3176424");
  CHECK(ds.item_vocab.token(1) == "298082");
  // Last line: 17 events, first "1566531593+5+878+12+72"; its last time is the sum of 16 intervals = 227.
  const auto last = ds.session(999);
  CHECK(last.size() == 17);
  CHECK(ds.item_vocab.token(last.items[0]) == "1566531593");
  CHECK(last.times.back() == 227.0);
  CHECK(*last.key == path + ":1000");

  const auto computers = embsr::load_jd({embsr::test::jd_computers_micro()});
  // "2024535+5+672+2+74 2024535+7+672+294+74 2024535+6+672+6861+74 ..."
  CHECK(item_tokens(computers, 0)[2] == "2024535");
  CHECK(head(ops_of(computers, 0), 3) ==
        std::vector<embsr::index_t>{4, 6, 5});
  CHECK(head(times_of(computers, 0), 4) ==
        std::vector<double>{0, 2, 296, 7157});
}

TEST_CASE("jd: both files of a category, identical lines removed (SOURCE.md counts)", "[shared-data][data][jd]") {
  struct Expect {
    std::string hup, micro;
    std::size_t sessions, events, items, duplicates, first_new_line;
  };
  const std::vector<Expect> cats{
      {embsr::test::jd_appliances_hup(), embsr::test::jd_appliances_micro(), 1866, 78040, 11444, 134, 135},
      {embsr::test::jd_computers_hup(), embsr::test::jd_computers_micro(), 1939, 68503, 14817, 61, 62},
  };
  for (const auto& c : cats) {
    CAPTURE(c.hup);
    embsr::LoadReport rep;
    const auto ds = embsr::load_jd({c.hup, c.micro}, {}, &rep);
    CHECK(ds.num_sessions() == c.sessions);
    CHECK(ds.num_events() == c.events);
    CHECK(ds.item_vocab.size() == static_cast<embsr::index_t>(c.items));
    CHECK(rep.duplicate_sessions == c.duplicates);
    CHECK(rep.files == 2);
    CHECK(rep.lines_read == 2000);
    CHECK(rep.records_read == 2000);
    CHECK(rep.sessions == c.sessions);
    CHECK(rep.events == c.events);
    // The first 1000 sessions come from the first file; the second file's first new line follows.
    CHECK(*ds.session(999).key == c.hup + ":1000");
    CHECK(*ds.session(1000).key == c.micro + ":" + std::to_string(c.first_new_line));
    for (std::size_t s = 0; s < ds.num_sessions(); ++s) REQUIRE(ds.session(s).order_key == static_cast<double>(s));
    CHECK(rep.summary().find("duplicate sessions removed: " + std::to_string(c.duplicates)) != std::string::npos);

    // Same in the other order, and without deduplication every line is a session.
    const auto reversed = embsr::load_jd({c.micro, c.hup});
    CHECK(reversed.num_sessions() == c.sessions);
    CHECK(reversed.num_events() == c.events);
    const auto all = embsr::load_jd({c.hup, c.micro}, kNoDedupe);
    CHECK(all.num_sessions() == 2000);
  }
}

TEST_CASE("jd: tokens, times, keys, blank lines and whitespace on hand-made input", "[data][jd]") {
  const std::string text =
      "10+1+7+5+3 20+2+7+0+3\t20+10+7+9+3\n"  // line 1
      "\n"                                    // line 2: blank
      "   \t \r\n"                            // line 3: whitespace only
      "  30+9+8+4+1   10+6+7+100+2  \r\n"     // line 4: CRLF, extra spaces
      "007+3+1+1+1";                          // line 5: no trailing newline, sku kept as written
  embsr::LoadReport rep;
  const auto ds = load_text(text, {}, &rep);
  REQUIRE(ds.num_sessions() == 3);
  CHECK(item_tokens(ds, 0) == std::vector<std::string>{"10", "20", "20"});
  CHECK(ops_of(ds, 0) == std::vector<embsr::index_t>{0, 1, 9});
  CHECK(times_of(ds, 0) == std::vector<double>{0, 5, 5});
  CHECK(item_tokens(ds, 1) == std::vector<std::string>{"30", "10"});
  CHECK(ops_of(ds, 1) == std::vector<embsr::index_t>{8, 5});
  CHECK(times_of(ds, 1) == std::vector<double>{0, 4});
  CHECK(item_tokens(ds, 2) == std::vector<std::string>{"007"});
  CHECK(ds.item_vocab.tokens() == std::vector<std::string>{"10", "20", "30", "007"});
  CHECK(*ds.session(0).key == "mem.jd:1");
  CHECK(*ds.session(1).key == "mem.jd:4");
  CHECK(*ds.session(2).key == "mem.jd:5");
  CHECK(ds.order_keys() == std::vector<double>{0, 1, 2});
  CHECK(rep.lines_read == 5);
  CHECK(rep.records_read == 3);
  CHECK(rep.blank_lines == 2);
  CHECK(rep.sessions == 3);
  CHECK(rep.events == 6);
  CHECK(rep.skipped_records == 0);
}

TEST_CASE("jd: deduplication compares token sequences, not bytes, and only exact matches", "[data][jd]") {
  const std::string text =
      "1+1+1+1+1 2+2+2+2+2\n"
      "1+1+1+1+1  2+2+2+2+2\r\n"  // same tokens, other whitespace: duplicate
      "1+1+1+1+1 2+2+2+2+3\n"     // other dwell time: a different line, kept
      "1+1+1+1+1\n"               // prefix: kept
      "1+1+1+1+1 2+2+2+2+2 \n";   // duplicate again
  embsr::LoadReport rep;
  const auto ds = load_text(text, {}, &rep);
  CHECK(ds.num_sessions() == 3);
  CHECK(rep.duplicate_sessions == 2);
  CHECK(*ds.session(1).key == "mem.jd:3");
  CHECK(*ds.session(2).key == "mem.jd:4");
  CHECK(ds.order_keys() == std::vector<double>{0, 1, 2});
  embsr::LoadReport rep2;
  CHECK(load_text(text, kNoDedupe, &rep2).num_sessions() == 5);
  CHECK(rep2.duplicate_sessions == 0);
}

TEST_CASE("jd: every bad input is a DataError naming file, line and problem", "[data][jd]") {
  const std::string good = "1+1+1+1+1 2+2+2+2+2\n";
  SECTION("wrong field count") {
    const auto e = strict_error(good + "1+5+7+1+1 2+5+7+1+1 123+5+7 4+5+7+1+1\n");
    CHECK(e.line() == 2);
    CHECK(e.reason() == "token 3 '123+5+7' has 3 fields, expected 5 (sku+behavior_type+category+time_interval+dwell_time)");
    CHECK(std::string(e.what()).rfind("mem.jd:2: token 3 '123+5+7' has 3 fields", 0) == 0);
    CHECK(strict_error("1+1+1+1+1+1\n").reason().rfind("token 1 '1+1+1+1+1+1' has 6 fields, expected 5", 0) == 0);
    CHECK(strict_error("12345\n").reason().rfind("token 1 '12345' has 1 fields, expected 5", 0) == 0);
  }
  SECTION("non-numeric field") {
    auto e = strict_error(good + good + "1+1+1+1+1 12a+5+1+2+3\n");
    CHECK(e.line() == 3);
    CHECK(e.reason() == "token 2 '12a+5+1+2+3': sku '12a' is not an unsigned integer");
    CHECK(strict_error("1+x+1+2+3\n").reason() == "token 1 '1+x+1+2+3': behavior_type 'x' is not an unsigned integer");
    CHECK(strict_error("1+1+1+-2+3\n").reason() ==
          "token 1 '1+1+1+-2+3': time_interval '-2' is not an unsigned integer");
    CHECK(strict_error("1+1+c7+2+3\n").reason() == "token 1 '1+1+c7+2+3': category 'c7' is not an unsigned integer");
    CHECK(strict_error("1+1+1+2+3.5\n").reason() ==
          "token 1 '1+1+1+2+3.5': dwell_time '3.5' is not an unsigned integer");
    CHECK(strict_error("1++1+2+3\n").reason() == "token 1 '1++1+2+3': behavior_type is empty");
    CHECK(strict_error("+1+1+2+3\n").reason() == "token 1 '+1+1+2+3': sku is empty");
  }
  SECTION("unknown operation") {
    auto e = strict_error(good + "\n1+11+7+1+1\n");
    CHECK(e.line() == 3);
    CHECK(e.reason() == "token 1 '1+11+7+1+1': unknown operation 11 (behavior_type must be 1..10)");
    CHECK(strict_error("1+0+7+1+1\n").reason() == "token 1 '1+0+7+1+1': unknown operation 0 (behavior_type must be 1..10)");
  }
  SECTION("numeric overflow") {
    auto e = strict_error("1+1+1+99999999999999999999+1\n");
    CHECK(e.line() == 1);
    CHECK(e.reason() ==
          "token 1 '1+1+1+99999999999999999999+1': time_interval '99999999999999999999' is out of range (max "
          "18446744073709551615)");
    CHECK(strict_error("1+18446744073709551616+1+1+1\n").reason().find("behavior_type '18446744073709551616' is out of range") !=
          std::string::npos);
    // 2^64-1 parses, and is then an unknown operation.
    CHECK(strict_error("1+18446744073709551615+1+1+1\n").reason().find("unknown operation 18446744073709551615") !=
          std::string::npos);
  }
  SECTION("empty file") {
    for (const std::string text : {"", "\n\n", "  \t\n \r\n"}) {
      CAPTURE(text);
      const auto e = strict_error(text);
      CHECK(e.line() == 0);
      CHECK(e.reason() == "empty file");
      CHECK(std::string(e.what()) == "mem.jd: empty file");
    }
  }
  SECTION("long garbage is cut in the message, control bytes escaped") {
    const auto e = strict_error(std::string(500, 'x') + "\x01\n");
    CHECK(e.reason() == "token 1 '" + std::string(60, 'x') + "...' has 1 fields, expected 5 "
                        "(sku+behavior_type+category+time_interval+dwell_time)");
    CHECK(strict_error("1\x01+1+1+1+1\n").reason() == "token 1 '1\\x01+1+1+1+1': sku '1\\x01' is not an unsigned integer");
  }
}

TEST_CASE("jd: errors in files name the file; a missing file is an error", "[data][jd]") {
  const std::string dir = embsr::test::scratch_dir();
  const std::string a = dir + "/a.jd", b = dir + "/b.jd", empty = dir + "/empty.jd";
  std::ofstream(a) << "1+1+1+1+1\n2+2+2+2+2\n";
  std::ofstream(b) << "3+3+3+3+3\n\n3+3+3+3\n";
  std::ofstream(empty) << "\n";
  auto e = expect_error([&] { embsr::load_jd({a, b}); });
  CHECK(e.file() == b);
  CHECK(e.line() == 3);
  CHECK(e.reason() == "token 1 '3+3+3+3' has 4 fields, expected 5 (sku+behavior_type+category+time_interval+dwell_time)");

  e = expect_error([&] { embsr::load_jd({a, empty}); });
  CHECK(e.file() == empty);
  CHECK(e.line() == 0);
  CHECK(e.reason() == "empty file");

  e = expect_error([&] { embsr::load_jd({a, dir + "/missing.jd"}); });
  CHECK(e.file() == dir + "/missing.jd");
  CHECK(e.line() == 0);
  CHECK(e.reason() == "cannot open file: No such file or directory");
  e = expect_error([&] { embsr::load_jd({dir}); });
  CHECK(e.reason() == "cannot open file: is a directory");
  CHECK_THROWS_AS(embsr::load_jd(std::vector<std::string>{}), embsr::InvalidArgument);

  // Lenient: the empty file is counted, the bad line skipped, keys name the right file and line.
  embsr::LoadReport rep;
  const auto ds = embsr::load_jd({a, empty, b}, kLenient, &rep);
  CHECK(ds.num_sessions() == 3);
  CHECK(*ds.session(2).key == b + ":1");
  CHECK(rep.files == 3);
  CHECK(rep.lines_read == 2 + 1 + 3);
  CHECK(rep.records_read == 2 + 0 + 2);
  CHECK(rep.blank_lines == 2);
  CHECK(rep.skipped_records == 2);
  CHECK(rep.skipped_reasons == std::map<std::string, std::size_t>{{"empty file", 1}, {"wrong field count", 1}});
  REQUIRE(rep.problems.size() == 2);
  CHECK(rep.problems[0] == empty + ": empty file");
  CHECK(rep.problems[1] == b + ":3: token 1 '3+3+3+3' has 4 fields, expected 5 "
                               "(sku+behavior_type+category+time_interval+dwell_time)");
}

TEST_CASE("jd: lenient mode skips bad lines, counts reasons and keeps the first messages", "[data][jd]") {
  const std::string text =
      "1+1+1+1+1 2+2+2+2+2\n"  // 1 ok
      "3+3+3+3\n"              // 2 wrong field count
      "4+11+1+1+1\n"           // 3 unknown operation
      "\n"                     // 4 blank
      "5+1+1+1+1 x+1+1+1+1\n"  // 5 non-numeric; its good first token must not reach the vocabulary
      "6+1+1+99999999999999999999+1\n"  // 6 overflow
      "7+2+1+1+1\n"            // 7 ok
      "8+1+1\n";               // 8 wrong field count
  embsr::JdOptions options = kLenient;
  options.max_reported_problems = 3;
  embsr::LoadReport rep;
  const auto ds = load_text(text, options, &rep);
  REQUIRE(ds.num_sessions() == 2);
  CHECK(*ds.session(0).key == "mem.jd:1");
  CHECK(*ds.session(1).key == "mem.jd:7");
  CHECK(ds.order_keys() == std::vector<double>{0, 1});
  CHECK(ds.item_vocab.tokens() == std::vector<std::string>{"1", "2", "7"});
  CHECK(rep.lines_read == 8);
  CHECK(rep.records_read == 7);
  CHECK(rep.blank_lines == 1);
  CHECK(rep.skipped_records == 5);
  CHECK(rep.skipped_reasons == std::map<std::string, std::size_t>{{"non-numeric field", 1},
                                                                   {"numeric overflow", 1},
                                                                   {"unknown operation", 1},
                                                                   {"wrong field count", 2}});
  REQUIRE(rep.problems.size() == 3);
  CHECK(rep.problems[0] ==
        "mem.jd:2: token 1 '3+3+3+3' has 4 fields, expected 5 (sku+behavior_type+category+time_interval+dwell_time)");
  CHECK(rep.problems[1] == "mem.jd:3: token 1 '4+11+1+1+1': unknown operation 11 (behavior_type must be 1..10)");
  CHECK(rep.problems[2] == "mem.jd:5: token 2 'x+1+1+1+1': sku 'x' is not an unsigned integer");
  const std::string summary = rep.summary();
  CHECK(summary.find("loaded 2 sessions, 3 events from 1 file (8 lines, 7 records, 1 blank)") == 0);
  CHECK(summary.find("skipped bad records: 5") != std::string::npos);
  CHECK(summary.find("2  wrong field count") != std::string::npos);
  CHECK(summary.find("mem.jd:6: token 1") == std::string::npos);  // only the first 3 messages

  // Every line bad: nothing to return, which is an error even in lenient mode.
  const auto e = expect_error([&] { load_text("1+1\n2+2\n", kLenient); });
  CHECK(e.file() == "mem.jd");
  CHECK(e.line() == 0);
  CHECK(e.reason() == "no sessions loaded (2 bad lines skipped)");
}

TEST_CASE("jd: the report passed in is reset by each load", "[data][jd]") {
  embsr::LoadReport rep;
  rep.skipped_records = 42;
  rep.problems.push_back("old");
  load_text("1+1+1+1+1\n", {}, &rep);
  CHECK(rep.skipped_records == 0);
  CHECK(rep.problems.empty());
  CHECK(rep.sessions == 1);
}

}  // namespace test_jd_loader
