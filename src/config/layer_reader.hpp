#pragma once
// Reads the model language (model.layers with model.blocks) into expanded LayerSpecs:
// definitions instantiated, repeat/first unrolled, `$` expressions evaluated. Errors are
// ConfigErrors naming "<file>:<line>: <layer path>[.<key>]: ..." (the line where the offending
// text is written, which for a layer made from a definition is inside model.blocks).
#include <cstdint>
#include <vector>

#include "syncbn/config/model_spec.hpp"
#include "yaml_reader.hpp"

namespace syncbn::config::detail {

// `model` is the reader of the model mapping; this reads (and marks as known) its `layers`
// and `blocks` keys. Throws ConfigError.
std::vector<LayerSpec> read_layers(MapReader& model, std::int64_t num_classes);

}  // namespace syncbn::config::detail
