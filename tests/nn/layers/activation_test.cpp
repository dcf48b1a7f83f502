// ReLU, Flatten and Dropout: values, finite differences (Dropout with a replayed mask), errors.
#include <gtest/gtest.h>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/nn/layers/activation.hpp"
#include "syncbn/nn/layers/dropout.hpp"

namespace syncbn::nn {
namespace {
using testing::all_close;

TEST(ReLU, ValuesAndGradientIncludingZero) {
  ReLU relu;
  const Tensor y = relu.forward(Tensor::from({5}, {-2, -0.f, 0, 0.5f, 3}));
  EXPECT_TRUE(all_close(y, Tensor::from({5}, {0, 0, 0, 0.5f, 3}), 0, 0));
  // PyTorch's gradient at exactly 0 is 0.
  EXPECT_TRUE(
      all_close(relu.backward(Tensor::full({5}, 2.0)), Tensor::from({5}, {0, 0, 0, 2, 2}), 0, 0));
}

TEST(ReLU, GradientsMatchFiniteDifferences) {
  ReLU relu;
  testing::expect_gradients_match(relu, testing::distinct_tensor({2, 3, 4}, 1));
}

TEST(ReLU, ShapeMismatchIsAnError) {
  ReLU relu;
  relu.forward(Tensor({2, 3}));
  testing::expect_error_mentions<ShapeError>(
      [&] {
        relu.backward(Tensor({3, 2}));
      },
      {"ReLU", "[3, 2]", "[2, 3]"});
}

TEST(Flatten, MergesTheChosenDims) {
  EXPECT_EQ(Flatten().forward(Tensor({2, 3, 4, 5})).shape(), (Shape{2, 60}));
  EXPECT_EQ(Flatten(0).forward(Tensor({2, 3, 4})).shape(), (Shape{24}));
  EXPECT_EQ(Flatten(1, 2).forward(Tensor({2, 3, 4, 5})).shape(), (Shape{2, 12, 5}));
  EXPECT_EQ(Flatten(-3, -2).forward(Tensor({2, 3, 4, 5})).shape(), (Shape{2, 12, 5}));
  Flatten flatten;
  const Tensor x = testing::random_tensor({2, 3, 2, 2}, 1);
  const Tensor y = flatten.forward(x);
  EXPECT_TRUE(all_close(y.reshape(x.shape()), x, 0, 0));
  EXPECT_TRUE(all_close(flatten.backward(y), x, 0, 0));
  testing::expect_gradients_match(flatten, x);
  testing::expect_error_mentions<ShapeError>(
      [&] {
        Flatten(2).forward(Tensor({4, 3}));
      },
      {"Flatten(start_dim=2, end_dim=-1)", "[4, 3]"});
  testing::expect_error_mentions<ShapeError>(
      [&] {
        flatten.backward(Tensor({2, 11}));
      },
      {"[2, 11]", "[2, 12]"});
}

// Replays the same mask on every forward, so finite differences see one fixed function.
class ReplayedDropout : public Module {
 public:
  explicit ReplayedDropout(double p) : dropout_(std::make_shared<Dropout>(p)) {
    register_module("d", dropout_);
  }
  std::string type_name() const override { return "ReplayedDropout"; }
  Tensor forward(const Tensor& x) override {
    dropout_->manual_seed(11);
    return dropout_->forward(x);
  }
  Tensor backward(const Tensor& dy) override { return dropout_->backward(dy); }

 private:
  std::shared_ptr<Dropout> dropout_;
};

TEST(Dropout, GradientsMatchFiniteDifferencesWithAFixedMask) {
  ReplayedDropout d(0.4);
  testing::expect_gradients_match(d, testing::random_tensor({3, 4, 5}, 2));
}

TEST(Dropout, KeepsAboutOneMinusPAndScalesTheRest) {
  Dropout d(0.3, 5);
  const Tensor x = Tensor::full({100, 100}, 2.0);
  const Tensor y = d.forward(x);
  std::int64_t kept = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) {
    if (y.item(i) == 0) continue;
    ++kept;
    ASSERT_FLOAT_EQ(y.item(i), 2.f / 0.7f);
  }
  // 10000 Bernoulli(0.7) draws: sd ~ 46, so +-250 is over 5 sd.
  EXPECT_NEAR(kept, 7000, 250);
  // backward applies the same mask and scale.
  const Tensor dx = d.backward(Tensor::ones({100, 100}));
  for (std::int64_t i = 0; i < dx.numel(); ++i) ASSERT_FLOAT_EQ(dx.item(i) * 2.f, y.item(i));
}

TEST(Dropout, SeedsAreReproducibleAndMasksChangeBetweenSteps) {
  Dropout a(0.5, 9), b(0.5, 9);
  const Tensor x = Tensor::ones({64});
  const Tensor first = a.forward(x);
  EXPECT_EQ(max_abs_diff(first, b.forward(x)), 0.0);
  EXPECT_GT(max_abs_diff(first, a.forward(x)), 0.0);
  a.manual_seed(9);
  EXPECT_EQ(max_abs_diff(first, a.forward(x)), 0.0);
}

TEST(Dropout, EvalAndZeroPAreIdentityAndOneZeroesEverything) {
  const Tensor x = testing::random_tensor({4, 5}, 3);
  Dropout d(0.5);
  d.eval();
  EXPECT_TRUE(all_close(d.forward(x), x, 0, 0));
  EXPECT_TRUE(all_close(d.backward(x), x, 0, 0));
  Dropout none(0.0);
  EXPECT_TRUE(all_close(none.forward(x), x, 0, 0));
  Dropout all(1.0);
  EXPECT_EQ(max_abs_diff(all.forward(x), Tensor({4, 5})), 0.0);
  EXPECT_EQ(max_abs_diff(all.backward(x), Tensor({4, 5})), 0.0);
  EXPECT_THROW(Dropout(1.5), ValueError);
  EXPECT_THROW(Dropout(-0.1), ValueError);
  EXPECT_EQ(Dropout(0.25).repr(), "Dropout(p=0.25, inplace=False)");
}

}  // namespace
}  // namespace syncbn::nn
