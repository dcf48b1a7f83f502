// The model language's reader: expansion of definitions, repeat/first and $ expressions into
// LayerSpecs; every mistake a ConfigError naming file:line, the layer path and what was
// expected; to_yaml prints a config that parses back to the same tree.
#include <gtest/gtest.h>

#include <string>

#include "syncbn/config/config.hpp"
#include "syncbn/error.hpp"

namespace syncbn::config {
namespace {

std::string error_of(const std::string& yaml, const Overrides& overrides = {}) {
  try {
    parse_config(yaml, "m.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

#define EXPECT_MENTIONS(text, part) \
  EXPECT_NE((text).find(part), std::string::npos) << "'" << (part) << "' not in: " << (text)

const char* const kBlocks = R"(model:
  input: [3, 32, 32]
  num_classes: 10
  blocks:
    basic:
      args: {planes: required, stride: 1}
      type: residual
      main:
        conv1: {type: conv2d, out_channels: $planes, kernel_size: 3, stride: $stride, padding: 1}
        relu: relu
        conv2: {type: conv2d, out_channels: $planes * 4 / (stride + 1), kernel_size: [3, 1]}
      shortcut_when: shape_changes
      shortcut:
        "0": {type: conv2d, out_channels: $planes, kernel_size: 1, stride: $stride}
  layers:
    stem: {type: sequential, layers: [{type: conv2d, out_channels: 16, kernel_size: 3}, relu]}
    layer2: {type: basic, repeat: 3, planes: 32, first: {stride: 2}}
    head:
      type: sequential
      layers: {flat: flatten, fc: {type: linear, out_features: $num_classes, bias: false}}
)";

const LayerSpec& find(const std::vector<LayerSpec>& layers, const std::string& name) {
  for (const auto& l : layers)
    if (l.name == name) return l;
  throw std::runtime_error("no layer " + name);
}

TEST(ModelLanguage, ExpandsDefinitionsRepeatAndExpressions) {
  const ModelConfig m = parse_config(kBlocks, "m.yaml").model;
  ASSERT_EQ(m.layers.size(), 3u);
  const LayerSpec& stem = find(m.layers, "stem");
  EXPECT_EQ(stem.type, LayerType::Sequential);
  ASSERT_EQ(stem.layers.size(), 2u);  // a list: children 0, 1
  EXPECT_EQ(stem.layers[1].name, "1");
  EXPECT_EQ(stem.layers[1].type, LayerType::ReLU);

  const LayerSpec& layer2 = find(m.layers, "layer2");
  ASSERT_EQ(layer2.layers.size(), 3u);
  const LayerSpec& first = layer2.layers[0];
  EXPECT_EQ(first.type, LayerType::Residual);
  EXPECT_EQ(first.path, "model.layers.layer2.0");
  EXPECT_EQ(first.shortcut_when, ShortcutWhen::ShapeChanges);
  ASSERT_TRUE(first.shortcut.has_value());
  EXPECT_EQ((*first.shortcut)[0].path, "model.layers.layer2.0.downsample.0");
  // The first copy strides (first: {stride: 2}); 32 * 4 / (2 + 1) floors to 42.
  EXPECT_EQ(first.layers[0].sizes("stride", 2, {1}), (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(first.layers[2].integer("out_channels", 0), 42);
  EXPECT_EQ(first.layers[2].sizes("kernel_size", 2, {}), (std::vector<std::int64_t>{3, 1}));
  // The others take the default stride 1: 32 * 4 / 2 = 64.
  EXPECT_EQ(layer2.layers[1].layers[0].sizes("stride", 2, {}), (std::vector<std::int64_t>{1, 1}));
  EXPECT_EQ(layer2.layers[2].layers[2].integer("out_channels", 0), 64);
  EXPECT_MENTIONS(first.layers[0].where, "m.yaml:9: model.layers.layer2.0.conv1");

  const LayerSpec& fc = find(m.layers, "head").layers[1];
  EXPECT_EQ(fc.integer("out_features", 0), 10);
  EXPECT_FALSE(fc.boolean("bias", true));
  EXPECT_FALSE(fc.has("in_features"));  // inferred by the builder
}

TEST(ModelLanguage, ExpressionsFloorDivideAndReportMistakes) {
  auto with = [](const std::string& value) {
    return "model:\n  input: [4]\n  layers:\n    f: {type: flatten, end_dim: " + value + "}\n";
  };
  // Python's floor division: -7 // 2 == -4, 7 // -2 == -4.
  EXPECT_EQ(parse_config(with("$(0 - 7) / 2"), "m.yaml").model.layers[0].integer("end_dim", 0), -4);
  EXPECT_EQ(parse_config(with("$7 / -2"), "m.yaml").model.layers[0].integer("end_dim", 0), -4);
  EXPECT_EQ(parse_config(with("$-(2 + 3) * 2 + num_classes"), "m.yaml")
                .model.layers[0]
                .integer("end_dim", 0),
            0);
  EXPECT_MENTIONS(error_of(with("$1 / (num_classes - 10)")),
                  "m.yaml:4: model.layers.f.end_dim: division by zero");
  EXPECT_MENTIONS(error_of(with("$num_clases")),
                  "m.yaml:4: model.layers.f.end_dim: unknown name 'num_clases' in '$num_clases' "
                  "(did you mean 'num_classes'?)");
  EXPECT_MENTIONS(error_of(with("$2 *")), "model.layers.f.end_dim: unexpected end");
  EXPECT_MENTIONS(error_of(with("$9223372036854775807 + 1")), "overflows");
}

TEST(ModelLanguage, UnknownTypesAndArgumentsSuggestTheNearest) {
  const std::string head = "model:\n  input: [3, 8, 8]\n  layers:\n";
  EXPECT_MENTIONS(error_of(head + "    c: {type: conv2, out_channels: 2, kernel_size: 1}\n"),
                  "m.yaml:4: model.layers.c: unknown layer type 'conv2' (did you mean 'conv2d'?)");
  EXPECT_MENTIONS(error_of(head + "    c: {type: conv2d, out_channel: 2, kernel_size: 1}\n"),
                  "m.yaml:4: model.layers.c.out_channel: unknown key (did you mean "
                  "'model.layers.c.out_channels'?)");
  EXPECT_MENTIONS(error_of(head + "    c: {type: conv2d, kernel_size: 1}\n"),
                  "m.yaml:4: model.layers.c: conv2d needs 'out_channels'");
  EXPECT_MENTIONS(error_of(head + "    c: {type: conv2d, out_channels: 0, kernel_size: 1}\n"),
                  "m.yaml:4: model.layers.c.out_channels: expected an integer >= 1, got '0'");
  EXPECT_MENTIONS(
      error_of(head + "    c: {type: conv2d, out_channels: 2, kernel_size: [1, 2, 3]}\n"),
      "model.layers.c.kernel_size: expected an integer >= 1 or a list of 2 such");
  EXPECT_MENTIONS(error_of(head + "    b: {type: batch_norm2d, momentum: 2}\n"),
                  "model.layers.b.momentum: expected a number in [0, 1] or null");
  EXPECT_MENTIONS(error_of(head + "    r: relu\n    r: relu\n"),
                  "m.yaml:5: model.layers.r: duplicate key (first at line 4)");
  EXPECT_MENTIONS(error_of(head + "    c: {type: relu, repeat: 0}\n"),
                  "m.yaml:4: model.layers.c.repeat: expected an integer >= 1");
  EXPECT_MENTIONS(
      error_of(head + "    c: {type: sequential, repeat: 2000, layers: {r: {type: relu, "
                      "repeat: 2000}}}\n"),
      "the model has more than 1000000 layers once expanded");
  EXPECT_MENTIONS(error_of(head + "    c: {type: conv2d, out_channels: 2, kernel_size: 1}\n",
                           {"model.layers.c.out_channels=0"}),
                  "--set model.layers.c.out_channels=0: model.layers.c.out_channels: expected an "
                  "integer >= 1, got '0'");
  EXPECT_MENTIONS(error_of(head + "    c: {type: relu, first: {}}\n"),
                  "model.layers.c.first: 'first' goes with 'repeat'");
  EXPECT_MENTIONS(error_of(head + "    c: {type: residual, main: {}}\n"),
                  "model.layers.c.main: expected a mapping of named layers");
  EXPECT_MENTIONS(error_of(head + "    c: {type: residual, main: {r: relu}, activation: gelu}\n"),
                  "model.layers.c.activation: expected relu | none, got 'gelu'");
}

TEST(ModelLanguage, DefinitionArgumentsAndRecursion) {
  const std::string head = "model:\n  input: [3, 8, 8]\n  blocks:\n";
  const std::string block =
      "    blk:\n      args: {width: required}\n      type: conv2d\n"
      "      out_channels: $width\n      kernel_size: 1\n";
  EXPECT_MENTIONS(error_of(head + block + "  layers:\n    a: blk\n"),
                  "m.yaml:10: model.layers.a: blk needs argument 'width'");
  EXPECT_MENTIONS(error_of(head + block + "  layers:\n    a: {type: blk, widht: 3}\n"),
                  "m.yaml:10: model.layers.a.widht: unknown key (did you mean "
                  "'model.layers.a.width'?)");
  EXPECT_MENTIONS(error_of(head + block +
                           "  layers:\n    a: {type: blk, width: 2, repeat: 2, "
                           "first: {wdth: 3}}\n"),
                  "model.layers.a.first.wdth: unknown key (did you mean");
  EXPECT_MENTIONS(error_of(head + "    conv2d: {type: relu}\n  layers: {a: relu}\n"),
                  "m.yaml:4: model.blocks.conv2d: 'conv2d' is a built-in layer type");
  const std::string cycle = head +
                            "    a: {type: sequential, layers: {x: b}}\n"
                            "    b: {type: sequential, layers: {y: a}}\n"
                            "  layers: {top: a}\n";
  EXPECT_MENTIONS(error_of(cycle),
                  "model.layers.top.x.y: block 'a' is defined in terms of itself "
                  "(a -> b -> a)");
  const std::string self = head + "    a: {type: a}\n  layers: {top: a}\n";
  EXPECT_MENTIONS(error_of(self), "block 'a' is defined in terms of itself (a -> a)");
  // A whole `$name` passes a non-integer value through (here a bool).
  const ModelConfig m = parse_config(head +
                                         "    lin:\n      args: {b: true}\n      type: linear\n"
                                         "      out_features: 4\n      bias: $b\n"
                                         "  layers: {l: {type: lin, b: false}}\n",
                                     "m.yaml")
                            .model;
  EXPECT_FALSE(m.layers[0].boolean("bias", true));
}

TEST(ModelLanguage, NormConversionAndTemplateKeys) {
  const std::string lang = "model:\n  input: [4]\n  layers: {bn: batch_norm1d}\n";
  EXPECT_EQ(parse_config(lang, "m.yaml").model.norm.kind, NormKind::SyncBatch);
  EXPECT_EQ(parse_config(lang + "  norm_conversion: none\n", "m.yaml").model.norm.kind,
            NormKind::Batch);
  // --norm sets model.norm, which wins over the file's norm_conversion.
  EXPECT_EQ(parse_config(lang + "  norm_conversion: none\n", "m.yaml",
                         {Override("model.norm=sync_batch", "--norm sync_batch")})
                .model.norm.kind,
            NormKind::SyncBatch);
  EXPECT_MENTIONS(error_of(lang, {Override("model.norm=group:2", "--norm group:2")}),
                  "--norm group:2: model.norm: expected sync_batch | batch (with model.layers the "
                  "normalisation layers are written out");
  EXPECT_MENTIONS(error_of(lang + "  stem_channels: 8\n"),
                  "m.yaml:4: model.stem_channels: belongs to the template");
  EXPECT_MENTIONS(error_of("model:\n  norm_conversion: none\n"),
                  "m.yaml:2: model.norm_conversion: goes with model.layers");
  EXPECT_MENTIONS(error_of(lang + "  sync_group_size: -1\n"),
                  "model.sync_group_size: expected a value >= 0");
  EXPECT_EQ(parse_config(lang + "  sync_group_size: 2\n  init: default\n", "m.yaml").model.init,
            InitKind::Default);
  EXPECT_MENTIONS(error_of("model:\n  input: [4]\n  layers: {}\n"),
                  "m.yaml:3: model.layers: expected at least one layer");
  EXPECT_MENTIONS(error_of("model:\n  input: [4, 4]\n"), "model.input: expected [C, H, W]");
}

// Structure and arguments, ignoring `where` (the lines of a printed config differ).
void expect_same_tree(const std::vector<LayerSpec>& a, const std::vector<LayerSpec>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(a[i].path);
    EXPECT_EQ(a[i].type, b[i].type);
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].path, b[i].path);
    ASSERT_EQ(a[i].args.size(), b[i].args.size());
    for (const auto& [key, v] : a[i].args) {
      const ArgValue& w = b[i].args.at(key);
      EXPECT_EQ(v.kind, w.kind) << key;
      EXPECT_EQ(v.integer, w.integer) << key;
      EXPECT_EQ(v.sizes, w.sizes) << key;
      EXPECT_EQ(v.boolean, w.boolean) << key;
      EXPECT_EQ(v.number, w.number) << key;
    }
    expect_same_tree(a[i].layers, b[i].layers);
    EXPECT_EQ(a[i].shortcut.has_value(), b[i].shortcut.has_value());
    if (a[i].shortcut && b[i].shortcut) expect_same_tree(*a[i].shortcut, *b[i].shortcut);
    EXPECT_EQ(a[i].shortcut_name, b[i].shortcut_name);
    EXPECT_EQ(a[i].shortcut_when, b[i].shortcut_when);
    EXPECT_EQ(a[i].activation, b[i].activation);
  }
}

TEST(ModelLanguage, ToYamlRoundTrips) {
  const std::string extra =
      "    bn: {type: batch_norm2d, momentum: null, eps: 0.001, affine: false}\n"
      "    d: {type: dropout, p: 0.25}\n";
  std::string yaml = kBlocks;
  yaml.insert(yaml.find("  layers:\n") + 10, extra);
  const Config c = parse_config(yaml + "  norm_conversion: none\n  sync_group_size: 2\n", "m.yaml");
  const std::string printed = to_yaml(c);
  const Config again = parse_config(printed, "printed.yaml");
  expect_same_tree(c.model.layers, again.model.layers);
  EXPECT_EQ(again.model.norm.kind, NormKind::Batch);
  EXPECT_EQ(again.model.sync_group_size, 2);
  EXPECT_EQ(to_yaml(again), printed);
  EXPECT_FALSE(again.model.layers[0].momentum().has_value());
}

}  // namespace
}  // namespace syncbn::config
