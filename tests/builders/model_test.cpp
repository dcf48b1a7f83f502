// build_model: the template builds what the fixed ResNet builder built (keys, shapes, values),
// the language builds the tree it describes with inferred sizes, and every mistake is a
// ConfigError naming file:line and the layer path.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/test_util.hpp"
#include "syncbn/builders/model.hpp"
#include "syncbn/config/config.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/layers/conv.hpp"
#include "syncbn/nn/layers/linear.hpp"

#ifndef SYNCBN_SOURCE_DIR
#error "SYNCBN_SOURCE_DIR must point at the repository"
#endif

namespace syncbn::builders {
namespace {
using config::Config;

Config parse(const std::string& yaml, const config::Overrides& overrides = {}) {
  return config::parse_config(yaml, "t.yaml", overrides);
}

std::string build_error(const std::string& yaml) {
  try {
    build_model(parse(yaml).model, 0);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

std::string key_and_shape(const std::string& key, const Tensor& t) {
  std::string s = key + " [";
  for (auto d : t.shape()) s += std::to_string(d) + ",";
  return s + "]";
}

// Recorded from the fixed ResNet builder (src/builders/model.cpp before the model language),
// by running it once on configs/fashion_resnet.yaml with seed 0 and listing its state_dict.
const std::vector<std::string> kFashionKeysAndShapes = {
    "bn1.bias [16,]",
    "bn1.num_batches_tracked []",
    "bn1.running_mean [16,]",
    "bn1.running_var [16,]",
    "bn1.weight [16,]",
    "conv1.weight [16,1,3,3,]",
    "fc.bias [10,]",
    "fc.weight [10,64,]",
    "layer1.0.bn1.bias [16,]",
    "layer1.0.bn1.num_batches_tracked []",
    "layer1.0.bn1.running_mean [16,]",
    "layer1.0.bn1.running_var [16,]",
    "layer1.0.bn1.weight [16,]",
    "layer1.0.bn2.bias [16,]",
    "layer1.0.bn2.num_batches_tracked []",
    "layer1.0.bn2.running_mean [16,]",
    "layer1.0.bn2.running_var [16,]",
    "layer1.0.bn2.weight [16,]",
    "layer1.0.conv1.weight [16,16,3,3,]",
    "layer1.0.conv2.weight [16,16,3,3,]",
    "layer2.0.bn1.bias [32,]",
    "layer2.0.bn1.num_batches_tracked []",
    "layer2.0.bn1.running_mean [32,]",
    "layer2.0.bn1.running_var [32,]",
    "layer2.0.bn1.weight [32,]",
    "layer2.0.bn2.bias [32,]",
    "layer2.0.bn2.num_batches_tracked []",
    "layer2.0.bn2.running_mean [32,]",
    "layer2.0.bn2.running_var [32,]",
    "layer2.0.bn2.weight [32,]",
    "layer2.0.conv1.weight [32,16,3,3,]",
    "layer2.0.conv2.weight [32,32,3,3,]",
    "layer2.0.downsample.0.weight [32,16,1,1,]",
    "layer2.0.downsample.1.bias [32,]",
    "layer2.0.downsample.1.num_batches_tracked []",
    "layer2.0.downsample.1.running_mean [32,]",
    "layer2.0.downsample.1.running_var [32,]",
    "layer2.0.downsample.1.weight [32,]",
    "layer3.0.bn1.bias [64,]",
    "layer3.0.bn1.num_batches_tracked []",
    "layer3.0.bn1.running_mean [64,]",
    "layer3.0.bn1.running_var [64,]",
    "layer3.0.bn1.weight [64,]",
    "layer3.0.bn2.bias [64,]",
    "layer3.0.bn2.num_batches_tracked []",
    "layer3.0.bn2.running_mean [64,]",
    "layer3.0.bn2.running_var [64,]",
    "layer3.0.bn2.weight [64,]",
    "layer3.0.conv1.weight [64,32,3,3,]",
    "layer3.0.conv2.weight [64,64,3,3,]",
    "layer3.0.downsample.0.weight [64,32,1,1,]",
    "layer3.0.downsample.1.bias [64,]",
    "layer3.0.downsample.1.num_batches_tracked []",
    "layer3.0.downsample.1.running_mean [64,]",
    "layer3.0.downsample.1.running_var [64,]",
    "layer3.0.downsample.1.weight [64,]"};
// The same run's sum (in state_dict order, in double) of every float32 entry.
constexpr double kFashionSeed0Sum = 0x1.36755d096e561p+9;

TEST(BuildModel, TemplateBuildsWhatTheFixedBuilderBuilt) {
  const Config c = config::load_config(SYNCBN_SOURCE_DIR "/configs/fashion_resnet.yaml");
  std::vector<std::string> got;
  double sum = 0;
  for (const auto& [key, t] : build_model(c.model, 0)->state_dict()) {
    got.push_back(key_and_shape(key, t));
    if (t.dtype() == DType::Float32)
      for (std::int64_t i = 0; i < t.numel(); ++i) sum += t.data<float>()[i];
  }
  EXPECT_EQ(got, kFashionKeysAndShapes);
  EXPECT_EQ(sum, kFashionSeed0Sum);
}

// configs/tiny.yaml's template (stem 8, stages {8, 1, 1} and {16, 1, 2}) written out by hand.
const char* const kTinyWrittenOut = R"(
model:
  input: [1, 8, 8]
  num_classes: 4
  blocks:
    basic:
      args: {planes: required, stride: 1}
      type: residual
      main:
        conv1: {type: conv2d, out_channels: $planes, kernel_size: 3, stride: $stride, padding: 1, bias: false}
        bn1: {type: batch_norm2d}
        relu: relu
        conv2: {type: conv2d, out_channels: $planes, kernel_size: 3, padding: 1, bias: false}
        bn2: batch_norm2d
      shortcut_when: shape_changes
      shortcut:
        "0": {type: conv2d, out_channels: $planes, kernel_size: 1, stride: $stride, bias: false}
        "1": {type: batch_norm2d}
  layers:
    conv1: {type: conv2d, out_channels: 8, kernel_size: 3, padding: 1, bias: false}
    bn1: {type: batch_norm2d}
    relu: relu
    layer1: {type: basic, repeat: 1, planes: 8}
    layer2: {type: basic, repeat: 1, planes: 16, first: {stride: 2}}
    avgpool: {type: adaptive_avg_pool2d, output_size: 1}
    flatten: flatten
    fc: {type: linear, out_features: $num_classes}
)";

std::string written_out() {
  return kTinyWrittenOut;
}

TEST(BuildModel, TemplateEqualsTheSameModelWrittenOut) {
  const Config tmpl = config::load_config(SYNCBN_SOURCE_DIR "/configs/tiny.yaml");
  const Config lang = parse(written_out());
  for (std::uint64_t seed : {0u, 7u}) {
    const nn::StateDict a = build_model(tmpl.model, seed)->state_dict();
    const nn::StateDict b = build_model(lang.model, seed)->state_dict();
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [key, t] : a) {
      ASSERT_TRUE(b.count(key)) << key;
      EXPECT_EQ(max_abs_diff(t, b.at(key)), 0.0) << key << " seed " << seed;
    }
  }
}

TEST(BuildModel, InfersSizesFromTheInput) {
  auto m = build_model(parse(R"(
model:
  input: [3, 9, 9]
  num_classes: 5
  layers:
    conv: {type: conv2d, out_channels: 6, kernel_size: 3, stride: 2, groups: 3}
    pool: {type: max_pool2d, kernel_size: 2}
    gn: {type: group_norm, num_groups: 2}
    flat: flatten
    fc: {type: linear, out_features: $num_classes}
)")
                           .model,
                       0);
  const auto conv = std::dynamic_pointer_cast<nn::Conv2d>(m->child("conv"));
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->options().in_channels(), 3);
  const auto fc = std::dynamic_pointer_cast<nn::Linear>(m->child("fc"));
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->options().in_features(), 6 * 2 * 2);  // 9 -> 4 (conv) -> 2 (pool)
  EXPECT_EQ(m->forward(testing::random_tensor({2, 3, 9, 9}, 1)).shape(), (Shape{2, 5}));
}

