#include <gtest/gtest.h>

#include "support/test_util.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/groupnorm.hpp"

namespace syncbn::nn {
namespace {

TEST(GroupNorm, NormalisesEachSampleGroup) {
  GroupNorm gn(2, 4);
  Tensor y = gn.forward(testing::random_tensor({3, 4, 5}, 1, 4.f, 2.f));
  for (int n = 0; n < 3; ++n)
    for (int g = 0; g < 2; ++g) {
      double s = 0;
      for (int i = 0; i < 10; ++i) s += y.data<float>()[n * 20 + g * 10 + i];
      EXPECT_NEAR(s / 10, 0.0, 1e-5);
    }
}

TEST(GroupNorm, GradientsMatchFiniteDifferences) {
  GroupNorm gn(3, 6);
  gn.weight.value = testing::random_tensor({6}, 2);
  gn.bias.value = testing::random_tensor({6}, 3);
  testing::expect_gradients_match(gn, testing::random_tensor({2, 6, 2, 2}, 4));
}

TEST(GroupNorm, BadConfigurationsAreErrors) {
  EXPECT_THROW(GroupNorm(3, 4), ValueError);
  EXPECT_THROW(GroupNorm(2, 4).forward(Tensor({2, 6, 3})), ShapeError);
}

}  // namespace
}  // namespace syncbn::nn
