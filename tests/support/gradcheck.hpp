#pragma once
// Central finite-difference gradient checks in double precision, for Views in any memory space.
//
// Use: make the quantity under test a scalar loss L = <outputs, R> with a fixed random R (so the
// gradients are O(1) and every output matters), run forward + backward with dY = R, then compare
// each analytic dL/dx with (L(x + h) - L(x - h)) / 2h. With h = 1e-5 in double the truncation
// error (~h^2) and round-off (~1e-16 |L| / h) stay near 1e-10 relative, far below the 1e-6 bound.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/random.hpp>

namespace embsr::test {

template <class MemorySpace>
struct GradTarget {
  std::string name;
  Kokkos::View<double*, MemorySpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> value;  // flat view of x
  std::vector<double> analytic;                                                        // dL/dx, same layout
};

// Flat unmanaged view over any contiguous View's data.
template <class V>
auto flat(const V& v) {
  using M = typename V::memory_space;
  using T = typename V::value_type;
  return Kokkos::View<T*, M, Kokkos::MemoryTraits<Kokkos::Unmanaged>>(v.data(), v.span());
}

// Host copy of a View's data, flat, as doubles.
template <class V>
std::vector<double> to_vector(const V& v) {
  auto f = flat(v);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f);
  return std::vector<double>(h.data(), h.data() + h.extent(0));
}

// Fills a View with N(0, scale) values from a seeded generator (host side, then copied).
template <class V>
void fill_random(const V& v, std::uint64_t seed, double scale = 1.0) {
  auto f = flat(v);
  auto h = Kokkos::create_mirror_view(f);
  embsr::Rng rng(seed, 0);
  for (std::size_t i = 0; i < h.extent(0); ++i) {
    // Box-Muller from two uniforms in (0, 1].
    const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
    h(i) = scale * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  Kokkos::deep_copy(f, h);
}

inline double relative_error(double a, double n, double floor = 1e-7) {
  const double denom = std::max({std::abs(a), std::abs(n), floor});
  return std::abs(a - n) / denom;
}

// Checks every coordinate (or `max_coords` evenly spaced ones) of each target. `loss()` must
// recompute the scalar loss from the current values. The error is relative to
// max(|analytic|, |numeric|, floor). Returns the largest error seen.
template <class MemorySpace, class LossFn>
double check_gradients(LossFn&& loss, const std::vector<GradTarget<MemorySpace>>& targets, double tol = 1e-6,
                       double h = 1e-5, std::size_t max_coords = 0, double floor = 1e-7) {
  double worst = 0.0;
  for (const auto& t : targets) {
    const std::size_t n = t.value.extent(0);
    REQUIRE(t.analytic.size() == n);
    const std::size_t stride = (max_coords == 0 || n <= max_coords) ? 1 : (n + max_coords - 1) / max_coords;
    std::size_t failures = 0;
    for (std::size_t i = 0; i < n; i += stride) {
      auto elem = Kokkos::subview(t.value, i);
      double x = 0;
      Kokkos::deep_copy(x, elem);
      Kokkos::deep_copy(elem, x + h);
      const double lp = loss();
      Kokkos::deep_copy(elem, x - h);
      const double lm = loss();
      Kokkos::deep_copy(elem, x);
      const double numeric = (lp - lm) / (2 * h);
      const double err = relative_error(t.analytic[i], numeric, floor);
      worst = std::max(worst, err);
      if (err > tol && failures++ < 5) {
        INFO(t.name << "[" << i << "]: analytic " << t.analytic[i] << ", numeric " << numeric << ", relative error "
                    << err);
        CHECK(err <= tol);
      }
    }
    INFO(t.name << ": " << failures << " coordinates above tolerance " << tol);
    CHECK(failures == 0);
  }
  return worst;
}

// An int32 View in memory space M holding `v` (ids, targets).
template <class M>
Kokkos::View<std::int32_t*, M> to_ids(const std::vector<std::int32_t>& v) {
  Kokkos::View<std::int32_t*, M> ids("ids", v.size());
  auto h = Kokkos::create_mirror_view(ids);
  for (std::size_t i = 0; i < v.size(); ++i) h(i) = v[i];
  Kokkos::deep_copy(ids, h);
  return ids;
}

// <a, b> over two same-shaped Views (any memory space), computed on the host.
template <class A, class B>
double dot(const A& a, const B& b) {
  const auto x = to_vector(a), y = to_vector(b);
  REQUIRE(x.size() == y.size());
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

}  // namespace embsr::test
