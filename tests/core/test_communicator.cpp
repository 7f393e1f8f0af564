// The communicator interface of data-parallel training (core/communicator.hpp) without MPI: how a
// global batch is shared out, the one-process default, and the View entry point's host path. The
// MPI side runs in tests/cli/mpi_training.sh (2 and 3 ranks against one process).
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/communicator.hpp>

namespace test_communicator {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

using namespace embsr;

// A stand-in for `copies` ranks that all hold the same values: their sum is copies x the values.
class IdenticalRanks final : public Communicator {
 public:
  explicit IdenticalRanks(int copies) : copies_(copies) {}
  int size() const override { return copies_; }
  void allreduce_sum(float* data, std::size_t n, bool on_device) override {
    REQUIRE_FALSE(on_device);  // host memory in this build
    for (std::size_t i = 0; i < n; ++i) data[i] *= static_cast<float>(copies_);
    ++calls;
  }
  int calls = 0;

 private:
  int copies_;
};

TEST_CASE("share_of gives every item exactly one rank, in order, shares differing by at most one", "[communicator]") {
  for (std::size_t n = 0; n <= 40; ++n) {
    for (int ranks = 1; ranks <= 6; ++ranks) {
      std::size_t next = 0, smallest = n, largest = 0;
      for (int r = 0; r < ranks; ++r) {
        const Share s = share_of(n, r, ranks);
        REQUIRE(s.begin == next);  // contiguous and in rank order
        REQUIRE(s.end >= s.begin);
        next = s.end;
        smallest = std::min(smallest, s.size());
        largest = std::max(largest, s.size());
      }
      REQUIRE(next == n);  // covers all
      REQUIRE(largest - smallest <= 1);
      if (n >= static_cast<std::size_t>(ranks)) REQUIRE(smallest >= 1);
    }
  }
  CHECK(share_of(63, 0, 2).size() == 32);
  CHECK(share_of(63, 1, 2).size() == 31);
  CHECK_THROWS_AS(share_of(10, 2, 2), InvalidArgument);
  CHECK_THROWS_AS(share_of(10, -1, 2), InvalidArgument);
  CHECK_THROWS_AS(share_of(10, 0, 0), InvalidArgument);
}

TEST_CASE("one process: rank 0 of 1, every sum the identity, nothing sent", "[communicator]") {
  Communicator& alone = single_process();
  CHECK(alone.rank() == 0);
  CHECK(alone.size() == 1);
  CHECK(alone.is_root());
  std::vector<double> values{1.5, -2.0};
  alone.allreduce_sum(values.data(), values.size());
  CHECK(values == std::vector<double>{1.5, -2.0});
  Kokkos::View<float*, Kokkos::HostSpace> v("v", 3);
  Kokkos::deep_copy(v, 2.0f);
  allreduce_sum(alone, Kokkos::DefaultHostExecutionSpace(), v);
  CHECK(v(0) == 2.0f);
  CHECK(reduction_path<Kokkos::HostSpace>(alone) == "in host memory");
}

TEST_CASE("allreduce_sum of a View hands the whole View to the communicator after the kernels", "[communicator]") {
  using Exec = Kokkos::DefaultExecutionSpace;
  Kokkos::View<float*, Exec::memory_space> v("v", 1000);
  Kokkos::parallel_for("fill", Kokkos::RangePolicy<Exec>(0, 1000), KOKKOS_LAMBDA(const int i) { v(i) = 0.5f * i; });
  IdenticalRanks three(3);
  allreduce_sum(three, Exec(), v);  // must fence the fill before reading
  CHECK(three.calls == 1);
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  for (int i = 0; i < 1000; ++i) REQUIRE(host(i) == 1.5f * i);
}

}  // namespace test_communicator
