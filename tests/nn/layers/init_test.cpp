// Initialisers: fans, gains, distributions' moments, determinism from the seed.
#include <gtest/gtest.h>

#include <cmath>

#include "syncbn/error.hpp"
#include "syncbn/nn/layers/init.hpp"

namespace syncbn::nn {
namespace {

std::pair<double, double> mean_and_std(const Tensor& t) {
  double s = 0, sq = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    s += t.item(i);
    sq += t.item(i) * t.item(i);
  }
  const double mean = s / t.numel();
  return {mean, std::sqrt(sq / t.numel() - mean * mean)};
}

TEST(Init, FansAndGains) {
  EXPECT_EQ(init::fan_in_and_fan_out({16, 8, 3, 3}),
            (std::pair<std::int64_t, std::int64_t>{72, 144}));
  EXPECT_EQ(init::fan_in_and_fan_out({10, 512}), (std::pair<std::int64_t, std::int64_t>{512, 10}));
  EXPECT_THROW(init::fan_in_and_fan_out({5}), ValueError);
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::ReLU), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::LeakyReLU, std::sqrt(5.0)),
                   std::sqrt(1.0 / 3));
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::Linear), 1.0);
}

TEST(Init, KaimingNormalFanOutHasTheRightMoments) {
  Generator gen(3);
  Tensor w({128, 64, 3, 3});
  init::kaiming_normal_(w, gen, 0.0, init::FanMode::FanOut, init::Nonlinearity::ReLU);
  const auto [mean, stddev] = mean_and_std(w);
  const double expected = std::sqrt(2.0 / (128 * 9));
  // 73728 draws: the sample std is within 1% and the mean within 4 standard errors.
  EXPECT_NEAR(stddev, expected, 0.01 * expected);
  EXPECT_NEAR(mean, 0.0, 4 * expected / std::sqrt(73728.0));
}

TEST(Init, KaimingUniformBoundAndVariance) {
  Generator gen(4);
  Tensor w({64, 100});
  init::kaiming_uniform_(w, gen, 0.0, init::FanMode::FanIn, init::Nonlinearity::ReLU);
  const double bound = std::sqrt(2.0) * std::sqrt(3.0 / 100);
  double lo = 0, hi = 0;
  for (std::int64_t i = 0; i < w.numel(); ++i)
    lo = std::min(lo, w.item(i)), hi = std::max(hi, w.item(i));
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_GT(hi, 0.99 * bound);  // 6400 draws reach the ends
  EXPECT_NEAR(mean_and_std(w).second, bound / std::sqrt(3.0), 0.02 * bound / std::sqrt(3.0));
}

TEST(Init, SameSeedSameValuesEverywhere) {
  Generator a(99), b(99);
  Tensor x({1000}), y({1000});
  init::normal_(x, 1.0, 2.0, a);
  init::normal_(y, 1.0, 2.0, b);
  EXPECT_EQ(max_abs_diff(x, y), 0.0);
  // The stream is fixed by mt19937_64 alone (no <random> distributions): pin the first value.
  Generator c(0);
  EXPECT_EQ(init::uniform01(c), static_cast<float>(Generator(0)() >> 40) / 16777216.f);
  for (int i = 0; i < 10000; ++i) {
    const float u = init::uniform01(c);
    ASSERT_GE(u, 0.f);
    ASSERT_LT(u, 1.f);
  }
}

}  // namespace
}  // namespace syncbn::nn
