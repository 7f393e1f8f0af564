// One training step of EMBSR (or any registered model that learns by gradients) at trivago scale:
// peak resident memory and time per step.
//
//   bench_train_step [--batch 512] [--items 183562] [--ops 6] [--max-length 50] [--d 100] [--steps 3] [--profile]
//                    [--jd FILE] [--write-sessions FILE] [--space default|serial] [--repeat] [--model NAME]
//
// --profile: time per Kokkos kernel label and per GEMM over the steps after the first
// (kernel_profile.hpp), to see what dominates a step.
//
// Sessions are synthetic (synthetic_sessions.hpp), or with --jd FILE the first B training examples
// of a real JD log (the item table still has --items rows, or the log's item count if larger);
// --write-sessions FILE saves them for benchmarks/torch_embsr.py --sessions FILE.
// --space serial: Kokkos::Serial instead of the default execution space (OpenMP's speedup).
// --repeat: EMBSR-R (the embsr-r preset: the repeat path with the repeat/explore mixture).
// --model NAME: a registered model that learns by gradients (sr-gnn, sgnn-hn, gc-san, mkm-sr, the
// EMBSR presets; default embsr), built through the registry with its defaults and d; models with a
// dropout option get 0.5 as EMBSR.
// Prints the peak resident set size of the process (getrusage) after the steps.
#include <embsr/embsr.hpp>
#include <embsr/model/registry_instances.hpp>  // every registered model is compiled once, in registry_instances.cpp

#include "kernel_profile.hpp"
#include "synthetic_sessions.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Options {
  int batch_size, items, ops, max_length, d, steps;
  bool profile;
  bool repeat;
  const char* sessions;
  std::string model;
};

