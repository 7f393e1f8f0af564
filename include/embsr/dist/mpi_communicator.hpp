#pragma once
// Communicator (core/communicator.hpp) on MPI: data-parallel training with `mpirun -np N`.
//
// Optional: only a program that includes this header needs MPI (CMake: the target embsr::mpi, made
// when find_package(MPI) finds one; the library and its other headers never include <mpi.h>).
//
//  - MpiSession initialises MPI (thread level FUNNELED: Kokkos' threads never call MPI, the calling
//    thread does) and finalises it; one per program, before Kokkos or after it, either way.
//    MpiSession::launched() tells whether the program was started by an MPI launcher (mpirun,
//    mpiexec, srun with PMI/PMIx): a tool started on its own then runs as one process without
//    initialising MPI at all. (Open MPI's "singleton" start would otherwise fork a helper daemon and
//    map shared-memory files on every plain `embsr-train`, and fail where those are not allowed,
//    e.g. under `ulimit -f`.) EMBSR_MPI=1 in the environment forces the initialisation.
//  - MpiCommunicator works on MPI_COMM_WORLD. Its sums are MPI_Allreduce with MPI_SUM, in pieces of
//    at most 2^30 elements (MPI counts are int; an item table of 10^7 x 100 floats is 2^30).
//  - Device memory: with an Open MPI built CUDA-aware (MPIX_CUDA_AWARE_SUPPORT at compile time and
//    MPIX_Query_cuda_support() at run time) device pointers go to MPI directly; otherwise
//    allreduce_sum (core/communicator.hpp) stages them through host memory. describe() says which.
//  - Failure: MPI's default error handler (MPI_ERRORS_ARE_FATAL) stops every rank on an MPI error,
//    and `mpirun` stops the job when a rank dies. A rank that throws must call abort_all() (the
//    tools do, with the message): the others would otherwise wait in the next collective forever.

#include <mpi.h>
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>  // Open MPI's extensions: MPIX_CUDA_AWARE_SUPPORT, MPIX_Query_cuda_support
#endif

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <embsr/core/communicator.hpp>
#include <embsr/core/error.hpp>

namespace embsr {

namespace detail {
inline void check_mpi(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(std::string("MPI: ") + what + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}
}  // namespace detail

// MPI_Init_thread / MPI_Finalize for the program's lifetime (a no-op pair when MPI is already up).
class MpiSession {
 public:
  // True when an MPI launcher started this process: the variables Open MPI (OMPI_COMM_WORLD_SIZE),
  // PMIx (PMIX_RANK), MPICH / Intel MPI's Hydra and Slurm's PMI (PMI_RANK, PMI_SIZE) and MVAPICH
  // (MV2_COMM_WORLD_SIZE) give their ranks, or EMBSR_MPI=1.
  static bool launched() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"})
      if (std::getenv(name) != nullptr) return true;
    const char* forced = std::getenv("EMBSR_MPI");
    return forced != nullptr && std::string(forced) == "1";
  }

  MpiSession(int* argc, char*** argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    detail::check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owns_ = true;
  }
  ~MpiSession() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_ && !finalized) MPI_Finalize();
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

 private:
  bool owns_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    detail::check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    detail::check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
    device_direct_ = MPIX_Query_cuda_support() == 1;
#endif
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool accepts_device_memory() const override { return device_direct_; }

  void allreduce_sum(float* data, std::size_t n, bool on_device) override {
    (void)on_device;  // a CUDA-aware MPI tells host from device pointers itself
    sum_in_pieces(data, n, MPI_FLOAT);
  }
  void allreduce_sum(double* data, std::size_t n) override { sum_in_pieces(data, n, MPI_DOUBLE); }
  void allreduce_sum(std::uint64_t* data, std::size_t n) override { sum_in_pieces(data, n, MPI_UINT64_T); }

  std::string describe() const override {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    std::string library(version, static_cast<std::size_t>(length));
    library = library.substr(0, library.find_first_of(",\n"));
    return "MPI (" + library + "), " + std::to_string(size_) + (size_ == 1 ? " rank" : " ranks") +
           (device_direct_ ? ", CUDA-aware" : ", not CUDA-aware");
  }

  // Stops every rank of the job (after the caller printed why): what a rank that cannot go on must
  // do, since the others are, or soon will be, waiting for it in a collective.
  [[noreturn]] static void abort_all(int code = 1) {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::abort();  // MPI_Abort does not return; this is for the compiler
  }

 private:
  template <class T>
  void sum_in_pieces(T* data, std::size_t n, MPI_Datatype type) {
    constexpr std::size_t kPiece = std::size_t(1) << 30;
    for (std::size_t done = 0; done < n; done += kPiece) {
      const auto count = static_cast<int>(std::min(kPiece, n - done));
      detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + done, count, type, MPI_SUM, MPI_COMM_WORLD),
                        "MPI_Allreduce");
    }
  }

  int rank_ = 0, size_ = 1;
  bool device_direct_ = false;
};

}  // namespace embsr
