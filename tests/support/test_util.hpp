#pragma once
// Shared test helpers: seeded random tensors, closeness checks, finite-difference gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>

#include "syncbn/error.hpp"
#include "syncbn/nn/module.hpp"
#include "syncbn/tensor.hpp"

namespace syncbn::testing {

// The message of the syncbn::Error that fn throws, or "(no error)".
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

inline Tensor random_tensor(const Shape& shape, std::uint32_t seed, float mean = 0.f,
                            float stddev = 1.f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(mean, stddev);
  Tensor t(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
  return t;
}

// |a - b| <= atol + rtol * |b| everywhere; reports the worst element.
inline ::testing::AssertionResult all_close(const Tensor& a, const Tensor& b, double rtol = 1e-5,
                                            double atol = 1e-5) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure()
           << "shape " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.item(i), y = b.item(i);
    if (!(std::abs(x - y) <= atol + rtol * std::abs(y)))
      return ::testing::AssertionFailure()
             << "element " << i << ": " << x << " vs " << y << " (of " << a.numel() << ")";
  }
  return ::testing::AssertionSuccess();
}

// Checks module.backward against central differences of L = sum(forward(x) * probe), for the
// input and every parameter. Tolerance is relative to the largest gradient entry.
inline void expect_gradients_match(nn::Module& module, const Tensor& input, double h = 1e-2,
                                   double tol = 2e-2) {
  Tensor probe = random_tensor(module.forward(input).shape(), 99);
  auto loss = [&](const Tensor& x) {
    Tensor y = module.forward(x);
    double l = 0;
    for (std::int64_t i = 0; i < y.numel(); ++i)
      l += double(y.data<float>()[i]) * probe.data<float>()[i];
    return l;
  };
  module.zero_grad();
  module.forward(input);
  Tensor dx = module.backward(probe);
  auto compare = [&](const std::string& what, const Tensor& analytic,
                     const std::function<double(std::int64_t, double)>& eval) {
    double scale = 1e-3;
    for (std::int64_t i = 0; i < analytic.numel(); ++i)
      scale = std::max(scale, std::abs(analytic.item(i)));
    for (std::int64_t i = 0; i < analytic.numel(); ++i) {
      const double numeric = (eval(i, h) - eval(i, -h)) / (2 * h);
      EXPECT_NEAR(analytic.item(i), numeric, tol * scale) << what << " element " << i;
    }
  };
  compare("input", dx, [&](std::int64_t i, double step) {
    Tensor x = input;
    x.data<float>()[i] += static_cast<float>(step);
    return loss(x);
  });
  for (auto& [name, p] : module.named_parameters()) {
    Tensor grad = p->grad;
    compare(name, grad, [&, p = p](std::int64_t i, double step) {
      const float saved = p->value.data<float>()[i];
      p->value.data<float>()[i] = saved + static_cast<float>(step);
      const double l = loss(input);
      p->value.data<float>()[i] = saved;
      return l;
    });
  }
}

}  // namespace syncbn::testing
