#pragma once
// Builds the module tree a ModelConfig describes (configs/README.md, "The model language"):
// its `layers`, or the template's expansion (config::model_layers), under the config's names, so
// state_dict keys are the config's ("layer2.0.downsample.1.running_mean").
//
// Shapes are inferred from model.input (one sample: [C], [C, L], [C, H, W] or [C, D, H, W])
// layer by layer: in_channels, num_features, num_channels and in_features follow from the shape
// coming in, and written ones are checked against it. Every mistake is a ConfigError before any
// training, naming the layer ("configs/x.yaml:12: model.layers.layer3.1.conv2: in_channels 128
// does not match the 256 channels coming in"): a wrong input rank for a layer, an output
// smaller than 1, groups not dividing the channels, a residual whose branches disagree, and a
// model that does not end in [num_classes].
//
// Weights are drawn from `seed` alone, in tree order, so every rank builds the same model (the
// trainer still broadcasts rank 0's); dropout layer k (in tree order) draws its masks from
// seed + 1 + k. model.init resnet then redraws every convolution weight (Kaiming normal, fan
// out). A template config builds the weights the fixed ResNet builder built, bit for bit.
#include <cstdint>
#include <memory>

#include "syncbn/config/config.hpp"
#include "syncbn/nn/module.hpp"

namespace syncbn::builders {

std::shared_ptr<nn::Module> build_model(const config::ModelConfig& model, std::uint64_t seed);

}  // namespace syncbn::builders
