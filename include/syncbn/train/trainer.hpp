#pragma once
// The data-parallel training loop behind syncbn-train. Every rank of `world` calls
// run_training with the same config; it builds the model (converting BatchNorm to SyncBatchNorm
// when the config says sync_batch and the world has more than one rank, in groups of
// model.sync_group_size consecutive ranks: see norm_conversion.hpp), broadcasts rank 0's
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
#include "syncbn/train/inference.hpp"  // load_model_state, evaluate: used with the loop's output

namespace syncbn::train {

struct RunOptions {
  // Continue from this checkpoint ("" = start fresh). See latest_checkpoint().
  std::string resume_from;
  // Start from these weights (a model-only state_dict, e.g. from PyTorch; see model_files.hpp)
  // instead of the config's initialisation. Exclusive with resume_from.
  std::string init_from;
  // Evaluate the loaded model on the test set and return, without training or checkpointing.
  bool eval_only = false;
  // Rank 0 writes the model-only state_dict here when the run ends (not when stopped on
  // request); "" = none.
  std::string export_path;
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

}  // namespace syncbn::train
