#pragma once
// Gradient accumulation as PyTorch users write it with DDP: over `micro` micro-batches, each
// runs forward (its own BatchNorm / SyncBatchNorm statistics) and backward of loss / micro, the
// gradients summing locally; only the last backward allreduces (DDP's no_sync for the others).
// The result equals the gradient of the mean of the micro-batches' global mean losses.
// Contract: a collective over the DDP group (every rank, same `micro`); gradients must be zeroed
// and the model in training mode before.
#include <cstdint>
#include <functional>
#include <vector>

#include "syncbn/data/dataset.hpp"
#include "syncbn/parallel/data_parallel.hpp"
#include "syncbn/train/loss.hpp"

namespace syncbn::train {

struct AccumulatedStep {
  double local_loss = 0;     // this rank's mean of the micro-batch losses
  std::int64_t samples = 0;  // this rank's samples, all micro-batches
};

// `extra` rides in the last allreduce and comes back summed over the ranks; its first entry
// (which must exist) is set to local_loss before, so it returns the sum of the ranks' losses.
// Throws ValueError for micro < 1.
AccumulatedStep accumulate_gradients(nn::DistributedDataParallel& ddp, CrossEntropyLoss& loss,
                                     std::int64_t micro,
                                     const std::function<data::Batch()>& next_batch,
                                     std::vector<float>& extra);

}  // namespace syncbn::train
