#pragma once
// What every log loader shares: the strict / lenient error policy, the report of what was read,
// skipped and dropped, and the helpers that implement "strict: throw DataError; lenient: count the
// reason, keep the message, skip the record".

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <embsr/core/error.hpp>

namespace embsr {

struct LoadOptions {
  // false: the first bad record throws DataError. true: bad records are skipped, counted by kind in
  // LoadReport::skipped_reasons and the first `max_reported_problems` messages are kept. Problems
  // that make the rest of a file unreadable (unterminated quote, missing column) always throw.
  bool lenient = false;
  std::size_t max_reported_problems = 10;
};

// What a load did. Every record of the input ends up in exactly one bucket: blank, skipped (bad,
// lenient mode), dropped (valid but not a micro-behavior of the model, e.g. a trivago filter
// action), a duplicate session, or kept as an event.
struct LoadReport {
  std::size_t files = 0;
  std::size_t lines_read = 0;    // physical lines, all files (a quoted newline starts a new line)
  std::size_t records_read = 0;  // data records: JD lines / CSV rows after the header, blanks excluded
  std::size_t blank_lines = 0;   // empty or whitespace-only records (ignored, never an error)
  std::size_t sessions = 0;      // sessions in the returned dataset
  std::size_t events = 0;        // micro-behaviors in the returned dataset

  std::size_t skipped_records = 0;                     // bad records skipped (lenient mode)
  std::map<std::string, std::size_t> skipped_reasons;  // by kind, e.g. "wrong field count"

  std::size_t dropped_rows = 0;                        // valid rows left out by design
  std::map<std::string, std::size_t> dropped_reasons;  // e.g. "action type 'x' is not an item action"

  std::size_t empty_sessions = 0;      // sessions with no event left after dropping rows: not added
  std::size_t duplicate_sessions = 0;  // identical sessions removed (JD)

  // Loaded events whose absolute timestamp (trivago, delimited logs; JD times are relative) lies
  // outside [1990-01-01, 2100-01-01) UTC, the range of detail::plausible_unix_time. Not an error:
  // the events are kept, and the first few messages go to `problems`.
  std::size_t implausible_timestamps = 0;

  std::vector<std::string> problems;  // first max_reported_problems messages, "file:line: reason"

  std::string summary() const {
    std::string s = "loaded " + std::to_string(sessions) + " sessions, " + std::to_string(events) +
                    " events from " + std::to_string(files) + (files == 1 ? " file" : " files") + " (" +
                    std::to_string(lines_read) + " lines, " + std::to_string(records_read) + " records";
    if (blank_lines) s += ", " + std::to_string(blank_lines) + " blank";
    s += ")\n";
    auto list = [&s](const char* what, std::size_t total, const std::map<std::string, std::size_t>& m) {
      if (total == 0) return;
      s += what + std::to_string(total) + "\n";
      for (const auto& [reason, n] : m) s += "  " + std::to_string(n) + "  " + reason + "\n";
    };
    list("dropped rows: ", dropped_rows, dropped_reasons);
    if (empty_sessions) s += "sessions left empty after dropping (not added): " + std::to_string(empty_sessions) + "\n";
    if (duplicate_sessions) s += "duplicate sessions removed: " + std::to_string(duplicate_sessions) + "\n";
    list("skipped bad records: ", skipped_records, skipped_reasons);
    if (implausible_timestamps)
      s += "implausible timestamps (before 1990 or after 2100 as unix seconds; loaded anyway): " +
           std::to_string(implausible_timestamps) + "\n";
    if (!problems.empty()) {
      s += "first problems:\n";
      for (const auto& p : problems) s += "  " + p + "\n";
    }
    return s;
  }
};

namespace detail {

// A value quoted for an error message: 'abc', cut to `max` characters, control bytes escaped, so
// that one garbage line of megabytes does not become the message.
inline std::string quote_value(std::string_view value, std::size_t max = 60) {
  std::string s = "'";
  const bool cut = value.size() > max;
  if (cut) value = value.substr(0, max);
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static const char* hex = "0123456789abcdef";
      s += "\\x";
      s += hex[u >> 4];
      s += hex[u & 15];
    } else {
      s += c;
    }
  }
  s += cut ? "...'" : "'";
  return s;
}