// The timed part, on execution space Exec.
template <class Exec>
int time_steps(const embsr::ExampleSet& set, const Options& o) {
  const int batch_size = o.batch_size, items = o.items, ops = o.ops, max_length = o.max_length, d = o.d,
            steps = o.steps;
  const std::vector<embsr::index_t> ids = embsr::bench::id_range(0, batch_size);
  embsr::BatchBuilder builder;
  const auto host = builder.build(set, embsr::Span<const embsr::index_t>(ids.data(), ids.size()));
  embsr::Batch<typename Exec::memory_space> batch;
  batch.copy_from(host);

  const std::string name = o.repeat ? "embsr-r" : o.model;
  embsr::ModelOptions options;
  options.set("num_items", items).set("num_ops", ops).set("max_length", max_length).set("d", d);
  if (embsr::find_model_spec(name).option("dropout") != nullptr) options.set("dropout", 0.5);
  const auto model = embsr::make_model<Exec>(name, options);
  if (model->parameters() == nullptr) {
    std::fprintf(stderr, "bench_train_step: model '%s' does not learn by gradients\n", name.c_str());
    return 2;
  }
  auto& parameters = *model->parameters();
  embsr::Adam<Exec, float> adam(parameters.size(), embsr::AdamOptions{});
  std::printf("sessions: %s\n", o.sessions);
  std::printf("bench_train_step: %s, B=%d, t<=%d (T=%d micro-behaviors), |V|=%d, |O|=%d, d=%d, %zu parameters, %s, %d threads\n",
              name.c_str(), batch_size, max_length, batch.sizes.num_micro, items, ops, d, parameters.size(), Exec::name(),
              Exec().concurrency());
  std::vector<double> times;  // steps after the first (which allocates the caches)
  std::unique_ptr<embsr::bench::KernelProfile> kernel_profile;
  if (o.profile) kernel_profile = std::make_unique<embsr::bench::KernelProfile>();
  for (int s = 0; s < steps; ++s) {
    if (kernel_profile && s == 1) kernel_profile->record();
    const auto t0 = std::chrono::steady_clock::now();
    const double loss = model->loss_and_backward(batch, static_cast<std::uint64_t>(s), true);
    adam.step(Exec(), parameters.values(), parameters.grads());
    Exec().fence();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("  step %d: loss %.4f, %.3f s%s\n", s, loss, sec, s == 0 ? " (allocates)" : "");
    if (s > 0) times.push_back(sec);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double rss = static_cast<double>(usage.ru_maxrss) / 1024.0;
  std::printf("peak resident memory: %.1f MiB\n", rss);
  if (!times.empty()) {
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    if (kernel_profile) {
      double mean = 0;
      for (double t : times) mean += t / static_cast<double>(times.size());
      kernel_profile->print(static_cast<int>(times.size()), mean);
    }
    // The scoring against the item table dominates: B x |V| x d for the scores, and twice that
    // for the gradients of the session vectors and of the table, 2 FLOPs per multiply-add.
    const double scoring_flops = 6.0 * batch_size * static_cast<double>(items) * d;
    std::printf("median step %.4f s: %.0f sessions/s; the scoring GEMMs alone are %.1f GFLOP -> %.1f GFLOP/s\n", median,
                batch_size / median, scoring_flops / 1e9, scoring_flops / median / 1e9);
    std::printf("{\"impl\": \"embsr\", \"model\": \"%s\", \"backend\": \"%s\", \"threads\": %d, \"batch\": %d, \"items\": %d, \"d\": %d, "
                "\"max_length\": %d, \"sessions\": \"%s\", \"gemm\": \"%s\", \"step_seconds_median\": %.6f, \"sessions_per_second\": %.1f, \"scoring_gflops\": %.2f, "
                "\"peak_rss_mib\": %.1f}\n",
                name.c_str(), Exec::name(), Exec().concurrency(), batch_size, items, d, max_length, o.sessions,
                embsr::host_gemm_library(), median, batch_size / median,
                scoring_flops / median / 1e9, rss);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  int batch_size = 512, items = 183562, ops = 6, max_length = 50, d = 100, steps = 3;
  bool profile = false, repeat = false;
  std::string jd_file, sessions_out, space = "default", model = "embsr";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_train_step: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoi(argv[++i]);
    };
    if (a == "--batch") batch_size = value();
    else if (a == "--items") items = value();
    else if (a == "--ops") ops = value();
    else if (a == "--max-length") max_length = value();
    else if (a == "--d") d = value();
    else if (a == "--steps") steps = value();
    else if (a == "--profile") profile = true;
    else if (a == "--repeat") repeat = true;
    else if ((a == "--jd" || a == "--write-sessions" || a == "--space" || a == "--model") && i + 1 < argc)
      (a == "--jd" ? jd_file : a == "--space" ? space : a == "--model" ? model : sessions_out) = argv[++i];
    else if (a.rfind("--kokkos", 0) != 0) {
      std::fprintf(stderr, "usage: bench_train_step [--batch N] [--items V] [--ops O] [--max-length L] [--d D] [--steps S] [--profile] [--jd FILE] [--write-sessions FILE] [--space default|serial] [--repeat] [--model NAME]\n");
      return 2;
    }
  }
  embsr::ExampleSet set;
  try {
    if (jd_file.empty()) {
      set = embsr::bench::synthetic_sessions(batch_size, items, ops, max_length);
    } else {
      int log_items = 0;
      set = embsr::bench::jd_sessions(jd_file, max_length, batch_size, ops, log_items);
      items = std::max(items, log_items);
    }
    if (!sessions_out.empty()) embsr::bench::write_sessions(set, items, ops, sessions_out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
  const Options o{batch_size, items, ops, max_length, d, steps, profile, repeat, jd_file.empty() ? "synthetic" : "jd", model};
  try {
#if defined(KOKKOS_ENABLE_SERIAL)
    if (space == "serial") return time_steps<Kokkos::Serial>(set, o);
#endif
    if (space != "default") {
      std::fprintf(stderr, "bench_train_step: --space must be default or serial (Kokkos built with Serial), got '%s'\n",
                   space.c_str());
      return 2;
    }
    return time_steps<Kokkos::DefaultExecutionSpace>(set, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
}
