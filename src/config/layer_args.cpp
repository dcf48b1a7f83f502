#include "layer_args.hpp"

#include <cmath>
#include <map>

namespace syncbn::config::detail {
namespace {
using K = ArgKind;

const std::vector<ArgInfo> kConv = {
    {"in_channels", K::Count, false}, {"out_channels", K::Count, true},
    {"kernel_size", K::Sizes, true},  {"stride", K::Sizes, false},
    {"padding", K::Padding, false},   {"dilation", K::Sizes, false},
    {"groups", K::Count, false},      {"bias", K::Bool, false}};
const std::vector<ArgInfo> kBatchNorm = {{"num_features", K::Count, false},
                                         {"eps", K::Positive, false},
                                         {"momentum", K::Momentum, false},
                                         {"affine", K::Bool, false},
                                         {"track_running_stats", K::Bool, false}};
const std::vector<ArgInfo> kGroupNorm = {{"num_groups", K::Count, true},
                                         {"num_channels", K::Count, false},
                                         {"eps", K::Positive, false},
                                         {"affine", K::Bool, false}};
const std::vector<ArgInfo> kMaxPool = {{"kernel_size", K::Sizes, true},
                                       {"stride", K::Sizes, false},
                                       {"padding", K::Padding, false},
                                       {"dilation", K::Sizes, false},
                                       {"ceil_mode", K::Bool, false}};
const std::vector<ArgInfo> kAvgPool = {{"kernel_size", K::Sizes, true},
                                       {"stride", K::Sizes, false},
                                       {"padding", K::Padding, false},
                                       {"ceil_mode", K::Bool, false},
                                       {"count_include_pad", K::Bool, false}};
const std::vector<ArgInfo> kAdaptive = {{"output_size", K::Sizes, true}};
const std::vector<ArgInfo> kFlatten = {{"start_dim", K::Int, false}, {"end_dim", K::Int, false}};
const std::vector<ArgInfo> kLinear = {
    {"in_features", K::Count, false}, {"out_features", K::Count, true}, {"bias", K::Bool, false}};
const std::vector<ArgInfo> kDropout = {{"p", K::Probability, false}};
const std::vector<ArgInfo> kNone = {};

bool as_int(const YAML::Node& v, std::int64_t& out) {
  if (!v.IsScalar()) return false;
  try {
    out = v.as<std::int64_t>();
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

bool as_number(const YAML::Node& v, double& out) {
  if (!v.IsScalar()) return false;
  try {
    out = v.as<double>();
    return std::isfinite(out);
  } catch (const YAML::Exception&) {
    return false;
  }
}

std::string sizes(const YAML::Node& v, int dims, std::int64_t low, ArgValue& out) {
  const std::string expected = "an integer >= " + std::to_string(low) + " or a list of " +
                               std::to_string(dims) + " such integers (one per spatial dim)";
  out.kind = ArgValue::Kind::Sizes;
  std::int64_t one = 0;
  if (as_int(v, one)) {
    out.sizes = {one};
    return one >= low ? "" : expected;
  }
  if (!v.IsSequence() || v.size() != static_cast<std::size_t>(dims)) return expected;
  for (const auto& element : v) {
    if (!as_int(element, one) || one < low) return expected;
    out.sizes.push_back(one);
  }
  return "";
}
}  // namespace

const std::vector<ArgInfo>& args_of(LayerType type) {
  switch (type) {
    case LayerType::Conv1d:
    case LayerType::Conv2d:
    case LayerType::Conv3d:
      return kConv;
    case LayerType::BatchNorm1d:
    case LayerType::BatchNorm2d:
    case LayerType::BatchNorm3d:
    case LayerType::LazyBatchNorm1d:
    case LayerType::LazyBatchNorm2d:
    case LayerType::LazyBatchNorm3d:
    case LayerType::SyncBatchNorm:
      return kBatchNorm;
    case LayerType::GroupNorm:
      return kGroupNorm;
    case LayerType::MaxPool1d:
    case LayerType::MaxPool2d:
    case LayerType::MaxPool3d:
      return kMaxPool;
    case LayerType::AvgPool1d:
    case LayerType::AvgPool2d:
    case LayerType::AvgPool3d:
      return kAvgPool;
    case LayerType::AdaptiveAvgPool1d:
    case LayerType::AdaptiveAvgPool2d:
    case LayerType::AdaptiveAvgPool3d:
      return kAdaptive;
    case LayerType::Flatten:
      return kFlatten;
    case LayerType::Linear:
      return kLinear;
    case LayerType::Dropout:
      return kDropout;
    case LayerType::Sequential:
    case LayerType::Residual:
    case LayerType::ReLU:
    case LayerType::Identity:
      break;
  }
  return kNone;
}

std::string convert_arg(const ArgInfo& info, int dims, const YAML::Node& v, ArgValue& out) {
  out = ArgValue();
  switch (info.kind) {
    case K::Count:
    case K::Int:
      out.kind = ArgValue::Kind::Int;
      if (!as_int(v, out.integer)) return "an integer";
      return info.kind == K::Count && out.integer < 1 ? "an integer >= 1" : "";
    case K::Sizes:
      return sizes(v, dims, 1, out);
    case K::Padding:
      return sizes(v, dims, 0, out);
    case K::Bool:
      out.kind = ArgValue::Kind::Bool;
      try {
        if (v.IsScalar()) return out.boolean = v.as<bool>(), "";
      } catch (const YAML::Exception&) {
      }
      return "true or false";
    case K::Positive:
      out.kind = ArgValue::Kind::Number;
      return as_number(v, out.number) && out.number > 0 ? "" : "a positive number";
    case K::Probability:
    case K::Momentum:
      if (info.kind == K::Momentum && v.IsNull()) return out.kind = ArgValue::Kind::Null, "";
      out.kind = ArgValue::Kind::Number;
      if (as_number(v, out.number) && out.number >= 0 && out.number <= 1) return "";
      return info.kind == K::Momentum ? "a number in [0, 1] or null (the cumulative average)"
                                      : "a number in [0, 1]";
  }
  return "a value";
}

}  // namespace syncbn::config::detail
