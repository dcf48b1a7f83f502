#pragma once
// GroupNorm (torch.nn.GroupNorm): statistics per sample and per group of C/G channels, so the
// result does not depend on the batch, the usual alternative to BatchNorm for tiny batches.
//   y = (x - mean_ng) / sqrt(var_ng + eps) * weight_c + bias_c   (biased var, same in train/eval)
// Backward per (n, g) with m values, xhat = (x - mean) * invstd, g = dy * weight:
//   dx = invstd/m * (m*g - sum(g) - xhat*sum(g*xhat)); dweight = sum_n,s(dy*xhat); dbias = sum(dy).
#include <cstdint>
#include <string>
#include <vector>

#include "syncbn/nn/module.hpp"
#include "syncbn/options.hpp"

namespace syncbn::nn {

struct GroupNormOptions {
  GroupNormOptions(std::int64_t num_groups, std::int64_t num_channels)
      : num_groups_(num_groups), num_channels_(num_channels) {}
  SYNCBN_ARG(std::int64_t, num_groups);
  SYNCBN_ARG(std::int64_t, num_channels);
  SYNCBN_ARG(double, eps) = 1e-5;
  SYNCBN_ARG(bool, affine) = true;
};

class GroupNorm : public Module {
 public:
  // Throws ValueError unless num_channels is a positive multiple of num_groups.
  explicit GroupNorm(GroupNormOptions options);
  GroupNorm(std::int64_t num_groups, std::int64_t num_channels)
      : GroupNorm(GroupNormOptions(num_groups, num_channels)) {}

  Parameter weight, bias;  // absent when affine=false
  const GroupNormOptions& options() const { return options_; }

  std::string type_name() const override { return "GroupNorm"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;

 private:
  GroupNormOptions options_;
  Tensor saved_input_;
  std::vector<double> saved_mean_, saved_invstd_;  // per (n, g)
};

}  // namespace syncbn::nn
