// The single-precision exp, sigmoid and tanh of core/math.hpp (host versions written for
// vectorisation) against libm in double, over the ranges the model feeds them.
#include <catch2/catch.hpp>

#include <embsr/core/math.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

namespace test_math {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

// Largest relative error of f against g on n points evenly spread over [lo, hi], where |g| >= floor.
template <class F, class G>
double max_relative_error(F f, G g, double lo, double hi, int n, double floor = 1e-30) {
  double worst = 0;
  for (int i = 0; i <= n; ++i) {
    const float x = static_cast<float>(lo + (hi - lo) * i / n);
    const double want = g(static_cast<double>(x));
    if (std::abs(want) < floor) continue;
    worst = std::max(worst, std::abs(static_cast<double>(f(x)) - want) / std::abs(want));
  }
  return worst;
}

}  // namespace

TEST_CASE("math: float exp, sigmoid and tanh are within a few ulp of libm", "[core][math]") {
  namespace fast = embsr::math::fast;
  const double exp_err =
      max_relative_error([](float x) { return fast::exp(x); }, [](double x) { return std::exp(x); }, -87.0, 88.0, 400001);
  const double sig_err = max_relative_error([](float x) { return fast::sigmoid(x); },
                                            [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, -80.0, 80.0, 400001);
  const double tanh_err = max_relative_error([](float x) { return fast::tanh(x); }, [](double x) { return std::tanh(x); },
                                             -20.0, 20.0, 400001);
  const double tanh_small = max_relative_error([](float x) { return fast::tanh(x); },
                                               [](double x) { return std::tanh(x); }, -1e-3, 1e-3, 20001, 1e-12);
  INFO("exp " << exp_err << ", sigmoid " << sig_err << ", tanh " << tanh_err << ", tanh near 0 " << tanh_small);
  CHECK(exp_err < 3e-7);
  CHECK(sig_err < 5e-7);
  CHECK(tanh_err < 5e-7);
  CHECK(tanh_small < 3e-7);
}

TEST_CASE("math: float exp, sigmoid and tanh saturate on large inputs and pass NaN on", "[core][math]") {
  namespace fast = embsr::math::fast;
  for (float x : {-1e30f, -1000.0f, -100.0f, 100.0f, 1000.0f, 1e30f}) {
    CAPTURE(x);
    CHECK(std::isfinite(fast::exp(x)));
    CHECK(fast::exp(x) >= 0.0f);
    CHECK(fast::sigmoid(x) == Approx(x > 0 ? 1.0 : 0.0).margin(1e-30));
    CHECK(fast::tanh(x) == (x > 0 ? 1.0f : -1.0f));
  }
  // NaN and infinite inputs, which a finite model never produces, come out as NaN instead of being
  // clamped into plausible numbers.
  for (float x : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity()}) {
    CAPTURE(x);
    CHECK(std::isnan(fast::exp(x)));
    CHECK(std::isnan(fast::sigmoid(x)));
    CHECK(std::isnan(fast::tanh(x)));
  }
  CHECK(fast::exp(0.0f) == 1.0f);
  CHECK(fast::tanh(0.0f) == 0.0f);
  CHECK(fast::sigmoid(0.0f) == 0.5f);
  // The dispatching float overloads are what the kernels call.
  CHECK(embsr::math::exp(1.0f) == Approx(std::exp(1.0)).epsilon(3e-7));
  CHECK(embsr::math::tanh(0.3f) == Approx(std::tanh(0.3)).epsilon(3e-7));
  CHECK(embsr::math::sigmoid(-2.0f) == Approx(1.0 / (1.0 + std::exp(2.0))).epsilon(3e-7));
  CHECK(embsr::math::exp(1.0) == std::exp(1.0));  // double: libm
}

}  // namespace test_math
