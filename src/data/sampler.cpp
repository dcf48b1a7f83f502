#include "syncbn/data/sampler.hpp"

#include <numeric>
#include <utility>

#include "rng.hpp"
#include "syncbn/error.hpp"

namespace syncbn::data {

DistributedSampler::DistributedSampler(std::int64_t dataset_size, DistributedSamplerOptions options)
    : dataset_size_(dataset_size), options_(options) {
  const std::int64_t world = options_.num_replicas();
  SYNCBN_CHECK_AS(ConfigError, dataset_size >= 0,
                  "DistributedSampler: dataset size must be >= 0, got ", dataset_size);
  SYNCBN_CHECK_AS(ConfigError, world >= 1, "DistributedSampler: num_replicas must be >= 1, got ",
                  world);
  SYNCBN_CHECK_AS(ConfigError, options_.rank() >= 0 && options_.rank() < world,
                  "DistributedSampler: invalid rank ", options_.rank(), ", rank should be in [0, ",
                  world - 1, "]");
  SYNCBN_CHECK_AS(ConfigError, options_.batch_size() >= 1,
                  "DistributedSampler: batch_size must be >= 1, got ", options_.batch_size());
  // Round up (pad) or down (drop) to a multiple of the world size.
  num_samples_ = options_.drop_last() ? dataset_size / world : (dataset_size + world - 1) / world;
  set_epoch(0);
}

void DistributedSampler::set_epoch(std::int64_t epoch) {
  SYNCBN_CHECK(epoch >= 0, "DistributedSampler: epoch must be >= 0, got ", epoch);
  std::vector<std::int64_t> order(static_cast<std::size_t>(dataset_size_));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  if (options_.shuffle()) {
    // Seeded with seed + epoch like PyTorch, so every rank derives the same permutation.
    detail::Rng rng(options_.seed() + static_cast<std::uint64_t>(epoch));
    for (std::size_t i = order.size(); i > 1; --i)
      std::swap(order[i - 1], order[static_cast<std::size_t>(rng.below(i))]);
  }
  const std::int64_t world = options_.num_replicas();
  indices_.clear();
  indices_.reserve(static_cast<std::size_t>(num_samples_));
  // Position p of the padded order is order[p mod N]: padding repeats the order cyclically.
  for (std::int64_t k = 0; k < num_samples_; ++k) {
    const std::int64_t position = options_.rank() + k * world;
    indices_.push_back(order[static_cast<std::size_t>(position % dataset_size_)]);
  }
  epoch_ = epoch;
  step_ = 0;
}

std::int64_t DistributedSampler::steps_per_epoch() const {
  const std::int64_t b = options_.batch_size();
  // Not (n + b - 1) / b: that overflows for a batch size near 2^63 and gave 0 steps.
  const std::int64_t partial = !options_.drop_last_batch() && num_samples_ % b != 0;
  return num_samples_ / b + partial;
}

std::vector<std::int64_t> DistributedSampler::batch(std::int64_t step) const {
  SYNCBN_CHECK(step >= 0 && step < steps_per_epoch(), "DistributedSampler: step ", step,
               " is outside [0, ", steps_per_epoch(), ") for epoch ", epoch_);
  const std::int64_t begin = step * options_.batch_size();  // < num_samples_: no overflow
  const std::int64_t end = begin + std::min(options_.batch_size(), num_samples_ - begin);
  return {indices_.begin() + begin, indices_.begin() + end};
}

std::vector<std::int64_t> DistributedSampler::next_batch() {
  SYNCBN_CHECK(has_next(), "DistributedSampler: epoch ", epoch_, " has no batches left (",
               steps_per_epoch(), " steps); call set_epoch for the next epoch");
  return batch(step_++);
}

void DistributedSampler::load_state(const SamplerState& state) {
  SYNCBN_CHECK(state.epoch >= 0, "DistributedSampler: saved epoch ", state.epoch, " is negative");
  const std::int64_t steps = steps_per_epoch();
  SYNCBN_CHECK(state.step >= 0 && state.step <= steps, "DistributedSampler: saved step ",
               state.step, " is outside [0, ", steps,
               "]; was it saved with other options or data?");
  set_epoch(state.epoch);
  step_ = state.step;
}

}  // namespace syncbn::data
