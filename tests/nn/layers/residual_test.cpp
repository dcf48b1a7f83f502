// Residual: the formula against a hand-wired reference from the block's own children, finite
// differences with and without a shortcut and activation, converted children are the ones used,
// torchvision-shaped state_dict keys, shape errors.
#include <gtest/gtest.h>

#include <algorithm>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/nn/batchnorm.hpp"
#include "syncbn/nn/layers/activation.hpp"
#include "syncbn/nn/layers/conv.hpp"
#include "syncbn/nn/layers/identity.hpp"
#include "syncbn/nn/layers/linear.hpp"
#include "syncbn/nn/layers/residual.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"

namespace syncbn::nn {
namespace {
using testing::all_close;
using testing::random_tensor;

// conv1 -> bn1 -> relu -> conv2 (c -> out channels, stride s), shortcut conv 1x1 + bn when asked.
std::shared_ptr<Residual> conv_block(std::int64_t c, std::int64_t out, std::int64_t s,
                                     bool shortcut, bool relu, Generator& gen) {
  auto block = std::make_shared<Residual>(relu);
  block->add_main("conv1", std::make_shared<Conv2d>(
                               Conv2dOptions(c, out, 3).stride(s).padding(1).bias(false), gen));
  block->add_main("bn1", std::make_shared<BatchNorm2d>(out));
  block->add_main("relu", std::make_shared<ReLU>());
  block->add_main("conv2", std::make_shared<Conv2d>(Conv2dOptions(out, out, 3).padding(1), gen));
  if (shortcut) {
    auto down = std::make_shared<Sequential>();
    down->push_back(std::make_shared<Conv2d>(Conv2dOptions(c, out, 1).stride(s).bias(false), gen));
    down->push_back(std::make_shared<BatchNorm2d>(out));
    block->set_shortcut(down);
  }
  return block;
}

// act(main(x) + shortcut(x)), computed from the children one by one.
Tensor reference_forward(Residual& block, const Tensor& x) {
  Tensor h = x;
  for (const auto& name : block.main_names()) h = block.child(name)->forward(h);
  const Tensor s = block.has_shortcut() ? block.child(block.shortcut_name())->forward(x) : x;
  for (std::int64_t i = 0; i < h.numel(); ++i) {
    const float v = h.data<float>()[i] + s.data<float>()[i];
    h.data<float>()[i] = block.relu() ? std::max(v, 0.f) : v;
  }
  return h;
}

TEST(Residual, ForwardIsTheResidualFormula) {
  for (bool shortcut : {false, true})
    for (bool relu : {false, true}) {
      Generator gen(3);
      auto block = conv_block(4, 4, shortcut ? 2 : 1, shortcut, relu, gen);
      block->eval();  // running stats: repeated forwards give the same result
      const Tensor x = random_tensor({2, 4, 6, 6}, 4);
      EXPECT_TRUE(all_close(block->forward(x), reference_forward(*block, x), 1e-6, 1e-6));
    }
}

TEST(Residual, KeysAreTheChildrensNames) {
  Generator gen(0);
  auto block = conv_block(2, 4, 2, true, true, gen);
  std::vector<std::string> keys;
  for (const auto& [k, v] : block->state_dict()) keys.push_back(k);
  for (const char* k : {"conv1.weight", "bn1.running_mean", "conv2.bias", "downsample.0.weight",
                        "downsample.1.num_batches_tracked"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
  Residual named(true, "shortcut");
  named.add_main("fc", std::make_shared<Linear>(LinearOptions(3, 3), gen));
  named.set_shortcut(std::make_shared<Linear>(LinearOptions(3, 3), gen));
  EXPECT_EQ(named.state_dict().count("shortcut.weight"), 1u);
}

TEST(Residual, GradientsMatchFiniteDifferences) {
  for (bool shortcut : {false, true})
    for (bool relu : {false, true}) {
      SCOPED_TRACE(std::string(shortcut ? "shortcut" : "identity") + (relu ? " relu" : ""));
      Generator gen(5);
      auto block = conv_block(3, 3, 1, shortcut, relu, gen);
      testing::expect_piecewise_gradients_match(*block, random_tensor({2, 3, 5, 5}, 6), 1e-3, 2e-2);
    }
  // No kinks at all (linear layers, no activation): the plain central-difference check.
  Generator gen(1);
  Residual linear(false);
  linear.add_main("fc", std::make_shared<Linear>(LinearOptions(4, 4), gen));
  linear.set_shortcut(std::make_shared<Linear>(LinearOptions(4, 4), gen));
  testing::expect_gradients_match(linear, random_tensor({3, 4}, 2));
}

TEST(Residual, IdentityMainPathLeavesTheInputAlone) {
  Residual block(true);
  block.add_main("id", std::make_shared<Identity>());  // hands back the input's storage
  const Tensor x = random_tensor({2, 5}, 1);
  const Tensor before = x.clone();
  const Tensor y = block.forward(x);
  EXPECT_TRUE(all_close(x, before, 0, 0));  // the sum went into a copy
  for (std::int64_t i = 0; i < x.numel(); ++i)
    EXPECT_EQ(y.item(i), std::max(0.0, x.item(i) + x.item(i)));
}

TEST(Residual, ChildrenSwappedByConversionAreUsed) {
  Generator gen(7);
  auto block = conv_block(4, 8, 2, true, true, gen);
  const Tensor x = random_tensor({3, 4, 6, 6}, 8);
  const Tensor before = block->forward(x);
  const Tensor dx_before = block->backward(before);
  auto converted = convert_sync_batchnorm(block);
  EXPECT_EQ(count_sync_batchnorm(*converted), 2);
  // A world of one: SyncBatchNorm is BatchNorm, so the results are unchanged...
  EXPECT_TRUE(all_close(converted->forward(x), before, 1e-6, 1e-6));
  EXPECT_TRUE(all_close(converted->backward(before), dx_before, 1e-5, 1e-5));
  // ...and it is the converted module that ran (it tracked the batch).
  auto bn1 = std::dynamic_pointer_cast<SyncBatchNorm>(converted->child("bn1"));
  ASSERT_NE(bn1, nullptr);
  EXPECT_EQ(bn1->num_batches_tracked.item(), 2.0);
}

TEST(Residual, ShapeAndSetupErrors) {
  Generator gen(0);
  auto block = conv_block(4, 8, 1, false, true, gen);  // 4 -> 8 channels, identity shortcut
  testing::expect_error_mentions<ShapeError>(
      [&] {
        block->forward(random_tensor({1, 4, 5, 5}, 1));
      },
      {"Residual", "[1, 8, 5, 5]", "[1, 4, 5, 5]"});
  Residual r;
  EXPECT_THROW(r.add_main("downsample", std::make_shared<ReLU>()), ValueError);
  EXPECT_THROW(r.add_main("x", nullptr), ValueError);
  r.set_shortcut(std::make_shared<ReLU>());
  EXPECT_THROW(r.set_shortcut(std::make_shared<ReLU>()), ValueError);
  EXPECT_THROW(Residual(true, ""), ValueError);
  EXPECT_THROW(r.backward(random_tensor({2}, 1)), ShapeError);  // no forward yet
}

}  // namespace
}  // namespace syncbn::nn
