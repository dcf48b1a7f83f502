#pragma once
// Helpers for the layer tests: direct (loop) references to compare the GEMM paths against, and
// tensors whose values keep finite differences away from kinks.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>

#include "support/test_util.hpp"
#include "syncbn/error.hpp"
#include "syncbn/tensor.hpp"

namespace syncbn::testing {

// Values spaced `gap` apart in a seeded random order: no ties, so max-pool arg-maxes and ReLU
// signs cannot flip under a finite-difference step smaller than gap/2.
inline Tensor distinct_tensor(const Shape& shape, std::uint32_t seed, float gap = 0.1f) {
  Tensor t(shape);
  std::vector<int> order(static_cast<std::size_t>(t.numel()));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(seed));
  const float mid = static_cast<float>(t.numel()) / 2.f;
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] =
        (static_cast<float>(order[static_cast<std::size_t>(i)]) - mid + 0.5f) * gap;
  return t;
}

// expect_gradients_match for modules with kinks (ReLU, max): a step can cross a kink, and a
// central difference across one averages two slopes. The analytic gradient is the slope on
// the side the input sits on, so each element must match the central difference OR one of
// the one-sided differences (f(x+h) - f(x)) / h, (f(x) - f(x-h)) / h. A wrong gradient still
// fails, as it matches none of the three. Tolerance is relative to the largest entry.
inline void expect_piecewise_gradients_match(nn::Module& module, const Tensor& input, double h,
                                             double tol) {
  const Tensor probe = random_tensor(module.forward(input).shape(), 99);
  Tensor x = input;  // perturbed in place for the input's entries
  auto loss = [&] {
    const Tensor y = module.forward(x);
    double l = 0;
    for (std::int64_t i = 0; i < y.numel(); ++i) l += y.item(i) * probe.item(i);
    return l;
  };
  module.zero_grad();
  module.forward(input);
  std::vector<std::pair<std::string, Tensor*>> targets{{"input", &x}};
  std::vector<Tensor> analytic{module.backward(probe)};
  for (auto& [name, p] : module.named_parameters()) {
    targets.emplace_back(name, &p->value);
    analytic.push_back(p->grad);
  }
  const double base = loss();
  for (std::size_t t = 0; t < targets.size(); ++t) {
    double scale = 1e-3;
    for (std::int64_t i = 0; i < analytic[t].numel(); ++i)
      scale = std::max(scale, std::abs(analytic[t].item(i)));
    for (std::int64_t i = 0; i < analytic[t].numel(); ++i) {
      float& v = targets[t].second->data<float>()[i];
      const float saved = v;
      v = saved + static_cast<float>(h);
      const double up = loss();
      v = saved - static_cast<float>(h);
      const double down = loss();
      v = saved;
      const double a = analytic[t].item(i);
      const double err = std::min({std::abs(a - (up - down) / (2 * h)),
                                   std::abs(a - (up - base) / h), std::abs(a - (base - down) / h)});
      EXPECT_LE(err, tol * scale) << targets[t].first << " element " << i << ": analytic " << a
                                  << ", central " << (up - down) / (2 * h);
    }
  }
}

// Runs `fn`, expects a `E` whose message contains every one of `parts`.
template <typename E, typename Fn>
void expect_error_mentions(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    for (const auto& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "'" << part << "' not in: " << e.what();
  }
}

// Sum of all elements of a tensor, in double.
inline double sum(const Tensor& t) {
  double s = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) s += t.item(i);
  return s;
}

}  // namespace syncbn::testing
