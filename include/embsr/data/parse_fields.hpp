#pragma once
// Field parsers shared by the loaders: whole-field integers and decimals via std::from_chars (no
// locale, no allocation, overflow detected), and ISO-8601 timestamps read as UTC.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace embsr::detail {

enum class ParseStatus { Ok, Empty, Invalid, OutOfRange };

// The whole of `s` must be the number: no sign for unsigned types, no '+', no spaces.
template <class T>
ParseStatus parse_integer(std::string_view s, T& out) {
  static_assert(std::is_integral_v<T>, "parse_integer needs an integer type");
  if (s.empty()) return ParseStatus::Empty;
  const char* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, out);
  if (ec == std::errc::result_out_of_range) return ParseStatus::OutOfRange;
  if (ec != std::errc() || ptr != end) return ParseStatus::Invalid;
  return ParseStatus::Ok;
}

// True for a non-empty run of ASCII digits (what an integer id looks like).
inline bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// A finite decimal number: "1541548939", "-3", "1541548939.25", "1.5e9". Rejects inf / nan.
inline ParseStatus parse_decimal(std::string_view s, double& out) {
  if (s.empty()) return ParseStatus::Empty;
  const char* end = s.data() + s.size();
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), end, v, std::chars_format::general);
  if (ec == std::errc::result_out_of_range) return ParseStatus::OutOfRange;
  if (ec != std::errc() || ptr != end || !std::isfinite(v)) return ParseStatus::Invalid;
  out = v;
  return ParseStatus::Ok;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
inline std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

inline bool is_leap_year(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// "YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|+HH:MM|-HH:MM]" -> unix seconds (UTC). No offset means UTC.
inline ParseStatus parse_iso8601(std::string_view s, double& out) {
  if (s.empty()) return ParseStatus::Empty;
  std::size_t p = 0;
  auto digits = [&](std::size_t n, unsigned& v) {
    if (p + n > s.size()) return false;
    v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const char c = s[p + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    p += n;
    return true;
  };
  auto lit = [&](char c) { return p < s.size() && s[p] == c ? (++p, true) : false; };
  unsigned year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(4, year) || !lit('-') || !digits(2, month) || !lit('-') || !digits(2, day)) return ParseStatus::Invalid;
  if (!(lit('T') || lit(' '))) return ParseStatus::Invalid;
  if (!digits(2, hour) || !lit(':') || !digits(2, minute) || !lit(':') || !digits(2, second))
    return ParseStatus::Invalid;
  double fraction = 0;
  if (lit('.')) {
    double scale = 0.1;
    const std::size_t start = p;
    for (; p < s.size() && s[p] >= '0' && s[p] <= '9'; ++p, scale /= 10) fraction += (s[p] - '0') * scale;
    if (p == start) return ParseStatus::Invalid;
  }
  int offset_seconds = 0;
  if (lit('Z')) {
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    const int sign = s[p++] == '+' ? 1 : -1;
    unsigned oh = 0, om = 0;
    if (!digits(2, oh) || !lit(':') || !digits(2, om) || oh > 23 || om > 59) return ParseStatus::Invalid;
    offset_seconds = sign * static_cast<int>(oh * 3600 + om * 60);
  }
  if (p != s.size()) return ParseStatus::Invalid;
  static const unsigned month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1) return ParseStatus::OutOfRange;
  const unsigned max_day = month_days[month - 1] + (month == 2 && is_leap_year(year) ? 1 : 0);
  if (day > max_day || hour > 23 || minute > 59 || second > 59) return ParseStatus::OutOfRange;
  const std::int64_t whole = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  out = static_cast<double>(whole - offset_seconds) + fraction;
  return ParseStatus::Ok;
}

}  // namespace embsr::detail
