// Portable random numbers: known answers, the sequential / counter-based equivalence, the bounded
// integer and shuffle, and the same values from inside Kokkos kernels.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <numeric>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/random.hpp>

#include "exec_spaces.hpp"

namespace test_random {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

using namespace embsr;

TEST_CASE("random: SplitMix64 reproduces the published reference outputs", "[random]") {
  // Vigna's splitmix64.c: seed 0 and seed 1234567 (the seed used in the xoshiro reference tests).
  Rng zero(0);
  CHECK(zero.next() == 0xe220a8397b1dcdafULL);
  CHECK(zero.next() == 0x6e789e6aa1b965f4ULL);
  CHECK(zero.next() == 0x06c45d188009454fULL);
  CHECK(zero.next() == 0xf88bb8a8724c81ecULL);
  Rng r(1234567);
  CHECK(r.next() == 6457827717110365317ULL);
  CHECK(r.next() == 3203168211198807973ULL);
  CHECK(r.next() == 9817491932198370423ULL);
  static_assert(mix64(0) == 0, "mix64 fixes 0");
  static_assert([] { Rng g(0); return g.next(); }() == 0xe220a8397b1dcdafULL, "usable in constant expressions");
}

TEST_CASE("random: streams, counters, bounded integers and shuffles match an independent reference", "[random]") {
  // Values from a separate Python implementation of the definitions in core/random.hpp
  // (arbitrary-precision integers, no shared code).
  CHECK(stream_key(42, 7) == 0x5864fa25fd883a8aULL);
  CHECK(counter_random(42, 7, 0) == 0x9c25c36dc45de5fcULL);
  CHECK(counter_random(42, 7, 1) == 0xeff8f204b4ebaecdULL);
  CHECK(counter_random(42, 7, 2) == 0x4f4c0a9f067fefedULL);

  Rng dice(42, 7);
  std::vector<std::uint64_t> rolls;
  for (int i = 0; i < 10; ++i) rolls.push_back(dice.below(6));
  CHECK(rolls == std::vector<std::uint64_t>{3, 5, 1, 1, 0, 4, 0, 4, 1, 2});

  // n = 2^63 + 1: almost half of all draws are rejected, so this exercises the rejection loop.
  Rng wide(2024);
  CHECK(wide.below((std::uint64_t(1) << 63) + 1) == 2753879015284396735ULL);
  CHECK(wide.below((std::uint64_t(1) << 63) + 1) == 1071633443198983212ULL);
  CHECK(wide.below((std::uint64_t(1) << 63) + 1) == 7660729286767878589ULL);

  std::vector<int> v(10);
  std::iota(v.begin(), v.end(), 0);
  Rng shuffler(9, 0);
  shuffle(Span<int>(v), shuffler);
  CHECK(v == std::vector<int>{4, 6, 8, 5, 0, 3, 1, 9, 7, 2});

  Rng u(5);
  CHECK(u.uniform() == 0.386768045983934);
}

TEST_CASE("random: counter form equals the sequential stream, and streams differ", "[random]") {
  for (std::uint64_t seed : {0ULL, 1ULL, 0xdeadbeefULL}) {
    for (std::uint64_t stream : {0ULL, 1ULL, 99ULL}) {
      Rng seq(seed, stream);
      const CounterRng ctr(seed, stream);
      for (std::uint64_t i = 0; i < 100; ++i) {
        const std::uint64_t x = seq.next();
        REQUIRE(counter_random(seed, stream, i) == x);
        REQUIRE(ctr(i) == x);
        REQUIRE(ctr.uniform(i) == to_unit_double(x));
        REQUIRE(ctr.uniform_float(i) == to_unit_float(x));
      }
    }
  }
  CHECK(counter_random(1, 0, 0) != counter_random(1, 1, 0));
  CHECK(counter_random(1, 0, 0) != counter_random(2, 0, 0));
  CHECK(stream_key(1, 0) != stream_key(0, 1));
}

TEST_CASE("random: unit doubles and floats stay in the half-open unit interval", "[random]") {
  CHECK(to_unit_double(0) == 0.0);
  CHECK(to_unit_double(~0ULL) < 1.0);
  CHECK(to_unit_double(~0ULL) == 1.0 - 1.0 / 9007199254740992.0);
  CHECK(to_unit_float(0) == 0.0f);
  CHECK(to_unit_float(~0ULL) < 1.0f);
  Rng r(3);
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double x = r.uniform();
    REQUIRE(x >= 0.0);
    REQUIRE(x < 1.0);
    sum += x;
  }
  CHECK(sum / 10000 == Approx(0.5).margin(0.02));
}

