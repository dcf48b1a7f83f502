#pragma once
// Data sets for classification: an indexable collection of float samples of one shape (images are
// [C, H, W]; the synthetic set also makes [C], [C, L] and [C, D, H, W]) with
// integer labels, read a batch at a time. get_batch is const and deterministic: any randomness
// (augmentation, synthetic noise) is derived from (seed, epoch, sample index), so every rank,
// every batch composition and every resumed run sees the same sample for the same index.
#include <cstdint>
#include <string>
#include <vector>

#include "syncbn/options.hpp"
#include "syncbn/tensor.hpp"

namespace syncbn::data {

struct Batch {
  Tensor images;                     // [B, *sample_shape] float32, e.g. [B, C, H, W]
  std::vector<std::int64_t> labels;  // B entries in [0, num_classes)
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::int64_t size() const = 0;
  virtual std::int64_t num_classes() const = 0;
  // The shape of one sample, e.g. [C, H, W].
  virtual Shape sample_shape() const = 0;
  // The samples at `indices`, in that order; repeats are allowed and no indices give a
  // [0, *sample_shape] batch. Throws ValueError for an index outside [0, size()). Safe to call from
  // several threads at once.
  virtual Batch get_batch(const std::vector<std::int64_t>& indices) const = 0;
  // Chooses the epoch whose randomness get_batch uses (augmentation). Not thread-safe against
  // concurrent get_batch. The default does nothing, for data sets without per-epoch randomness.
  virtual void set_epoch(std::int64_t /*epoch*/) {}

 protected:
  // Throws ValueError naming the first index outside [0, size()).
  void check_indices(const std::vector<std::int64_t>& indices) const;
  // A zeroed [B, *sample_shape] float batch with room for `indices`.
  Batch allocate_batch(const std::vector<std::int64_t>& indices) const;
};

// Where Debian's dataset-fashion-mnist package installs the four .gz files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
// Normalisation, as torchvision's ToTensor + Normalize((0.2860,), (0.3530,)): pixels / 255, then
// (x - mean) / std. Measured from the data: the 60000 training images give mean 0.28604 and
// standard deviation 0.35302 (population, over all pixels); tests recompute them.
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;

enum class Split { Train, Test };

struct FashionMnistOptions {
  SYNCBN_ARG(std::string, root) = kFashionMnistDir;
  SYNCBN_ARG(Split, split) = Split::Train;
  // Off: pixels / 255 only (ToTensor without Normalize).
  SYNCBN_ARG(bool, normalize) = true;
  // Training augmentation, torchvision's RandomCrop(28, padding) then RandomHorizontalFlip():
  // pad with black (0) on every side, crop back to 28x28 at a random offset, mirror with p = 1/2.
  SYNCBN_ARG(bool, augment) = false;
  SYNCBN_ARG(std::int64_t, crop_padding) = 4;  // 0..8
  SYNCBN_ARG(bool, horizontal_flip) = true;
  SYNCBN_ARG(std::uint64_t, seed) = 0;
};

// Fashion-MNIST: 10 classes, [1, 28, 28] samples; 60000 training / 10000 test images from
// {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz in root(). The constructor reads and checks
// both files (IoError naming the file on any defect, ConfigError for bad options); the images
// stay in memory as bytes (47 MB for the training split).
class FashionMnist : public Dataset {
 public:
  explicit FashionMnist(FashionMnistOptions options = FashionMnistOptions());

  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  std::int64_t num_classes() const override { return 10; }
  Shape sample_shape() const override { return {1, height_, width_}; }
  Batch get_batch(const std::vector<std::int64_t>& indices) const override;
  void set_epoch(std::int64_t epoch) override { epoch_ = epoch; }

  const FashionMnistOptions& options() const { return options_; }
  // The raw pixels [N, 28, 28] uint8 and labels, e.g. for statistics.
  const Tensor& raw_images() const { return images_; }
  const std::vector<std::int64_t>& labels() const { return labels_; }

 private:
  void fill_sample(std::int64_t index, float* out) const;

  FashionMnistOptions options_;
  Tensor images_;
  std::vector<std::int64_t> labels_;
  std::int64_t height_ = 0, width_ = 0;
  std::int64_t epoch_ = 0;
};

struct SyntheticDatasetOptions {
  SYNCBN_ARG(std::int64_t, size) = 1024;
  SYNCBN_ARG(std::int64_t, num_classes) = 10;
  SYNCBN_ARG(Shape, sample_shape) = Shape{1, 28, 28};  // [C], [C, L], [C, H, W] or [C, D, H, W]
  SYNCBN_ARG(std::uint64_t, seed) = 0;
  // Standard deviation of the per-pixel Gaussian noise; the class pattern has amplitude ~1.
  SYNCBN_ARG(double, noise) = 0.5;
};

// Learnable synthetic data for tests: each class has its own pattern, a plane wave
//   a_{k,c} * cos(g_k*d/D + 2*pi*f_k*(w/W*cos(t_k) + h/H*sin(t_k)) + phi_k)
// with orientation t_k, frequencies f_k and g_k, phase phi_k and per-channel amplitudes a_{k,c}
// drawn from (seed, k); a sample adds Gaussian noise drawn from (seed, index). Shapes with fewer
// spatial dims take D = 1, then H = 1 ([C, L] is [C, 1, 1, L]; [C] is the constant a_{k,c} *
// cos(phi_k)). The label of index i is drawn from (seed, i). Nothing is stored, so any size
// works. The constructor throws ConfigError for a negative size, fewer than 1 or more than 2^20
// classes, a shape that is not one to four positive dims (at most 2^26 elements), or noise < 0.
class SyntheticDataset : public Dataset {
 public:
  explicit SyntheticDataset(SyntheticDatasetOptions options = SyntheticDatasetOptions());

  std::int64_t size() const override { return options_.size(); }
  std::int64_t num_classes() const override { return options_.num_classes(); }
  Shape sample_shape() const override { return options_.sample_shape(); }
  Batch get_batch(const std::vector<std::int64_t>& indices) const override;

  // The label of sample `index` (no noise to compute); throws ValueError when out of range.
  std::int64_t label(std::int64_t index) const;

 private:
  struct ClassPattern {
    double kx, ky, kz, phase;       // kz: the depth term, used by [C, D, H, W] samples only
    std::vector<double> amplitude;  // per channel
  };
  void fill_sample(std::int64_t index, float* out) const;

  SyntheticDatasetOptions options_;
  std::vector<ClassPattern> patterns_;
};

}  // namespace syncbn::data
