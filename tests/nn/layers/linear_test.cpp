// Linear: hand-computed values, finite differences, any leading dims, errors, init.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/nn/layers/linear.hpp"

namespace syncbn::nn {
namespace {
using testing::all_close;
using testing::random_tensor;

TEST(Linear, HandComputedValues) {
  Linear fc(LinearOptions(3, 2));
  fc.weight.value = Tensor::from({2, 3}, {1, 2, 3, -1, 0, 1});
  fc.bias.value = Tensor::from({2}, {0.5f, -0.5f});
  const Tensor x = Tensor::from({2, 3}, {1, 1, 1, 2, 0, -1});
  EXPECT_TRUE(all_close(fc.forward(x), Tensor::from({2, 2}, {6.5f, -0.5f, -0.5f, -3.5f}), 0, 0));
  // dx = dy W, dW = dy^T x, db = column sums of dy.
  const Tensor dx = fc.backward(Tensor::from({2, 2}, {1, 0, 0, 2}));
  EXPECT_TRUE(all_close(dx, Tensor::from({2, 3}, {1, 2, 3, -2, 0, 2}), 0, 0));
  EXPECT_TRUE(all_close(fc.weight.grad, Tensor::from({2, 3}, {1, 1, 1, 4, 0, -2}), 0, 0));
  EXPECT_TRUE(all_close(fc.bias.grad, Tensor::from({2}, {1, 2}), 0, 0));
}

TEST(Linear, GradientsMatchFiniteDifferences) {
  Linear fc(LinearOptions(5, 4), 1);
  testing::expect_gradients_match(fc, random_tensor({3, 5}, 2));
  Linear no_bias(LinearOptions(5, 4).bias(false), 1);
  EXPECT_EQ(no_bias.named_parameters().size(), 1u);
  testing::expect_gradients_match(no_bias, random_tensor({2, 3, 5}, 3));
}

TEST(Linear, LeadingDimsAreRows) {
  Linear fc(LinearOptions(4, 3), 5);
  const Tensor x = random_tensor({2, 3, 4}, 6);
  const Tensor y = fc.forward(x);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 3}));
  Linear same(LinearOptions(4, 3), 5);
  EXPECT_TRUE(all_close(y.reshape({6, 3}), same.forward(x.reshape({6, 4})), 0, 0));
}

TEST(Linear, ShapeErrorsNameTheLayerAndShapes) {
  Linear fc(LinearOptions(512, 10));
  EXPECT_EQ(fc.repr(), "Linear(in_features=512, out_features=10, bias=True)");
  testing::expect_error_mentions<ShapeError>(
      [&] {
        fc.forward(Tensor({4, 500}));
      },
      {"Linear(in_features=512, out_features=10", "[4, 500]"});
  fc.forward(Tensor({4, 512}));
  testing::expect_error_mentions<ShapeError>(
      [&] {
        fc.backward(Tensor({4, 9}));
      },
      {"[4, 9]", "[4, 10]"});
  EXPECT_THROW(Linear(LinearOptions(0, 3)), ValueError);
}

TEST(Linear, DefaultInitBoundsAndSeeds) {
  Generator g1(1), g2(1);
  Linear a(LinearOptions(50, 20), g1), b(LinearOptions(50, 20), g2);
  EXPECT_EQ(max_abs_diff(a.weight.value, b.weight.value), 0.0);
  const double bound = 1.0 / std::sqrt(50.0);
  for (std::int64_t i = 0; i < a.weight.value.numel(); ++i)
    EXPECT_LE(std::abs(a.weight.value.item(i)), bound);
  for (std::int64_t i = 0; i < a.bias.value.numel(); ++i)
    EXPECT_LE(std::abs(a.bias.value.item(i)), bound);
  // The generator advanced: a second layer from it differs from the first.
  Linear c(LinearOptions(50, 20), g1);
  EXPECT_GT(max_abs_diff(a.weight.value, c.weight.value), 0.0);
}

}  // namespace
}  // namespace syncbn::nn
