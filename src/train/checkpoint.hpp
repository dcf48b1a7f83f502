#pragma once
// Training checkpoints as safetensors: the model's state_dict under PyTorch's key names, optimizer
// momentum buffers under "optimizer.<param>.momentum_buffer", and the position in training, what
// it is counted in, and the effective config in the metadata. A PyTorch user loads the weights
// with safetensors.torch.load_file and then model.load_state_dict(sd, strict=False), or drops
// the "optimizer." keys first: strict=True refuses them as unexpected keys. Written atomically
// by io::save_safetensors, whose checksum covers the header (and so the position) too; refused
// if any value is non-finite, so a diverged run never overwrites a good checkpoint.
#include <cstdint>
#include <string>
#include <vector>

#include "syncbn/nn/module.hpp"
#include "syncbn/train/optimizer.hpp"

namespace syncbn::train::detail {

struct Position {
  std::int64_t epoch = 0;        // epoch to continue in, counted from 0
  std::int64_t step = 0;         // next step within it = steps of it already taken
  std::int64_t global_step = 0;  // optimizer steps taken so far
};

// What `Position::step` is counted in: batches of batch_size samples per rank, over the order
// that seed and world_size give to train_size samples. Mid-epoch, a resume with any of these
// changed would continue from another place in the data, so it is refused; at an epoch
// boundary (step 0) nothing is counted in them yet and they may change.
struct PositionBasis {
  std::int64_t world_size = 1;
  std::int64_t batch_size = 1;  // per rank
  std::uint64_t seed = 0;
  std::int64_t train_size = 0;  // training samples per epoch (after data.limit_train)
};

inline constexpr const char* kOptimizerPrefix = "optimizer.";
inline constexpr const char* kCheckpointName = "last.safetensors";
// <dir>/last.safetensors: the one place the checkpoint directory meets the file name.
std::string checkpoint_file(const std::string& checkpoint_dir);

void save_checkpoint(const std::string& path, nn::Module& model, const Optimizer& optimizer,
                     const Position& position, const PositionBasis& basis,
                     const std::string& config_yaml);

struct Resumed {
  Position position;
  // Differences from the checkpoint's basis, accepted because it is at an epoch boundary.
  std::vector<std::string> changes;
};

// Loads into `model` and `optimizer` after checking the checkpoint against `current`. Throws
// CheckpointError naming the file and listing every missing, unexpected or mis-shaped tensor,
// or, for a mid-epoch checkpoint, every difference between its basis and `current`. Files of
// format version 1 (header not checksummed, no basis recorded) are refused.
Resumed load_checkpoint(const std::string& path, nn::Module& model, Optimizer& optimizer,
                        const PositionBasis& current);

// "epoch 2 (1-based), 5 steps into it": the one way messages name a position.
std::string describe_position(const Position& position);

}  // namespace syncbn::train::detail
