// BatchNorm semantics against a float64 two-pass reference computed here; PyTorch goldens live
// in tests/conformance.
#include <gtest/gtest.h>

#include <cmath>

#include "support/test_util.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/batchnorm.hpp"

namespace syncbn::nn {
namespace {
using testing::all_close;
using testing::random_tensor;

// Two-pass float64 per-channel mean and biased variance.
void reference_stats(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
  const std::int64_t n = x.size(0), c = x.size(1), s = x.numel() / std::max<std::int64_t>(1, n * c);
  mean.assign(c, 0);
  var.assign(c, 0);
  for (std::int64_t ch = 0; ch < c; ++ch) {
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < s; ++j) mean[ch] += x.data<float>()[(i * c + ch) * s + j];
    mean[ch] /= double(n * s);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < s; ++j) {
        double d = x.data<float>()[(i * c + ch) * s + j] - mean[ch];
        var[ch] += d * d;
      }
    var[ch] /= double(n * s);
  }
}

TEST(BatchNorm, TrainForwardNormalisesPerChannel) {
  BatchNorm2d bn(3);
  Tensor x = random_tensor({4, 3, 5, 7}, 1, 2.f, 3.f);
  Tensor y = bn.forward(x);
  std::vector<double> mean, var;
  reference_stats(y, mean, var);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(mean[c], 0.0, 1e-5);
    EXPECT_NEAR(var[c], 1.0, 1e-3);  // var/(var+eps)
  }
}

TEST(BatchNorm, RunningStatsFollowMomentumAndCumulativeAverage) {
  for (std::optional<double> momentum : {std::optional<double>(0.1), std::optional<double>()}) {
    BatchNorm1d bn(BatchNormOptions(4).momentum(momentum));
    std::vector<double> rm(4, 0.0), rv(4, 1.0);
    for (int step = 1; step <= 3; ++step) {
      Tensor x = random_tensor({6, 4, 3}, step, float(step), 2.f);
      bn.forward(x);
      std::vector<double> mean, var;
      reference_stats(x, mean, var);
      const double f = momentum ? *momentum : 1.0 / step;
      for (int c = 0; c < 4; ++c) {
        rm[c] = (1 - f) * rm[c] + f * mean[c];
        rv[c] = (1 - f) * rv[c] + f * var[c] * 18.0 / 17.0;
        EXPECT_NEAR(bn.running_mean.data<float>()[c], rm[c], 1e-5);
        EXPECT_NEAR(bn.running_var.data<float>()[c], rv[c], 1e-5);
      }
      EXPECT_EQ(bn.num_batches_tracked.item(), step);
    }
  }
}

TEST(BatchNorm, LargeMeanKeepsVarianceAccurate) {
  Tensor x = random_tensor({8, 2, 16, 16}, 3, 1e4f, 1.f);
  auto m = functional::channel_moments(x);
  std::vector<double> mean, var;
  reference_stats(x, mean, var);
  for (int c = 0; c < 2; ++c) {
    EXPECT_NEAR(m.mean[c], mean[c], 1e-9 * 1e4);
    EXPECT_NEAR(m.m2[c] / double(m.count), var[c], 1e-6 * var[c]);
  }
}

TEST(BatchNorm, EvalUsesRunningStats) {
  BatchNorm2d bn(2);
  bn.running_mean = Tensor::from({2}, {1.f, -2.f});
  bn.running_var = Tensor::from({2}, {4.f, 0.25f});
  bn.eval();
  Tensor x = Tensor::from({1, 2, 1, 1}, {3.f, -1.f});
  Tensor y = bn.forward(x);
  EXPECT_NEAR(y.data<float>()[0], 2.0 / std::sqrt(4 + 1e-5), 1e-6);
  EXPECT_NEAR(y.data<float>()[1], 1.0 / std::sqrt(0.25 + 1e-5), 1e-5);
  EXPECT_EQ(bn.num_batches_tracked.item(), 0);
}

TEST(BatchNorm, WithoutRunningStatsUsesBatchStatsInEval) {
  BatchNorm2d bn(BatchNormOptions(3).track_running_stats(false));
  EXPECT_FALSE(bn.running_mean.defined());
  EXPECT_EQ(bn.state_dict().size(), 2u);
  bn.eval();
  Tensor x = random_tensor({2, 3, 4, 4}, 5, 3.f, 2.f);
  bn.train();
  Tensor train_y = bn.forward(x);
  bn.eval();
  EXPECT_TRUE(all_close(bn.forward(x), train_y, 0, 0));
}

TEST(BatchNorm, EmptyBatchInTraining) {
  BatchNorm2d bn(3);
  bn.running_mean.fill_(0.5);
  Tensor y = bn.forward(Tensor({0, 3, 2, 2}));
  EXPECT_EQ(y.shape(), (Shape{0, 3, 2, 2}));
  EXPECT_EQ(bn.running_mean.data<float>()[0], 0.5f);
  EXPECT_EQ(bn.num_batches_tracked.item(), 1);
  Tensor dx = bn.backward(Tensor({0, 3, 2, 2}));
  EXPECT_EQ(dx.numel(), 0);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(bn.weight.grad.data<float>()[c], 0.f);
    EXPECT_EQ(bn.bias.grad.data<float>()[c], 0.f);
  }
}

