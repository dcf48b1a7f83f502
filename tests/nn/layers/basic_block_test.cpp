// BasicBlock: torchvision names, both shortcuts against a hand-wired reference, finite
// differences with BatchNorm and GroupNorm, conversion to SyncBatchNorm, ResNet init.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/nn/groupnorm.hpp"
#include "syncbn/nn/layers/basic_block.hpp"
#include "syncbn/nn/layers/conv2d.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"

namespace syncbn::nn {
namespace {
using testing::all_close;
using testing::random_tensor;

std::vector<std::string> keys(const Module& m) {
  std::vector<std::string> out;
  for (const auto& [key, value] : m.state_dict()) out.push_back(key);
  return out;
}

NormFactory group_norm_factory() {
  return [](std::int64_t c) { return std::make_shared<GroupNorm>(2, c); };
}

TEST(BasicBlock, StateDictKeysMatchTorchvision) {
  Generator gen(0);
  BasicBlock identity(8, 8, 1, batch_norm2d_factory(), gen);
  EXPECT_FALSE(identity.has_downsample());
  const std::vector<std::string> bn = {"running_mean", "running_var", "num_batches_tracked",
                                       "weight", "bias"};
  std::vector<std::string> expected = {"conv1.weight", "conv2.weight"};
  for (const char* layer : {"bn1", "bn2"})
    for (const auto& k : bn) expected.push_back(std::string(layer) + "." + k);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(keys(identity), expected);

  BasicBlock projection(8, 16, 2, batch_norm2d_factory(), gen);
  EXPECT_TRUE(projection.has_downsample());
  expected.push_back("downsample.0.weight");
  for (const auto& k : bn) expected.push_back("downsample.1." + k);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(keys(projection), expected);
  EXPECT_EQ(projection.child("downsample")->child("0")->repr(),
            "Conv2d(8, 16, kernel_size=(1, 1), stride=(2, 2), bias=False)");
}

// relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut x), wired by hand from the block's own children.
Tensor reference_forward(BasicBlock& block, const Tensor& x) {
  Tensor h = block.child("bn1")->forward(block.child("conv1")->forward(x));
  for (std::int64_t i = 0; i < h.numel(); ++i)
    h.data<float>()[i] = std::max(h.data<float>()[i], 0.f);
  h = block.child("bn2")->forward(block.child("conv2")->forward(h));
  const Tensor s = block.has_downsample() ? block.child("downsample")->forward(x) : x;
  for (std::int64_t i = 0; i < h.numel(); ++i)
    h.data<float>()[i] = std::max(h.data<float>()[i] + s.item(i), 0.0);
  return h;
}

TEST(BasicBlock, ForwardIsTheResidualFormula) {
  for (std::int64_t stride : {1, 2}) {
    Generator gen(3);
    BasicBlock block(4, stride == 1 ? 4 : 6, stride, batch_norm2d_factory(), gen);
    block.eval();  // running stats: repeated forwards give the same result
    const Tensor x = random_tensor({2, 4, 6, 6}, 4);
    const Tensor y = block.forward(x);
    EXPECT_EQ(y.shape(), (Shape{2, stride == 1 ? 4 : 6, 6 / stride, 6 / stride}));
    EXPECT_TRUE(all_close(y, reference_forward(block, x), 1e-6, 1e-6));
  }
}

TEST(BasicBlock, GradientsMatchFiniteDifferences) {
  struct Setup {
    std::int64_t in, out, stride;
    NormFactory norm;
  };
  for (const auto& s :
       {Setup{3, 3, 1, batch_norm2d_factory()}, Setup{2, 4, 2, batch_norm2d_factory()},
        Setup{4, 4, 1, group_norm_factory()}, Setup{2, 4, 1, group_norm_factory()}}) {
    SCOPED_TRACE("in " + std::to_string(s.in) + " out " + std::to_string(s.out) + " stride " +
                 std::to_string(s.stride));
    Generator gen(5);
    BasicBlock block(s.in, s.out, s.stride, s.norm, gen);
    // Non-trivial affine parameters so their gradients are exercised too.
    std::uint32_t seed = 10;
    for (auto& [name, p] : block.named_parameters())
      if (name.find("weight") != std::string::npos && p->value.dim() == 1)
        p->value = random_tensor(p->value.shape(), seed++, 1.f, 0.3f);
    // A weight step moves every activation of its channel, so some of the ~200 ReLU inputs
    // cross zero: the piecewise check accepts the slope on either side of such a kink.
    testing::expect_piecewise_gradients_match(block, random_tensor({2, s.in, 5, 5}, 6), 1e-3, 2e-2);
  }
}

TEST(BasicBlock, ChildrenSwappedByConversionAreUsed) {
  Generator gen(7);
  auto block = std::make_shared<BasicBlock>(4, 8, 2, batch_norm2d_factory(), gen);
  const Tensor x = random_tensor({3, 4, 6, 6}, 8);
  const Tensor before = block->forward(x);
  const Tensor dx_before = block->backward(before);
  convert_sync_batchnorm(block);
  EXPECT_EQ(count_sync_batchnorm(*block), 3);
  // A world of one: SyncBatchNorm is BatchNorm, so the results are unchanged...
  EXPECT_TRUE(all_close(block->forward(x), before, 1e-6, 1e-6));
  EXPECT_TRUE(all_close(block->backward(before), dx_before, 1e-5, 1e-5));
  // ...and it is the converted module that ran (it tracked the batch).
  auto bn1 = std::dynamic_pointer_cast<SyncBatchNorm>(block->child("bn1"));
  ASSERT_NE(bn1, nullptr);
  EXPECT_EQ(bn1->num_batches_tracked.item(), 2.0);
}

TEST(BasicBlock, ResnetInitUsesFanOutAndCanZeroTheResidual) {
  Generator gen(1);
  BasicBlock block(64, 64, 1, batch_norm2d_factory(), gen);
  resnet_init_(block, gen, /*zero_init_residual=*/true);
  // kaiming_normal_(fan_out, relu): std = sqrt(2 / (64 * 3 * 3)).
  const Tensor& w = std::dynamic_pointer_cast<Conv2d>(block.child("conv1"))->weight.value;
  double sq = 0;
  for (std::int64_t i = 0; i < w.numel(); ++i) sq += w.item(i) * w.item(i);
  EXPECT_NEAR(std::sqrt(sq / w.numel()), std::sqrt(2.0 / 576), 0.02 * std::sqrt(2.0 / 576));
  // bn2 scales by zero: the block is relu(identity).
  const Tensor x = random_tensor({2, 64, 4, 4}, 2);
  Tensor relu_x = x;
  for (std::int64_t i = 0; i < x.numel(); ++i)
    relu_x.data<float>()[i] = std::max(x.data<float>()[i], 0.f);
  EXPECT_TRUE(all_close(block.forward(x), relu_x, 0, 0));
}

TEST(BasicBlock, BadFactoriesAndShapesAreErrors) {
  Generator gen(0);
  EXPECT_THROW(BasicBlock(4, 4, 1, NormFactory(), gen), ValueError);
  EXPECT_THROW(BasicBlock(
                   4, 4, 1, [](std::int64_t) { return std::shared_ptr<Module>(); }, gen),
               ValueError);
  BasicBlock block(4, 4, 1, batch_norm2d_factory(), gen);
  testing::expect_error_mentions<ShapeError>(
      [&] {
        block.forward(Tensor({2, 3, 5, 5}));
      },
      {"Conv2d(4, 4", "[2, 3, 5, 5]"});
}

}  // namespace
}  // namespace syncbn::nn
