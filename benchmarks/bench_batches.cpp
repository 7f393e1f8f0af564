// Throughput of the host-side batch pipeline on real JD sessions, on one thread:
//   1. session structure + Boost multigraph build + lowering, per session;
//   2. full ragged batch building (BatchBuilder, batches of 512 from a shuffled BatchSampler);
//   3. the same plus upload into a reused Batch in the default execution space's memory space
//      (HostSpace on host builds, CudaSpace on CUDA builds) with copy_from.
// Usage: bench_batches [jd_file ...] [--max-length L] [--seconds S]
// (default: the two JD samples under ../shared/data; each file's lines are sessions).
#include <chrono>
#include <cstdio>
#include <cstdlib>


#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/data/jd_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/batch/batch_builder.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/graph/session_structure.hpp>
#include <embsr/graph/session_multigraph.hpp>

namespace {

using Clock = std::chrono::steady_clock;

template <class F>
double sessions_per_second(std::size_t sessions_per_call, double seconds, F&& call) {
  call();  // warm-up: buffers reach their steady-state capacity
  std::size_t sessions = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    call();
    sessions += sessions_per_call;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return static_cast<double>(sessions) / elapsed;
}

}  // namespace

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  std::vector<std::string> files;
  int max_length = 40;
  double seconds = 1.0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--max-length" && i + 1 < argc) {
      max_length = std::atoi(argv[++i]);
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (arg.rfind("--kokkos", 0) != 0) {
      files.push_back(arg);
    }
  }
#ifdef EMBSR_SHARED_DATA_DIR
  const std::string shared = EMBSR_SHARED_DATA_DIR;
#else
  const std::string shared = "../shared/data";
#endif
  if (files.empty()) {
    files = {shared + "/jd_micro_behavior_hup/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample",
             shared + "/jd_micro_behavior_hup/JD_Micro_Behaviors_Datasets_sample/JD_Computers_sample"};
  }

  embsr::JdOptions jd;
  jd.dedupe_identical_sessions = false;  // measure every line as a session
  const embsr::SessionDataset data = embsr::load_jd(files, jd);
  embsr::PreprocessOptions options;
  options.max_length = max_length;
  options.train_fraction = 1.0;
  options.valid_fraction = 0.0;
  const embsr::PreparedData prepared = embsr::preprocess(data, options);
  const embsr::ExampleSet& set = prepared.train;
  if (set.empty()) {
    std::fprintf(stderr, "no sessions\n");
    return 1;
  }

  embsr::SessionStructure structure;
  for (std::size_t e = 0; e < set.size(); ++e) structure.compute(set.input_items(e));
  std::size_t macro = 0, distinct = 0;
  for (std::size_t e = 0; e < set.size(); ++e) {
    structure.compute(set.input_items(e));
    macro += structure.num_macro();
    distinct += structure.num_distinct();
  }
  const double n = static_cast<double>(set.size());
  std::printf("sessions %zu (max_length %d): mean %.1f micro-behaviors, %.1f macro items, %.1f nodes\n", set.size(),
              max_length, static_cast<double>(set.num_events()) / n, static_cast<double>(macro) / n,
              static_cast<double>(distinct) / n);

  embsr::SessionMultigraphBuilder graph;
  embsr::LoweredGraph lowered;
  const double graph_rate = sessions_per_second(set.size(), seconds, [&] {
    for (std::size_t e = 0; e < set.size(); ++e) {
      structure.compute(set.input_items(e));
      graph.build_lowered(structure, lowered);
    }
  });
  std::printf("structure + Boost multigraph + lowering: %12.0f sessions/s\n", graph_rate);

  const std::size_t batch_size = 512;
  embsr::BatchSampler sampler(set.size(), batch_size, true, 1);
  embsr::BatchBuilder builder;
  embsr::HostBatch host;
  std::uint64_t epoch = 0;
  const double batch_rate = sessions_per_second(set.size(), seconds, [&] {
    sampler.set_epoch(epoch++);
    for (std::size_t b = 0; b < sampler.num_batches(); ++b) builder.build(set, sampler.batch(b), host);
  });
  std::printf("ragged HostBatch building (batch %zu):    %12.0f sessions/s\n", batch_size, batch_rate);

  using MemorySpace = Kokkos::DefaultExecutionSpace::memory_space;
  embsr::Batch<MemorySpace> batch;
  const double upload_rate = sessions_per_second(set.size(), seconds, [&] {
    sampler.set_epoch(epoch++);
    for (std::size_t b = 0; b < sampler.num_batches(); ++b) {
      builder.build(set, sampler.batch(b), host);
      batch.copy_from(host);
    }
  });
  std::printf("HostBatch + copy_from(Batch<%s>): %12.0f sessions/s\n", MemorySpace::name(), upload_rate);
  return 0;
}
