#include "checkpoint.hpp"

#include <cmath>
#include <filesystem>
#include <ostream>

#include "syncbn/error.hpp"
#include "syncbn/io/safetensors.hpp"
#include "syncbn/train/trainer.hpp"

namespace syncbn::train {
namespace detail {
namespace {
bool all_finite(const Tensor& t) {
  if (t.dtype() != DType::Float32) return true;
  const float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

std::int64_t metadata_int(const io::Metadata& meta, const std::string& key,
                          const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end())
    throw CheckpointError(path + ": not a syncbn training checkpoint (no '" + key + "' metadata)");
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    throw CheckpointError(path + ": metadata '" + key + "' is not an integer: '" + it->second +
                          "'");
  }
}

// The metadata entries that record a PositionBasis, with the names a user sets them by.
struct BasisEntry {
  const char* key;
  const char* what;
  std::string value;
};

std::vector<BasisEntry> basis_entries(const PositionBasis& b) {
  return {{"world_size", "world size", std::to_string(b.world_size)},
          {"batch_size", "train.batch_size", std::to_string(b.batch_size)},
          {"seed", "train.seed", std::to_string(b.seed)},
          {"train_size", "training samples per epoch (data set size, data.limit_train)",
           std::to_string(b.train_size)}};
}
}  // namespace

void save_checkpoint(const std::string& path, nn::Module& model, const Optimizer& optimizer,
                     const Position& position, const PositionBasis& basis,
                     const std::string& config_yaml) {
  io::TensorMap tensors;
  for (auto& [key, value] : model.state_dict()) tensors[key] = value;
  for (auto& [key, value] : optimizer.state_dict()) tensors[kOptimizerPrefix + key] = value;
  for (const auto& [key, value] : tensors)
    if (!all_finite(value))
      throw Error("refusing to checkpoint: '" + key + "' holds NaN or Inf; " + path +
                  " is left as it was");
  io::Metadata metadata = {{"epoch", std::to_string(position.epoch)},
                           {"step", std::to_string(position.step)},
                           {"global_step", std::to_string(position.global_step)},
                           {"config", config_yaml}};
  for (const auto& entry : basis_entries(basis)) metadata[entry.key] = entry.value;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  io::save_safetensors(path, tensors, metadata);
}

// Splits a checkpoint's tensors into model and optimizer state and loads the model's, after
// checking every name and shape so a mismatch lists all problems at once.
nn::StateDict load_model_part(const std::string& path, io::SafetensorsContents& contents,
                              nn::Module& model) {
  nn::StateDict model_state, optimizer_state;
  const std::string prefix = kOptimizerPrefix;
  for (auto& [key, value] : contents.tensors) {
    if (key.rfind(prefix, 0) == 0)
      optimizer_state[key.substr(prefix.size())] = std::move(value);
    else
      model_state[key] = std::move(value);
  }
  const auto problems = io::state_dict_mismatches(model_state, model.state_dict());
  if (!problems.empty()) {
    std::string list;
    for (const auto& p : problems) list += "\n  " + p;
    throw CheckpointError(path + ": does not fit this model:" + list);
  }
  try {
    model.load_state_dict(model_state);
  } catch (const Error& e) {
    throw CheckpointError(path + ": " + e.what());
  }
  return optimizer_state;
}

namespace {
// Version 1 checkpoints neither protect their header nor record what the position counts in.
void check_resumable(const io::Metadata& meta, const std::string& path) {
  const auto version = meta.find(io::kFormatVersionKey);
  if (version != meta.end() && version->second != "1") return;
  throw CheckpointError(path +
                        ": cannot resume from a checkpoint of format version 1 (an older syncbn): "
                        "its position is not covered by the checksum and it does not record the "
                        "world size, batch size, seed or data set size it counts in; its weights "
                        "still load (syncbn-quantize --checkpoint)");
}

// Every difference from `current`; mid-epoch any one is an error listing them all.
std::vector<std::string> basis_changes(const io::Metadata& meta, const PositionBasis& current,
                                       const Position& position, const std::string& path) {
  std::vector<std::string> changes;
  for (const auto& entry : basis_entries(current)) {
    const auto it = meta.find(entry.key);
    if (it == meta.end())
      throw CheckpointError(path + ": not a syncbn training checkpoint (no '" + entry.key +
                            "' metadata)");
    if (it->second != entry.value)
      changes.push_back(std::string(entry.what) + ": checkpoint " + it->second + ", this run " +
                        entry.value);
  }
  if (changes.empty() || position.step == 0) return changes;
  std::string list;
  for (const auto& c : changes) list += "\n  " + c;
  throw CheckpointError(path + ": written at " + describe_position(position) +
                        ", counting steps in other units than this run:" + list +
                        "\nresume with the checkpoint's values (a change is allowed at an epoch "
                        "boundary)");
}
}  // namespace

Resumed load_checkpoint(const std::string& path, nn::Module& model, Optimizer& optimizer,
                        const PositionBasis& current) {
  io::SafetensorsContents contents = io::load_safetensors(path);
  const io::Metadata& meta = contents.metadata;
  check_resumable(meta, path);
  Resumed resumed;
  resumed.position = {metadata_int(meta, "epoch", path), metadata_int(meta, "step", path),
                      metadata_int(meta, "global_step", path)};
  resumed.changes = basis_changes(meta, current, resumed.position, path);
  const nn::StateDict optimizer_state = load_model_part(path, contents, model);
  try {
    optimizer.load_state_dict(optimizer_state);
  } catch (const Error& e) {
    throw CheckpointError(path + ": " + e.what());
  }
  return resumed;
}

std::string describe_position(const Position& position) {
  return "epoch " + std::to_string(position.epoch + 1) + " (1-based), " +
         (position.step == 0 ? std::string("at its start")
                             : std::to_string(position.step) + " steps into it");
}

std::string checkpoint_file(const std::string& checkpoint_dir) {
  return (std::filesystem::path(checkpoint_dir) / kCheckpointName).string();
}

}  // namespace detail

void load_model_state(const std::string& checkpoint, nn::Module& model) {
  io::SafetensorsContents contents = io::load_safetensors(checkpoint);
  detail::load_model_part(checkpoint, contents, model);
}

std::string latest_checkpoint(const std::string& checkpoint_dir) {
  const std::string path = detail::checkpoint_file(checkpoint_dir);
  return std::filesystem::exists(path) ? path : "";
}

std::string resume_checkpoint(const std::string& request, const std::string& checkpoint_dir,
                              std::ostream* warn) {
  if (request != "latest" && request != "required") return request;
  const std::string found = latest_checkpoint(checkpoint_dir);
  if (!found.empty()) return found;
  const std::string what = "--resume: no checkpoint in " + checkpoint_dir;
  if (request == "required")
    throw CheckpointError(what + " (expected " + detail::checkpoint_file(checkpoint_dir) +
                          "; --resume=required)");
  if (warn)
    *warn << "WARNING: " << what
          << "; starting from scratch (use --resume=required to make this an error)" << std::endl;
  return "";
}

}  // namespace syncbn::train
