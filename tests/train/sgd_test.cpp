// SGD: PyTorch's update rule against a double-precision transcription of the formula, over
// several steps and every option combination; state round trips; errors.
#include <gtest/gtest.h>

#include <vector>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/train/sgd.hpp"

namespace syncbn::train {
namespace {
using nn::Parameter;

Parameter make_param(std::vector<float> value) {
  const Shape shape{static_cast<std::int64_t>(value.size())};
  return {Tensor::from(shape, value), Tensor::zeros(shape)};
}

// The formula, one parameter vector, in double.
struct ReferenceSgd {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
  std::vector<double> buf;
  void step(std::vector<double>& p, const std::vector<double>& grad) {
    const bool first = buf.empty();
    buf.resize(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
      double g = grad[i] + weight_decay * p[i];
      if (momentum != 0) {
        buf[i] = first ? g : momentum * buf[i] + (1 - dampening) * g;
        g = nesterov ? g + momentum * buf[i] : buf[i];
      }
      p[i] -= lr * g;
    }
  }
};

TEST(SGD, MatchesTheFormulaOverSeveralSteps) {
  struct Setting {
    double momentum, dampening, weight_decay;
    bool nesterov;
  };
  for (const auto& s :
       {Setting{0, 0, 0, false}, Setting{0, 0, 0.1, false}, Setting{0.9, 0, 0, false},
        Setting{0.9, 0.3, 0.01, false}, Setting{0.9, 0, 0.05, true}}) {
    SCOPED_TRACE("momentum " + std::to_string(s.momentum) + " dampening " +
                 std::to_string(s.dampening) + " wd " + std::to_string(s.weight_decay) +
                 (s.nesterov ? " nesterov" : ""));
    Parameter p = make_param({1.f, -2.f, 0.5f});
    SGD sgd({{"w", &p}}, SGDOptions(0.1)
                             .momentum(s.momentum)
                             .dampening(s.dampening)
                             .weight_decay(s.weight_decay)
                             .nesterov(s.nesterov));
    ReferenceSgd ref{0.1, s.momentum, s.dampening, s.weight_decay, s.nesterov, {}};
    std::vector<double> expected{1, -2, 0.5};
    const std::vector<std::vector<double>> grads{
        {0.5, 1, -1}, {0.25, -0.5, 2}, {1, 0, -0.75}, {-0.5, 0.5, 0.5}};
    for (const auto& g : grads) {
      for (std::size_t i = 0; i < g.size(); ++i) p.grad.data<float>()[i] = static_cast<float>(g[i]);
      sgd.step();
      ref.step(expected, g);
      for (std::size_t i = 0; i < g.size(); ++i)
        EXPECT_NEAR(p.value.item(static_cast<std::int64_t>(i)), expected[i], 1e-6);
    }
  }
}

TEST(SGD, FirstMomentumStepIsPlainSgdThenTheBufferAccumulates) {
  // momentum 0.9, dampening 0.5: step 1 buf = g (dampening not applied), step 2 buf = 0.9 g + 0.5
  // g.
  Parameter p = make_param({0.f});
  SGD sgd({{"w", &p}}, SGDOptions(1.0).momentum(0.9).dampening(0.5));
  p.grad.fill_(1.0);
  sgd.step();
  EXPECT_FLOAT_EQ(p.value.item(), -1.f);
  EXPECT_FLOAT_EQ(sgd.state_dict().at("w.momentum_buffer").item(), 1.f);
  sgd.step();
  EXPECT_FLOAT_EQ(sgd.state_dict().at("w.momentum_buffer").item(), 1.4f);
  EXPECT_FLOAT_EQ(p.value.item(), -2.4f);
}

TEST(SGD, SkipsUndefinedGradientsAndZeroGradDefinesThem) {
  Parameter a = make_param({1.f}), b = make_param({1.f});
  b.grad = Tensor();
  SGD sgd({{"a", &a}, {"b", &b}}, SGDOptions(0.5).momentum(0.9));
  a.grad.fill_(1.0);
  sgd.step();
  EXPECT_FLOAT_EQ(a.value.item(), 0.5f);
  EXPECT_FLOAT_EQ(b.value.item(), 1.f);
  EXPECT_EQ(sgd.state_dict().size(), 1u);
  sgd.zero_grad();
  EXPECT_EQ(a.grad.item(), 0.0);
  ASSERT_TRUE(b.grad.defined());
  EXPECT_EQ(b.grad.shape(), b.value.shape());
}

TEST(SGD, StateDictRoundTripResumesExactly) {
  auto run = [](Parameter& p, SGD& sgd, int steps, int offset) {
    for (int s = 0; s < steps; ++s) {
      p.grad.fill_(0.1 * (s + offset + 1));
      sgd.step();
    }
  };
  Parameter straight = make_param({1.f, 2.f});
  SGD a({{"layer.weight", &straight}}, SGDOptions(0.1).momentum(0.9).nesterov(true));
  run(straight, a, 4, 0);

  Parameter resumed = make_param({1.f, 2.f});
  SGD b({{"layer.weight", &resumed}}, SGDOptions(0.1).momentum(0.9).nesterov(true));
  run(resumed, b, 2, 0);
  const nn::StateDict state = b.state_dict();
  ASSERT_EQ(state.count("layer.weight.momentum_buffer"), 1u);
  SGD c({{"layer.weight", &resumed}}, SGDOptions(0.1).momentum(0.9).nesterov(true));
  c.load_state_dict(state);
  run(resumed, c, 2, 2);
  EXPECT_EQ(max_abs_diff(straight.value, resumed.value), 0.0);
}

TEST(SGD, Errors) {
  Parameter p = make_param({1.f, 2.f});
  EXPECT_THROW(SGD({{"w", &p}}, SGDOptions(-1)), ValueError);
  EXPECT_THROW(SGD({{"w", &p}}, SGDOptions(0.1).nesterov(true)), ValueError);
  EXPECT_THROW(SGD({{"w", &p}}, SGDOptions(0.1).momentum(0.9).dampening(0.1).nesterov(true)),
               ValueError);
  EXPECT_THROW(SGD({{"w", &p}}, SGDOptions(0.1).weight_decay(-1)), ValueError);
  EXPECT_THROW(SGD({{"w", &p}, {"w", &p}}, SGDOptions(0.1)), ValueError);
  EXPECT_THROW(SGD({{"w", nullptr}}, SGDOptions(0.1)), ValueError);
  SGD sgd({{"w", &p}}, SGDOptions(0.1).momentum(0.9));
  EXPECT_THROW(sgd.set_lr(-0.1), ValueError);
  sgd.set_lr(0.05);
  EXPECT_EQ(sgd.lr(), 0.05);
  testing::expect_error_mentions<ValueError>(
      [&] {
        sgd.load_state_dict({{"v.momentum_buffer", Tensor({2})}});
      },
      {"v.momentum_buffer"});
  testing::expect_error_mentions<ValueError>(
      [&] {
        sgd.load_state_dict({{"w", Tensor({2})}});
      },
      {"'w'"});
  testing::expect_error_mentions<ShapeError>(
      [&] {
        sgd.load_state_dict({{"w.momentum_buffer", Tensor({3})}});
      },
      {"[3]", "[2]"});
  p.grad = Tensor({3});
  testing::expect_error_mentions<ShapeError>([&] { sgd.step(); }, {"'w'", "[3]", "[2]"});
  EXPECT_FLOAT_EQ(p.value.item(1), 2.f);
}

}  // namespace
}  // namespace syncbn::train
