// Data-parallel training on MPI (issue 17): the trainer's own steps, N ranks x T threads, and the
// allreduce of the flat gradient store on its own.
//
//   mpirun -np N bench_data_parallel [--model embsr] [--items 3758] [--ops 10] [--max-length 40] [--d 100]
//                                    [--batch 512] [--steps 8] [--allreduce-repeats 20] [--allreduce-only]
//
// Training: embsr::Trainer::run() for one epoch of `steps` global batches of synthetic sessions
// (benchmarks/synthetic_sessions.hpp; only sizes matter for time), no validation: sessions/s of the
// epoch without its first step (which allocates the caches), peak resident memory of every rank.
// Allreduce: the sum of a float buffer of the model's parameter count over the ranks, in place,
// `allreduce-repeats` times after one warm-up: median seconds and the bytes each step moves.
// --allreduce-only skips the training (the item counts of the paper's full JD sets: the buffer is
// what matters there, and one step of such a model takes minutes on 2 cores).
// Rank 0 prints; the last line is JSON (scripts/bench_mpi.sh collects it).
#include <embsr/embsr.hpp>
#include <embsr/dist/mpi_communicator.hpp>
#include <embsr/model/registry_instances.hpp>  // every registered model is compiled once, in registry_instances.cpp

#include "synthetic_sessions.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string model = "embsr";
  int items = 3758, ops = 10, max_length = 40, d = 100, batch = 512, steps = 8, repeats = 20;
  bool allreduce_only = false;
};

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

int run(const Options& o, embsr::MpiCommunicator& comm) {
  using Exec = Kokkos::DefaultExecutionSpace;
  embsr::ModelOptions options;
  options.set("num_items", o.items).set("num_ops", o.ops).set("max_length", o.max_length).set("d", o.d);
  const embsr::ModelOptions complete = embsr::complete_model_options(o.model, options);
  const std::uint64_t parameters = embsr::find_model_spec(o.model).count(complete).parameter_values;
  const double bytes = 4.0 * static_cast<double>(parameters);

  // The allreduce alone, on the buffer of the parameter store's size.
  std::vector<float> buffer(parameters, 1.0f);
  std::vector<double> times;
  for (int r = 0; r <= o.repeats; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = std::chrono::steady_clock::now();
    comm.allreduce_sum(buffer.data(), buffer.size(), false);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) times.push_back(sec);  // the first one sets up MPI's buffers
  }
  std::vector<double> max_time(times.size());
  MPI_Allreduce(times.data(), max_time.data(), static_cast<int>(times.size()), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  const double allreduce_s = median(max_time);
  buffer = std::vector<float>();

  double sessions_per_s = 0, step_s = 0;
  if (!o.allreduce_only) {
    embsr::PreparedData data;
    data.train = embsr::bench::synthetic_sessions(o.batch * o.steps, o.items, o.ops, o.max_length);
    for (int i = 0; i < o.items; ++i) data.item_vocab.add(std::to_string(i));
    for (int i = 0; i < o.ops; ++i) data.op_vocab.add("op" + std::to_string(i));
    auto model = embsr::make_model<Exec>(o.model, complete);
    embsr::TrainOptions train;
    train.epochs = 1;
    train.batch_size = static_cast<std::size_t>(o.batch);
    train.progress = false;
    train.communicator = &comm;
    std::vector<double> step_end;
    const auto t0 = std::chrono::steady_clock::now();
    train.on_step = [&](std::uint64_t, double) {
      step_end.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    embsr::Trainer<Exec> trainer(*model, data, train);
    trainer.run();
    // Steps 2..S: the first allocates every cache.
    if (step_end.size() >= 2) {
      step_s = (step_end.back() - step_end.front()) / static_cast<double>(step_end.size() - 1);
      sessions_per_s = o.batch / step_s;
    }
  }
  const double rss = peak_rss_mib();
  double rss_max = 0, rss_sum = 0;
  MPI_Allreduce(&rss, &rss_max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(&rss, &rss_sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  if (comm.is_root()) {
    std::printf("bench_data_parallel: %s, %d ranks x %d threads (%s), |V| %d, d %d, global batch %d\n", o.model.c_str(),
                comm.size(), Exec().concurrency(), comm.describe().c_str(), o.items, o.d, o.batch);
    std::printf("  gradient store: %llu floats = %.1f MB per step and rank into the allreduce\n",
                static_cast<unsigned long long>(parameters), bytes / 1e6);
    std::printf("  allreduce: median %.4f s over %d (slowest rank each), %.2f GB/s of buffer\n", allreduce_s,
                o.repeats, bytes / allreduce_s / 1e9);
    if (!o.allreduce_only)
      std::printf("  training: %.4f s per step (steps 2..%d), %.0f sessions/s\n", step_s, o.steps, sessions_per_s);
    std::printf("  peak resident memory: %.1f MiB per rank (largest), %.1f MiB all ranks\n", rss_max, rss_sum);
    std::printf("{\"model\": \"%s\", \"ranks\": %d, \"threads\": %d, \"items\": %d, \"d\": %d, \"batch\": %d, "
                "\"parameters\": %llu, \"allreduce_bytes\": %.0f, \"allreduce_seconds\": %.6f, \"step_seconds\": %.6f, "
                "\"sessions_per_second\": %.1f, \"peak_rss_mib_max\": %.1f, \"peak_rss_mib_total\": %.1f}\n",
                o.model.c_str(), comm.size(), Exec().concurrency(), o.items, o.d, o.batch,
                static_cast<unsigned long long>(parameters), bytes, allreduce_s, step_s, sessions_per_s, rss_max, rss_sum);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  embsr::MpiSession mpi(&argc, &argv);
  embsr::MpiCommunicator comm;
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_data_parallel: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model") o.model = next();
    else if (a == "--items") o.items = std::atoi(next().c_str());
    else if (a == "--ops") o.ops = std::atoi(next().c_str());
    else if (a == "--max-length") o.max_length = std::atoi(next().c_str());
    else if (a == "--d") o.d = std::atoi(next().c_str());
    else if (a == "--batch") o.batch = std::atoi(next().c_str());
    else if (a == "--steps") o.steps = std::atoi(next().c_str());
    else if (a == "--allreduce-repeats") o.repeats = std::atoi(next().c_str());
    else if (a == "--allreduce-only") o.allreduce_only = true;
    else {
      std::fprintf(stderr, "usage: see the top of benchmarks/bench_data_parallel.cpp\n");
      return 2;
    }
  }
  if (o.items < 1 || o.ops < 1 || o.d < 1 || o.batch < 1 || o.steps < 2 || o.repeats < 1) {
    std::fprintf(stderr, "bench_data_parallel: sizes must be positive, --steps >= 2\n");
    return 2;
  }
  setenv("OMP_PROC_BIND", "false", 0);
  Kokkos::ScopeGuard kokkos;
  try {
    return run(o, comm);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data_parallel: rank %d: %s\n", comm.rank(), e.what());
    embsr::MpiCommunicator::abort_all(1);
  }
}
