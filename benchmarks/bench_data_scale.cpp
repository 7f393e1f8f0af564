// The data path at scale, one thread: load a large log, preprocess it, build every training batch
// once (host side), and report per phase the wall time, the rate and the peak resident memory.
//
//   bench_data_scale --format csv|otto FILE [--min-support N] [--max-length L] [--batch B]
//
// Make the input with `embsr-data synth --events 10000000 --output FILE [--output-format otto]`.
// CSV files are read as `embsr-data stats --format csv --session-column session` reads them.
// Preprocessing uses the training tools' defaults (support 5, L 40) unless told otherwise.
//
// Memory: the peak resident set (VmHWM of /proc/self/status; getrusage's ru_maxrss where there is
// no /proc) after each phase, over the whole process so far, divided by the log's micro-behaviors.
// Where the kernel allows it, the high-water mark is also reset before each phase (writing 5 to
// /proc/self/clear_refs), so that each phase's own peak is shown too.
#include <embsr/batch/batch_builder.hpp>
#include <embsr/data/delimited_loader.hpp>
#include <embsr/data/otto_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/data/session_dataset.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A field of /proc/self/status in bytes ("VmHWM:   123 kB"); nullopt without /proc.
std::optional<double> proc_status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, field.size() + 1, field + ":") == 0) return std::atof(line.c_str() + field.size() + 1) * 1024.0;
  return std::nullopt;
}

double peak_rss_bytes() {
  if (const auto hwm = proc_status_bytes("VmHWM")) return *hwm;
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;  // kilobytes on Linux
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false if not possible.
bool reset_peak() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

struct Phase {
  const char* name;
  Clock::time_point start;
  bool reset;
};

Phase begin(const char* name) {
  const bool reset = reset_peak();
  return Phase{name, Clock::now(), reset};
}

void end(const Phase& p, double units, const char* unit, double events, double& process_peak) {
  const double s = seconds_since(p.start);
  const double peak = peak_rss_bytes();
  process_peak = std::max(process_peak, peak);
  const double rss = proc_status_bytes("VmRSS").value_or(0.0);
  std::printf("  %-11s %8.3f s  %12.0f %s/s   peak RSS %s %7.1f MiB = %5.1f B/event   RSS after %7.1f MiB\n", p.name, s,
              units / s, unit, p.reset ? "(phase)" : "(so far)", peak / 1048576.0, peak / events, rss / 1048576.0);
}

}  // namespace

int main(int argc, char** argv) {
  std::string format, file;
  embsr::PreprocessOptions pre;
  pre.min_item_support = 5;
  pre.max_length = 40;
  std::size_t batch_size = 512;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_data_scale: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--format") format = value();
    else if (a == "--min-support") pre.min_item_support = std::atoi(value().c_str());
    else if (a == "--max-length") pre.max_length = std::atoi(value().c_str());
    else if (a == "--batch") batch_size = static_cast<std::size_t>(std::atoll(value().c_str()));
    else if (!a.empty() && a[0] != '-' && file.empty()) file = a;
    else {
      std::fprintf(stderr, "usage: bench_data_scale --format csv|otto FILE [--min-support N] [--max-length L] [--batch B]\n");
      return 2;
    }
  }
  if ((format != "csv" && format != "otto") || file.empty() || batch_size == 0) {
    std::fprintf(stderr, "usage: bench_data_scale --format csv|otto FILE [--min-support N] [--max-length L] [--batch B]\n");
    return 2;
  }
  try {
    const double start_rss = proc_status_bytes("VmRSS").value_or(0.0);
    double process_peak = 0;
    Phase p = begin("load");
    std::optional<embsr::SessionDataset> raw;
    if (format == "csv") {
      embsr::DelimitedOptions o;
      o.session_column = "session";
      o.time_column = "timestamp";
      o.item_column = "item";
      o.operation_column = "operation";
      raw = embsr::load_delimited(file, o);
    } else {
      raw = embsr::load_otto(file);
    }
    const auto events = static_cast<double>(raw->num_events());
    std::printf("bench_data_scale: %s (%s): %zu sessions, %zu micro-behaviors, %d items, 1 thread; RSS at start %.1f MiB\n",
                file.c_str(), format.c_str(), raw->num_sessions(), raw->num_events(), raw->item_vocab.size(),
                start_rss / 1048576.0);
    end(p, events, "events", events, process_peak);

    p = begin("preprocess");
    const embsr::PreparedData data = embsr::preprocess(*raw, pre);
    end(p, events, "events", events, process_peak);
    std::printf("              (support >= %d, L %d: %zu train / %zu valid / %zu test examples, %zu train input micro-behaviors)\n",
                pre.min_item_support, pre.max_length, data.train.size(), data.valid.size(), data.test.size(),
                data.train.num_events());

    p = begin("batches");
    embsr::BatchSampler sampler(data.train.size(), batch_size, true, 1);
    embsr::BatchBuilder builder;
    embsr::HostBatch host;
    std::size_t built = 0;
    for (std::size_t b = 0; b < sampler.num_batches(); ++b) {
      builder.build(data.train, sampler.batch(b), host);
      built += host.targets.size();
    }
    end(p, static_cast<double>(built), "examples", events, process_peak);
    std::printf("              (%zu batches of <= %zu: %zu examples, %.0f train input micro-behaviors/s)\n",
                sampler.num_batches(), batch_size, built,
                static_cast<double>(data.train.num_events()) / seconds_since(p.start));
    std::printf("  whole run: peak RSS %.1f MiB = %.1f B/event\n", process_peak / 1048576.0, process_peak / events);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data_scale: %s\n", e.what());
    return 1;
  }
  return 0;
}
