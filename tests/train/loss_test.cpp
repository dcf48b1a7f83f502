// CrossEntropyLoss: closed forms, stability, label smoothing, finite differences, metrics.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/train/loss.hpp"

namespace syncbn::train {
namespace {
using testing::all_close;

TEST(CrossEntropyLoss, ClosedFormValues) {
  CrossEntropyLoss ce;
  // Equal logits: -log(1/K) whatever the label.
  EXPECT_NEAR(ce.forward(Tensor::full({3, 10}, 2.5), {0, 4, 9}), std::log(10.0), 1e-6);
  // Row [0, ln 3]: softmax [1/4, 3/4]; label 1 -> -log(3/4), label 0 -> -log(1/4).
  const float l3 = static_cast<float>(std::log(3.0));
  const double loss = ce.forward(Tensor::from({2, 2}, {0, l3, 0, l3}), {1, 0});
  EXPECT_NEAR(loss, (-std::log(0.75) - std::log(0.25)) / 2, 1e-6);
  // dlogits = (softmax - onehot) / N.
  EXPECT_TRUE(all_close(ce.backward(), Tensor::from({2, 2}, {0.125f, -0.125f, -0.375f, 0.375f}),
                        1e-6, 1e-7));
  EXPECT_TRUE(
      all_close(ce.backward(4.0), Tensor::from({2, 2}, {0.5f, -0.5f, -1.5f, 1.5f}), 1e-6, 1e-7));
}

TEST(CrossEntropyLoss, StableForHugeLogits) {
  CrossEntropyLoss ce;
  // Naive exp overflows; log-sum-exp gives the exact 0 and 2000.
  EXPECT_NEAR(ce.forward(Tensor::from({2, 2}, {1000, -1000, 1000, -1000}), {0, 1}), 1000.0, 1e-9);
  const Tensor g = ce.backward();
  for (std::int64_t i = 0; i < g.numel(); ++i) EXPECT_TRUE(std::isfinite(g.item(i)));
  EXPECT_NEAR(g.item(2), 0.5, 1e-7);
  EXPECT_NEAR(g.item(3), -0.5, 1e-7);
}

TEST(CrossEntropyLoss, LabelSmoothingAsPyTorch) {
  CrossEntropyLoss ce(CrossEntropyLossOptions().label_smoothing(0.1));
  const float l3 = static_cast<float>(std::log(3.0));
  // q = 0.9 * onehot(1) + 0.05: loss = -(0.95 log 3/4 + 0.05 log 1/4).
  EXPECT_NEAR(ce.forward(Tensor::from({1, 2}, {0, l3}), {1}),
              -(0.95 * std::log(0.75) + 0.05 * std::log(0.25)), 1e-6);
  EXPECT_TRUE(
      all_close(ce.backward(), Tensor::from({1, 2}, {0.25f - 0.05f, 0.75f - 0.95f}), 1e-6, 1e-7));
  EXPECT_THROW(CrossEntropyLoss(CrossEntropyLossOptions().label_smoothing(1.5)), ValueError);
}

TEST(CrossEntropyLoss, GradientMatchesFiniteDifferences) {
  for (double smoothing : {0.0, 0.2}) {
    CrossEntropyLoss ce(CrossEntropyLossOptions().label_smoothing(smoothing));
    const Tensor logits = testing::random_tensor({4, 5}, 1, 0.f, 2.f);
    const std::vector<std::int64_t> labels{3, 0, 4, 3};
    ce.forward(logits, labels);
    const Tensor analytic = ce.backward();
    for (std::int64_t i = 0; i < logits.numel(); ++i) {
      Tensor up = logits, down = logits;
      up.data<float>()[i] += 1e-2f;
      down.data<float>()[i] -= 1e-2f;
      const double numeric = (ce.forward(up, labels) - ce.forward(down, labels)) / 2e-2;
      EXPECT_NEAR(analytic.item(i), numeric, 1e-4) << "smoothing " << smoothing << " element " << i;
    }
  }
}

TEST(CrossEntropyLoss, EmptyBatchAndErrors) {
  CrossEntropyLoss ce;
  EXPECT_EQ(ce.forward(Tensor({0, 10}), {}), 0.0);
  EXPECT_EQ(ce.backward().shape(), (Shape{0, 10}));
}

TEST(CrossEntropyLoss, Errors) {
  CrossEntropyLoss ce;
  EXPECT_THROW(CrossEntropyLoss().backward(), ValueError);
  testing::expect_error_mentions<ShapeError>(
      [&] {
        ce.forward(Tensor({2, 3, 4}), {0, 1});
      },
      {"[2, 3, 4]"});
  testing::expect_error_mentions<ShapeError>(
      [&] {
        ce.forward(Tensor({2, 3}), {0});
      },
      {"[2, 3]", "2 labels", "got 1"});
  testing::expect_error_mentions<ValueError>(
      [&] {
        ce.forward(Tensor({2, 3}), {0, 3});
      },
      {"label 3", "index 1", "[0, 3)"});
  testing::expect_error_mentions<ValueError>(
      [&] {
        ce.forward(Tensor({1, 3}), {-1});
      },
      {"label -1"});
}

TEST(Metrics, ArgmaxAndAccuracy) {
  const Tensor logits = Tensor::from({4, 3}, {0, 2, 1,        //
                                              5, 5, 1,        // tie: first
                                              -1, -2, -0.5f,  //
                                              0, 0, 0});
  EXPECT_EQ(argmax(logits), (std::vector<std::int64_t>{1, 0, 2, 0}));
  EXPECT_EQ(count_correct(logits, {1, 1, 2, 1}), 2);
  EXPECT_DOUBLE_EQ(accuracy(logits, {1, 1, 2, 1}), 0.5);
  EXPECT_DOUBLE_EQ(accuracy(Tensor({0, 3}), {}), 0.0);
  EXPECT_THROW(count_correct(logits, {1, 1}), ShapeError);
}

}  // namespace
}  // namespace syncbn::train