TEST(BatchNorm, InputChecksUsePyTorchWording) {
  BatchNorm2d bn2(3);
  try {
    bn2.forward(Tensor({2, 3, 4}));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "expected 4D input (got 3D input)");
  }
  BatchNorm1d bn1(3);
  EXPECT_THROW(bn1.forward(Tensor({2, 3, 4, 5})), ShapeError);
  try {
    bn1.forward(Tensor({1, 3}));
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(),
                 "Expected more than 1 value per channel when training, got input size [1, 3]");
  }
  EXPECT_THROW(bn2.forward(Tensor({2, 4, 3, 3})), ShapeError);  // channel mismatch
  EXPECT_THROW(BatchNorm3d(3).forward(Tensor({2, 3, 4, 4})), ShapeError);
}

TEST(BatchNorm, GradientsMatchFiniteDifferences) {
  BatchNorm2d train_bn(3);
  train_bn.weight.value = random_tensor({3}, 7);
  train_bn.bias.value = random_tensor({3}, 8);
  testing::expect_gradients_match(train_bn, random_tensor({3, 3, 2, 3}, 9));

  BatchNorm1d eval_bn(BatchNormOptions(4).momentum(std::nullopt));
  eval_bn.forward(random_tensor({8, 4}, 10));
  eval_bn.eval();
  testing::expect_gradients_match(eval_bn, random_tensor({5, 4}, 11));

  BatchNorm3d plain(BatchNormOptions(2).affine(false));
  testing::expect_gradients_match(plain, random_tensor({2, 2, 2, 2, 3}, 12));
}

// The module shares its input's storage for backward; a caller writing the input afterwards
// must not change the saved copy (copy-on-write), in training and in eval.
TEST(BatchNorm, BackwardUsesTheInputAsItWasAtForward) {
  for (bool training : {true, false}) {
    BatchNorm2d kept(3), reference(3);
    kept.weight.value = reference.weight.value = random_tensor({3}, 21);
    kept.train(training);
    reference.train(training);
    const Tensor x = random_tensor({4, 3, 5, 7}, 22), dy = random_tensor({4, 3, 5, 7}, 23);
    Tensor overwritten = x;
    kept.forward(overwritten);
    overwritten.fill_(100.0);
    reference.forward(x);
    EXPECT_TRUE(all_close(kept.backward(dy), reference.backward(dy), 0, 0)) << training;
    EXPECT_TRUE(all_close(kept.weight.grad, reference.weight.grad, 0, 0)) << training;
  }
}

TEST(BatchNorm, StateDictKeysAndVersionOneMigration) {
  BatchNorm2d bn(3);
  auto dict = bn.state_dict();
  std::vector<std::string> keys;
  for (auto& [k, v] : dict) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"bias", "num_batches_tracked", "running_mean",
                                            "running_var", "weight"}));
  EXPECT_EQ(dict["num_batches_tracked"].dtype(), DType::Int64);
  dict["num_batches_tracked"] = Tensor::scalar_int64(5);
  dict["running_mean"] = Tensor::full({3}, 2.0);
  BatchNorm2d other(3);
  other.load_state_dict(dict);
  EXPECT_EQ(other.num_batches_tracked.item(), 5);
  EXPECT_EQ(other.running_mean.data<float>()[2], 2.f);
  dict.erase("num_batches_tracked");  // version-1 dict
  other.load_state_dict(dict);
  EXPECT_EQ(other.num_batches_tracked.item(), 0);
}

TEST(BatchNorm, LoadStateDictErrorsNameTheProblem) {
  BatchNorm2d bn(3);
  auto dict = bn.state_dict();
  dict["weight"] = Tensor({4});
  dict["extra"] = Tensor({1});
  dict.erase("bias");
  try {
    bn.load_state_dict(dict);
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("Missing key(s) in state_dict: \"bias\""), std::string::npos) << what;
    EXPECT_NE(what.find("Unexpected key(s) in state_dict: \"extra\""), std::string::npos) << what;
    EXPECT_NE(what.find("size mismatch for weight"), std::string::npos) << what;
  }
  EXPECT_EQ(bn.weight.value.numel(), 3);  // unchanged
}

TEST(BatchNorm, LazyInfersFeaturesOnFirstForward) {
  LazyBatchNorm2d bn;
  EXPECT_EQ(bn.type_name(), "LazyBatchNorm2d");
  bn.forward(random_tensor({2, 5, 3, 3}, 1));
  EXPECT_EQ(bn.type_name(), "BatchNorm2d");
  EXPECT_EQ(bn.options().num_features(), 5);
  EXPECT_EQ(bn.running_mean.numel(), 5);
  EXPECT_THROW(bn.forward(random_tensor({2, 4, 3, 3}, 1)), ShapeError);
}

TEST(BatchNorm, ReprMatchesPyTorch) {
  EXPECT_EQ(BatchNorm2d(64).repr(),
            "BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  EXPECT_EQ(BatchNorm1d(BatchNormOptions(3).momentum(std::nullopt).affine(false)).repr(),
            "BatchNorm1d(3, eps=1e-05, momentum=None, affine=False, track_running_stats=True)");
}

TEST(BatchNorm, ReplaceAllBatchNormModulesDropsRunningStats) {
  auto seq = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<BatchNorm2d>(3), std::make_shared<BatchNorm1d>(2)});
  replace_all_batch_norm_modules_(seq);
  auto bn = std::dynamic_pointer_cast<BatchNormBase>(seq->child("0"));
  EXPECT_FALSE(bn->options().track_running_stats());
  EXPECT_FALSE(bn->running_mean.defined());
  EXPECT_EQ(seq->state_dict().size(), 4u);  // weights and biases only
}

}  // namespace
}  // namespace syncbn::nn
