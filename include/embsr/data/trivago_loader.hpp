#pragma once
// Loader for trivago RecSys Challenge 2019 logs (train.csv / validation / test CSV with header).
//
//  - Columns are found by header name (session_id, timestamp, step, action_type, reference are
//    required; others are ignored), so their order may vary.
//  - Operations: the 6 item-level action types, in the fixed order of trivago_item_actions(). Rows of
//    the 4 other known action types are dropped and counted per type; any other action type is an
//    error. An item row whose reference is not an integer item id is dropped ("reference is not an
//    item"); items are the reference strings, ids in order of first appearance.
//  - Rows are grouped by session_id wherever they are in the file and sorted by (timestamp, step),
//    file order for ties. Sessions are added in order of first appearance; order_key = timestamp
//    of the session's last kept event; key = session_id. Sessions left without events are not added.
//  - Timestamps are unix seconds; those before 1990 or after 2100 are kept but counted in
//    LoadReport::implausible_timestamps (detail::plausible_unix_time says why).

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <istream>
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

// Item-level action types = the operation vocabulary, in this order.
inline const std::vector<std::string>& trivago_item_actions() {
  static const std::vector<std::string> names{"clickout item",          "interaction item rating",
                                              "interaction item info",  "interaction item image",
                                              "interaction item deals", "search for item"};
  return names;
}

// Known action types that are not about one item: their rows are dropped.
inline const std::vector<std::string>& trivago_non_item_actions() {
  static const std::vector<std::string> names{"filter selection", "search for destination", "change of sort order",
                                              "search for poi"};
  return names;
}

// Loads a trivago log from a stream; `name` is used in error messages.
inline SessionDataset load_trivago(std::istream& in, const std::string& name, const LoadOptions& options = {},
                                   LoadReport* report = nullptr) {
  detail::ProblemSink sink(options, report);
  LoadReport& rep = sink.report();
  rep.files = 1;
  CsvReader csv(in, name, ',');
  if (!detail::read_header(csv, rep)) throw DataError(name, 0, "empty file");
  const std::size_t n_fields = csv.size();
  const std::size_t c_session = detail::require_column(csv, "session_id", "required");
  const std::size_t c_time = detail::require_column(csv, "timestamp", "required");
  const std::size_t c_step = detail::require_column(csv, "step", "required");
  const std::size_t c_action = detail::require_column(csv, "action_type", "required");
  const std::size_t c_reference = detail::require_column(csv, "reference", "required");

  const auto& item_actions = trivago_item_actions();
  const auto& other_actions = trivago_non_item_actions();
  std::vector<std::string> drop_reasons;  // built once: no allocation per dropped row
  for (const auto& a : other_actions) drop_reasons.push_back("action type '" + a + "' is not an item action");
  const std::string not_an_item = "reference is not an item";
  auto not_integer = [](detail::ParseStatus st) {
    return st == detail::ParseStatus::OutOfRange ? " is out of range (64-bit integer)" : " is not an integer";
  };

  SessionDataset ds;
  ds.op_vocab = Vocabulary(item_actions);
  detail::GroupIds sessions;        // session_id -> group, first appearance order
  detail::RowGrouper rows;

  while (detail::next_data_record(csv, sink)) {
    const std::size_t line = csv.line();
    if (csv.size() != n_fields) {
      sink.reject(name, line, "wrong field count", detail::field_count_reason(n_fields, csv.size()));
      continue;
    }
    const std::string_view sid = csv[c_session];
    if (sid.empty()) {
      sink.reject(name, line, "empty session_id", "empty session_id");
      continue;
    }
    std::int64_t timestamp = 0, step = 0;
    const detail::ParseStatus ts = detail::parse_integer(csv[c_time], timestamp);
    if (ts != detail::ParseStatus::Ok) {
      sink.reject(name, line, "bad timestamp", "timestamp " + detail::quote_value(csv[c_time]) + not_integer(ts));
      continue;
    }
    const detail::ParseStatus ss = detail::parse_integer(csv[c_step], step);
    if (ss != detail::ParseStatus::Ok) {
      sink.reject(name, line, "bad step", "step " + detail::quote_value(csv[c_step]) + not_integer(ss));
      continue;
    }
    const std::string_view action = csv[c_action];
    int op = -1, other = -1;
    for (std::size_t i = 0; i < item_actions.size() && op < 0; ++i)
      if (action == item_actions[i]) op = static_cast<int>(i);
    for (std::size_t i = 0; i < other_actions.size() && op < 0 && other < 0; ++i)
      if (action == other_actions[i]) other = static_cast<int>(i);
    if (op < 0 && other < 0) {
      sink.reject(name, line, "unknown action type", "unknown action type " + detail::quote_value(action));
      continue;
    }
    const index_t group = sessions.id(sid);  // also for dropped rows: to count sessions left empty
    if (other >= 0) {
      sink.drop(drop_reasons[static_cast<std::size_t>(other)]);
      continue;
    }
    const std::string_view reference = csv[c_reference];
    if (!detail::all_digits(reference)) {
      sink.drop(not_an_item);
      continue;
    }
    const double time = static_cast<double>(timestamp);
    if (!detail::plausible_unix_time(time)) sink.implausible_timestamp(name, line, csv[c_time], time);
    rows.add(group, ds.item_vocab.add(reference), static_cast<index_t>(op), time, step);
  }
  rep.lines_read = csv.lines_read();

  ds.reserve(sessions.size(), rows.size());
  rows.for_each_group(sessions.size(), [&](index_t g, Span<const MicroBehavior> events) {
    ds.add_session(events, events.back().time, sessions.key(g));
  });
  rep.empty_sessions = sessions.size() - ds.num_sessions();
  if (ds.empty()) {
    if (rep.records_read == 0) throw DataError(name, 0, "empty file (no data rows after the header)");
    throw DataError(name, 0,
                    "no sessions loaded: of " + std::to_string(rep.records_read) + " rows, " +
                        std::to_string(rep.dropped_rows) + " were dropped and " + std::to_string(rep.skipped_records) +
                        " skipped");
  }
  rep.sessions = ds.num_sessions();
  rep.events = ds.num_events();
  return ds;
}

inline SessionDataset load_trivago(const std::string& path, const LoadOptions& options = {},
                                   LoadReport* report = nullptr) {
  std::ifstream in = detail::open_input(path);
  return load_trivago(in, path, options, report);
}

}  // namespace embsr
