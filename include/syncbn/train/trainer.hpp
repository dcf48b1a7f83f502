#pragma once
// The data-parallel training loop behind syncbn-train. Every rank of `world` calls
// run_training with the same config; it builds the model (converting BatchNorm to SyncBatchNorm
// when the config says sync_batch and the world has more than one rank), broadcasts rank 0's
// weights, trains on this rank's shard of every batch with bucketed gradient averaging,
// evaluates on a sharded test set, and writes checkpoints (rank 0, atomically). Rank 0 reports
// progress to `log`; every rank returns the same Summary.
#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

#include "syncbn/config/config.hpp"
#include "syncbn/data/dataset.hpp"
#include "syncbn/dist/process_group.hpp"
#include "syncbn/nn/module.hpp"

namespace syncbn::train {

struct RunOptions {
  // Continue from this checkpoint ("" = start fresh). See latest_checkpoint().
  std::string resume_from;
  // Rank 0 draws a progress bar when `log` is a terminal; otherwise one line per epoch.
  bool progress_bar = false;
  std::ostream* log = nullptr;  // rank 0's report; nullptr = silent
  // Preemption: when this becomes true on ANY rank (e.g. from a SIGTERM handler), all ranks agree
  // at the next step boundary (the flag rides in the gradient allreduce), write a checkpoint
  // and return with Summary::preempted set. nullptr = never.
  const std::atomic<bool>* stop_requested = nullptr;
};

struct Summary {
  double test_accuracy = 0;  // fraction in [0, 1]
  double test_loss = 0;
  double train_loss = 0;         // mean over the last epoch's steps
  double images_per_second = 0;  // global training throughput
  double seconds = 0;
  std::int64_t steps = 0;       // optimizer steps, total
  std::int64_t start_step = 0;  // the step this run began at (non-zero when resumed)
  std::int64_t epochs = 0;
  int world_size = 1;
  int sync_layers = 0;         // SyncBatchNorm layers in the trained model
  bool stopped_early = false;  // max_steps reached before the last epoch ended
  bool preempted = false;      // stopped on request (RunOptions::stop_requested)
};

Summary run_training(const config::Config& config, std::shared_ptr<dist::ProcessGroup> world,
                     const RunOptions& options);

// The checkpoint to resume from in `checkpoint_dir` ("" when there is none).
std::string latest_checkpoint(const std::string& checkpoint_dir);

// What syncbn-train's --resume asks for, as a path for RunOptions::resume_from: "" (no --resume)
// gives ""; "latest" the newest checkpoint in `checkpoint_dir`, or "" after a warning on `warn`
// (nullptr: none) when there is none; "required" the same, but none is a CheckpointError naming
// the dir; anything else is a checkpoint path, returned as is.
std::string resume_checkpoint(const std::string& request, const std::string& checkpoint_dir,
                              std::ostream* warn);

// Loads only the model weights of a training checkpoint into `model` (e.g. for evaluation or
// quantization). Throws CheckpointError naming the file and listing every mismatch.
void load_model_state(const std::string& checkpoint, nn::Module& model);

// The train or test split the config names (Fashion-MNIST or synthetic).
std::unique_ptr<data::Dataset> make_dataset(const config::Config& config, data::Split split);

// Scores `model` (in eval mode) on samples rank, rank + W, ... of `dataset` (the first `limit`
// samples; 0 = all), with one allreduce for exact global metrics. Every rank must call it.
struct Evaluation {
  double loss = 0, accuracy = 0;
  std::int64_t samples = 0;
};
Evaluation evaluate(nn::Module& model, const data::Dataset& dataset, dist::ProcessGroup& group,
                    std::int64_t limit = 0);

}  // namespace syncbn::train
