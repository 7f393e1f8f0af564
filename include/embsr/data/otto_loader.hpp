#pragma once
// Loader for the OTTO RecSys Challenge 2022 session logs (train.jsonl / test.jsonl): one JSON object
// per line, {"session": 12, "events": [{"aid": 1517085, "ts": 1659304800025, "type": "clicks"}, ...]}.
//
//  - Operations: clicks, carts, orders = ids 0, 1, 2 (otto_operation_names()), always all three.
//  - Items: the aid's decimal digits as written (a JSON integer has no leading zeros, so the text is
//    canonical: 12 and 012 cannot both occur), ids in order of first appearance.
//  - Times: ts is unix milliseconds; events get ts / 1000 seconds. Those outside [1990, 2100) are kept
//    and counted in LoadReport::implausible_timestamps, as in the other loaders.
//  - One line = one session = one record, streamed straight into the dataset (the format keeps a
//    session on one line, so there is nothing to group). order_key = the session's last event time,
//    key = the session number as written. Sessions are added in file order, events in file order;
//    the format promises time order, and a session whose ts go backwards is sorted stably by time
//    (ties keep file order; item ids still follow the order of appearance in the file), as
//    load_trivago sorts its rows: one swapped pair is a fact about the clock, not a reason to lose
//    a whole session, and the models need time order.
//  - A session number on a second line is a duplicate session id: an error (strict), or the later
//    line is skipped (lenient). The format promises one line per session; merging the two lines
//    would guess at what the writer meant.
//  - A session with "events": [] is counted in LoadReport::empty_sessions and not added.
//  - Every non-blank line ends up in exactly one bucket: a kept session, an empty session, or a
//    skipped line (lenient): sessions + empty_sessions + skipped_records == records_read. All three
//    event types are kept, so nothing is ever dropped (dropped_rows == 0).
//
// The parser is hand-written for exactly this schema (no JSON library: this is the data path of a
// 200M-event data set) and is strict about JSON itself (RFC 8259): whitespace wherever JSON allows it,
// keys in any order, strings with every escape (\uXXXX with surrogate pairs; a bad escape, a lone
// surrogate, a raw control character or invalid UTF-8 is an error), no leading zeros, nothing after
// the object. The schema's numbers (session, aid, ts) must be non-negative integers written as
// digits (no sign, fraction or exponent) up to 2^64-1; a repeated key in the session object or in
// an event (known or not, compared after unescaping) is an error. Unknown keys, at the top or in an
// event, are skipped with their values (so that a file with an extra field still loads); a skipped
// value is checked to be valid JSON (its own objects' keys are not checked for repeats),
// iteratively and at most kOttoMaxNesting levels deep, so a hostile line of a million '[' neither
// recurses nor passes.
//
// A bad line is a DataError "file:line: reason" (strict) or skipped and counted by kind (lenient);
// the reason names the event, the field and quotes the value, e.g. "event 3: aid '-5' is negative
// (expected a non-negative integer)". detail::OttoLineParser holds the rules of one line.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/line_reader.hpp>
#include <embsr/data/load_options.hpp>
#include <embsr/data/parse_fields.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/vocabulary.hpp>

namespace embsr {

// The event types = the operation vocabulary, ids 0, 1, 2.
inline const std::vector<std::string>& otto_operation_names() {
  static const std::vector<std::string> names{"clicks", "carts", "orders"};
  return names;
}

namespace detail {

// Deepest nesting of an unknown value that is skipped (the schema itself needs 3 levels).
inline constexpr int kOttoMaxNesting = 64;

// One event of a parsed line. Views point into the line (valid until the next line is read).
struct OttoEvent {
  std::string_view aid;      // decimal digits as written
  std::string_view ts_text;  // decimal digits as written (for messages)
  std::uint64_t ts = 0;      // unix milliseconds
  index_t op = 0;            // index in otto_operation_names()
};

// Why a line was refused: `kind` is the short, fixed reason LoadReport::skipped_reasons counts by
// ("invalid JSON", "JSON nested too deep", "duplicate key", "missing field", "wrong field type",
// "not a non-negative integer", "numeric overflow", "unknown event type"), `reason` the message.
// kind == nullptr: the line is good.
struct OttoProblem {
  const char* kind = nullptr;
  std::string reason;
  explicit operator bool() const noexcept { return kind != nullptr; }
};

// The rules of one OTTO line. Reused across lines (its buffers keep their capacity); allocation-free
// on a good line whose strings have no escapes, i.e. every line of the real data.
class OttoLineParser {
 public:
  std::uint64_t session = 0;
  std::string_view session_text;  // the session number as written
  std::vector<OttoEvent> events;  // in file order