TEST_CASE("random: below is in range and close to uniform", "[random]") {
  Rng r(11);
  CHECK(r.below(0) == 0);
  for (int i = 0; i < 100; ++i) REQUIRE(r.below(1) == 0);
  std::array<int, 7> counts{};
  const int draws = 70000;
  for (int i = 0; i < draws; ++i) {
    const auto x = r.below(7);
    REQUIRE(x < 7);
    ++counts[x];
  }
  double chi2 = 0;
  for (const int c : counts) chi2 += (c - draws / 7.0) * (c - draws / 7.0) / (draws / 7.0);
  CHECK(chi2 < 22.5);  // 6 degrees of freedom: p < 0.001 beyond this
}

TEST_CASE("random: shuffle gives permutations, all equally likely, reproducibly", "[random]") {
  std::vector<int> empty;
  Rng r(1);
  shuffle(Span<int>(empty), r);
  std::vector<int> one{7};
  shuffle(Span<int>(one), r);
  CHECK(one == std::vector<int>{7});

  std::map<std::vector<int>, int> seen;
  const int trials = 6000;
  for (int t = 0; t < trials; ++t) {
    std::vector<int> v{0, 1, 2};
    shuffle(Span<int>(v), r);
    ++seen[v];
  }
  REQUIRE(seen.size() == 6);
  for (const auto& [perm, count] : seen) CHECK(count == Approx(trials / 6.0).margin(150));

  std::vector<int> a(1000), b(1000);
  std::iota(a.begin(), a.end(), 0);
  std::iota(b.begin(), b.end(), 0);
  Rng ra(77, 3), rb(77, 3);
  shuffle(Span<int>(a), ra);
  shuffle(Span<int>(b), rb);
  CHECK(a == b);
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  CHECK(sorted == identity);
  CHECK(a != identity);
}

TEMPLATE_LIST_TEST_CASE("random: counter values inside kernels match the host, whatever the thread count",
                        "[random][kokkos]", embsr::test::ExecutionSpaces) {
  using ExecutionSpace = TestType;
  const int n = 4096;
  Kokkos::View<std::uint64_t*, typename ExecutionSpace::memory_space> bits("bits", n);
  Kokkos::View<double*, typename ExecutionSpace::memory_space> unit("unit", n);
  Kokkos::View<std::uint64_t*, typename ExecutionSpace::memory_space> rolls("rolls", n);
  const CounterRng ctr(123, 4);
  Kokkos::parallel_for(
      "test_random_counter", Kokkos::RangePolicy<ExecutionSpace>(0, n), KOKKOS_LAMBDA(int i) {
        bits(i) = ctr(static_cast<std::uint64_t>(i));
        unit(i) = ctr.uniform(static_cast<std::uint64_t>(i));
        Rng local(ctr(static_cast<std::uint64_t>(i)));  // a per-element sequential generator
        rolls(i) = local.below(10);
      });
  const auto h_bits = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), bits);
  const auto h_unit = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), unit);
  const auto h_rolls = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), rolls);
  Rng seq(123, 4);
  for (int i = 0; i < n; ++i) {
    const std::uint64_t x = seq.next();
    REQUIRE(h_bits(i) == x);
    REQUIRE(h_unit(i) == to_unit_double(x));
    Rng local(x);
    REQUIRE(h_rolls(i) == local.below(10));
  }
}

}  // namespace test_random
