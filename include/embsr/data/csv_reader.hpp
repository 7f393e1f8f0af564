#pragma once
// Streaming RFC-4180 CSV reader: configurable delimiter; a field that starts with '"' is quoted and
// may contain delimiters, doubled quotes ("") and newlines; CRLF or LF line ends. A quote inside an
// unquoted field is kept literally (as Python's csv does). Each record knows the physical line it
// starts on, so errors point at the right line even after quoted newlines. Field text is copied into
// one reused buffer: no allocation per record once the buffers have grown to the widest record.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <istream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/data/line_reader.hpp>
#include <embsr/data/load_options.hpp>

namespace embsr {

// A malformed record. fatal(): the rest of the input cannot be read reliably (an unterminated quote
// swallowed it); otherwise the reader has skipped to the end of the bad line and may go on.
class CsvSyntaxError : public DataError {
 public:
  CsvSyntaxError(std::string file, std::size_t line, std::string reason, bool fatal)
      : DataError(std::move(file), line, std::move(reason)), fatal_(fatal) {}
  bool fatal() const noexcept { return fatal_; }

 private:
  bool fatal_;
};

class CsvReader {
 public:
  CsvReader(std::istream& in, std::string name, char delimiter = ',', std::size_t chunk_size = std::size_t(1) << 16)
      : name_(std::move(name)), src_(in, name_, chunk_size), delim_(delimiter) {
    if (delimiter == '"' || delimiter == '\n' || delimiter == '\r')
      throw InvalidArgument("CsvReader: the delimiter cannot be a quote or a line break");
  }
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next record; false at end of input. Throws CsvSyntaxError on a malformed record.
  bool next() {
    data_.clear();
    ends_.clear();
    if (!src_.ensure()) return false;
    record_line_ = newlines_ + 1;
    bool any_quoted = false;
    for (;;) {
      End e;
      if (src_.peek() == '"') {
        any_quoted = true;
        quote_line_ = newlines_ + 1;
        src_.advance(1);
        e = quoted_field();
      } else {
        e = unquoted_field();
      }
      ends_.push_back(data_.size());
      if (e != End::Delimiter) {
        at_eof_ = e == End::Eof;
        break;
      }
    }
    blank_ = !any_quoted && ends_.size() == 1 && data_.empty();
    return true;
  }

  std::size_t size() const { return ends_.size(); }
  std::string_view operator[](std::size_t i) const {
    const std::size_t b = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(data_.data() + b, ends_[i] - b);
  }
  // The record was an empty line (one empty, unquoted field).
  bool blank() const { return blank_; }
  // 1-based physical line the current record starts on.
  std::size_t line() const { return record_line_; }
  // Physical lines consumed so far (a last line without newline counts).
  std::size_t lines_read() const { return newlines_ + (at_eof_ ? 1 : 0); }
  const std::string& name() const { return name_; }
  char delimiter() const { return delim_; }

 private:
  enum class End { Delimiter, Newline, Eof };

  End unquoted_field() {
    const std::size_t field_start = ends_.empty() ? 0 : ends_.back();
    for (;;) {
      if (!src_.ensure()) return End::Eof;
      const char* b = src_.data();
      const std::size_t n = src_.available();
      std::size_t i = 0;
      const char d = delim_;
      while (i < n && b[i] != d && b[i] != '\n') ++i;
      data_.append(b, i);
      if (i == n) {
        src_.advance(n);
        continue;
      }
      src_.advance(i + 1);
      if (b[i] == d) return End::Delimiter;
      ++newlines_;
      if (data_.size() > field_start && data_.back() == '\r') data_.pop_back();  // CRLF
      return End::Newline;
    }
  }

  End quoted_field() {
    for (;;) {
      if (!src_.ensure()) throw CsvSyntaxError(name_, quote_line_, unterminated_reason(), true);
      const char* b = src_.data();
      const std::size_t n = src_.available();
      const void* q = std::memchr(b, '"', n);
      const std::size_t len = q ? static_cast<std::size_t>(static_cast<const char*>(q) - b) : n;
      newlines_ += static_cast<std::size_t>(std::count(b, b + len, '\n'));
      data_.append(b, len);
      src_.advance(len);
      if (!q) continue;
      src_.advance(1);  // the quote
      const int c = src_.peek();
      if (c == '"') {  // doubled quote = one literal quote
        data_.push_back('"');
        src_.advance(1);
        continue;
      }
      if (c == -1) return End::Eof;
      if (c == delim_) {
        src_.advance(1);
        return End::Delimiter;
      }
      if (c == '\n') {
        src_.advance(1);
        ++newlines_;
        return End::Newline;
      }
      if (c == '\r') {
        src_.advance(1);
        const int after = src_.peek();
        if (after == '\n') {
          src_.advance(1);
          ++newlines_;
          return End::Newline;
        }
        if (after == -1) return End::Eof;
      }
      junk_after_quote(static_cast<char>(c));
    }
  }

