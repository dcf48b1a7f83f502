#include "syncbn/nn/sync_batchnorm.hpp"

#include "syncbn/dist/default_group.hpp"
#include "syncbn/error.hpp"

namespace syncbn::nn {
namespace {
constexpr std::size_t kMomentRecord = 3;  // count, mean, M2

// Chan's parallel merge over records of (count, mean, M2); counts travel as doubles, exact
// below 2^53 values per channel.
void merge_moment_records(const double* in, double* inout, std::size_t records, std::size_t) {
  for (std::size_t r = 0; r < records; ++r) {
    const double* b = in + r * kMomentRecord;
    double* a = inout + r * kMomentRecord;
    std::int64_t count = static_cast<std::int64_t>(a[0]);
    functional::merge_moments(count, a[1], a[2], static_cast<std::int64_t>(b[0]), b[1], b[2]);
    a[0] = static_cast<double>(count);
  }
}

std::shared_ptr<BatchNormBase> make_batchnorm(BatchNormVariant variant, const BatchNormOptions& o,
                                              bool lazy) {
  if (variant == BatchNormVariant::OneD)
    return lazy ? std::shared_ptr<BatchNormBase>(std::make_shared<LazyBatchNorm1d>(o))
                : std::make_shared<BatchNorm1d>(o);
  if (variant == BatchNormVariant::TwoD)
    return lazy ? std::shared_ptr<BatchNormBase>(std::make_shared<LazyBatchNorm2d>(o))
                : std::make_shared<BatchNorm2d>(o);
  return lazy ? std::shared_ptr<BatchNormBase>(std::make_shared<LazyBatchNorm3d>(o))
              : std::make_shared<BatchNorm3d>(o);
}
}  // namespace

SyncBatchNorm::SyncBatchNorm(BatchNormOptions options, std::shared_ptr<dist::ProcessGroup> group)
    : SyncBatchNorm(options, std::move(group), false) {}

SyncBatchNorm::SyncBatchNorm(BatchNormOptions options, std::shared_ptr<dist::ProcessGroup> group,
                             bool lazy)
    : BatchNormBase(options, BatchNormVariant::Any, lazy), group_(std::move(group)) {}

dist::ProcessGroup& SyncBatchNorm::group() const {
  if (!group_) return *dist::default_group();  // the default group lives for the process
  return *group_;
}

void SyncBatchNorm::check_input(const Tensor& input) const {
  SYNCBN_CHECK_AS(ShapeError, input.dim() >= 2, "expected at least 2D input (got ", input.dim(),
                  "D input)");
  SYNCBN_CHECK_AS(ShapeError, input.size(1) > 0,
                  "SyncBatchNorm number of input channels should be non-zero");
  SYNCBN_CHECK_AS(ShapeError, is_lazy() || input.size(1) == options().num_features(),
                  "SyncBatchNorm(", options().num_features(), "): expected input with ",
                  options().num_features(), " channels, got ", input.size(1), " (input shape ",
                  shape_str(input.shape()), ")");
}

functional::ChannelMoments SyncBatchNorm::batch_moments(const Tensor& input) {
  last_input_dim_ = input.dim();
  functional::ChannelMoments m = functional::channel_moments(input);
  dist::ProcessGroup& g = group();
  synced_ = is_training() && g.size() > 1;
  if (!synced_) return m;
  const std::size_t channels = m.mean.size();
  std::vector<double> records(channels * kMomentRecord);
  for (std::size_t c = 0; c < channels; ++c) {
    records[c * kMomentRecord] = static_cast<double>(m.count);
    records[c * kMomentRecord + 1] = m.mean[c];
    records[c * kMomentRecord + 2] = m.m2[c];
  }
  g.allreduce_custom(records.data(), channels, kMomentRecord, merge_moment_records);
  m.count = channels ? static_cast<std::int64_t>(records[0]) : 0;
  for (std::size_t c = 0; c < channels; ++c) {
    m.mean[c] = records[c * kMomentRecord + 1];
    m.m2[c] = records[c * kMomentRecord + 2];
  }
  global_count_ = m.count;
  return m;
}

std::int64_t SyncBatchNorm::reduce_grad_sums(functional::GradSums& sums, std::int64_t local_count) {
  if (!synced_) return local_count;
  const std::size_t channels = sums.sum_dy.size();
  std::vector<double> packed(sums.sum_dy);
  packed.insert(packed.end(), sums.sum_dy_xhat.begin(), sums.sum_dy_xhat.end());
  group().allreduce(packed.data(), packed.size());
  std::copy(packed.begin(), packed.begin() + channels, sums.sum_dy.begin());
  std::copy(packed.begin() + channels, packed.end(), sums.sum_dy_xhat.begin());
  return global_count_;
}

std::shared_ptr<SyncBatchNorm> SyncBatchNorm::from_batchnorm(
    const BatchNormBase& bn, std::shared_ptr<dist::ProcessGroup> group) {
  auto sync = std::shared_ptr<SyncBatchNorm>(
      new SyncBatchNorm(bn.options(), std::move(group), bn.is_lazy()));
  sync->copy_state_from(bn);
  sync->source_variant_ = bn.variant();
  sync->train(bn.is_training());
  return sync;
}

std::shared_ptr<BatchNormBase> SyncBatchNorm::to_batchnorm() const {
  BatchNormVariant variant = source_variant_;
  if (variant == BatchNormVariant::Any && last_input_dim_ > 0)
    variant = last_input_dim_ <= 3   ? BatchNormVariant::OneD
              : last_input_dim_ == 4 ? BatchNormVariant::TwoD
                                     : BatchNormVariant::ThreeD;
  SYNCBN_CHECK(variant != BatchNormVariant::Any, "SyncBatchNorm(", options().num_features(),
               ") cannot be reverted: it was not converted from a BatchNorm and ",
               "has not seen input, so 1d/2d/3d is unknown");
  std::shared_ptr<BatchNormBase> bn = make_batchnorm(variant, options(), is_lazy());
  bn->copy_state_from(*this);
  bn->train(is_training());
  return bn;
}

}  // namespace syncbn::nn
