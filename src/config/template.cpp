// The template shorthand (model.stem_channels, stages, norm, ...) expanded into the model
// language: the same tree, names and order of layers the old fixed builder made, so a template
// config builds bit-identical weights from the same seed.
#include <string>

#include "syncbn/config/config.hpp"
#include "syncbn/error.hpp"

namespace syncbn::config {
namespace {
const char* const kWhere = "model (template)";

ArgValue integer(std::int64_t v) {
  ArgValue a;
  a.integer = v;
  return a;
}
ArgValue size(std::int64_t v) {
  ArgValue a;
  a.kind = ArgValue::Kind::Sizes;
  a.sizes = {v};
  return a;
}
ArgValue boolean(bool v) {
  ArgValue a;
  a.kind = ArgValue::Kind::Bool;
  a.boolean = v;
  return a;
}
ArgValue null() {
  ArgValue a;
  a.kind = ArgValue::Kind::Null;
  return a;
}
ArgValue number(double v) {
  ArgValue a;
  a.kind = ArgValue::Kind::Number;
  a.number = v;
  return a;
}

LayerSpec layer(LayerType type, const std::string& name, const std::string& parent,
                std::map<std::string, ArgValue> args = {}) {
  LayerSpec s;
  s.type = type;
  s.name = name;
  s.path = parent + "." + name;
  s.where = std::string(kWhere) + ": " + s.path;
  s.args = std::move(args);
  return s;
}

LayerSpec conv(const std::string& name, const std::string& parent, std::int64_t out,
               std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  std::map<std::string, ArgValue> args = {
      {"out_channels", integer(out)}, {"kernel_size", size(kernel)}, {"bias", boolean(false)}};
  if (stride != 1) args["stride"] = size(stride);
  if (padding != 0) args["padding"] = size(padding);
  return layer(LayerType::Conv2d, name, parent, std::move(args));
}

// model.norm's layer for `channels` channels (they are inferred; checked for group:G here).
LayerSpec norm(const ModelConfig& m, const std::string& name, const std::string& parent,
               std::int64_t channels) {
  switch (m.norm.kind) {
    case NormKind::None:
      return layer(LayerType::Identity, name, parent);
    case NormKind::Group:
      SYNCBN_CHECK_AS(ConfigError, m.norm.groups > 0 && channels % m.norm.groups == 0,
                      "model.norm: group:", m.norm.groups, " does not divide a layer with ",
                      channels, " channels; pick G > 0 dividing every stage's channels");
      return layer(LayerType::GroupNorm, name, parent, {{"num_groups", integer(m.norm.groups)}});
    case NormKind::Batch:
    case NormKind::SyncBatch:
    case NormKind::BatchNoRunningStats:
      break;
  }
  std::map<std::string, ArgValue> args = {{"eps", number(m.bn_eps)}};
  args["momentum"] = m.bn_momentum < 0 ? null() : number(m.bn_momentum);
  if (m.norm.kind == NormKind::BatchNoRunningStats) args["track_running_stats"] = boolean(false);
  return layer(LayerType::BatchNorm2d, name, parent, std::move(args));
}

// torchvision's BasicBlock; the shortcut exactly where it puts a downsample.
LayerSpec basic_block(const ModelConfig& m, const std::string& name, const std::string& parent,
                      std::int64_t inplanes, std::int64_t planes, std::int64_t stride) {
  LayerSpec b = layer(LayerType::Residual, name, parent);
  b.layers = {conv("conv1", b.path, planes, 3, stride, 1), norm(m, "bn1", b.path, planes),
              layer(LayerType::ReLU, "relu", b.path), conv("conv2", b.path, planes, 3, 1, 1),
              norm(m, "bn2", b.path, planes)};
  if (stride != 1 || inplanes != planes) {
    const std::string down = b.path + ".downsample";
    b.shortcut =
        std::vector<LayerSpec>{conv("0", down, planes, 1, stride, 0), norm(m, "1", down, planes)};
  }
  return b;
}
}  // namespace

std::vector<LayerSpec> model_layers(const ModelConfig& m) {
  if (!m.layers.empty()) return m.layers;
  SYNCBN_CHECK_AS(ConfigError, !m.stages.empty(), "model.stages: expected at least one stage");
  const std::string top = "model.layers";
  std::vector<LayerSpec> out = {conv("conv1", top, m.stem_channels, 3, 1, 1),
                                norm(m, "bn1", top, m.stem_channels),
                                layer(LayerType::ReLU, "relu", top)};
  std::int64_t inplanes = m.stem_channels;
  for (std::size_t i = 0; i < m.stages.size(); ++i) {
    const StageConfig& s = m.stages[i];
    LayerSpec stage = layer(LayerType::Sequential, "layer" + std::to_string(i + 1), top);
    for (std::int64_t b = 0; b < s.blocks; ++b) {
      stage.layers.push_back(basic_block(m, std::to_string(b), stage.path, inplanes, s.channels,
                                         b == 0 ? s.stride : 1));
      inplanes = s.channels;
    }
    out.push_back(std::move(stage));
  }
  out.push_back(layer(LayerType::AdaptiveAvgPool2d, "avgpool", top, {{"output_size", size(1)}}));
  out.push_back(layer(LayerType::Flatten, "flatten", top));
  if (m.dropout > 0)
    out.push_back(layer(LayerType::Dropout, "dropout", top, {{"p", number(m.dropout)}}));
  out.push_back(layer(LayerType::Linear, "fc", top, {{"out_features", integer(m.num_classes)}}));
  return out;
}

}  // namespace syncbn::config
