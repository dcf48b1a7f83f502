#pragma once
// syncbn-train --print-model: the model a config builds, as written (BatchNorm layers before the
// launcher's conversion), for checking a config against the PyTorch model it stands for.
#include <iosfwd>

#include "syncbn/config/config.hpp"

namespace syncbn::launcher {

// Builds config.model (weights from train.seed) in this process alone and prints to `out`:
// PyTorch's repr of the tree, which BatchNorm layers a launched job converts to SyncBatchNorm,
// the trainable parameter count (sum(p.numel() for p in model.parameters())) and the
// state_dict keys with their shapes, in PyTorch's order. Throws what the builder throws.
void print_model(const config::Config& config, std::ostream& out);

}  // namespace syncbn::launcher
