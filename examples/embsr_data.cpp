// embsr-data: look at a session log the way EMBSR will see it.
//
//   embsr-data stats --format jd|trivago|otto|csv FILE... [preprocessing options] [--json]
//   embsr-data synth [--fit --format F FILE...] (--events N | --sessions N) [--items N] [--seed S]
//                    --output FILE [--output-format csv|otto] [--print-shape]
//
// stats loads the log(s), applies the paper's preprocessing (item-support filter, target extraction,
// chronological split, truncation) and prints the paper's Table II columns plus operation counts
// and session-length percentiles.
// synth generates a log shaped like a real one (data/synthetic_log.hpp): fitted on FILE... with
// --fit, otherwise the built-in shape fitted on the shipped JD Appliances sample. --print-shape
// prints the shape as JSON (alone, without --output).
// The data headers only: this tool trains nothing, and the whole library costs nvcc half a minute.
#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/statistics.hpp>
#include <embsr/data/synthetic_log.hpp>

#include "common/dataset_options.hpp"
#include "common/standard_output.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct Args {
  embsr::cli::DatasetOptions data;
  bool json = false;
};

struct SynthArgs {
  embsr::cli::DatasetOptions data;
  bool fit = false;
  bool print_shape = false;
  std::size_t items_per_group = embsr::FitOptions{}.items_per_group;
  std::size_t events = 0, sessions = 0, items = 0;
  std::uint64_t seed = 1;
  std::string output, output_format = "csv";
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

nlohmann::json shape_json(const embsr::LogShape& s) {
  return {{"operation_names", s.operation_names},
          {"initial_operation", s.initial_operation},
          {"operation_transitions", s.operation_transitions},
          {"session_length_values", s.session_length_values},
          {"session_length_weights", s.session_length_weights},
          {"zipf_exponent", s.zipf_exponent},
          {"item_weight_exponent", s.item_weight_exponent},
          {"repeat_share", s.repeat_share},
          {"repeat_share_by_position", s.repeat_share_by_position},
          {"repeat_share_last_move", s.repeat_share_last_move},
          {"co_occurrence_share", s.co_occurrence_share},
          {"group_stay", s.group_stay},
          {"items_per_group", s.items_per_group},
          {"fitted_sessions", s.fitted_sessions},
          {"fitted_events", s.fitted_events},
          {"fitted_items", s.fitted_items},
          {"item_universe", s.item_universe},
          {"heaps_exponent", s.heaps_exponent},
          {"gap_quantiles", s.gap_quantiles},
          {"start_time", s.start_time},
          {"mean_session_interarrival", s.mean_session_interarrival}};
}

int run_synth(SynthArgs& a) {
  if (a.fit && a.data.files.empty()) throw embsr::InvalidArgument("--fit needs the log file(s) to fit on");
  if (!a.fit && !a.data.files.empty())
    throw embsr::InvalidArgument("log files given without --fit (add --fit to fit the shape on them)");
  if (a.output.empty() && !a.print_shape) throw embsr::InvalidArgument("give --output FILE (or --print-shape)");
  if (!a.output.empty() && (a.events == 0) == (a.sessions == 0))
    throw embsr::InvalidArgument("give exactly one of --events N and --sessions N (N >= 1)");
  embsr::LogShape shape = embsr::default_log_shape();
  if (a.fit) {
    embsr::LoadReport report;
    const embsr::SessionDataset raw = a.data.load(report);
    std::fprintf(stderr, "%s", report.summary().c_str());
    embsr::FitOptions fo;
    fo.items_per_group = a.items_per_group;
    shape = embsr::fit_log_shape(raw, fo);
  }
  if (a.print_shape) {
    std::cout << shape_json(shape).dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    embsr::cli::check_standard_output();
  }
  if (a.output.empty()) return 0;
  embsr::SynthOptions o;
  o.seed = a.seed;
  o.events = a.events;
  o.sessions = a.sessions;
  o.items = a.items;
  o.validate();
  const auto t0 = std::chrono::steady_clock::now();
  std::ofstream out(a.output, std::ios::binary | std::ios::trunc);
  if (!out) throw embsr::DataError(a.output, 0, std::string("cannot open for writing: ") + std::strerror(errno));
  const embsr::SyntheticLogGenerator gen = embsr::write_synthetic_log(
      out, a.output, a.output_format == "otto" ? embsr::SynthFormat::Otto : embsr::SynthFormat::Csv, shape, o);
  out.close();
  if (!out) throw embsr::DataError(a.output, 0, "write error when closing the file");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "synth: wrote %zu sessions, %zu micro-behaviors over %zu items (%s) to %s in %.2f s\n",
               gen.sessions_done(), gen.events_done(), gen.num_items(), a.output_format.c_str(), a.output.c_str(),
               seconds);
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
  SynthArgs sa;
  auto* synth = app.add_subcommand("synth", "generate a synthetic log shaped like a real one (fitted or built-in JD)");
  sa.data.add_to(synth);
  synth->get_option("files")->required(false)->description("log file(s) to fit the shape on (with --fit)");
  synth->add_flag("--fit", sa.fit, "fit the shape on the given log(s) instead of the built-in JD Appliances shape");
  synth->add_option("--items-per-group", sa.items_per_group, "with --fit: size of the latent item groups")
      ->capture_default_str();
  synth->add_option("--events", sa.events, "generate exactly this many micro-behaviors");
  synth->add_option("--sessions", sa.sessions, "generate exactly this many sessions");
  synth->add_option("--items", sa.items, "items to draw from (default: scaled from the shape by Heaps' law)");
  synth->add_option("--seed", sa.seed, "random seed (same seed, same log on every platform)")->capture_default_str();
  synth->add_option("--output", sa.output, "file to write");
  synth->add_option("--output-format", sa.output_format, "csv (session,timestamp,item,operation) or otto (JSON lines)")
      ->check(CLI::IsMember({"csv", "otto"}))
      ->capture_default_str();
  synth->add_flag("--print-shape", sa.print_shape, "print the shape (fitted or built-in) as JSON");
  CLI11_PARSE(app, argc, argv);
  try {
    if (synth->parsed()) return run_synth(sa);
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
