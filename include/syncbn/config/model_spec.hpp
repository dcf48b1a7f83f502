#pragma once
// The model language (configs/README.md) after parsing: a typed module tree with no YAML left
// in it. Definitions (model.blocks), repeat/first and $ expressions are already expanded, so
// a LayerSpec is exactly one module to build. Arguments hold only what the config wrote, with
// their values resolved and range-checked; the builder supplies PyTorch's defaults and infers
// the sizes that follow from the input (in_channels, num_features, num_channels, in_features).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace syncbn::config {

enum class LayerType {
  Sequential,
  Residual,
  Conv1d,
  Conv2d,
  Conv3d,
  BatchNorm1d,
  BatchNorm2d,
  BatchNorm3d,
  LazyBatchNorm1d,
  LazyBatchNorm2d,
  LazyBatchNorm3d,
  SyncBatchNorm,
  GroupNorm,
  ReLU,
  MaxPool1d,
  MaxPool2d,
  MaxPool3d,
  AvgPool1d,
  AvgPool2d,
  AvgPool3d,
  AdaptiveAvgPool1d,
  AdaptiveAvgPool2d,
  AdaptiveAvgPool3d,
  Flatten,
  Linear,
  Dropout,
  Identity,
};

// The config's name ("batch_norm2d"); parse_layer_type is its inverse (nullopt for others).
const char* to_string(LayerType type);
std::optional<LayerType> parse_layer_type(const std::string& text);
// Every built-in type name, for "did you mean" and the docs.
std::vector<std::string> layer_type_names();
// Spatial dimensions the type works on (conv2d: 2); 0 when it takes any rank.
int spatial_dims(LayerType type);

// One written argument. Sizes (kernel_size, stride, ...) hold one value (an int in the file,
// meaning every spatial dim) or one per spatial dim.
struct ArgValue {
  enum class Kind { Int, Sizes, Bool, Number, Null };
  Kind kind = Kind::Int;
  std::int64_t integer = 0;
  std::vector<std::int64_t> sizes;
  bool boolean = false;
  double number = 0;
};

enum class ShortcutWhen { Always, ShapeChanges };
enum class Activation { ReLU, None };

struct LayerSpec {
  LayerType type = LayerType::Sequential;
  std::string name;                      // the child's name in its parent ("conv1", "0")
  std::string path;                      // "model.layers.layer3.1.conv2", for messages
  std::string where;                     // "configs/x.yaml:12: model.layers.layer3.1.conv2"
  std::map<std::string, ArgValue> args;  // written arguments only
  // Sequential: its children; residual: the main path (registered on the block itself).
  std::vector<LayerSpec> layers;
  // Residual only: the shortcut's layers (one Sequential child); absent = the identity.
  std::optional<std::vector<LayerSpec>> shortcut;
  std::string shortcut_name = "downsample";
  ShortcutWhen shortcut_when = ShortcutWhen::Always;
  Activation activation = Activation::ReLU;

  bool has(const std::string& key) const { return args.count(key) != 0; }
  // The argument as written, or `fallback` when absent.
  std::int64_t integer(const std::string& key, std::int64_t fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  double number(const std::string& key, double fallback) const;
  // One value per spatial dim (`dims`), a single written value repeated; `fallback` when absent.
  std::vector<std::int64_t> sizes(const std::string& key, int dims,
                                  std::vector<std::int64_t> fallback) const;
  // momentum: nullopt for a written null (the cumulative average), else the value or 0.1.
  std::optional<double> momentum() const;
};

// model.init: resnet (torchvision ResNet's) or default (each layer's own).
enum class InitKind { Resnet, Default };
const char* to_string(InitKind kind);
std::optional<InitKind> parse_init(const std::string& text);

}  // namespace syncbn::config
