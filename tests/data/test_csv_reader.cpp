// CsvReader / LineReader / field parsers: RFC-4180 quoting, line numbers, chunk boundaries.
#include <catch2/catch.hpp>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <embsr/data/csv_reader.hpp>
#include <embsr/data/line_reader.hpp>
#include <embsr/data/parse_fields.hpp>

namespace test_csv_reader {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

struct Record {
  std::size_t line;
  std::vector<std::string> fields;
  bool blank;
  bool operator==(const Record& o) const { return line == o.line && fields == o.fields && blank == o.blank; }
};

std::ostream& operator<<(std::ostream& os, const Record& r) {
  os << "{line " << r.line << (r.blank ? " blank" : "") << ":";
  for (const auto& f : r.fields) os << " [" << f << "]";
  return os << "}";
}

// Every chunk size must give the same records: boundaries may fall anywhere (inside a CRLF, a
// doubled quote, the BOM ...).
const std::vector<std::size_t> kChunkSizes{1, 2, 3, 4, 5, 7, 16, 64, 1 << 16};

std::vector<Record> read_all(const std::string& text, std::size_t chunk, char delim = ',',
                             std::size_t* lines_read = nullptr) {
  std::istringstream in(text);
  embsr::CsvReader csv(in, "mem.csv", delim, chunk);
  std::vector<Record> out;
  while (csv.next()) {
    Record r{csv.line(), {}, csv.blank()};
    for (std::size_t i = 0; i < csv.size(); ++i) r.fields.emplace_back(csv[i]);
    out.push_back(std::move(r));
  }
  if (lines_read) *lines_read = csv.lines_read();
  return out;
}

void check_all_chunks(const std::string& text, const std::vector<Record>& expected, std::size_t expected_lines,
                      char delim = ',') {
  for (const std::size_t chunk : kChunkSizes) {
    CAPTURE(chunk);
    std::size_t lines = 0;
    CHECK(read_all(text, chunk, delim, &lines) == expected);
    CHECK(lines == expected_lines);
  }
}

template <class F>
embsr::CsvSyntaxError csv_error(F&& f) {
  try {
    f();
  } catch (const embsr::CsvSyntaxError& e) {
    return e;
  }
  FAIL("expected embsr::CsvSyntaxError");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("csv: plain records, empty fields, custom delimiters", "[data][csv]") {
  check_all_chunks("a,b,c\n1,2,3\n", {{1, {"a", "b", "c"}, false}, {2, {"1", "2", "3"}, false}}, 2);
  check_all_chunks(",,\na,\n,b\n", {{1, {"", "", ""}, false}, {2, {"a", ""}, false}, {3, {"", "b"}, false}}, 3);
  check_all_chunks("x\ty z\t\"q\tr\"\n", {{1, {"x", "y z", "q\tr"}, false}}, 1, '\t');
  check_all_chunks("a;b,c\n", {{1, {"a", "b,c"}, false}}, 1, ';');
  check_all_chunks("", {}, 0);
}

TEST_CASE("csv: quoted delimiter, doubled quote, literal quote inside an unquoted field", "[data][csv]") {
  check_all_chunks("id,city\n1,\"Marseille, France\"\n", {{1, {"id", "city"}, false}, {2, {"1", "Marseille, France"}, false}},
                   2);
  check_all_chunks("\"say \"\"hi\"\"\",\"\"\"\",\"\"\n", {{1, {"say \"hi\"", "\"", ""}, false}}, 1);
  check_all_chunks("a\"b,c\"\n", {{1, {"a\"b", "c\""}, false}}, 1);
}

TEST_CASE("csv: embedded newlines keep the physical line numbers right", "[data][csv]") {
  const std::string text =
      "h1,h2\n"
      "1,\"two\nlines\"\n"
      "2,\"three\n\nlines\"\n"
      "3,x\n";
  check_all_chunks(text,
                   {{1, {"h1", "h2"}, false},
                    {2, {"1", "two\nlines"}, false},
                    {4, {"2", "three\n\nlines"}, false},
                    {7, {"3", "x"}, false}},
                   7);
}

TEST_CASE("csv: CRLF line ends, a CRLF inside quotes is data", "[data][csv]") {
  check_all_chunks("a,b\r\nc,\"d\"\r\n\"e\r\nf\",g\r\n",
                   {{1, {"a", "b"}, false}, {2, {"c", "d"}, false}, {3, {"e\r\nf", "g"}, false}}, 4);
  // A lone CR in an unquoted field is data too (only CR right before LF is a line end).
  check_all_chunks("a\rb,c\n", {{1, {"a\rb", "c"}, false}}, 1);
}

TEST_CASE("csv: last line without trailing newline", "[data][csv]") {
  check_all_chunks("a,b\nc,d", {{1, {"a", "b"}, false}, {2, {"c", "d"}, false}}, 2);
  check_all_chunks("a,b\n\"c\",\"d\"", {{1, {"a", "b"}, false}, {2, {"c", "d"}, false}}, 2);
  check_all_chunks("a,b\r\nc,", {{1, {"a", "b"}, false}, {2, {"c", ""}, false}}, 2);
  check_all_chunks("\"a\"\r", {{1, {"a"}, false}}, 1);
}

TEST_CASE("csv: blank lines are one-field blank records, a quoted empty field is not blank", "[data][csv]") {
  check_all_chunks("a\n\n\r\n\"\"\nb\n",
                   {{1, {"a"}, false}, {2, {""}, true}, {3, {""}, true}, {4, {""}, false}, {5, {"b"}, false}}, 5);
}

TEST_CASE("csv: a UTF-8 byte order mark is dropped", "[data][csv]") {
  check_all_chunks("\xEF\xBB\xBFid,x\n1,2\n", {{1, {"id", "x"}, false}, {2, {"1", "2"}, false}}, 2);
  check_all_chunks("\xEF\xBB\xBF", {}, 0);
  check_all_chunks("\xEF\xBB\xBF\n", {{1, {""}, true}}, 1);
}

TEST_CASE("csv: fields longer than the chunk", "[data][csv]") {
  const std::string big(1000, 'x');
  const std::string quoted_big = std::string(500, 'y') + "\"" + std::string(500, 'z');
  const std::string text = big + ",\"" + std::string(500, 'y') + "\"\"" + std::string(500, 'z') + "\"\nend\n";
  check_all_chunks(text, {{1, {big, quoted_big}, false}, {2, {"end"}, false}}, 2);
}

TEST_CASE("csv: unterminated quote is fatal and names the line and column where the quote opened", "[data][csv]") {
  for (const std::size_t chunk : kChunkSizes) {
    CAPTURE(chunk);
    std::istringstream in("a,b\nc,\"d\ne\nf\n");
    embsr::CsvReader csv(in, "bad.csv", ',', chunk);
    REQUIRE(csv.next());
    const auto e = csv_error([&] { csv.next(); });
    CHECK(e.file() == "bad.csv");
    CHECK(e.line() == 2);
    CHECK(e.fatal());
    CHECK(e.reason() == "unterminated quoted field (opened on line 2, column 2): no closing quote before the end of the file");
    CHECK(std::string(e.what()).rfind("bad.csv:2: unterminated quoted field (opened on line 2, column 2)", 0) == 0);
    CHECK_FALSE(csv.next());
  }
}

TEST_CASE("csv: an unterminated quote after a quoted newline points at the opening quote, not the record start",
          "[data][csv]") {
  // The record starts on line 2; its first field spans lines 2-3, and the third field opens a
  // quote on line 3 that never closes. The error must point at line 3 (where to look), and say
  // where the record began.
  for (const std::size_t chunk : kChunkSizes) {
    CAPTURE(chunk);
    std::istringstream in("h1,h2,h3\n\"multi\nline\",ok,\"open\nrest\nmore\n");
    embsr::CsvReader csv(in, "bad.csv", ',', chunk);
    REQUIRE(csv.next());
    const auto e = csv_error([&] { csv.next(); });
    CHECK(e.line() == 3);
    CHECK(e.fatal());
    CHECK(e.reason() == "unterminated quoted field (opened on line 3, column 3, in the record starting on line 2): "
                        "no closing quote before the end of the file");
  }
  // A quote opening on the very last line, with no newline after it.
  std::istringstream in("a\nb\n\"");
  embsr::CsvReader csv(in, "end.csv");
  REQUIRE(csv.next());
  REQUIRE(csv.next());
  const auto e = csv_error([&] { csv.next(); });
  CHECK(e.line() == 3);
  CHECK(e.reason().rfind("unterminated quoted field (opened on line 3, column 1)", 0) == 0);
}

TEST_CASE("csv: a character after a closing quote is an error on its physical line, the reader recovers",
          "[data][csv]") {
  for (const std::size_t chunk : kChunkSizes) {
    CAPTURE(chunk);
    std::istringstream in("h\n\"multi\nline\"x,more\nnext,row\n");
    embsr::CsvReader csv(in, "junk.csv", ',', chunk);
    REQUIRE(csv.next());
    const auto e = csv_error([&] { csv.next(); });
    CHECK(e.file() == "junk.csv");
    CHECK(e.line() == 3);  // the record starts on line 2, the stray 'x' is on line 3
    CHECK_FALSE(e.fatal());
    CHECK(e.reason() == "unexpected character 'x' after the closing quote of column 1 (a quote inside a quoted field "
                        "must be doubled)");
    REQUIRE(csv.next());
    CHECK(csv.line() == 4);
    CHECK(csv.size() == 2);
    CHECK(csv[0] == "next");
    CHECK_FALSE(csv.next());
    CHECK(csv.lines_read() == 4);
  }
  // The junk character is shown escaped when it is a control character.
  std::istringstream in("\"a\"\r\r\n");
  embsr::CsvReader csv(in, "cr.csv");
  const auto e = csv_error([&] { csv.next(); });
  CHECK(e.reason().find("unexpected character '\\x0d'") == 0);
}

TEST_CASE("csv: a quote or line break cannot be the delimiter", "[data][csv]") {
  std::istringstream in("a");
  CHECK_THROWS_AS(embsr::CsvReader(in, "x", '"'), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::CsvReader(in, "x", '\n'), embsr::InvalidArgument);
}

TEST_CASE("csv: the field buffers are reused across records", "[data][csv]") {
  std::string text = "a,b,c\n";
  for (int i = 0; i < 1000; ++i) text += "12345,\"x,y\",z\n";
  std::istringstream in(text);
  embsr::CsvReader csv(in, "mem.csv", ',', 256);
  std::size_t n = 0;
  const char* first_data = nullptr;
  while (csv.next()) {
    if (n == 1) first_data = csv[0].data();
    if (n >= 1) {
      REQUIRE(csv[0].data() == first_data);  // same storage, no reallocation in steady state
      REQUIRE(csv[1] == "x,y");
    }
    ++n;
  }
  CHECK(n == 1001);
}

TEST_CASE("line reader: lines, CRLF, missing final newline, long lines across chunks", "[data][csv]") {
  const std::string long_line(300, 'q');
  const std::string text = "one\r\n\ntwo  words\n" + long_line + "\nlast";
  for (const std::size_t chunk : kChunkSizes) {
    CAPTURE(chunk);
    std::istringstream in(text);
    embsr::LineReader reader(in, "mem", chunk);
    std::vector<std::string> lines;
    std::string_view line;
    while (reader.next(line)) lines.emplace_back(line);
    CHECK(lines == std::vector<std::string>{"one", "", "two  words", long_line, "last"});
    CHECK(reader.line_number() == 5);
  }
  std::istringstream empty("");
  embsr::LineReader reader(empty, "empty");
  std::string_view line;
  CHECK_FALSE(reader.next(line));
  CHECK(reader.line_number() == 0);
}

TEST_CASE("field parsers: integers, decimals", "[data][csv]") {
  using embsr::detail::ParseStatus;
  std::uint64_t u = 0;
  CHECK(embsr::detail::parse_integer("18446744073709551615", u) == ParseStatus::Ok);
  CHECK(u == 18446744073709551615ULL);
  CHECK(embsr::detail::parse_integer("18446744073709551616", u) == ParseStatus::OutOfRange);
  CHECK(embsr::detail::parse_integer("-1", u) == ParseStatus::Invalid);
  CHECK(embsr::detail::parse_integer("+1", u) == ParseStatus::Invalid);
  CHECK(embsr::detail::parse_integer("1 ", u) == ParseStatus::Invalid);
  CHECK(embsr::detail::parse_integer("", u) == ParseStatus::Empty);
  std::int64_t i = 0;
  CHECK(embsr::detail::parse_integer("-42", i) == ParseStatus::Ok);
  CHECK(i == -42);
  CHECK(embsr::detail::parse_integer("1.5", i) == ParseStatus::Invalid);

  double d = 0;
  CHECK(embsr::detail::parse_decimal("1541548939", d) == ParseStatus::Ok);
  CHECK(d == 1541548939.0);
  CHECK(embsr::detail::parse_decimal("1541548939.25", d) == ParseStatus::Ok);
  CHECK(d == 1541548939.25);
  CHECK(embsr::detail::parse_decimal("-2.5e1", d) == ParseStatus::Ok);
  CHECK(d == -25.0);
  CHECK(embsr::detail::parse_decimal("inf", d) == ParseStatus::Invalid);
  CHECK(embsr::detail::parse_decimal("nan", d) == ParseStatus::Invalid);
  CHECK(embsr::detail::parse_decimal("12abc", d) == ParseStatus::Invalid);
  CHECK(embsr::detail::parse_decimal("1e999", d) == ParseStatus::OutOfRange);
  CHECK(embsr::detail::parse_decimal("", d) == ParseStatus::Empty);
  CHECK(embsr::detail::all_digits("0123"));
  CHECK_FALSE(embsr::detail::all_digits(""));
  CHECK_FALSE(embsr::detail::all_digits("12a"));
}

TEST_CASE("field parsers: ISO-8601 date-times as UTC", "[data][csv]") {
  using embsr::detail::ParseStatus;
  using embsr::detail::parse_iso8601;
  double t = -1;
  // Reference values from Python's calendar.timegm / datetime.
  CHECK(parse_iso8601("1970-01-01T00:00:00Z", t) == ParseStatus::Ok);
  CHECK(t == 0.0);
  CHECK(parse_iso8601("2018-11-07 00:02:19", t) == ParseStatus::Ok);
  CHECK(t == 1541548939.0);
  CHECK(parse_iso8601("2018-11-07T00:02:19.5Z", t) == ParseStatus::Ok);
  CHECK(t == 1541548939.5);
  CHECK(parse_iso8601("2000-02-29T12:00:00", t) == ParseStatus::Ok);
  CHECK(t == 951825600.0);
  CHECK(parse_iso8601("1969-12-31T23:59:59Z", t) == ParseStatus::Ok);
  CHECK(t == -1.0);
  CHECK(parse_iso8601("2100-03-01T00:00:00Z", t) == ParseStatus::Ok);
  CHECK(t == 4107542400.0);
  CHECK(parse_iso8601("2018-11-07T02:02:19+02:00", t) == ParseStatus::Ok);
  CHECK(t == 1541548939.0);
  CHECK(parse_iso8601("2018-11-06T23:02:19-01:00", t) == ParseStatus::Ok);
  CHECK(t == 1541548939.0);

  CHECK(parse_iso8601("", t) == ParseStatus::Empty);
  CHECK(parse_iso8601("2018-11-07", t) == ParseStatus::Invalid);
  CHECK(parse_iso8601("2018-11-07T00:02", t) == ParseStatus::Invalid);
  CHECK(parse_iso8601("2018/11/07 00:02:19", t) == ParseStatus::Invalid);
  CHECK(parse_iso8601("2018-11-07T00:02:19.", t) == ParseStatus::Invalid);
  CHECK(parse_iso8601("2018-11-07T00:02:19ZZ", t) == ParseStatus::Invalid);
  CHECK(parse_iso8601("2018-11-07T00:02:19+0200", t) == ParseStatus::Invalid);
  CHECK(parse_iso8601("1541548939", t) == ParseStatus::Invalid);
  CHECK(parse_iso8601("2019-02-29T00:00:00", t) == ParseStatus::OutOfRange);
  CHECK(parse_iso8601("1900-02-29T00:00:00", t) == ParseStatus::OutOfRange);
  CHECK(parse_iso8601("2018-13-01T00:00:00", t) == ParseStatus::OutOfRange);
  CHECK(parse_iso8601("2018-00-01T00:00:00", t) == ParseStatus::OutOfRange);
  CHECK(parse_iso8601("2018-04-31T00:00:00", t) == ParseStatus::OutOfRange);
  CHECK(parse_iso8601("2018-01-01T24:00:00", t) == ParseStatus::OutOfRange);
  CHECK(parse_iso8601("2018-01-01T00:60:00", t) == ParseStatus::OutOfRange);
  CHECK(parse_iso8601("2018-01-01T00:00:60", t) == ParseStatus::OutOfRange);
}

}  // namespace test_csv_reader
