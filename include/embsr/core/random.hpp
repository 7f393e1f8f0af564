#pragma once
// Portable seeded random numbers. std::shuffle / std::uniform_int_distribution differ between
// standard libraries, so every random choice in embsr (data shuffling, dropout masks, parameter
// init) goes through these few integer-only functions instead: same seed, same bits, everywhere.
//
// Two forms share one generator (SplitMix64, Steele et al. 2014):
//  - Rng: sequential; state += gamma, output = mix64(state).
//  - counter_random(seed, stream, counter): random access, value = mix64(key(seed, stream) +
//    gamma * (counter + 1)). It equals the counter-th output of Rng(seed, stream), and depends on
//    nothing else, so a kernel that draws its numbers by counter (e.g. one per dropout element)
//    gives the same result whatever the thread count or backend.
// Everything callable from kernels is KOKKOS_INLINE_FUNCTION and uses no std:: functions.

#include <cstddef>
#include <cstdint>
#include <utility>

#include <Kokkos_Core.hpp>

#include <embsr/core/types.hpp>

namespace embsr {

namespace detail {
// SplitMix64's increment: odd, so the state walks through all 2^64 values before repeating.
KOKKOS_INLINE_FUNCTION constexpr std::uint64_t golden_gamma() { return 0x9e3779b97f4a7c15ULL; }
// Odd multiplier that spreads stream numbers before they are mixed with the seed.
KOKKOS_INLINE_FUNCTION constexpr std::uint64_t stream_multiplier() { return 0xd1b54a32d192ed03ULL; }

// Full 64 x 64 -> 128-bit product from 32-bit halves: no __int128 (absent on MSVC, slow on GPUs).
KOKKOS_INLINE_FUNCTION constexpr void mul_wide(std::uint64_t a, std::uint64_t b, std::uint64_t& hi,
                                               std::uint64_t& lo) {
  const std::uint64_t mask = 0xffffffffULL;
  const std::uint64_t a_lo = a & mask, a_hi = a >> 32, b_lo = b & mask, b_hi = b >> 32;
  const std::uint64_t p0 = a_lo * b_lo, p1 = a_lo * b_hi, p2 = a_hi * b_lo, p3 = a_hi * b_hi;
  const std::uint64_t mid = (p0 >> 32) + (p1 & mask) + (p2 & mask);
  lo = (mid << 32) | (p0 & mask);
  hi = p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}
}  // namespace detail

// SplitMix64's output function: a bijection on 64-bit words with full avalanche.
KOKKOS_INLINE_FUNCTION constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Starting state of stream `stream` of `seed`. For a fixed seed distinct streams give distinct keys
// (every step is a bijection in `stream`). Use separate seeds or stream ranges per purpose
// (shuffling, dropout, init) so that their sequences do not coincide.
KOKKOS_INLINE_FUNCTION constexpr std::uint64_t stream_key(std::uint64_t seed, std::uint64_t stream) {
  return mix64(mix64(seed + detail::golden_gamma()) ^ (stream * detail::stream_multiplier()));
}

// Uniform in [0, 1) with 53 random bits (every value is a multiple of 2^-53).
KOKKOS_INLINE_FUNCTION constexpr double to_unit_double(std::uint64_t bits) {
  return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);
}
// Uniform in [0, 1) with 24 random bits (every value is a multiple of 2^-24).
KOKKOS_INLINE_FUNCTION constexpr float to_unit_float(std::uint64_t bits) {
  return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
}

// Random-access form: the counter-th (0-based) output of Rng(seed, stream).
KOKKOS_INLINE_FUNCTION constexpr std::uint64_t counter_random(std::uint64_t seed, std::uint64_t stream,
                                                              std::uint64_t counter) {
  return mix64(stream_key(seed, stream) + detail::golden_gamma() * (counter + 1));
}

// counter_random with the stream key computed once; a trivially copyable value that kernels
// capture by copy. `CounterRng(seed, stream)(i) == counter_random(seed, stream, i)`.
class CounterRng {
 public:
  KOKKOS_INLINE_FUNCTION constexpr CounterRng(std::uint64_t seed, std::uint64_t stream)
      : key_(stream_key(seed, stream)) {}
  KOKKOS_INLINE_FUNCTION constexpr std::uint64_t operator()(std::uint64_t counter) const {
    return mix64(key_ + detail::golden_gamma() * (counter + 1));
  }
  KOKKOS_INLINE_FUNCTION constexpr double uniform(std::uint64_t counter) const {
    return to_unit_double((*this)(counter));
  }
  KOKKOS_INLINE_FUNCTION constexpr float uniform_float(std::uint64_t counter) const {
    return to_unit_float((*this)(counter));
  }
  KOKKOS_INLINE_FUNCTION constexpr std::uint64_t key() const { return key_; }

 private:
  std::uint64_t key_;
};

// Sequential SplitMix64. Rng(s) is plain SplitMix64 started at state s (matches the published
// reference outputs); Rng(seed, stream) starts at stream_key(seed, stream).
class Rng {
 public:
  KOKKOS_INLINE_FUNCTION constexpr explicit Rng(std::uint64_t state) : state_(state) {}
  KOKKOS_INLINE_FUNCTION constexpr Rng(std::uint64_t seed, std::uint64_t stream)
      : state_(stream_key(seed, stream)) {}

  KOKKOS_INLINE_FUNCTION constexpr std::uint64_t next() {
    state_ += detail::golden_gamma();
    return mix64(state_);
  }

  // Unbiased integer in [0, n) by Lemire's multiply-and-reject (ACM TOMACS 2019): the high word
  // of x * n, rejecting the few x whose low word falls below 2^64 mod n. n == 0 returns 0.
  KOKKOS_INLINE_FUNCTION constexpr std::uint64_t below(std::uint64_t n) {
    if (n == 0) return 0;
    std::uint64_t hi = 0, lo = 0;
    detail::mul_wide(next(), n, hi, lo);
    if (lo < n) {
      const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
      while (lo < threshold) detail::mul_wide(next(), n, hi, lo);
    }
    return hi;
  }

  KOKKOS_INLINE_FUNCTION constexpr double uniform() { return to_unit_double(next()); }
  KOKKOS_INLINE_FUNCTION constexpr float uniform_float() { return to_unit_float(next()); }
  KOKKOS_INLINE_FUNCTION constexpr std::uint64_t state() const { return state_; }

 private:
  std::uint64_t state_;
};

// Fisher-Yates (Durstenfeld): position i (from the back) swaps with a uniform j in [0, i].
// Consumes exactly size()-1 draws of Rng::below (plus rare rejections), so the permutation is a
// pure function of the generator state.
template <class T>
void shuffle(Span<T> values, Rng& rng) {
  for (std::size_t i = values.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(i)));
    using std::swap;
    swap(values[i - 1], values[j]);
  }
}

}  // namespace embsr
