#pragma once
// The processes that train one model together (data parallelism) and the few collective operations
// the trainer needs from them: an element-wise sum over every process, and the rank and size.
//
// The library itself never needs MPI: Communicator is an interface whose default is this process
// alone (every operation the identity), and the trainer (train/trainer.hpp) only ever talks to it.
// dist/mpi_communicator.hpp implements it on MPI, for the tools built where MPI is found; a user can
// implement it on any other transport (NCCL, Gloo, a test double).
//
// allreduce_sum(exec, view) is the one entry point for Kokkos Views: a View in memory the host can
// read goes to the transport as it is; a View in device memory goes directly when the transport
// accepts device pointers (a CUDA-aware MPI), otherwise it is staged through a host mirror
// (copied down, reduced, copied back). The caller's execution space is fenced first, so that the
// values reduced are the ones its kernels wrote.

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>

namespace embsr {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const { return 0; }  // 0-based; rank 0 alone writes files and prints
  virtual int size() const { return 1; }
  bool is_root() const { return rank() == 0; }

  // In place: data[i] = sum over the processes of their data[i], on every process. `on_device`:
  // `data` is device memory (only passed when accepts_device_memory()).
  virtual void allreduce_sum(float* data, std::size_t n, bool on_device = false) { (void)data, (void)n, (void)on_device; }
  virtual void allreduce_sum(double* data, std::size_t n) { (void)data, (void)n; }
  virtual void allreduce_sum(std::uint64_t* data, std::size_t n) { (void)data, (void)n; }

  // The transport reads and writes device memory itself (a CUDA-aware MPI); otherwise device
  // buffers are staged through host memory.
  virtual bool accepts_device_memory() const { return false; }

  // One line for the start of a run: the transport, the processes, how device buffers travel.
  virtual std::string describe() const { return "one process"; }
};

// The communicator of a run without any: this process alone.
inline Communicator& single_process() {
  static Communicator alone;
  return alone;
}

// Contiguous share [begin, end) of rank `rank` among `ranks` of `n` items: the first n % ranks ranks
// take one more. Every item has exactly one owner, in order, whatever n (n < ranks leaves some empty).
struct Share {
  std::size_t begin = 0, end = 0;
  std::size_t size() const { return end - begin; }
};
inline Share share_of(std::size_t n, int rank, int ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks)
    throw InvalidArgument("share_of: rank " + std::to_string(rank) + " outside [0, " + std::to_string(ranks) + ")");
  const auto r = static_cast<std::size_t>(rank), R = static_cast<std::size_t>(ranks);
  const std::size_t base = n / R, extra = n % R;
  const std::size_t begin = r * base + (r < extra ? r : extra);
  return Share{begin, begin + base + (r < extra ? 1 : 0)};
}

// How allreduce_sum moves a View of `MemorySpace` for this communicator, for the start of a run.
template <class MemorySpace>
std::string reduction_path(const Communicator& comm) {
  if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemorySpace>::accessible) {
    (void)comm;
    return "in host memory";
  } else {
    return comm.accepts_device_memory() ? "directly from device memory (CUDA-aware MPI)"
                                        : "staged through host memory (the MPI is not CUDA-aware)";
  }
}

// values(i) *= factor for every i, on `exec`: a rank weighing its gradients before the sum. (A free
// function: nvcc does not compile a device lambda inside a private member function.)
template <class ExecSpace, class... Props>
void scale_in_place(const ExecSpace& exec, const Kokkos::View<float*, Props...>& values, float factor) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "scale_in_place: first argument must be an execution space");
  static_assert(Kokkos::SpaceAccessibility<ExecSpace, typename Kokkos::View<float*, Props...>::memory_space>::accessible,
                "scale_in_place: the View must be accessible from the execution space");
  const auto v = values;
  Kokkos::parallel_for("embsr::scale_in_place", Kokkos::RangePolicy<ExecSpace>(exec, 0, v.extent(0)),
                       KOKKOS_LAMBDA(const std::int64_t i) { v(i) *= factor; });
}

// Sums a contiguous float View over the processes, in place (see the top of this file for how device
// memory travels). Fences `exec` first.
template <class ExecSpace, class... Props>
void allreduce_sum(Communicator& comm, const ExecSpace& exec, const Kokkos::View<float*, Props...>& values) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "allreduce_sum: first argument must be an execution space");
  using View = Kokkos::View<float*, Props...>;
  using memory_space = typename View::memory_space;
  static_assert(Kokkos::SpaceAccessibility<ExecSpace, memory_space>::accessible,
                "allreduce_sum: the View must be accessible from the execution space");
  if (comm.size() == 1) return;
  if (values.span_is_contiguous() == false) throw InvalidArgument("allreduce_sum: the View must be contiguous");
  exec.fence();
  constexpr bool host_readable = Kokkos::SpaceAccessibility<Kokkos::HostSpace, memory_space>::accessible;
  if constexpr (host_readable) {
    comm.allreduce_sum(values.data(), values.extent(0), /*on_device=*/false);
  } else {
    if (comm.accepts_device_memory()) {
      comm.allreduce_sum(values.data(), values.extent(0), /*on_device=*/true);
    } else {
      auto staged = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), values);
      comm.allreduce_sum(staged.data(), staged.extent(0), /*on_device=*/false);
      Kokkos::deep_copy(exec, values, staged);
      exec.fence();
    }
  }
}

}  // namespace embsr