  // The quote never closed, so everything after it was read as one field: the useful place to point
  // at is the opening quote (its physical line and column), not the end of the file or the line
  // where the damage was noticed.
  std::string unterminated_reason() const {
    std::string s = "unterminated quoted field (opened on line " + std::to_string(quote_line_) + ", column " +
                    std::to_string(ends_.size() + 1);
    if (quote_line_ != record_line_) s += ", in the record starting on line " + std::to_string(record_line_);
    return s + "): no closing quote before the end of the file";
  }

  // RFC 4180 allows only a delimiter or a line end after a closing quote. Skip the rest of the
  // physical line so that a lenient caller can go on with the next record, then report.
  [[noreturn]] void junk_after_quote(char c) {
    const std::size_t line = newlines_ + 1;
    const std::size_t column = ends_.size() + 1;
    for (;;) {
      if (!src_.ensure()) {
        at_eof_ = true;
        break;
      }
      const char* b = src_.data();
      const std::size_t n = src_.available();
      const void* nl = std::memchr(b, '\n', n);
      if (nl) {
        src_.advance(static_cast<std::size_t>(static_cast<const char*>(nl) - b) + 1);
        ++newlines_;
        at_eof_ = false;
        break;
      }
      src_.advance(n);
    }
    throw CsvSyntaxError(name_, line,
                         "unexpected character " + detail::quote_value(std::string_view(&c, 1)) +
                             " after the closing quote of column " + std::to_string(column) +
                             " (a quote inside a quoted field must be doubled)",
                         false);
  }

  std::string name_;
  detail::ChunkedInput src_;
  char delim_;
  std::string data_;               // all fields of the record, back to back
  std::vector<std::size_t> ends_;  // end offset of each field in data_
  std::size_t record_line_ = 0;
  std::size_t quote_line_ = 0;  // physical line of the opening quote of the current quoted field
  std::size_t newlines_ = 0;
  bool at_eof_ = false;
  bool blank_ = false;
};

namespace detail {

// The header as "a,b,c" for error messages about missing columns.
inline std::string header_list(const CsvReader& csv) {
  std::string s;
  for (std::size_t i = 0; i < csv.size(); ++i) {
    if (i) s += csv.delimiter();
    s += csv[i];
  }
  return s.size() > 300 ? s.substr(0, 300) + "..." : s;
}

// Index of the column called `name` in the header record `csv`; DataError on the header line
// naming the column and listing the header when it is missing or ambiguous.
inline std::size_t require_column(const CsvReader& csv, const std::string& name, const std::string& what) {
  std::size_t found = csv.size();
  for (std::size_t i = 0; i < csv.size(); ++i) {
    if (csv[i] != name) continue;
    if (found != csv.size())
      throw DataError(csv.name(), csv.line(),
                      "column '" + name + "' appears twice in the header (header: " + header_list(csv) + ")");
    found = i;
  }
  if (found == csv.size())
    throw DataError(csv.name(), csv.line(),
                    "missing " + what + " column '" + name + "' (header: " + header_list(csv) + ")");
  return found;
}

// Next non-blank data record of a loader. Counts blank lines and records in the sink's report. A
// malformed record is rejected through the sink (strict: the CsvSyntaxError propagates; lenient: the
// reader has skipped the bad line, count it and go on); an unterminated quote always propagates.
inline bool next_data_record(CsvReader& csv, ProblemSink& sink) {
  LoadReport& rep = sink.report();
  for (;;) {
    try {
      if (!csv.next()) return false;
    } catch (const CsvSyntaxError& e) {
      if (e.fatal() || !sink.lenient()) throw;
      ++rep.records_read;
      sink.reject(e, "malformed CSV");
      continue;
    }
    if (csv.blank()) {
      ++rep.blank_lines;
      continue;
    }
    ++rep.records_read;
    return true;
  }
}

// The header record: the first non-blank record. False if the input has none.
inline bool read_header(CsvReader& csv, LoadReport& rep) {
  while (csv.next()) {
    if (!csv.blank()) return true;
    ++rep.blank_lines;
  }
  return false;
}

// "expected 12 fields, found 11"
inline std::string field_count_reason(std::size_t expected, std::size_t found) {
  return "expected " + std::to_string(expected) + " fields, found " + std::to_string(found);
}

}  // namespace detail
}  // namespace embsr