// The range of plausible absolute timestamps, in unix seconds: [1990-01-01, 2100-01-01) UTC. Logs of
// web shops and hotel searches cannot predate the web (the first web site is from 1991), and none is
// written in the next century. A value outside is almost always a unit mistake (milliseconds or
// microseconds read as seconds: OTTO's 1659304800025 ms is the year 54,500 as seconds), a relative
// time, or a garbage field, and it would silently bend the chronological split. Wide enough that
// no real log is flagged.
inline constexpr double kPlausibleTimeBegin = 631152000.0;  // 1990-01-01T00:00:00Z
inline constexpr double kPlausibleTimeEnd = 4102444800.0;   // 2100-01-01T00:00:00Z
inline bool plausible_unix_time(double seconds) {
  return seconds >= kPlausibleTimeBegin && seconds < kPlausibleTimeEnd;
}

// The strict / lenient decision, in one place for all loaders. Writes into the caller's report (reset
// first) or into a private one when the caller passed none.
class ProblemSink {
 public:
  ProblemSink(const LoadOptions& options, LoadReport* report)
      : options_(options), report_(report ? report : &own_) {
    *report_ = LoadReport{};
  }

  bool lenient() const { return options_.lenient; }
  LoadReport& report() { return *report_; }

  // A bad record. Strict: throws. Lenient: returns, and the caller skips the record. `kind` is the
  // short, fixed reason the report counts by; `reason` the full message naming the bad value.
  void reject(const std::string& file, std::size_t line, std::string_view kind, const std::string& reason) {
    if (!options_.lenient) throw DataError(file, line, reason);
    record(DataError(file, line, reason).what(), kind);
  }
  // Same for an error raised by a reader (only call it for errors the reader recovered from).
  void reject(const DataError& e, std::string_view kind) {
    if (!options_.lenient) throw e;
    record(e.what(), kind);
  }

  // An absolute timestamp outside [1990, 2100) (see plausible_unix_time): counted and kept, never
  // an error, in strict mode too. The first kMaxTimestampNotes messages go to `problems` (fewer, so
  // that a file full of them leaves room for the messages about skipped records), with a hint when
  // the value looks like milliseconds or microseconds.
  void implausible_timestamp(const std::string& file, std::size_t line, std::string_view text, double seconds) {
    constexpr std::size_t kMaxTimestampNotes = 3;
    if (++report_->implausible_timestamps > kMaxTimestampNotes) return;
    if (report_->problems.size() >= options_.max_reported_problems) return;
    std::string reason = "implausible timestamp " + quote_value(text) +
                         " (before 1990 or after 2100 as unix seconds); loaded anyway";
    if (plausible_unix_time(seconds / 1e3))
      reason += " (milliseconds?)";
    else if (plausible_unix_time(seconds / 1e6))
      reason += " (microseconds?)";
    report_->problems.emplace_back(DataError(file, line, reason).what());
  }

  // A valid row that is not a micro-behavior of the model: counted, never an error.
  void drop(const std::string& reason) {
    ++report_->dropped_rows;
    ++report_->dropped_reasons[reason];
  }

 private:
  void record(const char* message, std::string_view kind) {
    ++report_->skipped_records;
    ++report_->skipped_reasons[std::string(kind)];
    if (report_->problems.size() < options_.max_reported_problems) report_->problems.emplace_back(message);
  }

  LoadOptions options_;
  LoadReport own_;
  LoadReport* report_;
};

// Opens a file for a loader; failures are DataErrors naming the file (line 0 = the file as a whole).
inline std::ifstream open_input(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw DataError(path, 0, "cannot open file: is a directory");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw DataError(path, 0, std::string("cannot open file: ") + (err ? std::strerror(err) : "unknown error"));
  }
  return in;
}

}  // namespace detail
}  // namespace embsr
