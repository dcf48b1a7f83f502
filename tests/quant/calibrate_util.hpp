#pragma once
// Helpers for the calibration tests: a tiny ResNet from the model builder (configs/tiny.yaml's
// shape) whose BatchNorm layers hold non-trivial affine parameters and running statistics, and
// its synthetic data.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "support/test_util.hpp"
#include "syncbn/builders/data.hpp"
#include "syncbn/builders/model.hpp"
#include "syncbn/config/config.hpp"
#include "syncbn/data/dataset.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/batchnorm.hpp"
#include "syncbn/quant/calibrate.hpp"

namespace syncbn::quant::testing {

using syncbn::testing::error_of;

// Calibrates `model` on `batches` and converts it.
inline int quantize_on(nn::Module& model, const std::vector<Tensor>& batches) {
  return quantize_batchnorms(model, [&] {
    for (const Tensor& x : batches) model.forward(x);
  });
}

// configs/tiny.yaml's network with model.norm = `norm`; momentum -1 (cumulative average) makes
// the running statistics the plain average of the batches seen.
inline config::Config tiny_config(const std::string& norm) {
  return config::parse_config(R"(
model: {input: [1, 8, 8], num_classes: 4, norm: ")" +
                                  norm + R"(", stem_channels: 8,
        bn_momentum: -1,
        stages: [{channels: 8, blocks: 1, stride: 1}, {channels: 16, blocks: 1, stride: 2}]}
data: {dataset: synthetic, synthetic_train_size: 96, synthetic_test_size: 32}
train: {batch_size: 16, seed: 3}
)",
                              "calibrate_test");
}

// Training batches of 16 images, in order.
inline std::vector<Tensor> train_batches(const config::Config& c, std::int64_t count) {
  const auto data = builders::make_dataset(c, data::Split::Train);
  std::vector<Tensor> out;
  for (std::int64_t b = 0; b < count; ++b) {
    std::vector<std::int64_t> idx;
    for (std::int64_t i = 0; i < 16; ++i) idx.push_back((b * 16 + i) % data->size());
    out.push_back(data->get_batch(idx).images);
  }
  return out;
}

// The tiny model with BatchNorm weights in [0.5, 1.5], biases in [-0.5, 0.5] and running stats
// averaged over four training batches (forward only), left in eval mode. Without this every
// BatchNorm would start as the identity map (weight 1, bias 0, mean 0, var 1).
inline std::shared_ptr<nn::Module> tiny_model(const std::string& norm) {
  const config::Config c = tiny_config(norm);
  auto model = builders::build_model(c.model, c.train.seed);
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  for (auto& [name, p] : model->named_parameters()) {
    const bool bn_weight =
        name.find("bn") != std::string::npos || name.find("downsample.1") != std::string::npos;
    if (!bn_weight || p->value.dim() != 1) continue;
    const bool is_weight = name.size() > 6 && name.substr(name.size() - 6) == "weight";
    for (std::int64_t i = 0; i < p->value.numel(); ++i)
      p->value.data<float>()[i] = (is_weight ? 1.f : 0.f) + u(gen);
  }
  model->train();
  for (const Tensor& x : train_batches(c, 4)) model->forward(x);
  model->eval();
  return model;
}

inline std::string type_at(nn::Module& root, const std::string& path) {
  nn::Module* m = &root;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    m = m->child(part).get();
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return m->type_name();
}

// The dotted names of configs/tiny.yaml's BatchNorm layers, in registration order.
inline const std::vector<std::string>& tiny_bn_names() {
  static const std::vector<std::string> names = {"bn1",          "layer1.0.bn1",
                                                 "layer1.0.bn2", "layer2.0.bn1",
                                                 "layer2.0.bn2", "layer2.0.downsample.1"};
  return names;
}

}  // namespace syncbn::quant::testing
