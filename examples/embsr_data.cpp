// embsr-data: look at a session log the way EMBSR will see it.
//
//   embsr-data stats --format jd|trivago|csv FILE... [preprocessing options] [--json]
//
// Loads the log(s), applies the paper's preprocessing (item-support filter, target extraction,
// chronological split, truncation) and prints the paper's Table II columns plus operation counts
// and session-length percentiles.
// The data headers only: this tool trains nothing, and the whole library costs nvcc half a minute.
#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/statistics.hpp>

#include "common/dataset_options.hpp"
#include "common/standard_output.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct Args {
  embsr::cli::DatasetOptions data;
  bool json = false;
};

nlohmann::json lengths_json(const embsr::LengthSummary& s) {
  return {{"mean", s.mean}, {"min", s.min}, {"p50", s.p50}, {"p90", s.p90}, {"p99", s.p99}, {"max", s.max}};
}

void print_lengths(const char* name, const embsr::LengthSummary& s) {
  std::printf("  %-26s mean %6.1f   min %4zu   p50 %4zu   p90 %4zu   p99 %4zu   max %4zu\n", name, s.mean, s.min,
              s.p50, s.p90, s.p99, s.max);
}

int run_stats(const Args& a) {
  const auto t0 = std::chrono::steady_clock::now();
  embsr::LoadReport report;
  const embsr::SessionDataset raw = a.data.load(report);
  const auto t1 = std::chrono::steady_clock::now();
  const embsr::PreparedData data = embsr::preprocess(raw, a.data.pre);
  const auto t2 = std::chrono::steady_clock::now();
  const embsr::DatasetStatistics st = embsr::compute_statistics(data);
  const double load_s = std::chrono::duration<double>(t1 - t0).count();
  const double prep_s = std::chrono::duration<double>(t2 - t1).count();
  const auto& ps = data.stats;

  if (a.json) {
    nlohmann::json ops = nlohmann::json::object();
    for (std::size_t o = 0; o < st.operation_counts.size(); ++o)
      ops[data.op_vocab.token(static_cast<embsr::index_t>(o))] = st.operation_counts[o];
    nlohmann::json j = {
        {"files", a.data.files},
        {"format", a.data.format},
        {"preprocessing",
         {{"min_item_support", a.data.pre.min_item_support},
          {"max_length", a.data.pre.max_length},
          {"train_fraction", a.data.pre.train_fraction},
          {"valid_fraction", a.data.pre.valid_fraction}}},
        {"raw", {{"sessions", ps.raw_sessions}, {"micro_behaviors", ps.raw_events}, {"items", ps.items_before}}},
        {"train_sessions", st.train_sessions},
        {"valid_sessions", st.valid_sessions},
        {"test_sessions", st.test_sessions},
        {"items", st.items},
        {"micro_behaviors", st.micro_behaviors},
        {"operations", ops},
        {"micro_length", lengths_json(st.micro_length)},
        {"macro_length", lengths_json(st.macro_length)},
        {"distinct_items", lengths_json(st.distinct_items)},
        {"target_in_input", st.target_in_input},
        {"sessions_too_short", ps.sessions_too_short},
        {"truncated_sessions", ps.truncated_sessions},
        {"load_seconds", load_s},
        {"preprocess_seconds", prep_s}};
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    embsr::cli::check_standard_output();
    return 0;
  }

  std::printf("%s", report.summary().c_str());
  std::printf("preprocessing: min item support %d, max length %d, split %.2f / %.2f / %.2f (chronological)\n",
              a.data.pre.min_item_support, a.data.pre.max_length, a.data.pre.train_fraction, a.data.pre.valid_fraction,
              1.0 - a.data.pre.train_fraction - a.data.pre.valid_fraction);
  std::printf("  raw: %zu sessions, %zu micro-behaviors, %zu items\n", ps.raw_sessions, ps.raw_events,
              ps.items_before);
  std::printf("  support filter removed %zu micro-behaviors; %zu sessions dropped (< 2 macro items); "
              "%zu inputs truncated\n\n",
              ps.events_removed_by_support, ps.sessions_too_short, ps.truncated_sessions);
  std::printf("Table II columns\n");
  std::printf("  %-26s %zu\n", "# train", st.train_sessions);
  std::printf("  %-26s %zu\n", "# validation", st.valid_sessions);
  std::printf("  %-26s %zu\n", "# test", st.test_sessions);
  std::printf("  %-26s %zu\n", "# items", st.items);
  std::printf("  %-26s %zu\n", "# micro-behaviors", st.micro_behaviors);
  std::printf("\noperations (%zu), micro-behaviors per operation in the inputs\n", st.operations);
  for (std::size_t o = 0; o < st.operation_counts.size(); ++o)
    std::printf("  %-26s %zu\n", data.op_vocab.token(static_cast<embsr::index_t>(o)).c_str(), st.operation_counts[o]);
  std::printf("\nper-session input lengths\n");
  print_lengths("micro-behaviors (t)", st.micro_length);
  print_lengths("macro items (n)", st.macro_length);
  print_lengths("distinct items (c)", st.distinct_items);
  std::printf("  %-26s %.1f%%\n", "target occurs in input", 100.0 * st.target_in_input);
  std::printf("\nload %.3f s, preprocess %.3f s\n", load_s, prep_s);
  embsr::cli::check_standard_output();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"embsr-data: statistics of micro-behavior session logs after EMBSR preprocessing"};
  app.require_subcommand(1);
  Args a;
  auto* stats = app.add_subcommand("stats", "print the paper's Table II columns, operations and lengths");
  a.data.add_to(stats);
  stats->add_flag("--json", a.json, "print the statistics as JSON");
  CLI11_PARSE(app, argc, argv);
  try {
    a.data.pre.validate();
    return run_stats(a);
  } catch (const embsr::Error& e) {
    std::fprintf(stderr, "embsr-data: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embsr-data: unexpected error: %s\n", e.what());
    return 1;
  }
}
