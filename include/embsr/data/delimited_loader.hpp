#pragma once
// Generic loader for a user's own interaction logs in a delimited text file with a header
// (CSV, TSV, ...): one row per micro-behavior, columns found by header name.
//
// Sessions come from exactly one of:
//  - session_column: rows with the same session id form one session, wherever they are in the file.
//    The session is taken as given: session_gap_seconds is NOT applied. Key = the session id.
//  - user_column: a user's rows, sorted by time, are split into sessions wherever two consecutive
//    events are more than session_gap_seconds apart. Key = "<user>#<k>", k = 1, 2, ... in time order.
// Events inside a session are sorted by time, stably (file order for equal times). order_key = the
// session's last timestamp. Sessions are added in order of first appearance of their session / user
// id (a user's sessions in time order). Items are the raw item strings, ids in first-appearance order.
//
// Operations: with OperationKind::Name the operation column holds names; with Number it holds
// non-negative integers whose canonical decimal string ("07" -> "7") is the vocabulary token.
// `operations` non-empty fixes the vocabulary (ids in that order, an unlisted operation is an error);
// empty builds it from the data in order of first appearance.
//
// Timestamps before 1990 or after 2100 are kept but counted in LoadReport::implausible_timestamps
// (detail::plausible_unix_time says why). Any finite time splits correctly: gaps are differences of
// doubles, and between two finite values they are finite or +inf, never NaN.

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/csv_reader.hpp>
#include <embsr/data/load_options.hpp>
#include <embsr/data/parse_fields.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/session_grouping.hpp>
#include <embsr/data/vocabulary.hpp>

namespace embsr {

struct DelimitedOptions : LoadOptions {
  enum class OperationKind { Name, Number };
  enum class TimeFormat {
    Seconds,  // unix seconds, integer or decimal ("1541548939", "1541548939.25")
    Iso8601   // "YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|+HH:MM|-HH:MM]", UTC when no offset is given
  };

