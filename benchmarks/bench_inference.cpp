// Inference cost: batch-1 latency (one session in, top-k ids on the host out: batch building,
// host-to-device copy, forward pass, top-k on the device, copy back) as p50 / p99, and the
// throughput of batches of many sessions. Random parameters: timing does not depend on training.
//
//   bench_inference [--model embsr] [--items 183562] [--ops 6] [--max-length 50] [--d 100] [--k 20]
//                   [--calls 300] [--batch 512] [--batches 5]
//
// --model NAME: any registered model (embsr-train --list-models), built through the registry and
// served through the session-model interface, as embsr-recommend does; a model that learns by
// counting is fit on the synthetic sessions first, and the fit is timed (its "training").
#include <embsr/embsr.hpp>
#include <embsr/model/registry_instances.hpp>  // every registered model is compiled once, in registry_instances.cpp

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "synthetic_sessions.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  int items = 183562, ops = 6, max_length = 50, d = 100, k = 20, calls = 300, batch_size = 512, batches = 5;
  std::string model_name = "embsr";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_inference: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoi(argv[++i]);
    };
    if (a == "--model") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_inference: --model needs a value\n");
        return 2;
      }
      model_name = argv[++i];
    } else if (a == "--items") items = value();
    else if (a == "--ops") ops = value();
    else if (a == "--max-length") max_length = value();
    else if (a == "--d") d = value();
    else if (a == "--k") k = value();
    else if (a == "--calls") calls = value();
    else if (a == "--batch") batch_size = value();
    else if (a == "--batches") batches = value();
    else if (a.rfind("--kokkos", 0) != 0) {
      std::fprintf(stderr,
                   "usage: bench_inference [--model NAME] [--items V] [--ops O] [--max-length L] [--d D] [--k K] [--calls N] "
                   "[--batch B] [--batches N]\n");
      return 2;
    }
  }
  if (calls < 2 || batch_size < 1 || batches < 1 || k < 1) {
    std::fprintf(stderr, "bench_inference: --calls >= 2, --batch, --batches and --k >= 1\n");
    return 2;
  }
  using Exec = Kokkos::DefaultExecutionSpace;
  using M = Exec::memory_space;
  embsr::ModelOptions options;
  options.set("num_items", items).set("num_ops", ops).set("max_length", max_length);
  if (embsr::find_model_spec(model_name).option("d") != nullptr) options.set("d", d);
  const auto model = embsr::make_model<Exec>(model_name, options);
  const embsr::ExampleSet set = embsr::bench::synthetic_sessions(std::max(calls, batch_size), items, ops, max_length, 7);
  double fit_seconds = 0;
  if (!model->learns_by_gradients()) {
    const auto t0 = Clock::now();
    model->fit(set);
    fit_seconds = seconds_since(t0);
  }
  model->freeze();  // as embsr::Recommender does (EMBSR: the normalised item table is computed once)
  std::printf("bench_inference: %s, |V|=%d, |O|=%d, d=%d, t<=%d, top-%d, %s with %d threads\n", model_name.c_str(), items,
              ops, d, max_length, k, Exec::name(), Exec().concurrency());
  if (!model->learns_by_gradients())
    std::printf("fit on %zu sessions: %.4f s\n", set.size(), fit_seconds);

  embsr::BatchBuilder builder;
  embsr::HostBatch host;
  embsr::Batch<M> batch;
  Kokkos::View<int**, Kokkos::LayoutRight, M> ids;
  Kokkos::View<float**, Kokkos::LayoutRight, M> values;
  auto host_ids = Kokkos::create_mirror_view(ids);
  std::size_t checksum = 0;  // keeps the results observable
  auto run = [&](int first, int count) {
    const auto range = embsr::bench::id_range(first, count);
    builder.build(set, embsr::Span<const embsr::index_t>(range.data(), range.size()), host);
    batch.copy_from(host);
    model->top_k(batch, k, ids, values);
    if (host_ids.extent(0) != ids.extent(0) || host_ids.extent(1) != ids.extent(1)) host_ids = Kokkos::create_mirror_view(ids);
    Kokkos::deep_copy(host_ids, ids);
    checksum += static_cast<std::size_t>(host_ids(0, 0));
  };

  // Batch 1: the first calls allocate (cache sizes grow to the longest session seen): warm up on a
  // full pass over distinct sessions, then time.
  for (int c = 0; c < std::min(calls, 50); ++c) run(c, 1);
  std::vector<double> latency;
  for (int c = 0; c < calls; ++c) {
    const auto t0 = Clock::now();
    run(c, 1);
    latency.push_back(seconds_since(t0));
  }
  const double p50 = percentile(latency, 0.5), p99 = percentile(latency, 0.99);
  std::printf("batch 1: p50 %.3f ms, p99 %.3f ms over %d calls\n", 1e3 * p50, 1e3 * p99, calls);

  run(0, batch_size);  // warm-up (allocation)
  std::vector<double> per_batch;
  for (int r = 0; r < batches; ++r) {
    const auto t0 = Clock::now();
    run(0, batch_size);
    per_batch.push_back(seconds_since(t0));
  }
  const double median = percentile(per_batch, 0.5);
  std::printf("batch %d: median %.4f s per batch, %.0f sessions/s\n", batch_size, median, batch_size / median);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double rss = static_cast<double>(usage.ru_maxrss) / 1024.0;
  std::printf("peak resident memory: %.1f MiB (checksum %zu)\n", rss, checksum);
  std::printf("{\"impl\": \"embsr-infer\", \"model\": \"%s\", \"backend\": \"%s\", \"threads\": %d, \"items\": %d, \"d\": %d, \"max_length\": %d, "
              "\"k\": %d, \"batch1_p50_ms\": %.4f, \"batch1_p99_ms\": %.4f, \"batch\": %d, \"batch_sessions_per_second\": %.1f, "
              "\"peak_rss_mib\": %.1f}\n",
              model_name.c_str(), Exec::name(), Exec().concurrency(), items, d, max_length, k, 1e3 * p50, 1e3 * p99, batch_size, batch_size / median,
              rss);
  return 0;
}
