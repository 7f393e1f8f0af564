#pragma once
// What every neural model of the graph and sequence families shares, so that a composition file
// holds only its layer calls: the flat parameters (model/parameters.hpp) declared from a layout
// list, their seeded initialisation, the finiteness check of every training step, freezing for
// serving, and top-K from the scores of a forward pass.
//
// A model owns one NeuralModelCore and forwards the session-model interface
// (model/session_model.hpp) to it where the behaviour is common.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/random.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/top_k.hpp>
#include <embsr/model/parameter_layout.hpp>
#include <embsr/model/parameters.hpp>

namespace embsr {

// How parameters start. Normal: N(0, scale) (EMBSR, MODEL.md 6). Uniform: U(-scale, scale), with
// scale = 1 / sqrt(d) in SR-GNN's and its successors' code (reset_parameters).
enum class InitKind { Normal, Uniform };

template <class ExecSpace, class Scalar>
class NeuralModelCore {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "NeuralModelCore: ExecSpace must be a Kokkos execution space");
  static_assert(std::is_floating_point<Scalar>::value, "NeuralModelCore: Scalar must be float or double");

 public:
  using M = typename ExecSpace::memory_space;

  NeuralModelCore(const std::string& model_name, const std::vector<ParameterEntry>& layout, ExecSpace exec)
      : name_(model_name), exec_(exec) {
    for (const auto& e : layout) params_.add(e.name, e.rows, e.cols);
    params_.allocate();
  }

  const std::string& name() const { return name_; }
  const ExecSpace& exec() const { return exec_; }
  Parameters<Scalar, M>& parameters() { return params_; }
  const Parameters<Scalar, M>& parameters() const { return params_; }
  std::size_t id(const std::string& parameter) const { return params_.id(parameter); }
  MatRef<Scalar, M> mat(std::size_t id, bool grad) const { return grad ? params_.grad(id) : params_.value(id); }
  VecRef<Scalar, M> vec(std::size_t id, bool grad) const { return grad ? params_.grad_vec(id) : params_.value_vec(id); }

  // Parameter p from Rng(seed, 1000 + p): the values depend on the seed and the parameter's
  // position in the layout only (as EMBSR's, MODEL.md 6).
  void initialize(std::uint64_t seed, InitKind kind, double scale) {
    auto host = Kokkos::create_mirror_view(params_.values());
    for (std::size_t p = 0; p < params_.entries().size(); ++p) {
      const auto& e = params_.entry(p);
      Rng rng(seed, 1000 + p);
      for (std::size_t i = 0; i < e.size(); ++i) {
        double x;
        if (kind == InitKind::Uniform) {
          x = scale * (2.0 * rng.uniform() - 1.0);
        } else {
          const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
          x = scale * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
        }
        host(e.offset + i) = static_cast<Scalar>(x);
      }
    }
    Kokkos::deep_copy(params_.values(), host);
  }

  // Serving promises fixed parameters until unfreeze(); a frozen model refuses to train.
  void freeze() { frozen_ = true; }
  void unfreeze() { frozen_ = false; }
  bool frozen() const { return frozen_; }
  void require_not_frozen() const {
    if (frozen_) throw InvalidArgument(name_ + "::loss_and_backward: the model is frozen for inference (call unfreeze())");
  }

  // Throws NonFiniteValue naming the first non-finite parameter, if any: one reduction on the
  // device; the host copy happens only when something is wrong.
  void check_parameters_finite() const {
    const auto values = params_.values();
    int bad = 0;
    Kokkos::parallel_reduce(
        "embsr::neural_model::check_finite", Kokkos::RangePolicy<ExecSpace>(exec_, 0, values.extent(0)),
        KOKKOS_LAMBDA(const std::size_t i, int& count) { count += math::isfinite(values(i)) ? 0 : 1; }, bad);
    if (bad == 0) return;
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params_.values());
    for (const auto& e : params_.entries())
      for (std::size_t i = 0; i < e.size(); ++i)
        if (!std::isfinite(static_cast<double>(host(e.offset + i))))
          throw NonFiniteValue(name_ + ": parameter '" + e.name + "' has a non-finite value at row " +
                               std::to_string(i / e.cols) + ", column " + std::to_string(i % e.cols));
  }

  // A finite loss, or NonFiniteValue naming the parameter (or saying that all are finite).
  void require_finite_loss(double loss_value) const {
    if (std::isfinite(loss_value)) return;
    check_parameters_finite();
    throw NonFiniteValue(name_ + ": the loss is not finite (" + std::to_string(loss_value) +
                         ") although every parameter is finite");
  }

  // The k best of `scores` [B x V] per row, best first: ids and values [B x k'], k' = min(k, V).
  template <class SV>
  void top_k(const SV& scores, int k, Kokkos::View<int**, Kokkos::LayoutRight, M>& ids,
             Kokkos::View<Scalar**, Kokkos::LayoutRight, M>& values) const {
    if (k < 1) throw InvalidArgument(name_ + "::top_k: k must be >= 1, got " + std::to_string(k));
    const auto B = scores.extent(0);
    const int kk = std::min<int>(k, static_cast<int>(scores.extent(1)));
    if (ids.extent(0) != B || ids.extent(1) != static_cast<std::size_t>(kk))
      ids = Kokkos::View<int**, Kokkos::LayoutRight, M>("embsr::top_k::ids", B, kk);
    if (values.extent(0) != B || values.extent(1) != static_cast<std::size_t>(kk))
      values = Kokkos::View<Scalar**, Kokkos::LayoutRight, M>("embsr::top_k::values", B, kk);
    embsr::top_k(exec_, scores, kk, ids, values);
  }

 private:
  std::string name_;
  ExecSpace exec_;
  Parameters<Scalar, M> params_;
  bool frozen_ = false;
};

}  // namespace embsr
