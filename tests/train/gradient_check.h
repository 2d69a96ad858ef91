// Gradient checks for the loss tests: autograd against central finite differences in fp64.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

namespace chronos::testing {

// Autograd gradient of the scalar f(x) at x (fp64).
inline at::Tensor autograd_gradient(const std::function<at::Tensor(const at::Tensor&)>& f, const at::Tensor& x0) {
  at::Tensor x = x0.to(at::kDouble).clone().set_requires_grad(true);
  f(x).backward();
  return x.grad().detach().clone();
}

// Expects autograd's gradient of the scalar f at x0 to match central differences element by
// element. f must be smooth around x0 (no top-k tie or clamp boundary within h).
inline void expect_gradient_matches_finite_differences(const std::function<at::Tensor(const at::Tensor&)>& f,
                                                       const at::Tensor& x0, double h = 1e-6, double tol = 1e-6) {
  const at::Tensor analytic = autograd_gradient(f, x0);
  at::Tensor x = x0.to(at::kDouble).contiguous().clone();
  double* data = x.data_ptr<double>();
  const double* grad = analytic.contiguous().data_ptr<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double saved = data[i];
    data[i] = saved + h;
    const double up = f(x).item<double>();
    data[i] = saved - h;
    const double down = f(x).item<double>();
    data[i] = saved;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(grad[i], numeric, tol * std::max(1.0, std::abs(numeric))) << "element " << i;
  }
}

}  // namespace chronos::testing