  char delimiter = ',';
  std::string session_column;  // exactly one of session_column / user_column
  std::string user_column;
  std::string time_column;
  std::string item_column;
  std::string operation_column;
  OperationKind operation_kind = OperationKind::Name;
  std::vector<std::string> operations;  // fixed operation vocabulary; empty = from the data
  double session_gap_seconds = 1800;    // used with user_column only
  TimeFormat time_format = TimeFormat::Seconds;
};

namespace detail {

inline void validate(const DelimitedOptions& o) {
  if (o.session_column.empty() == o.user_column.empty())
    throw InvalidArgument("DelimitedOptions: set exactly one of session_column and user_column");
  if (o.time_column.empty()) throw InvalidArgument("DelimitedOptions: time_column is not set");
  if (o.item_column.empty()) throw InvalidArgument("DelimitedOptions: item_column is not set");
  if (o.operation_column.empty()) throw InvalidArgument("DelimitedOptions: operation_column is not set");
  if (!(o.session_gap_seconds >= 0))  // also rejects NaN
    throw InvalidArgument("DelimitedOptions: session_gap_seconds must be >= 0");
  if (o.delimiter == '"' || o.delimiter == '\n' || o.delimiter == '\r')
    throw InvalidArgument("DelimitedOptions: the delimiter cannot be a quote or a line break");
  for (const auto& op : o.operations) {
    if (op.empty()) throw InvalidArgument("DelimitedOptions: empty name in operations");
    std::uint64_t v = 0;
    if (o.operation_kind == DelimitedOptions::OperationKind::Number &&
        (parse_integer(op, v) != ParseStatus::Ok || std::to_string(v) != op))
      throw InvalidArgument("DelimitedOptions: operation '" + op +
                            "' is not a canonical non-negative integer (operation_kind is Number)");
  }
}

// "a, b, c" (at most 10 names) for an unknown-operation message.
inline std::string name_list(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < 10; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 10) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

}  // namespace detail

// Loads a delimited log from a stream; `name` is used in error messages.
inline SessionDataset load_delimited(std::istream& in, const std::string& name, const DelimitedOptions& options,
                                     LoadReport* report = nullptr) {
  using Kind = DelimitedOptions::OperationKind;
  detail::validate(options);
  detail::ProblemSink sink(options, report);
  LoadReport& rep = sink.report();
  rep.files = 1;
  const bool by_user = !options.user_column.empty();
  const bool fixed_ops = !options.operations.empty();

  SessionDataset ds;
  if (fixed_ops) ds.op_vocab = Vocabulary(options.operations);  // throws on duplicates, before any I/O

  CsvReader csv(in, name, options.delimiter);
  if (!detail::read_header(csv, rep)) throw DataError(name, 0, "empty file");
  const std::size_t n_fields = csv.size();
  const std::string& group_column = by_user ? options.user_column : options.session_column;
  const std::size_t c_group = detail::require_column(csv, group_column, by_user ? "user" : "session");
  const std::size_t c_time = detail::require_column(csv, options.time_column, "time");
  const std::size_t c_item = detail::require_column(csv, options.item_column, "item");
  const std::size_t c_op = detail::require_column(csv, options.operation_column, "operation");
  const std::string group_what = by_user ? "user id" : "session id";

  detail::GroupIds groups;  // session or user id -> group, first appearance order
  detail::RowGrouper rows;
  char number_buf[24];
  // Consecutive rows are often on the same item (runs of micro-behaviors): its id is reused.
  std::string last_item;
  index_t last_item_id = -1;

  while (detail::next_data_record(csv, sink)) {
    const std::size_t line = csv.line();
    if (csv.size() != n_fields) {
      sink.reject(name, line, "wrong field count", detail::field_count_reason(n_fields, csv.size()));
      continue;
    }
    const std::string_view group_id = csv[c_group];
    if (group_id.empty()) {
      sink.reject(name, line, "empty " + group_what, "empty " + group_what + " (column '" + group_column + "')");
      continue;
    }
    const std::string_view time_text = csv[c_time];
    double time = 0;
    const detail::ParseStatus ts = options.time_format == DelimitedOptions::TimeFormat::Seconds
                                       ? detail::parse_decimal(time_text, time)
                                       : detail::parse_iso8601(time_text, time);
    if (ts != detail::ParseStatus::Ok) {
      std::string why;
      if (ts == detail::ParseStatus::Empty)
        why = "empty timestamp (column '" + options.time_column + "')";
      else if (options.time_format == DelimitedOptions::TimeFormat::Seconds)
        why = "timestamp " + detail::quote_value(time_text) +
              (ts == detail::ParseStatus::OutOfRange ? " is out of range" : " is not a number (expected unix seconds)");
      else
        why = "timestamp " + detail::quote_value(time_text) +
              (ts == detail::ParseStatus::OutOfRange
                   ? " is not a valid date and time (field out of range)"
                   : " is not an ISO-8601 date-time (expected YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|+HH:MM])");
      sink.reject(name, line, "bad timestamp", why);
      continue;
    }
    const std::string_view item = csv[c_item];
    if (item.empty()) {
      sink.reject(name, line, "empty item", "empty item (column '" + options.item_column + "')");
      continue;
    }
    std::string_view op_token = csv[c_op];
    if (op_token.empty()) {
      sink.reject(name, line, "empty operation", "empty operation (column '" + options.operation_column + "')");
      continue;
    }
    if (options.operation_kind == Kind::Number) {
      std::uint64_t v = 0;
      const detail::ParseStatus st = detail::parse_integer(op_token, v);
      if (st != detail::ParseStatus::Ok) {
        sink.reject(name, line, "non-numeric operation",
                    "operation " + detail::quote_value(op_token) +
                        (st == detail::ParseStatus::OutOfRange ? " is out of range"
                                                               : " is not a non-negative integer (operation_kind is Number)"));
        continue;
      }
      const auto res = std::to_chars(number_buf, number_buf + sizeof number_buf, v);
      op_token = std::string_view(number_buf, static_cast<std::size_t>(res.ptr - number_buf));
    }
    index_t op = 0;
    if (fixed_ops) {
      const auto found = ds.op_vocab.find(op_token);
      if (!found) {
        sink.reject(name, line, "unknown operation",
                    "unknown operation " + detail::quote_value(op_token) + " (known: " +
                        detail::name_list(options.operations) + ")");
        continue;
      }
      op = *found;
    } else {
      op = ds.op_vocab.add(op_token);
    }
    if (!detail::plausible_unix_time(time)) sink.implausible_timestamp(name, line, time_text, time);
    const index_t group = groups.id(group_id);
    if (last_item_id < 0 || item != last_item) {
      last_item_id = ds.item_vocab.add(item);
      last_item.assign(item.data(), item.size());
    }
    rows.add(group, last_item_id, op, time);
  }
  rep.lines_read = csv.lines_read();

  if (!by_user && rows.in_order() && rows.size() > 0) {
    // Rows came grouped and in time order: the columns are the dataset's arrays as they are.
    std::vector<index_t> items, ops;
    std::vector<double> times;
    std::vector<std::size_t> begin;
    rows.take_in_order(items, ops, times, begin);
    std::vector<offset_t> offsets(begin.size() + 1);
    std::vector<double> order_keys(begin.size());
    std::vector<std::string> keys(begin.size());
    for (std::size_t g = 0; g < begin.size(); ++g) {
      offsets[g] = static_cast<offset_t>(begin[g]);
      const std::size_t end = g + 1 < begin.size() ? begin[g + 1] : items.size();
      order_keys[g] = times[end - 1];
      keys[g] = groups.key(static_cast<index_t>(g));
    }
    offsets.back() = static_cast<offset_t>(items.size());
    ds.assign_flat(std::move(offsets), std::move(items), std::move(ops), std::move(times), std::move(order_keys),
                   std::move(keys));
  }
  ds.reserve(groups.size(), rows.size());
  rows.for_each_group(groups.size(), [&](index_t g, Span<const MicroBehavior> events) {
    const std::string& id = groups.key(g);
    if (!by_user) {
      ds.add_session(events, events.back().time, id);
      return;
    }
    std::size_t begin = 0, k = 0;
    for (std::size_t i = 1; i <= events.size(); ++i) {
      if (i < events.size() && !(events[i].time - events[i - 1].time > options.session_gap_seconds)) continue;
      ds.add_session(events.subspan(begin, i - begin), events[i - 1].time, id + "#" + std::to_string(++k));
      begin = i;
    }
  });
  if (ds.empty()) {
    if (rep.records_read == 0) throw DataError(name, 0, "empty file (no data rows after the header)");
    throw DataError(name, 0,
                    "no sessions loaded: all " + std::to_string(rep.records_read) + " rows were skipped");
  }
  rep.sessions = ds.num_sessions();
  rep.events = ds.num_events();
  return ds;
}

inline SessionDataset load_delimited(const std::string& path, const DelimitedOptions& options,
                                     LoadReport* report = nullptr) {
  std::ifstream in = detail::open_input(path);
  return load_delimited(in, path, options, report);
}

}  // namespace embsr
