#pragma once
// DistributedSampler: which data-set indices each rank reads, with PyTorch's
// torch.utils.data.DistributedSampler semantics, plus the per-rank batching of a DataLoader.
//
// Each epoch, every rank builds the same order of [0, N): a shuffle seeded with seed + epoch (or
// 0..N-1 without shuffle). Without drop_last the order is padded by repeating its own beginning
// (cyclically when N is small) to total_size = W * ceil(N / W); with drop_last the tail is cut to
// total_size = W * floor(N / W). Rank r then takes positions r, r + W, r + 2W, ..., so every rank
// gets num_samples = total_size / W indices and the ranks' sets are disjoint apart from padding.
// Batches are consecutive runs of batch_size of those indices; the last one is shorter unless
// drop_last_batch is set. steps_per_epoch() is therefore identical on every rank, so collectives
// issued once per step stay matched.
//
// The shuffle uses its own fully specified generator (SplitMix64 + Fisher-Yates), not
// torch.randperm: the same seed gives the same order on every platform and build, but not the
// order PyTorch would produce. The rule (padding, dropping, r::W) is tested against torch's own
// DistributedSampler (tests/data/sampler_golden_test.cpp). Not thread-safe; one sampler per rank.
#include <cstdint>
#include <vector>

#include "syncbn/options.hpp"

namespace syncbn::data {

struct DistributedSamplerOptions {
  explicit DistributedSamplerOptions(std::int64_t num_replicas = 1, std::int64_t rank = 0)
      : num_replicas_(num_replicas), rank_(rank) {}
  SYNCBN_ARG(std::int64_t, num_replicas);
  SYNCBN_ARG(std::int64_t, rank);
  SYNCBN_ARG(bool, shuffle) = true;
  SYNCBN_ARG(std::uint64_t, seed) = 0;
  // Drop the tail so the data divides evenly among ranks, instead of padding with repeats.
  SYNCBN_ARG(bool, drop_last) = false;
  // Per-rank batch size; drop_last_batch drops a final short batch (DataLoader's drop_last).
  SYNCBN_ARG(std::int64_t, batch_size) = 1;
  SYNCBN_ARG(bool, drop_last_batch) = false;
};

// What a checkpoint needs to resume mid-epoch: the epoch and the next step within it.
struct SamplerState {
  std::int64_t epoch = 0;
  std::int64_t step = 0;
  bool operator==(const SamplerState& o) const { return epoch == o.epoch && step == o.step; }
};

class DistributedSampler {
 public:
  // Throws ConfigError for dataset_size < 0, num_replicas < 1, rank outside [0, num_replicas)
  // or batch_size < 1. Starts at epoch 0, step 0.
  DistributedSampler(std::int64_t dataset_size, DistributedSamplerOptions options);

  // Rebuilds the order for `epoch` (>= 0, else ValueError) and rewinds to step 0. Call with the
  // same epoch on every rank before each epoch, as with PyTorch's sampler.set_epoch.
  void set_epoch(std::int64_t epoch);
  std::int64_t epoch() const { return epoch_; }

  std::int64_t dataset_size() const { return dataset_size_; }
  std::int64_t total_size() const { return num_samples_ * options_.num_replicas(); }
  // Indices per rank per epoch.
  std::int64_t num_samples() const { return num_samples_; }
  std::int64_t steps_per_epoch() const;
  const DistributedSamplerOptions& options() const { return options_; }

  // This rank's indices for the current epoch, in order (num_samples() of them).
  const std::vector<std::int64_t>& indices() const { return indices_; }
  // The indices of batch `step` in [0, steps_per_epoch()); ValueError otherwise.
  std::vector<std::int64_t> batch(std::int64_t step) const;

  // Iteration: has_next() until the epoch's batches are used up; next_batch() returns the batch
  // at the current step and advances (ValueError when there is none).
  bool has_next() const { return step_ < steps_per_epoch(); }
  std::vector<std::int64_t> next_batch();

  SamplerState state() const { return {epoch_, step_}; }
  // Resumes at `state` (same options and data set size as when it was saved). Throws ValueError
  // for a negative epoch or a step outside [0, steps_per_epoch()].
  void load_state(const SamplerState& state);

 private:
  std::int64_t dataset_size_;
  DistributedSamplerOptions options_;
  std::int64_t num_samples_ = 0;
  std::int64_t epoch_ = 0;
  std::int64_t step_ = 0;
  std::vector<std::int64_t> indices_;
};

}  // namespace syncbn::data
