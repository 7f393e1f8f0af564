// Data-side speed: load + preprocess a real log, repeated, single thread.
//
//   bench_data [--repeats N] [--format trivago|jd|otto] [--min-support N] [--max-length L] [FILE...]
//
// Defaults: the trivago sample in ../shared/data with the paper's trivago settings (support 5, L 50).
// --format otto loads OTTO JSON lines (load_otto) and also prints the load's events per second.
// Prints min and median wall time of load, preprocess and their sum.
#include <embsr/data/jd_loader.hpp>
#include <embsr/data/otto_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/trivago_loader.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) {
  int repeats = 10;
  std::string format = "trivago";
  embsr::PreprocessOptions pre;
  pre.min_item_support = 5;
  pre.max_length = 50;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_data: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--repeats") repeats = std::atoi(next().c_str());
    else if (a == "--format") format = next();
    else if (a == "--min-support") pre.min_item_support = std::atoi(next().c_str());
    else if (a == "--max-length") pre.max_length = std::atoi(next().c_str());
    else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "usage: bench_data [--repeats N] [--format trivago|jd|otto] [--min-support N] [--max-length L] [FILE...]\n");
      return 2;
    } else files.push_back(a);
  }
  if (files.empty()) files.push_back(std::string(EMBSR_SHARED_DATA_DIR) + "/trivago_recsys2019/trivago_val_100k.csv");
  if (repeats < 1) repeats = 1;

  try {
    std::vector<double> load_t, prep_t, total_t;
    std::size_t sessions = 0, events = 0, examples = 0;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const embsr::SessionDataset raw = format == "jd"     ? embsr::load_jd(files)
                                        : format == "otto" ? embsr::load_otto(files.at(0))
                                                           : embsr::load_trivago(files.at(0));
      const double tl = seconds_since(t0);
      const auto t1 = std::chrono::steady_clock::now();
      const embsr::PreparedData data = embsr::preprocess(raw, pre);
      const double tp = seconds_since(t1);
      load_t.push_back(tl);
      prep_t.push_back(tp);
      total_t.push_back(tl + tp);
      sessions = raw.num_sessions();
      events = raw.num_events();
      examples = data.train.size() + data.valid.size() + data.test.size();
    }
    std::printf("bench_data: %s%s (%s), %zu sessions loaded, %zu examples after preprocessing, %d repeats, 1 thread\n",
                files.at(0).c_str(), files.size() > 1 ? " (+ more files)" : "", format.c_str(), sessions, examples, repeats);
    std::printf("  load         min %.4f s   median %.4f s\n", *std::min_element(load_t.begin(), load_t.end()),
                median(load_t));
    if (format == "otto")
      std::printf("  load speed   %.0f events/s (%zu events / min load time)\n",
                  static_cast<double>(events) / *std::min_element(load_t.begin(), load_t.end()), events);
    std::printf("  preprocess   min %.4f s   median %.4f s\n", *std::min_element(prep_t.begin(), prep_t.end()),
                median(prep_t));
    std::printf("  total        min %.4f s   median %.4f s\n", *std::min_element(total_t.begin(), total_t.end()),
                median(total_t));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data: %s\n", e.what());
    return 1;
  }
  return 0;
}
