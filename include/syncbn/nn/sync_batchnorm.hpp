#pragma once
// SyncBatchNorm: BatchNorm whose training statistics cover the whole process group.
//
// Forward (training, group size > 1): each rank computes per-channel (count, mean, M2) of its
// local slice; ONE allreduce of 3*C doubles merges them with Chan's formula
//   n = na + nb,  mean = mean_a + (mean_b - mean_a) * nb/n,  M2 = M2a + M2b + delta^2 * na*nb/n
// (its size does not depend on the world size; PyTorch all-gathers (2C+1)*W values); every rank
// then normalises with the global mean and biased var M2/n and updates running stats with the
// global count (unbiased var M2/(n-1)).
// Backward: ONE allreduce of [sum(dy), sum(dy*xhat)] (2C doubles); dx uses the global sums and
// count; dweight/dbias stay the local sums (data-parallel gradient averaging combines them).
// Ranks may hold any local batch size, including zero. A global count of 1 is the "more than 1
// value per channel" ValueError, raised on every rank.
// Eval, a group of one, or no distributed run: exactly BatchNorm.
// Every rank of the group must call forward/backward together (they are collectives when
// training with more than one rank).
#include <memory>
#include <string>
#include <type_traits>

#include "syncbn/dist/process_group.hpp"
#include "syncbn/nn/batchnorm.hpp"

namespace syncbn::nn {

class SyncBatchNorm : public BatchNormBase {
 public:
  // process_group: the ranks whose statistics combine; nullptr = dist::default_group() at the
  // time of each forward. Accepts (N, C, *) input of any rank >= 2.
  explicit SyncBatchNorm(BatchNormOptions options,
                         std::shared_ptr<dist::ProcessGroup> process_group = nullptr);
  explicit SyncBatchNorm(std::int64_t num_features)
      : SyncBatchNorm(BatchNormOptions(num_features)) {}

  // Converts an existing BatchNorm (weights, running stats, num_batches_tracked, options,
  // training flag). A lazy module that has not seen input stays lazy.
  static std::shared_ptr<SyncBatchNorm> from_batchnorm(const BatchNormBase& bn,
                                                       std::shared_ptr<dist::ProcessGroup> group);
  // The plain BatchNorm1d/2d/3d with this module's state: the variant it was converted from, or
  // else the one matching the last input's rank. Throws ValueError when neither is known.
  std::shared_ptr<BatchNormBase> to_batchnorm() const;

  std::string type_name() const override { return "SyncBatchNorm"; }
  const std::shared_ptr<dist::ProcessGroup>& process_group() const { return group_; }
  void set_process_group(std::shared_ptr<dist::ProcessGroup> group) { group_ = std::move(group); }

 protected:
  functional::ChannelMoments batch_moments(const Tensor& input) override;
  std::int64_t reduce_grad_sums(functional::GradSums& sums, std::int64_t local_count) override;
  void check_input(const Tensor& input) const override;

 private:
  SyncBatchNorm(BatchNormOptions options, std::shared_ptr<dist::ProcessGroup> group, bool lazy);
  dist::ProcessGroup& group() const;

  std::shared_ptr<dist::ProcessGroup> group_;
  // OneD/TwoD/ThreeD when converted from a BatchNorm.
  BatchNormVariant source_variant_ = BatchNormVariant::Any;
  std::int64_t last_input_dim_ = 0;  // to pick a variant when reverting
  bool synced_ = false;              // whether the last forward combined statistics
  std::int64_t global_count_ = 0;    // values per channel across the group, last forward
};

// torch.nn.SyncBatchNorm.convert_sync_batchnorm: replaces every BatchNorm1d/2d/3d in the tree
// (not GroupNorm, not an existing SyncBatchNorm) by a SyncBatchNorm over `group`, carrying all
// state. Returns the new root when the root itself is converted, else `module`.
std::shared_ptr<Module> convert_sync_batchnorm(std::shared_ptr<Module> module,
                                               std::shared_ptr<dist::ProcessGroup> group = nullptr);

// The same, keeping the caller's type: a root that is not a BatchNorm is converted in place
// and returned as it came, so `std::shared_ptr<Sequential> m; m = convert_sync_batchnorm(m, g);`
// compiles. A BatchNorm root (static type derived from BatchNormBase) returns its
// SyncBatchNorm, which is the root itself when it already is one.
template <typename T,
          typename = std::enable_if_t<std::is_base_of_v<Module, T> && !std::is_same_v<T, Module> &&
                                      !std::is_base_of_v<BatchNormBase, T>>>
std::shared_ptr<T> convert_sync_batchnorm(std::shared_ptr<T> module,
                                          std::shared_ptr<dist::ProcessGroup> group = nullptr) {
  convert_sync_batchnorm(std::shared_ptr<Module>(module), std::move(group));
  return module;
}
template <typename T, typename = std::enable_if_t<std::is_base_of_v<BatchNormBase, T>>,
          typename = void>
std::shared_ptr<SyncBatchNorm> convert_sync_batchnorm(
    std::shared_ptr<T> module, std::shared_ptr<dist::ProcessGroup> group = nullptr) {
  return std::static_pointer_cast<SyncBatchNorm>(
      convert_sync_batchnorm(std::shared_ptr<Module>(std::move(module)), std::move(group)));
}

// The reverse, for exporting a model trained with SyncBatchNorm: every SyncBatchNorm becomes
// the plain BatchNorm it came from (see SyncBatchNorm::to_batchnorm).
std::shared_ptr<Module> revert_sync_batchnorm(std::shared_ptr<Module> module);

// How many SyncBatchNorm layers a tree holds (for logging conversions); one shared by several
// parents counts once, as in modules().
int count_sync_batchnorm(const Module& module);

}  // namespace syncbn::nn
