#pragma once
// Transforms for any data set, as torchvision's RandomCrop(padding) + RandomHorizontalFlip() +
// Normalize(mean, std): a wrapper Dataset applies them to the samples its inner data set returns
// (which are expected ToTensor-scaled, e.g. pixels / 255). Order: crop and flip first (padding is
// 0, black, like torchvision's fill=0 before ToTensor), then (x - mean[c]) / std[c]. The random
// draws come from (seed, epoch, sample index) only, so results do not depend on the batch a
// sample is in, on the rank, or on resuming; they are the same draws FashionMnist's own
// augmentation makes.
#include <cstdint>
#include <memory>
#include <vector>

#include "syncbn/data/dataset.hpp"
#include "syncbn/options.hpp"

namespace syncbn::data {

struct TransformOptions {
  // Per-channel mean and standard deviation; empty: no normalisation. One value applies to every
  // channel (like Normalize((0.5,), (0.5,)) on a grey image).
  SYNCBN_ARG(std::vector<double>, mean) = {};
  SYNCBN_ARG(std::vector<double>, std) = {};
  // Random crop with zero padding, then horizontal flip with p = 1/2; images ([C, H, W]) only.
  SYNCBN_ARG(bool, augment) = false;
  SYNCBN_ARG(std::int64_t, crop_padding) = 4;  // >= 0
  SYNCBN_ARG(bool, horizontal_flip) = true;
  SYNCBN_ARG(std::uint64_t, seed) = 0;
};

// One [C, H, W] sample `in` cropped and flipped into `out` (same size, no overlap) with the draws
// for (seed, epoch, index): offsets dy, dx uniform in [0, 2 * padding], then a flip bit.
void random_crop_flip(const float* in, float* out, const Shape& sample_shape,
                      const TransformOptions& options, std::int64_t epoch, std::int64_t index);

// (x - mean[c]) / std[c] in place on a [B, C, ...] batch (channel = dim 1).
void normalize_batch(Tensor& images, const std::vector<double>& mean,
                     const std::vector<double>& std);

// A data set whose samples are `inner`'s after the transforms. The constructor throws
// ConfigError when mean and std differ in length, have a length other than 1 or C, a std is not
// > 0, padding is negative, or augment is asked for samples that are not [C, H, W].
class TransformedDataset : public Dataset {
 public:
  TransformedDataset(std::unique_ptr<Dataset> inner, TransformOptions options);

  std::int64_t size() const override { return inner_->size(); }
  std::int64_t num_classes() const override { return inner_->num_classes(); }
  Shape sample_shape() const override { return inner_->sample_shape(); }
  Batch get_batch(const std::vector<std::int64_t>& indices) const override;
  void set_epoch(std::int64_t epoch) override;

  const Dataset& inner() const { return *inner_; }

 private:
  std::unique_ptr<Dataset> inner_;
  TransformOptions options_;
  std::int64_t epoch_ = 0;
};

// `inner` wrapped when options ask for any transform, else `inner` itself.
std::unique_ptr<Dataset> with_transforms(std::unique_ptr<Dataset> inner, TransformOptions options);

}  // namespace syncbn::data
