#pragma once
// The arguments each built-in layer type takes (PyTorch's names), what values they accept, and
// their conversion from a resolved YAML value into a typed ArgValue. Containers (sequential,
// residual) are read by the layer reader itself and have no entries here.
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "syncbn/config/model_spec.hpp"

namespace syncbn::config::detail {

enum class ArgKind {
  Count,        // an integer >= 1 (channels, features, groups)
  Int,          // any integer (flatten's dims)
  Sizes,        // an integer >= 1 or a list of one per spatial dim
  Padding,      // as Sizes, but >= 0
  Bool,         // true or false
  Positive,     // a finite number > 0 (eps)
  Probability,  // a number in [0, 1] (dropout's p)
  Momentum,     // a number in [0, 1], or null for the cumulative average
};

struct ArgInfo {
  const char* name;
  ArgKind kind;
  bool required;
};

// The arguments of a built-in, non-container type, in PyTorch's order.
const std::vector<ArgInfo>& args_of(LayerType type);

// Converts `value` (no `$` left in it) for a layer with `dims` spatial dims. Returns "" and
// sets `out`, or what was expected ("an integer >= 1").
std::string convert_arg(const ArgInfo& info, int dims, const YAML::Node& value, ArgValue& out);

}  // namespace syncbn::config::detail