TEST(BuildModel, ResidualModelsOfEveryRankRun) {
  for (const char* yaml : {R"(
model:
  input: [8]
  num_classes: 3
  layers:
    block:
      type: residual
      main: {fc: {type: linear, out_features: 8}, bn: batch_norm1d}
    out: {type: linear, out_features: 3}
)",
                           R"(
model:
  input: [2, 12]
  num_classes: 3
  layers:
    block:
      type: residual
      main: {c: {type: conv1d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}}
      shortcut: {"0": {type: conv1d, out_channels: 4, kernel_size: 1, stride: 2}}
      activation: none
    pool: {type: avg_pool1d, kernel_size: 2}
    flat: flatten
    out: {type: linear, out_features: 3}
)",
                           R"(
model:
  input: [1, 4, 4, 4]
  num_classes: 2
  init: default
  layers:
    c: {type: conv3d, out_channels: 2, kernel_size: [1, 3, 3], padding: [0, 1, 1]}
    bn: batch_norm3d
    pool: {type: adaptive_avg_pool3d, output_size: 1}
    flat: flatten
    out: {type: linear, out_features: 2}
)"}) {
    const Config c = parse(yaml);
    Shape in{3};
    in.insert(in.end(), c.model.input.begin(), c.model.input.end());
    EXPECT_EQ(build_model(c.model, 1)->forward(testing::random_tensor(in, 2)).shape(),
              (Shape{3, c.model.num_classes}))
        << yaml;
  }
}

