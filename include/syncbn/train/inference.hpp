#pragma once
// Using a trained model without training it (syncbn-quantize, evaluation scripts): its weights
// from a training checkpoint, and its loss and accuracy on a data set. Kept apart from
// trainer.hpp so that such programs do not depend on the training loop.
#include <cstdint>
#include <string>

#include "syncbn/data/dataset.hpp"
#include "syncbn/dist/process_group.hpp"
#include "syncbn/nn/module.hpp"

namespace syncbn::train {

// Loads only the model weights of a training checkpoint into `model` (e.g. for evaluation or
// quantization). Throws CheckpointError naming the file and listing every mismatch.
void load_model_state(const std::string& checkpoint, nn::Module& model);

// Scores `model` (in eval mode) on samples rank, rank + W, ... of `dataset` (the first `limit`
// samples; 0 = all), with one allreduce for exact global metrics. Every rank must call it.
struct Evaluation {
  double loss = 0, accuracy = 0;
  std::int64_t samples = 0;
};
Evaluation evaluate(nn::Module& model, const data::Dataset& dataset, dist::ProcessGroup& group,
                    std::int64_t limit = 0);

}  // namespace syncbn::train
