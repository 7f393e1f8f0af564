#pragma once
// Adam with the AMSGrad correction, in PyTorch's formulation (torch.optim.Adam(amsgrad=True)):
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;   v_max = max(v_max, v)
//   p -= lr / (1 - b1^t) * m / (sqrt(v_max) / sqrt(1 - b2^t) + eps)        (+ optional L2 weight decay)
// One kernel over the flat parameter buffer.

#include <cmath>
#include <cstdint>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/optim/adam_options.hpp>

namespace embsr {

template <class ExecSpace, class Scalar>
class Adam {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "Adam: ExecSpace must be a Kokkos execution space");
  using memory_space = typename ExecSpace::memory_space;

 public:
  using state_type = Vec<Scalar, memory_space>;

  Adam(std::size_t num_parameters, AdamOptions options) : options_(options) {
    options_.validate();
    m_ = state_type("embsr::adam::m", num_parameters);
    v_ = state_type("embsr::adam::v", num_parameters);
    v_max_ = state_type("embsr::adam::v_max", num_parameters);
  }

  // One update of `values` from `grads` (flat buffers of the same length as the state).
  template <class ValuesView, class GradsView>
  void step(const ExecSpace& exec, const ValuesView& values, const GradsView& grads) {
    if (values.extent(0) != m_.extent(0) || grads.extent(0) != m_.extent(0))
      throw InvalidArgument("Adam::step: parameter count changed (" + std::to_string(values.extent(0)) + " vs " +
                            std::to_string(m_.extent(0)) + ")");
    ++steps_;
    const double b1 = options_.beta1, b2 = options_.beta2;
    const double bias1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
    const double bias2_sqrt = std::sqrt(1.0 - std::pow(b2, static_cast<double>(steps_)));
    const Scalar step_size = static_cast<Scalar>(options_.lr / bias1);
    const Scalar inv_bias2_sqrt = static_cast<Scalar>(1.0 / bias2_sqrt);
    const Scalar eps = static_cast<Scalar>(options_.eps), wd = static_cast<Scalar>(options_.weight_decay);
    const Scalar sb1 = static_cast<Scalar>(b1), sb2 = static_cast<Scalar>(b2);
    const bool ams = options_.amsgrad;
    auto m = m_, v = v_, vmax = v_max_;
    Kokkos::parallel_for(
        "embsr::adam::step", Kokkos::RangePolicy<ExecSpace>(exec, 0, values.extent(0)), KOKKOS_LAMBDA(const std::size_t i) {
          Scalar g = grads(i);
          if (wd != Scalar(0)) g += wd * values(i);
          m(i) = sb1 * m(i) + (Scalar(1) - sb1) * g;
          v(i) = sb2 * v(i) + (Scalar(1) - sb2) * g * g;
          Scalar second = v(i);
          if (ams) {
            vmax(i) = vmax(i) > v(i) ? vmax(i) : v(i);
            second = vmax(i);
          }
          values(i) -= step_size * m(i) / (math::sqrt(second) * inv_bias2_sqrt + eps);
        });
  }

  std::uint64_t steps() const { return steps_; }
  const AdamOptions& options() const { return options_; }
  // Optimizer state, for checkpoints.
  const state_type& first_moment() const { return m_; }
  const state_type& second_moment() const { return v_; }
  const state_type& max_second_moment() const { return v_max_; }
  void set_steps(std::uint64_t steps) { steps_ = steps; }

 private:
  AdamOptions options_;
  state_type m_, v_, v_max_;
  std::uint64_t steps_ = 0;
};

}  // namespace embsr
