#pragma once
// Adam's options (the optimizer itself is optim/adam.hpp). Free of Kokkos: checkpoints store them
// (io/checkpoint_format.hpp).

#include <cmath>
#include <string>

#include <embsr/core/error.hpp>

namespace embsr {

struct AdamOptions {
  double lr = 0.001;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // L2 penalty added to the gradient (PyTorch semantics); 0 by default
  bool amsgrad = true;

  void validate() const {
    // An infinite rate turns every parameter into +-inf or NaN at the first step.
    if (!(lr > 0 && std::isfinite(lr))) throw InvalidArgument("AdamOptions: lr must be finite and > 0, got " + std::to_string(lr));
    if (!(beta1 >= 0 && beta1 < 1)) throw InvalidArgument("AdamOptions: beta1 must be in [0, 1)");
    if (!(beta2 >= 0 && beta2 < 1)) throw InvalidArgument("AdamOptions: beta2 must be in [0, 1)");
    if (!(eps > 0 && std::isfinite(eps))) throw InvalidArgument("AdamOptions: eps must be finite and > 0");
    if (!(weight_decay >= 0 && std::isfinite(weight_decay)))
      throw InvalidArgument("AdamOptions: weight_decay must be finite and >= 0");
  }
};

}  // namespace embsr
