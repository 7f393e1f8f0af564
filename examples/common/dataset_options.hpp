#pragma once
// Command-line options shared by the example programs: which log to load and how to preprocess it.

#include <embsr/core/error.hpp>
#include <embsr/data/delimited_loader.hpp>
#include <embsr/data/jd_loader.hpp>
#include <embsr/data/load_options.hpp>
#include <embsr/data/otto_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/trivago_loader.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace embsr::cli {

struct DatasetOptions {
  std::string format = "jd";
  std::vector<std::string> files;
  PreprocessOptions pre;
  bool lenient = false;
  bool keep_duplicates = false;
  // csv
  std::string delimiter = ",";
  std::string session_column, user_column, time_column = "timestamp", item_column = "item",
                                            operation_column = "operation";
  std::string operation_kind = "name", time_format = "seconds";
  double session_gap = 1800;

  void add_to(CLI::App* app) {
    app->add_option("--format", format, "log format")->check(CLI::IsMember({"jd", "trivago", "otto", "csv"}))->capture_default_str();
    app->add_option("files", files, "log file(s); jd accepts several (concatenated in order)")
        ->required()
        ->check(CLI::ExistingFile);
    app->add_option("--min-support", pre.min_item_support, "drop items with fewer micro-behaviors")->capture_default_str();
    app->add_option("--max-length", pre.max_length, "keep the last L micro-behaviors of each input")->capture_default_str();
    app->add_option("--train-fraction", pre.train_fraction)->capture_default_str();
    app->add_option("--valid-fraction", pre.valid_fraction)->capture_default_str();
    app->add_flag("--lenient", lenient, "skip malformed records (counted and reported) instead of failing");
    app->add_flag("--keep-duplicates", keep_duplicates, "jd: keep identical sessions (removed by default)");
    app->add_option("--delimiter", delimiter, "csv: field delimiter (one character, or \\t)")->capture_default_str();
    app->add_option("--session-column", session_column, "csv: session id column");
    app->add_option("--user-column", user_column, "csv: user id column (sessions split at --session-gap)");
    app->add_option("--time-column", time_column)->capture_default_str();
    app->add_option("--item-column", item_column)->capture_default_str();
    app->add_option("--operation-column", operation_column)->capture_default_str();
    app->add_option("--operation-kind", operation_kind)->check(CLI::IsMember({"name", "number"}))->capture_default_str();
    app->add_option("--time-format", time_format)->check(CLI::IsMember({"seconds", "iso8601"}))->capture_default_str();
    app->add_option("--session-gap", session_gap, "csv: inactivity gap in seconds that starts a new session")
        ->capture_default_str();
  }

  // The preprocessing of the tools that train (embsr-train, embsr-tune): items seen at least 5
  // times, the last 40 micro-behaviors of each input. Call before add_to (the --help shows them).
  void use_training_defaults() {
    pre.min_item_support = 5;
    pre.max_length = 40;
  }

  // Loads the log and preprocesses it into the 70/10/20 split; prints the load report and the
  // split's sizes on standard output (what embsr-train and embsr-tune say first).
  PreparedData load_prepared() const {
    pre.validate();
    LoadReport report;
    const SessionDataset raw = load(report);
    PreparedData data = preprocess(raw, pre);
    std::printf("%s", report.summary().c_str());
    std::printf("data: %zu train / %zu validation / %zu test sessions, %d items, %d operations\n", data.train.size(),
                data.valid.size(), data.test.size(), data.item_vocab.size(), data.op_vocab.size());
    return data;
  }

  SessionDataset load(LoadReport& report) const {
    if (format == "jd") {
      JdOptions o;
      o.lenient = lenient;
      o.dedupe_identical_sessions = !keep_duplicates;
      return load_jd(files, o, &report);
    }
    if (files.size() != 1) throw InvalidArgument("--format " + format + " reads exactly one file");
    if (format == "trivago") {
      LoadOptions o;
      o.lenient = lenient;
      return load_trivago(files.front(), o, &report);
    }
    if (format == "otto") {
      LoadOptions o;
      o.lenient = lenient;
      return load_otto(files.front(), o, &report);
    }
    DelimitedOptions o;
    o.lenient = lenient;
    if (delimiter.size() != 1 && delimiter != "\\t")
      throw InvalidArgument("--delimiter must be one character (or \\t), got '" + delimiter + "'");
    o.delimiter = delimiter == "\\t" ? '\t' : delimiter[0];
    o.session_column = session_column;
    o.user_column = user_column;
    o.time_column = time_column;
    o.item_column = item_column;
    o.operation_column = operation_column;
    o.operation_kind = operation_kind == "number" ? DelimitedOptions::OperationKind::Number
                                                  : DelimitedOptions::OperationKind::Name;
    o.time_format = time_format == "iso8601" ? DelimitedOptions::TimeFormat::Iso8601 : DelimitedOptions::TimeFormat::Seconds;
    o.session_gap_seconds = session_gap;
    return load_delimited(files.front(), o, &report);
  }
};

}  // namespace embsr::cli
