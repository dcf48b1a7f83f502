#include "syncbn/config/model_spec.hpp"

#include <utility>

#include "syncbn/error.hpp"

namespace syncbn::config {
namespace {
struct TypeName {
  LayerType type;
  const char* name;
  int dims;
};
// One table, so parsing, printing and the spatial rank cannot disagree.
const TypeName kTypes[] = {
    {LayerType::Sequential, "sequential", 0},
    {LayerType::Residual, "residual", 0},
    {LayerType::Conv1d, "conv1d", 1},
    {LayerType::Conv2d, "conv2d", 2},
    {LayerType::Conv3d, "conv3d", 3},
    {LayerType::BatchNorm1d, "batch_norm1d", 1},
    {LayerType::BatchNorm2d, "batch_norm2d", 2},
    {LayerType::BatchNorm3d, "batch_norm3d", 3},
    {LayerType::LazyBatchNorm1d, "lazy_batch_norm1d", 1},
    {LayerType::LazyBatchNorm2d, "lazy_batch_norm2d", 2},
    {LayerType::LazyBatchNorm3d, "lazy_batch_norm3d", 3},
    {LayerType::SyncBatchNorm, "sync_batch_norm", 0},
    {LayerType::GroupNorm, "group_norm", 0},
    {LayerType::ReLU, "relu", 0},
    {LayerType::MaxPool1d, "max_pool1d", 1},
    {LayerType::MaxPool2d, "max_pool2d", 2},
    {LayerType::MaxPool3d, "max_pool3d", 3},
    {LayerType::AvgPool1d, "avg_pool1d", 1},
    {LayerType::AvgPool2d, "avg_pool2d", 2},
    {LayerType::AvgPool3d, "avg_pool3d", 3},
    {LayerType::AdaptiveAvgPool1d, "adaptive_avg_pool1d", 1},
    {LayerType::AdaptiveAvgPool2d, "adaptive_avg_pool2d", 2},
    {LayerType::AdaptiveAvgPool3d, "adaptive_avg_pool3d", 3},
    {LayerType::Flatten, "flatten", 0},
    {LayerType::Linear, "linear", 0},
    {LayerType::Dropout, "dropout", 0},
    {LayerType::Identity, "identity", 0},
};

const TypeName& entry(LayerType type) {
  for (const auto& t : kTypes)
    if (t.type == type) return t;
  throw Error("internal: layer type " + std::to_string(static_cast<int>(type)) +
              " has no table entry");
}

const std::pair<InitKind, const char*> kInitNames[] = {{InitKind::Resnet, "resnet"},
                                                       {InitKind::Default, "default"}};

const ArgValue* find(const std::map<std::string, ArgValue>& args, const std::string& key,
                     ArgValue::Kind kind) {
  const auto it = args.find(key);
  if (it == args.end()) return nullptr;
  SYNCBN_ASSERT(it->second.kind == kind, "argument read as another kind than parsed");
  return &it->second;
}
}  // namespace

const char* to_string(LayerType type) {
  return entry(type).name;
}

std::optional<LayerType> parse_layer_type(const std::string& text) {
  for (const auto& t : kTypes)
    if (text == t.name) return t.type;
  return std::nullopt;
}

std::vector<std::string> layer_type_names() {
  std::vector<std::string> names;
  for (const auto& t : kTypes) names.emplace_back(t.name);
  return names;
}

int spatial_dims(LayerType type) {
  return entry(type).dims;
}

std::int64_t LayerSpec::integer(const std::string& key, std::int64_t fallback) const {
  const ArgValue* v = find(args, key, ArgValue::Kind::Int);
  return v ? v->integer : fallback;
}

bool LayerSpec::boolean(const std::string& key, bool fallback) const {
  const ArgValue* v = find(args, key, ArgValue::Kind::Bool);
  return v ? v->boolean : fallback;
}

double LayerSpec::number(const std::string& key, double fallback) const {
  const ArgValue* v = find(args, key, ArgValue::Kind::Number);
  return v ? v->number : fallback;
}

std::vector<std::int64_t> LayerSpec::sizes(const std::string& key, int dims,
                                           std::vector<std::int64_t> fallback) const {
  const ArgValue* v = find(args, key, ArgValue::Kind::Sizes);
  std::vector<std::int64_t> out = v ? v->sizes : std::move(fallback);
  if (out.size() == 1) out.assign(static_cast<std::size_t>(dims), out[0]);
  return out;
}

std::optional<double> LayerSpec::momentum() const {
  const auto it = args.find("momentum");
  if (it == args.end()) return 0.1;
  if (it->second.kind == ArgValue::Kind::Null) return std::nullopt;
  return it->second.number;
}

const char* to_string(InitKind kind) {
  for (const auto& [k, name] : kInitNames)
    if (k == kind) return name;
  return "?";
}

std::optional<InitKind> parse_init(const std::string& text) {
  for (const auto& [k, name] : kInitNames)
    if (text == name) return k;
  return std::nullopt;
}

}  // namespace syncbn::config
