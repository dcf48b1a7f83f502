// AdamW, clip_grad_norm and label-smoothed CrossEntropyLoss against PyTorch 1.13 goldens
// (tests/train/generate_optim_goldens.py wrote goldens/optim.txt); AdamW's state round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/golden_records.hpp"
#include "syncbn/error.hpp"
#include "syncbn/train/adamw.hpp"
#include "syncbn/train/loss.hpp"
#include "syncbn/train/optimizer.hpp"

namespace syncbn::train {
namespace {
using nn::Parameter;
constexpr double kTol = 1e-5;
const std::vector<Shape> kShapes = {{3}, {2, 2}, {1}};  // as the generator's SHAPES

const std::map<std::string, std::vector<double>>& goldens() {
  static const auto records = testing::read_golden_records(SYNCBN_OPTIM_GOLDENS);
  return records;
}

const std::vector<double>& golden(const std::string& name) {
  const auto it = goldens().find(name);
  if (it == goldens().end()) throw std::runtime_error("no golden " + name);
  return it->second;
}

Tensor tensor(const std::string& name, const Shape& shape) {
  const auto& v = golden(name);
  return Tensor::from(shape, std::vector<float>(v.begin(), v.end()));
}

void expect_close(const Tensor& got, const std::string& name) {
  const auto& want = golden(name);
  ASSERT_EQ(got.numel(), static_cast<std::int64_t>(want.size())) << name;
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got.data<float>()[i], want[i], kTol + kTol * std::abs(want[i]))
        << name << "[" << i << "]";
}

struct Params {
  std::vector<Parameter> storage;
  NamedParameters named() {
    NamedParameters out;
    for (std::size_t i = 0; i < storage.size(); ++i)
      out.emplace_back("p" + std::to_string(i), &storage[i]);
    return out;
  }
};

Params initial(const std::string& c) {
  Params p;
  for (std::size_t i = 0; i < kShapes.size(); ++i)
    p.storage.push_back({tensor(c + ".init" + std::to_string(i), kShapes[i]), Tensor()});
  return p;
}

AdamWOptions adamw_options(const std::string& c) {
  const auto& o = golden(c + ".options");
  return AdamWOptions(o[0]).beta1(o[1]).beta2(o[2]).eps(o[3]).weight_decay(o[4]);
}

void set_grads(Params& p, const std::string& c, int step) {
  for (std::size_t i = 0; i < kShapes.size(); ++i)
    p.storage[i].grad =
        tensor(c + ".step" + std::to_string(step) + ".grad" + std::to_string(i), kShapes[i]);
}

class AdamWGolden : public ::testing::TestWithParam<std::pair<const char*, int>> {};

TEST_P(AdamWGolden, MatchesPyTorchStepByStep) {
  const auto [c, steps] = GetParam();
  Params p = initial(c);
  AdamW opt(p.named(), adamw_options(c));
  for (int k = 0; k < steps; ++k) {
    set_grads(p, c, k);
    opt.step();
    for (std::size_t i = 0; i < kShapes.size(); ++i)
      expect_close(p.storage[i].value,
                   std::string(c) + ".step" + std::to_string(k) + ".param" + std::to_string(i));
  }
}

// A fresh optimizer that loads the state after step 2 continues exactly as the original.
TEST_P(AdamWGolden, ResumesFromItsStateDict) {
  const auto [c, steps] = GetParam();
  Params p = initial(c);
  AdamW first(p.named(), adamw_options(c));
  for (int k = 0; k < 2; ++k) {
    set_grads(p, c, k);
    first.step();
  }
  nn::StateDict saved;
  for (const auto& [key, value] : first.state_dict()) saved[key] = value.clone();
  EXPECT_EQ(saved.size(), 3 * kShapes.size());
  AdamW second(p.named(), adamw_options(c));
  second.load_state_dict(saved);
  for (int k = 2; k < steps; ++k) {
    set_grads(p, c, k);
    second.step();
  }
  for (std::size_t i = 0; i < kShapes.size(); ++i)
    expect_close(p.storage[i].value, std::string(c) + ".step" + std::to_string(steps - 1) +
                                         ".param" + std::to_string(i));
}

INSTANTIATE_TEST_SUITE_P(Cases, AdamWGolden,
                         ::testing::Values(std::make_pair("adamw_defaults", 4),
                                           std::make_pair("adamw_decay", 5),
                                           std::make_pair("adamw_no_decay", 3)),
                         [](const auto& test) { return std::string(test.param.first); });

TEST(AdamW, RefusesBadOptionsAndState) {
  Parameter w{Tensor::zeros({2}), Tensor()};
  EXPECT_THROW(AdamW({{"w", &w}}, AdamWOptions(-1)), ValueError);
  EXPECT_THROW(AdamW({{"w", &w}}, AdamWOptions(0.1).beta1(1.0)), ValueError);
  EXPECT_THROW(AdamW({{"w", &w}}, AdamWOptions(0.1).beta2(-0.1)), ValueError);
  EXPECT_THROW(AdamW({{"w", &w}}, AdamWOptions(0.1).eps(-1)), ValueError);
  AdamW opt({{"w", &w}}, AdamWOptions(0.1));
  EXPECT_THROW(opt.load_state_dict({{"w.exp_avg", Tensor::zeros({2})}}), ValueError);  // partial
  EXPECT_THROW(opt.load_state_dict({{"v.exp_avg", Tensor::zeros({2})}}), ValueError);
  EXPECT_THROW(opt.load_state_dict({{"w.exp_avg", Tensor::zeros({3})},
                                    {"w.exp_avg_sq", Tensor::zeros({2})},
                                    {"w.step", Tensor::zeros({1})}}),
               ShapeError);
}

TEST(ClipGradNorm, MatchesPyTorch) {
  for (const std::string c : {"clip_active", "clip_inactive"}) {
    SCOPED_TRACE(c);
    Params p;
    for (std::size_t i = 0; i < kShapes.size(); ++i)
      p.storage.push_back(
          {Tensor::zeros(kShapes[i]), tensor(c + ".grad" + std::to_string(i), kShapes[i])});
    const double norm = clip_grad_norm(p.named(), golden(c + ".max_norm")[0]);
    const double want = golden(c + ".total_norm")[0];
    EXPECT_NEAR(norm, want, kTol * want);
    for (std::size_t i = 0; i < kShapes.size(); ++i)
      expect_close(p.storage[i].grad, c + ".clipped" + std::to_string(i));
  }
  EXPECT_THROW(clip_grad_norm({}, 0.0), ValueError);
}

TEST(LabelSmoothing, LossAndGradientMatchPyTorch) {
  for (const std::string c : {"smooth_0p1", "smooth_0p3", "smooth_0"}) {
    SCOPED_TRACE(c);
    const auto& shape = golden(c + ".shape");
    const Shape s{static_cast<std::int64_t>(shape[0]), static_cast<std::int64_t>(shape[1])};
    std::vector<std::int64_t> labels;
    for (double y : golden(c + ".labels")) labels.push_back(static_cast<std::int64_t>(y));
    CrossEntropyLoss loss(CrossEntropyLossOptions().label_smoothing(golden(c + ".eps")[0]));
    const double want = golden(c + ".loss")[0];
    EXPECT_NEAR(loss.forward(tensor(c + ".logits", s), labels), want, kTol + kTol * want);
    expect_close(loss.backward(), c + ".grad");
  }
}

}  // namespace
}  // namespace syncbn::train
