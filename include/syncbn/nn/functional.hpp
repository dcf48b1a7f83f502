#pragma once
// Batch-norm building blocks over an (N, C, *) float32 input, shared by BatchNorm and
// SyncBatchNorm. Per-channel reductions accumulate in double, one pass each; element-wise passes
// are fused (normalise + affine in one pass; the input gradient in one pass). Inputs must be
// contiguous float32 with dim() >= 2; channel vectors have C entries.
//
// With n values per channel, mean = E[x], var = E[(x - mean)^2] (biased), invstd = 1/sqrt(var+eps):
//   forward:   y  = (x - mean) * invstd * weight + bias
//   backward:  dx = weight * invstd / n * (n*dy - sum(dy) - xhat * sum(dy*xhat)),  xhat =
//   (x-mean)*invstd
//              dweight = sum(dy*xhat), dbias = sum(dy)
//   eval:      dx = dy * weight * invstd_running
#include <cstdint>
#include <vector>

#include "syncbn/tensor.hpp"

namespace syncbn::nn::functional {

// Count, mean and M2 (sum of squared deviations from the mean) per channel: the mergeable form
// of the statistics (Chan et al.), accurate even when |mean| >> std.
struct ChannelMoments {
  std::int64_t count = 0;  // values per channel: N * prod(spatial)
  std::vector<double> mean;
  std::vector<double> m2;
};
ChannelMoments channel_moments(const Tensor& input);

// Merges b into a (Chan's parallel formula); the result is the moments of the union.
void merge_moments(std::int64_t& count_a, double& mean_a, double& m2_a, std::int64_t count_b,
                   double mean_b, double m2_b);

// Biased variance M2 / count per channel (zeros for an empty batch).
std::vector<double> biased_var(const ChannelMoments& moments);

// A float32 per-channel vector (running_mean, running_var) widened to double.
std::vector<double> to_doubles(const Tensor& channel_vector);

// 1 / sqrt(var + eps) per channel.
std::vector<double> invstd_from_var(const std::vector<double>& var, double eps);

// y = (x - mean) * invstd * weight + bias. Undefined weight/bias mean 1 and 0.
Tensor normalize(const Tensor& input, const std::vector<double>& mean,
                 const std::vector<double>& invstd, const Tensor& weight, const Tensor& bias);

// sum(dy) and sum(dy * xhat) per channel, in one pass over dy and x.
struct GradSums {
  std::vector<double> sum_dy;
  std::vector<double> sum_dy_xhat;
};
GradSums grad_sums(const Tensor& grad_output, const Tensor& input, const std::vector<double>& mean,
                   const std::vector<double>& invstd);

// Train-mode input gradient given the (possibly globally reduced) sums and count.
Tensor grad_input_train(const Tensor& grad_output, const Tensor& input,
                        const std::vector<double>& mean, const std::vector<double>& invstd,
                        const Tensor& weight, const GradSums& sums, std::int64_t count);

// Eval-mode input gradient: dy * weight * invstd.
Tensor grad_input_eval(const Tensor& grad_output, const std::vector<double>& invstd,
                       const Tensor& weight);

// Running-statistics update: r_mean = (1-f)*r_mean + f*mean, r_var = (1-f)*r_var + f*var*n/(n-1).
void update_running_stats(Tensor& running_mean, Tensor& running_var, const ChannelMoments& m,
                          double factor);

// torch.nn.functional.batch_norm. Training: batch statistics, and running stats (when defined)
// updated with `momentum` as the factor. Eval: running stats. Throws ValueError when training
// with one value per channel.
Tensor batch_norm(const Tensor& input, Tensor& running_mean, Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps);

// Throws PyTorch's "Expected more than 1 value per channel when training, got input size ..."
void check_more_than_one_value(const Tensor& input, std::int64_t count);

}  // namespace syncbn::nn::functional