TEST(BuildModel, ShortcutWhenShapeChangesFollowsTorchvision) {
  const std::string yaml = written_out();
  const auto m = build_model(parse(yaml).model, 0);
  EXPECT_EQ(m->state_dict().count("layer1.0.downsample.0.weight"), 0u);  // 8 -> 8, stride 1
  EXPECT_EQ(m->state_dict().count("layer2.0.downsample.0.weight"), 1u);  // 8 -> 16, stride 2
  // A stride on a 1x1 map keeps the shape, but torchvision still downsamples.
  const auto one = build_model(parse(yaml, {"model.input=[1, 1, 1]"}).model, 0);
  EXPECT_EQ(one->state_dict().count("layer2.0.downsample.0.weight"), 1u);
}

TEST(BuildModel, InitResnetRedrawsConvolutionsOnly) {
  const std::string yaml = written_out();
  const auto resnet = build_model(parse(yaml).model, 3)->state_dict();
  const auto plain = build_model(parse(yaml, {"model.init=default"}).model, 3)->state_dict();
  EXPECT_GT(max_abs_diff(resnet.at("conv1.weight"), plain.at("conv1.weight")), 0.0);
  EXPECT_EQ(max_abs_diff(resnet.at("fc.weight"), plain.at("fc.weight")), 0.0);
}

TEST(BuildModel, MistakesNameTheFileLineAndLayer) {
  const std::string head = "model:\n  input: [4, 8, 8]\n  num_classes: 3\n  layers:\n";
  const std::string tail = "    flat: flatten\n    fc: {type: linear, out_features: 3}\n";
  auto error = [&](const std::string& layers) { return build_error(head + layers + tail); };
  struct Case {
    std::string layers, expected;
  };
  for (const Case& c : std::vector<Case>{
           {"    c: {type: conv2d, out_channels: 2, kernel_size: 1, in_channels: 5}\n",
            "t.yaml:5: model.layers.c: in_channels 5 does not match the 4 channels coming in"},
           {"    f: flatten\n    bn: batch_norm2d\n",
            "t.yaml:6: model.layers.bn: batch_norm2d expects [C, H, W] per sample, got [256]"},
           {"    c: {type: conv2d, out_channels: 2, kernel_size: 9}\n",
            "t.yaml:5: model.layers.c: "},
           {"    c: {type: conv2d, out_channels: 3, kernel_size: 1, groups: 2}\n",
            "t.yaml:5: model.layers.c: groups 2 must divide in_channels 4 and out_channels 3"},
           {"    g: {type: group_norm, num_groups: 3}\n",
            "t.yaml:5: model.layers.g: num_groups 3 does not divide the 4 channels coming in"},
           {"    b: {type: batch_norm2d, num_features: 8}\n",
            "t.yaml:5: model.layers.b: num_features 8 does not match the 4 channels coming in"},
           {"    r: {type: residual, main: {c: {type: conv2d, out_channels: 2, kernel_size: 1}}}\n",
            "t.yaml:5: model.layers.r: the main path gives [2, 8, 8] but the identity shortcut "
            "passes [4, 8, 8]"},
       })
    EXPECT_NE(error(c.layers).find(c.expected), std::string::npos)
        << "expected: " << c.expected << "\ngot: " << error(c.layers);
  EXPECT_NE(build_error(head + "    flat: flatten\n    fc: {type: linear, out_features: 5, "
                               "in_features: 256}\n")
                .find("t.yaml:6: model.layers.fc: the model gives [5] per sample, but "
                      "model.num_classes 3 asks for [3]"),
            std::string::npos);
  EXPECT_NE(build_error(head + "    flat: flatten\n    fc: {type: linear, out_features: 3, "
                               "in_features: 100}\n")
                .find("t.yaml:6: model.layers.fc: in_features 100 does not match the 256 "
                      "features coming in"),
            std::string::npos);
}

// A layer made from a definition: the line is the definition's, the path the instance's.
TEST(BuildModel, MistakesInsideADefinitionNameTheInstancePath) {
  std::string yaml = written_out();
  const std::string conv2 = "conv2: {type: conv2d, out_channels: $planes, kernel_size: 3";
  yaml.replace(yaml.find(conv2), conv2.size(),
               "conv2: {type: conv2d, in_channels: 8, out_channels: $planes, kernel_size: 3");
  const std::string e = build_error(yaml);
  EXPECT_NE(e.find("t.yaml:13: model.layers.layer2.0.conv2: in_channels 8 does not match the 16 "
                   "channels coming in"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace syncbn::builders
