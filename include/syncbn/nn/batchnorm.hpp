#pragma once
// BatchNorm1d/2d/3d and LazyBatchNorm1d/2d/3d with PyTorch's semantics.
//
// Training: per-channel batch mean and biased variance over N and the spatial dims normalise
//   y = (x - mean) / sqrt(var + eps) * weight + bias.
// Running stats (when tracked): num_batches_tracked += 1; f = momentum, or 1/num_batches_tracked
//   when momentum is empty (cumulative average);
//   running_mean = (1-f)*running_mean + f*mean,  running_var = (1-f)*running_var + f*var*n/(n-1).
// Eval: running stats if tracked, else batch stats.
// Backward (batch stats), n values per channel, xhat = (x - mean) * invstd:
//   dx = weight*invstd/n * (n*dy - sum(dy) - xhat*sum(dy*xhat)); dweight = sum(dy*xhat); dbias =
//   sum(dy).
// Backward (running stats): dx = dy * weight * invstd_running.
// An empty batch is allowed (empty output, running stats unchanged, num_batches_tracked still
// incremented, zero parameter gradients); one value per channel while training is a ValueError.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "syncbn/nn/functional.hpp"
#include "syncbn/nn/module.hpp"
#include "syncbn/options.hpp"

namespace syncbn::nn {

struct BatchNormOptions {
  explicit BatchNormOptions(std::int64_t num_features = 0) : num_features_(num_features) {}
  SYNCBN_ARG(std::int64_t, num_features);
  SYNCBN_ARG(double, eps) = 1e-5;
  // Empty = cumulative moving average (PyTorch's momentum=None).
  SYNCBN_ARG(std::optional<double>, momentum) = 0.1;
  SYNCBN_ARG(bool, affine) = true;
  SYNCBN_ARG(bool, track_running_stats) = true;
};

// The 1d/2d/3d of PyTorch's class names: which input ranks a BatchNorm accepts. Any is
// SyncBatchNorm's (N, C, *), which takes any rank >= 2.
enum class BatchNormVariant { Any, OneD, TwoD, ThreeD };
// The class-name suffix: "1d", "2d", "3d", or "" for Any.
const char* variant_suffix(BatchNormVariant variant);

// The shared implementation; the subclasses differ only in the input ranks they accept.
class BatchNormBase : public Module {
 public:
  const BatchNormOptions& options() const { return options_; }
  // Absent (undefined) when affine=false.
  Parameter weight, bias;
  // Absent (undefined) when track_running_stats=false.
  Tensor running_mean, running_var, num_batches_tracked;

  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;
  std::string type_name() const override;
  std::string extra_repr() const override;

  void reset_running_stats();
  void reset_parameters();
  // Turns off running statistics: buffers dropped, batch stats used in train and eval
  // (what torch.func.replace_all_batch_norm_modules_ does to each BatchNorm).
  void drop_running_stats();
  // True for a Lazy* module that has not yet seen input.
  bool is_lazy() const { return lazy_; }
  // OneD, TwoD or ThreeD (Any for SyncBatchNorm).
  BatchNormVariant variant() const { return variant_; }
  // Takes num_features, weight, bias, running stats and num_batches_tracked from `other`
  // (what both modules have; a lazy `other` leaves this module as it is). Used by conversions.
  void copy_state_from(const BatchNormBase& other);

 protected:
  BatchNormBase(BatchNormOptions options, BatchNormVariant variant, bool lazy);
  // Statistics of this batch; SyncBatchNorm combines them across its process group.
  virtual functional::ChannelMoments batch_moments(const Tensor& input);
  // Completes the backward sums (and returns the count they cover); SyncBatchNorm allreduces.
  virtual std::int64_t reduce_grad_sums(functional::GradSums& sums, std::int64_t local_count);
  virtual void check_input(const Tensor& input) const;
  void prepare_load(StateDict& dict, const std::string& prefix) override;
  void materialize(std::int64_t num_features);

 private:
  double update_factor();
  BatchNormOptions options_;
  BatchNormVariant variant_;
  bool lazy_ = false;
  // Saved by forward for backward.
  Tensor saved_input_;
  std::vector<double> saved_mean_, saved_invstd_;
  bool saved_batch_stats_ = false;
};

// The constructors below are out of line: inlined into a caller that passes momentum(nullopt),
// GCC 12 at -O3 reports a false "may be used uninitialized" for the disengaged optional.

// (N, C) or (N, C, L) input.
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(BatchNormOptions options);
  explicit BatchNorm1d(std::int64_t num_features) : BatchNorm1d(BatchNormOptions(num_features)) {}
};
// (N, C, H, W) input.
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(BatchNormOptions options);
  explicit BatchNorm2d(std::int64_t num_features) : BatchNorm2d(BatchNormOptions(num_features)) {}
};
// (N, C, D, H, W) input.
class BatchNorm3d : public BatchNormBase {
 public:
  explicit BatchNorm3d(BatchNormOptions options);
  explicit BatchNorm3d(std::int64_t num_features) : BatchNorm3d(BatchNormOptions(num_features)) {}
};

// Lazy variants: num_features is taken from input.size(1) on the first forward (or from a
// loaded state dict); from then on the module is the plain class (type_name() drops "Lazy").
// options.num_features is ignored.
class LazyBatchNorm1d : public BatchNormBase {
 public:
  explicit LazyBatchNorm1d(BatchNormOptions options = BatchNormOptions());
};
class LazyBatchNorm2d : public BatchNormBase {
 public:
  explicit LazyBatchNorm2d(BatchNormOptions options = BatchNormOptions());
};
class LazyBatchNorm3d : public BatchNormBase {
 public:
  explicit LazyBatchNorm3d(BatchNormOptions options = BatchNormOptions());
};

// torch.func.replace_all_batch_norm_modules_: every BatchNorm in the tree stops tracking
// running stats. Returns `root` for chaining.
std::shared_ptr<Module> replace_all_batch_norm_modules_(std::shared_ptr<Module> root);

}  // namespace syncbn::nn
