#pragma once
// Builds the network a ModelConfig describes: a CIFAR-style ResNet v1 for small images,
//   conv1 (3x3, stride 1, no bias) -> bn1 -> relu -> layer1..layerK (BasicBlocks) -> avgpool
//   -> flatten -> [dropout] -> fc
// with torchvision's child names, so state_dict keys read like a PyTorch ResNet's
// ("layer2.0.downsample.1.running_mean"). Weights are drawn from `seed` alone, so every rank
// builds the same model (the trainer still broadcasts rank 0's to be safe). The trainer,
// syncbn-quantize and the benchmarks build their networks here.
#include <cstdint>
#include <memory>

#include "syncbn/config/config.hpp"
#include "syncbn/nn/layers/basic_block.hpp"
#include "syncbn/nn/module.hpp"

namespace syncbn::builders {

// The norm layer `model.norm` names: batch and sync_batch give BatchNorm2d (the trainer converts
// to SyncBatchNorm when the world is larger than one), batch_no_running_stats a BatchNorm2d
// without running stats, group:G a GroupNorm(G, C), none an identity. Throws ConfigError when
// G is not positive or does not divide a layer's channel count (never for a config the reader
// accepted: it checks both).
nn::NormFactory norm_factory(const config::ModelConfig& model);

std::shared_ptr<nn::Module> build_model(const config::ModelConfig& model, std::uint64_t seed);

}  // namespace syncbn::builders
