#pragma once
// BasicBlock: torchvision's ResNet v1 residual block (expansion 1).
//
//   out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
//   conv1 = 3x3, stride s, pad 1, no bias; conv2 = 3x3, stride 1, pad 1, no bias
//   shortcut = x when stride == 1 and inplanes == planes, else
//              downsample = Sequential(1x1 conv stride s no bias, norm(planes))
// Backward: g = dy * [out > 0] flows into both branches; dx = main branch dx + shortcut dx.
//
// The norm layers come from a NormFactory, so the model builder decides: BatchNorm2d,
// SyncBatchNorm, GroupNorm, ... Children are registered as torchvision names them (conv1, bn1,
// conv2, bn2, downsample.0, downsample.1), so state_dict keys match a PyTorch checkpoint's.
// forward/backward look children up by name each call, so a child swapped in later (e.g. by
// convert_sync_batchnorm) is the one used. The two ReLUs are internal and hold no state_dict
// entries (torchvision's shared `relu` child has none either).
// Contract: backward follows the forward it belongs to; children save their own inputs.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "syncbn/nn/batchnorm.hpp"
#include "syncbn/nn/layers/activation.hpp"
#include "syncbn/nn/layers/init.hpp"
#include "syncbn/nn/module.hpp"

namespace syncbn::nn {

// Makes the norm layer for `channels` channels.
using NormFactory = std::function<std::shared_ptr<Module>(std::int64_t channels)>;

// BatchNorm2d with `options` (its num_features replaced by the channel count).
NormFactory batch_norm2d_factory(BatchNormOptions options = BatchNormOptions());

class BasicBlock : public Module {
 public:
  static constexpr std::int64_t expansion = 1;

  // Convolutions get PyTorch's default init from `gen`, drawn in registration order (conv1,
  // conv2, downsample.0). Throws ValueError for a null factory or a factory returning null.
  BasicBlock(std::int64_t inplanes, std::int64_t planes, std::int64_t stride,
             const NormFactory& norm, Generator& gen);

  bool has_downsample() const { return has_downsample_; }
  std::string type_name() const override { return "BasicBlock"; }
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;

 private:
  void add_relu_(Tensor& x, const Tensor& shortcut);  // x = relu(x + shortcut), keeps the mask
  bool has_downsample_;
  ReLU relu_inner_;
  std::vector<std::uint8_t> out_mask_;  // the last forward's out > 0, for backward
  Shape out_shape_;
};

// torchvision ResNet's init, applied to a whole tree: kaiming_normal_(fan_out, relu) on every
// Conv2d weight; with zero_init_residual, the weight of every BasicBlock's bn2 is set to 0 so
// each block starts as the identity (Goyal et al., 2017).
void resnet_init_(Module& root, Generator& gen, bool zero_init_residual = false);

}  // namespace syncbn::nn
