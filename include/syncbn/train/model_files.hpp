#pragma once
// Model-only state_dict files: what syncbn-train's --init-from reads (e.g. one PyTorch wrote
// with safetensors.torch.save_file(model.state_dict(), path)) and --export writes (one PyTorch
// loads with load_state_dict(strict=True)). PyTorch's key names; SyncBatchNorm layers have
// BatchNorm's keys, so a converted model reads and writes the same files as its BatchNorm twin.
#include <cstdint>
#include <string>

#include "syncbn/config/config.hpp"
#include "syncbn/nn/module.hpp"

namespace syncbn::train {

// Builds the config's model and loads `path` into it strictly, so a bad file is refused before
// a job starts. Throws ConfigError "--init-from PATH: ..." listing every missing, unexpected or
// mis-shaped key, or why the file is not readable safetensors. "optimizer." keys (a syncbn
// training checkpoint) are ignored.
void check_init_from(const config::Config& config, const std::string& path);

// Writes `model`'s state_dict alone (no optimizer state) to `path`, atomically. Throws Error if
// a value is NaN or Inf (a diverged model is not worth exporting).
void export_model(const std::string& path, const nn::Module& model);

// The metrics.jsonl record of an --eval-only run: {"eval_only": true, "test_loss": ...}.
std::string eval_only_record(double test_loss, double test_accuracy, std::int64_t samples);

}  // namespace syncbn::train
