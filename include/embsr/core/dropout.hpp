#pragma once
// Reproducible dropout. Element (row, col) of a [rows x cols] activation at dropout site `site`
// in training step `step` is kept iff
//     u = to_unit_double(counter_random(seed, stream = step * kMaxDropoutSites + site,
//                                      counter = row * cols + col))  >=  rate,
// and kept values are scaled by 1 / (1 - rate). The mask is a pure function of these numbers: it
// does not depend on the thread count, the backend or the order of execution, and the PyTorch
// oracle (tests/oracle) recomputes it bit for bit.

#include <cstdint>

#include <Kokkos_Core.hpp>

#include <embsr/core/random.hpp>

namespace embsr {

inline constexpr std::uint64_t kMaxDropoutSites = 16;

struct Dropout {
  double rate = 0.0;        // probability of dropping an element; 0 disables
  std::uint64_t seed = 0;   // the model's dropout seed
  std::uint64_t step = 0;   // training step (a new mask every step)
  bool training = false;    // false: identity (evaluation)

  bool active() const { return training && rate > 0.0; }
  // The generator of one site; captured by copy into kernels.
  CounterRng site(std::uint64_t site_id) const { return CounterRng(seed, step * kMaxDropoutSites + site_id); }
};

// Multiplier of element (row, col): 0 when dropped, 1 / (1 - rate) when kept.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar dropout_scale(const CounterRng& rng, double rate, std::uint64_t row, std::uint64_t cols,
                                            std::uint64_t col) {
  return rng.uniform(row * cols + col) >= rate ? static_cast<Scalar>(1.0 / (1.0 - rate)) : Scalar(0);
}

}  // namespace embsr
