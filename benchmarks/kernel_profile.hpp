#pragma once
// Where a step's time goes, by Kokkos kernel label and by profiling region (embsr::gemm), through
// Kokkos' own tool callbacks: no external tool library needed. Wall time from a kernel's begin to
// its end; on host backends a kernel is synchronous, on a GPU the end callback fences first, so the
// numbers are the kernels' real durations (and the profile itself slows a GPU step down a little).
// Regions nest around kernels (a region's time includes its kernels'); gemm() runs no kernels on
// host memory, so its region is the BLAS call. Also counts the View allocations made while
// recording, by label: a training loop should stop allocating after its first step.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

namespace embsr::bench {

namespace kernel_profile_detail {

using Clock = std::chrono::steady_clock;

struct State {
  bool on = false;
  std::map<std::string, std::pair<double, long>> totals;  // label -> (seconds, calls)
  std::vector<std::pair<std::string, Clock::time_point>> open_kernels;  // indexed by kernel id
  std::vector<std::pair<std::string, Clock::time_point>> open_regions;  // a stack
  std::map<std::string, std::pair<long, std::uint64_t>> allocations;  // label -> (count, bytes)
};

inline State& state() {
  static State s;
  return s;
}

inline void add(const std::string& label, Clock::time_point t0) {
  auto& e = state().totals[label];
  e.first += std::chrono::duration<double>(Clock::now() - t0).count();
  e.second += 1;
}

inline void begin_kernel(const char* name, std::uint32_t, std::uint64_t* id) {
  auto& s = state();
  *id = s.open_kernels.size();
  s.open_kernels.emplace_back(name, Clock::now());
}

inline void end_kernel(std::uint64_t id) {
  auto& s = state();
  if (!s.on || id >= s.open_kernels.size()) return;
  Kokkos::fence();
  add(s.open_kernels[id].first, s.open_kernels[id].second);
  if (id + 1 == s.open_kernels.size()) s.open_kernels.pop_back();
}

inline void push_region(const char* name) { state().open_regions.emplace_back(name, Clock::now()); }

inline void pop_region() {
  auto& s = state();
  if (s.open_regions.empty()) return;
  Kokkos::fence();
  if (s.on) add("[region] " + s.open_regions.back().first, s.open_regions.back().second);
  s.open_regions.pop_back();
}

inline void allocate(const Kokkos::Tools::SpaceHandle, const char* label, const void*, const std::uint64_t bytes) {
  auto& s = state();
  if (!s.on) return;
  auto& e = s.allocations[label];
  e.first += 1;
  e.second += bytes;
}

}  // namespace kernel_profile_detail

// Install once after Kokkos::initialize; record() / pause() choose which steps count.
class KernelProfile {
 public:
  KernelProfile() {
    namespace tools = Kokkos::Tools::Experimental;
    using namespace kernel_profile_detail;
    tools::set_begin_parallel_for_callback(begin_kernel);
    tools::set_begin_parallel_reduce_callback(begin_kernel);
    tools::set_begin_parallel_scan_callback(begin_kernel);
    tools::set_end_parallel_for_callback(end_kernel);
    tools::set_end_parallel_reduce_callback(end_kernel);
    tools::set_end_parallel_scan_callback(end_kernel);
    tools::set_push_region_callback(push_region);
    tools::set_pop_region_callback(pop_region);
    tools::set_allocate_data_callback(allocate);
  }
  void record() { kernel_profile_detail::state().on = true; }
  void pause() { kernel_profile_detail::state().on = false; }

  // The labels taking the most time, per step, with their share of `step_seconds`.
  void print(int steps, double step_seconds, int top = 25) const {
    const auto& totals = kernel_profile_detail::state().totals;
    std::vector<std::pair<std::string, std::pair<double, long>>> rows(totals.begin(), totals.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
    double kernels = 0;
    for (const auto& r : rows)
      if (r.first.rfind("[region]", 0) != 0) kernels += r.second.first;
    std::printf("profile per step (%d steps; step %.1f ms; regions include their kernels):\n", steps, 1e3 * step_seconds);
    std::printf("  %9s %6s %7s  %s\n", "ms/step", "share", "calls", "kernel or region");
    for (int i = 0; i < static_cast<int>(rows.size()) && i < top; ++i) {
      const double ms = 1e3 * rows[static_cast<std::size_t>(i)].second.first / steps;
      std::printf("  %9.2f %5.1f%% %7.1f  %s\n", ms, 100.0 * ms / (1e3 * step_seconds),
                  static_cast<double>(rows[static_cast<std::size_t>(i)].second.second) / steps,
                  rows[static_cast<std::size_t>(i)].first.c_str());
    }
    std::printf("  %9.2f %5.1f%%          all Kokkos kernels (the rest: GEMMs, host code, allocation)\n",
                1e3 * kernels / steps, 100.0 * kernels / steps / step_seconds);
    const auto& allocations = kernel_profile_detail::state().allocations;
    long count = 0;
    std::uint64_t bytes = 0;
    for (const auto& a : allocations) {
      count += a.second.first;
      bytes += a.second.second;
    }
    std::printf("View allocations per step: %.1f (%.2f MiB)%s\n", static_cast<double>(count) / steps,
                static_cast<double>(bytes) / steps / (1024.0 * 1024.0), count ? ", by label:" : "");
    for (const auto& a : allocations)
      std::printf("  %7.1f x %10.1f KiB  %s\n", static_cast<double>(a.second.first) / steps,
                  static_cast<double>(a.second.second) / static_cast<double>(a.second.first) / 1024.0, a.first.c_str());
  }
};

}  // namespace embsr::bench