  OttoProblem parse(std::string_view line) {
    line_ = line;
    p_ = 0;
    events.clear();
    session = 0;
    session_text = {};
    problem_ = {};
    if (!parse_session_object()) return std::move(problem_);
    return {};
  }

 private:
  enum class Field { Session, Events, Aid, Ts, Type, Unknown };

  // ---- errors ------------------------------------------------------------------------------------
  bool fail(const char* kind, std::string reason) {
    problem_.kind = kind;
    problem_.reason = std::move(reason);
    return false;
  }
  std::string column() const { return "column " + std::to_string(p_ + 1); }
  // What is at the current position, for a message.
  std::string here() const {
    return p_ >= line_.size() ? std::string("the end of the line") : quote_value(line_.substr(p_), 20);
  }
  bool syntax(const std::string& expected) {
    if (p_ >= line_.size())
      return fail("invalid JSON",
                  "invalid JSON: the line ends at " + column() + " where " + expected + " should follow (truncated?)");
    return fail("invalid JSON", "invalid JSON at " + column() + ": expected " + expected + ", got " + here());
  }
  static std::string event_prefix(std::size_t event_no) {
    return event_no == 0 ? std::string() : "event " + std::to_string(event_no) + ": ";
  }

  // ---- lexing ------------------------------------------------------------------------------------
  void skip_space() {
    while (p_ < line_.size()) {
      const char c = line_[p_];
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return;
      ++p_;
    }
  }
  bool at(char c) const { return p_ < line_.size() && line_[p_] == c; }
  bool consume(char c) {
    skip_space();
    if (!at(c)) return false;
    ++p_;
    return true;
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // Length of the valid UTF-8 sequence (2..4 bytes) starting at p_ (a byte >= 0x80), 0 if invalid:
  // overlong forms, surrogates and code points above U+10FFFF are invalid (RFC 3629).
  std::size_t utf8_length() const {
    const auto byte = [&](std::size_t i) {
      return p_ + i < line_.size() ? static_cast<unsigned char>(line_[p_ + i]) : 0u;
    };
    const unsigned b0 = byte(0);
    const auto cont = [&](std::size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
      const unsigned b = byte(i);
      return b >= lo && b <= hi;
    };
    if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
    if (b0 == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
    if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) return cont(1) && cont(2) ? 3 : 0;
    if (b0 == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
    if (b0 == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    if (b0 >= 0xF1 && b0 <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
    if (b0 == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
    return 0;
  }
  static void append_utf8(std::string& s, std::uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  // Four hex digits after "\u" at p_ (p_ at the 'u').
  bool unicode_escape(std::uint32_t& cp) {
    cp = 0;
    for (std::size_t i = 1; i <= 4; ++i) {
      const int h = p_ + i < line_.size() ? hex_value(line_[p_ + i]) : -1;
      if (h < 0) {
        const std::size_t start = p_ - 1;
        p_ = start;
        const std::string_view escape = line_.substr(start, std::min<std::size_t>(6, line_.size() - start));
        return fail("invalid JSON", "invalid JSON at " + column() + ": bad escape " + quote_value(escape) +
                                        " (\\u needs four hex digits)");
      }
      cp = cp * 16 + static_cast<std::uint32_t>(h);
    }
    p_ += 5;
    return true;
  }

  // A JSON string at p_ (the opening quote). `out` is its decoded value: a view into the line when
  // it has no escapes, else into scratch_ (valid until the next string is parsed).
  bool parse_string(std::string_view& out) {
    ++p_;  // the opening quote
    const std::size_t start = p_;
    bool escaped = false;
    while (p_ < line_.size()) {
      const auto c = static_cast<unsigned char>(line_[p_]);
      if (c == '"') {
        if (!escaped) out = line_.substr(start, p_ - start);
        else out = scratch_;
        ++p_;
        return true;
      }
      if (c < 0x20)
        return fail("invalid JSON", "invalid JSON at " + column() + ": raw control character " +
                                        quote_value(line_.substr(p_, 1)) + " in a string (must be escaped)");
      if (c == '\\') {
        if (!escaped) scratch_.assign(line_.data() + start, p_ - start);
        escaped = true;
        ++p_;
        if (p_ >= line_.size()) break;
        const char e = line_[p_];
        char decoded = 0;
        switch (e) {
          case '"': decoded = '"'; break;
          case '\\': decoded = '\\'; break;
          case '/': decoded = '/'; break;
          case 'b': decoded = '\b'; break;
          case 'f': decoded = '\f'; break;
          case 'n': decoded = '\n'; break;
          case 'r': decoded = '\r'; break;
          case 't': decoded = '\t'; break;
          case 'u': {
            std::uint32_t cp = 0;
            if (!unicode_escape(cp)) return false;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
              p_ -= 6;
              return fail("invalid JSON", "invalid JSON at " + column() + ": lone low surrogate " +
                                              quote_value(line_.substr(p_, 6)) + " in a string");
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              const std::size_t high_at = p_ - 6;
              std::uint32_t low = 0;
              const bool pair = p_ + 1 < line_.size() && line_[p_] == '\\' && line_[p_ + 1] == 'u';
              if (pair) {
                ++p_;
                if (!unicode_escape(low)) return false;
              }
              if (!pair || low < 0xDC00 || low > 0xDFFF) {
                p_ = high_at;
                return fail("invalid JSON", "invalid JSON at " + column() + ": high surrogate " +
                                                quote_value(line_.substr(p_, 6)) +
                                                " not followed by a low surrogate \\uDC00-\\uDFFF");
              }
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            append_utf8(scratch_, cp);
            continue;
          }
          default:
            --p_;
            return fail("invalid JSON", "invalid JSON at " + column() + ": bad escape " +
                                            quote_value(line_.substr(p_, 2)) + " in a string");
        }
        scratch_ += decoded;
        ++p_;
        continue;
      }
      std::size_t n = 1;
      if (c >= 0x80) {
        n = utf8_length();
        if (n == 0)
          return fail("invalid JSON", "invalid JSON at " + column() + ": invalid UTF-8 byte " +
                                          quote_value(line_.substr(p_, 1)) + " in a string");
      }
      if (escaped) scratch_.append(line_.data() + p_, n);
      p_ += n;
    }
    return fail("invalid JSON", "invalid JSON: the line ends inside a string that starts at column " +
                                    std::to_string(start) + " (truncated?)");
  }

  // A JSON number at p_ (a '-' or a digit), by the grammar -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?.
  // `integer` tells whether it is a plain run of digits (no sign, fraction or exponent).
  bool scan_number(std::string_view& text, bool& integer) {
    const std::size_t start = p_;
    const auto digit = [&] { return p_ < line_.size() && line_[p_] >= '0' && line_[p_] <= '9'; };
    const auto digits = [&](const char* where) {
      if (!digit()) return syntax(std::string("a digit ") + where);
      while (digit()) ++p_;
      return true;
    };
    integer = true;
    if (at('-')) {
      integer = false;
      ++p_;
    }
    if (at('0')) {
      ++p_;
      if (digit()) {
        p_ = start;
        return fail("invalid JSON", "invalid JSON at " + column() + ": number " +
                                        quote_value(line_.substr(p_, 24), 20) + " has a leading zero");
      }
    } else if (!digits("in a number")) {
      return false;
    }
    if (at('.')) {
      integer = false;
      ++p_;
      if (!digits("after the decimal point")) return false;
    }
    if (at('e') || at('E')) {
      integer = false;
      ++p_;
      if (at('+') || at('-')) ++p_;
      if (!digits("in the exponent")) return false;
    }
    text = line_.substr(start, p_ - start);
    return true;
  }

  bool literal(std::string_view word) {
    if (line_.substr(p_, word.size()) != word) return syntax("a JSON value");
    p_ += word.size();
    return true;
  }

  // A key and its colon; p_ ends after the colon (and the space after it).
  bool parse_key(std::string_view& key) {
    skip_space();
    if (!at('"')) return syntax("a key in double quotes");
    if (!parse_string(key)) return false;
    if (!consume(':')) return syntax("':' after the key");
    skip_space();
    return true;
  }

  // Skips any JSON value at p_ (after whitespace), checking its syntax: iterative, at most
  // kOttoMaxNesting levels deep. `depth` is the nesting of the object that holds it.
  bool skip_value(int depth) {
    char closers[kOttoMaxNesting];  // the closing bracket of each open container
    int open = 0;
    std::string_view ignored;
    for (;;) {
      skip_space();  // a value
      if (p_ >= line_.size()) return syntax("a JSON value");
      const char c = line_[p_];
      if (c == '{' || c == '[') {
        if (depth + open >= kOttoMaxNesting)
          return fail("JSON nested too deep", "JSON nested deeper than " + std::to_string(kOttoMaxNesting) +
                                                  " levels at " + column());
        closers[open++] = c == '{' ? '}' : ']';
        ++p_;
        skip_space();
        if (at(closers[open - 1])) {
          ++p_;
          --open;
        } else if (c == '{') {
          if (!parse_key(ignored)) return false;
          continue;
        } else {
          continue;
        }
      } else if (c == '"') {
        if (!parse_string(ignored)) return false;
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        bool integer = false;
        if (!scan_number(ignored, integer)) return false;
      } else if (c == 't') {
        if (!literal("true")) return false;
      } else if (c == 'f') {
        if (!literal("false")) return false;
      } else if (c == 'n') {
        if (!literal("null")) return false;
      } else {
        return syntax("a JSON value");
      }
      // After a value: close containers until one continues with ','.
      for (;;) {
        if (open == 0) return true;
        skip_space();
        if (at(',')) {
          ++p_;
          if (closers[open - 1] == '}' && !parse_key(ignored)) return false;
          break;
        }
        if (at(closers[open - 1])) {
          ++p_;
          --open;
          continue;
        }
        return syntax(std::string("',' or '") + closers[open - 1] + "'");
      }
    }
  }

  // The raw text of the value at p_ (for a message that shows a value of the wrong type).
  bool raw_value(std::string_view& raw, int depth) {
    skip_space();
    const std::size_t start = p_;
    if (!skip_value(depth)) return false;
    raw = line_.substr(start, p_ - start);
    return true;
  }

  // A schema number: digits only, at most 2^64-1.
  bool parse_count(const char* name, std::size_t event_no, int depth, std::uint64_t& value, std::string_view& text) {
    skip_space();
    const auto where = [&] { return event_prefix(event_no) + name + " "; };
    if (at('-') || (p_ < line_.size() && line_[p_] >= '0' && line_[p_] <= '9')) {
      bool integer = false;
      if (!scan_number(text, integer)) return false;
      if (!integer) {
        const bool negative = text[0] == '-';
        return fail("not a non-negative integer",
                    where() + quote_value(text) + (negative ? " is negative" : " is not an integer") +
                        " (expected a non-negative integer)");
      }
      // Digits only here (scan_number said so): Ok or OutOfRange.
      if (parse_integer(text, value) == ParseStatus::OutOfRange)
        return fail("numeric overflow", where() + quote_value(text) + " is out of range (max 18446744073709551615)");
      return true;
    }
    std::string_view raw;
    if (!raw_value(raw, depth)) return false;
    return fail("wrong field type", where() + "must be a non-negative integer, got " + quote_value(raw));
  }

  static Field field_of(std::string_view key, bool event) {
    if (event) {
      if (key == "aid") return Field::Aid;
      if (key == "ts") return Field::Ts;
      if (key == "type") return Field::Type;
    } else {
      if (key == "session") return Field::Session;
      if (key == "events") return Field::Events;
    }
    return Field::Unknown;
  }

  // Unknown keys of one object, to refuse a repeated one. Rare: no cost on schema-only lines.
  bool note_unknown_key(std::string_view key, std::size_t event_no, std::size_t key_column) {
    for (const auto& k : unknown_keys_)
      if (k == key) {
        p_ = key_column;
        return fail("duplicate key", event_prefix(event_no) + "duplicate key " + quote_value(key) + " at " + column());
      }
    unknown_keys_.emplace_back(key);
    return true;
  }

  // The members of an object whose '{' was just consumed, each handled by member(field, key_column).
  template <class Member>
  bool parse_members(bool event, std::size_t event_no, Member&& member) {
    unknown_keys_.clear();
    skip_space();
    if (at('}')) {
      ++p_;
      return true;
    }
    for (;;) {
      skip_space();
      const std::size_t key_column = p_;
      std::string_view key;
      if (!parse_key(key)) return false;
      const Field f = field_of(key, event);
      if (f == Field::Unknown && !note_unknown_key(key, event_no, key_column)) return false;
      if (!member(f, key_column)) return false;
      skip_space();
      if (at(',')) {
        ++p_;
        continue;
      }
      if (at('}')) {
        ++p_;
        return true;
      }
      return syntax(event ? "',' or '}' after a field of the event" : "',' or '}' after a field of the session");
    }
  }

  bool duplicate(const char* name, std::size_t event_no, std::size_t key_column) {
    p_ = key_column;
    return fail("duplicate key", event_prefix(event_no) + "duplicate key '" + name + "' at " + column());
  }

  // A run of 1..19 digits without a leading zero (never overflows), for the fast path.
  static bool fast_digits(const char*& q, const char* end, std::string_view& text, std::uint64_t& value) {
    const char* start = q;
    std::uint64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - start < 19) v = v * 10 + static_cast<std::uint64_t>(*q++ - '0');
    const auto n = static_cast<std::size_t>(q - start);
    if (n == 0 || (n > 1 && *start == '0') || (q < end && *q >= '0' && *q <= '9')) return false;
    text = std::string_view(start, n);
    value = v;
    return true;
  }

  // The layout of every event of the real data, {"aid":N,"ts":N,"type":"clicks"}, read without the
  // general machinery. Accepts only what the general path accepts with the same result; anything
  // else (spaces, another key order, escapes, extra keys, any error) returns false and the general
  // path reads the event from the same position.
  bool fast_event(OttoEvent& e) {
    const char* q = line_.data() + p_;
    const char* end = line_.data() + line_.size();
    const auto lit = [&](std::string_view text) {
      if (static_cast<std::size_t>(end - q) < text.size() || std::memcmp(q, text.data(), text.size()) != 0)
        return false;
      q += text.size();
      return true;
    };
    std::uint64_t aid = 0;
    if (!lit("{\"aid\":") || !fast_digits(q, end, e.aid, aid) || !lit(",\"ts\":") ||
        !fast_digits(q, end, e.ts_text, e.ts) || !lit(",\"type\":\""))
      return false;
    if (lit("clicks\"}")) e.op = 0;
    else if (lit("carts\"}")) e.op = 1;
    else if (lit("orders\"}")) e.op = 2;
    else return false;
    p_ = static_cast<std::size_t>(q - line_.data());
    return true;
  }

  bool parse_event(std::size_t event_no) {
    skip_space();
    {
      OttoEvent e;
      if (fast_event(e)) {
        events.push_back(e);
        return true;
      }
    }
    if (!at('{')) {
      std::string_view raw;
      if (!raw_value(raw, 2)) return false;
      return fail("wrong field type",
                  "event " + std::to_string(event_no) + " must be an object, got " + quote_value(raw));
    }
    ++p_;
    OttoEvent e;
    bool have_aid = false, have_ts = false, have_type = false;
    const bool ok = parse_members(true, event_no, [&](Field f, std::size_t key_column) {
      std::uint64_t ignored = 0;
      switch (f) {
        case Field::Aid:
          if (have_aid) return duplicate("aid", event_no, key_column);
          have_aid = true;
          return parse_count("aid", event_no, 3, ignored, e.aid);
        case Field::Ts:
          if (have_ts) return duplicate("ts", event_no, key_column);
          have_ts = true;
          return parse_count("ts", event_no, 3, e.ts, e.ts_text);
        case Field::Type: {
          if (have_type) return duplicate("type", event_no, key_column);
          have_type = true;
          skip_space();
          if (!at('"')) {
            std::string_view raw;
            if (!raw_value(raw, 3)) return false;
            return fail("wrong field type", event_prefix(event_no) + "type must be a string, got " + quote_value(raw));
          }
          std::string_view type;
          if (!parse_string(type)) return false;
          if (type == "clicks") e.op = 0;
          else if (type == "carts") e.op = 1;
          else if (type == "orders") e.op = 2;
          else
            return fail("unknown event type", event_prefix(event_no) + "unknown event type " + quote_value(type) +
                                                  " (expected clicks, carts or orders)");
          return true;
        }
        default:
          return skip_value(3);
      }
    });
    if (!ok) return false;
    const char* missing = !have_aid ? "aid" : !have_ts ? "ts" : !have_type ? "type" : nullptr;
    if (missing) return fail("missing field", event_prefix(event_no) + "missing \"" + missing + "\"");
    events.push_back(e);
    return true;
  }

  bool parse_events() {
    skip_space();
    if (!at('[')) {
      std::string_view raw;
      if (!raw_value(raw, 1)) return false;
      return fail("wrong field type", "events must be an array, got " + quote_value(raw));
    }
    ++p_;
    skip_space();
    if (at(']')) {
      ++p_;
      return true;
    }
    for (;;) {
      if (!parse_event(events.size() + 1)) return false;
      skip_space();
      if (at(',')) {
        ++p_;
        continue;
      }
      if (at(']')) {
        ++p_;
        return true;
      }
      return syntax("',' or ']' after event " + std::to_string(events.size()));
    }
  }

  bool parse_session_object() {
    skip_space();
    if (!at('{')) return syntax("'{' (each line is one JSON object)");
    ++p_;
    bool have_session = false, have_events = false;
    const bool ok = parse_members(false, 0, [&](Field f, std::size_t key_column) {
      switch (f) {
        case Field::Session:
          if (have_session) return duplicate("session", 0, key_column);
          have_session = true;
          return parse_count("session", 0, 1, session, session_text);
        case Field::Events: {
          if (have_events) return duplicate("events", 0, key_column);
          have_events = true;
          // parse_event's unknown-key list is per event object: keep the session's own aside.
          std::vector<std::string> outer;
          outer.swap(unknown_keys_);
          const bool events_ok = parse_events();
          unknown_keys_.swap(outer);
          return events_ok;
        }
        default:
          return skip_value(1);
      }
    });
    if (!ok) return false;
    skip_space();
    if (p_ != line_.size())
      return fail("invalid JSON", "invalid JSON at " + column() + ": text after the session object: " + here());
    if (!have_session) return fail("missing field", "missing \"session\"");
    if (!have_events) return fail("missing field", "missing \"events\"");
    return true;
  }

  std::string_view line_;
  std::size_t p_ = 0;
  std::string scratch_;                    // decoded strings with escapes
  std::vector<std::string> unknown_keys_;  // of the object being parsed
  OttoProblem problem_;
};

// Session numbers read so far, with the line of each, to refuse one seen on an earlier line. OTTO
// numbers its sessions in increasing order: while they increase, a number cannot repeat and no hash
// lookup is needed (a sorted vector of 16 bytes per session); the first number out of order moves
// them into a hash map.
class OttoSessionIds {
 public:
  // True if `id` is new; else false and `first_line` is the line it was first read on.
  bool insert(std::uint64_t id, std::size_t line, std::size_t& first_line) {
    if (ascending_) {
      if (in_order_.empty() || id > in_order_.back().first) {
        in_order_.emplace_back(id, line);
        return true;
      }
      ascending_ = false;
      by_id_.reserve(in_order_.size() * 2);
      for (const auto& [i, l] : in_order_) by_id_.emplace(i, l);
      std::vector<std::pair<std::uint64_t, std::size_t>>().swap(in_order_);
    }
    const auto [it, inserted] = by_id_.emplace(id, line);
    if (!inserted) first_line = it->second;
    return inserted;
  }

 private:
  bool ascending_ = true;
  std::vector<std::pair<std::uint64_t, std::size_t>> in_order_;
  std::unordered_map<std::uint64_t, std::size_t> by_id_;
};

// The fewest bytes an event with a plausible timestamp takes, {"aid":0,"ts":1659304800025,"type":"carts"},
// i.e. 44 with its comma: a file of B bytes holds at most B / 44 such events. load_otto(path)
// reserves that many, so the event arrays are never copied while they grow (at 10^7 events the
// copies and the page faults of the new buffers were a third of the load time and raised the peak
// memory); only the pages used become resident. More events (implausible, short ts) just grow.
// (load_otto_sized: load_otto with that hint; file_bytes 0 = unknown.)
inline constexpr std::uintmax_t kOttoMinEventBytes = 44;

inline SessionDataset load_otto_sized(std::istream& in, const std::string& name, const LoadOptions& options,
                                      LoadReport* report, std::uintmax_t file_bytes) {
  ProblemSink sink(options, report);
  LoadReport& rep = sink.report();
  rep.files = 1;
  SessionDataset ds;
  ds.op_vocab = Vocabulary(otto_operation_names());
  if (file_bytes / kOttoMinEventBytes > 0) {
    try {
      ds.reserve(0, static_cast<std::size_t>(file_bytes / kOttoMinEventBytes));
    } catch (const std::bad_alloc&) {  // a hint only: without it the arrays grow as usual
    } catch (const std::length_error&) {
    }
  }

  LineReader reader(in, name);
  OttoLineParser parser;
  OttoSessionIds seen;
  std::vector<MicroBehavior> events;
  std::string_view line;
  while (reader.next(line)) {
    if (line.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      ++rep.blank_lines;
      continue;
    }
    ++rep.records_read;
    const std::size_t line_no = reader.line_number();
    const OttoProblem problem = parser.parse(line);
    if (problem) {
      sink.reject(name, line_no, problem.kind, problem.reason);
      continue;
    }
    std::size_t first_line = 0;
    if (!seen.insert(parser.session, line_no, first_line)) {
      sink.reject(name, line_no, "duplicate session id",
                  "session " + std::string(parser.session_text) + " was already read on line " +
                      std::to_string(first_line) + " (one line per session)");
      continue;
    }
    if (parser.events.empty()) {
      ++rep.empty_sessions;
      continue;
    }
    const auto& pending = parser.events;
    for (const OttoEvent& e : pending) ds.item_vocab.prefetch(e.aid);  // overlap the cache misses
    events.clear();
    bool in_order = true;
    for (const OttoEvent& e : pending) {  // file order: item ids in order of appearance in the file
      const double time = static_cast<double>(e.ts) / 1000.0;
      if (!plausible_unix_time(time))
        sink.implausible_timestamp(name, line_no, std::string(e.ts_text) + " ms", time);
      if (!events.empty() && time < events.back().time) in_order = false;
      events.push_back(MicroBehavior{ds.item_vocab.add(e.aid), e.op, time});
    }
    if (!in_order)
      std::stable_sort(events.begin(), events.end(),
                       [](const MicroBehavior& a, const MicroBehavior& b) { return a.time < b.time; });
    ds.add_session(Span<const MicroBehavior>(events.data(), events.size()), events.back().time,
                   std::string(parser.session_text));
  }
  rep.lines_read = reader.line_number();
  if (ds.empty()) {
    if (rep.records_read == 0) throw DataError(name, 0, "empty file (no sessions)");
    throw DataError(name, 0,
                    "no sessions loaded: of " + std::to_string(rep.records_read) + " lines, " +
                        std::to_string(rep.empty_sessions) + " had no events and " +
                        std::to_string(rep.skipped_records) + " were skipped");
  }
  rep.sessions = ds.num_sessions();
  rep.events = ds.num_events();
  return ds;
}

}  // namespace detail

// Loads an OTTO log from a stream; `name` is used in error messages.
inline SessionDataset load_otto(std::istream& in, const std::string& name, const LoadOptions& options = {},
                                LoadReport* report = nullptr) {
  return detail::load_otto_sized(in, name, options, report, 0);
}

// Loads an OTTO log file (its size sizes the event arrays up front, see kOttoMinEventBytes).
inline SessionDataset load_otto(const std::string& path, const LoadOptions& options = {},
                                LoadReport* report = nullptr) {
  std::ifstream in = detail::open_input(path);
  std::error_code ec;
  const std::uintmax_t bytes = std::filesystem::file_size(path, ec);
  return detail::load_otto_sized(in, path, options, report, ec ? 0 : bytes);
}

}  // namespace embsr
