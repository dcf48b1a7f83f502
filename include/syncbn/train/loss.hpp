#pragma once
// CrossEntropyLoss (torch.nn.CrossEntropyLoss, class-index targets, mean reduction) and
// classification metrics.
//
// For logits z [N, K] and labels y, with log-softmax computed stably through log-sum-exp
// (lse = m + log sum_k exp(z_k - m), m = max_k z_k) and smoothed targets
//   q_k = (1 - eps) * [k == y] + eps / K            (eps = label_smoothing, PyTorch's definition)
//   loss = 1/N sum_n sum_k -q_nk * (z_nk - lse_n)
//   dloss/dz_nk = (softmax(z_n)_k - q_nk) / N
// Not a Module: forward takes labels. Contract: backward() uses the last forward; it returns
// grad_loss * dloss/dz (grad_loss = 1 for a plain loss.backward()). An empty batch (N = 0) gives
// loss 0 and an empty gradient rather than PyTorch's NaN, so a data-parallel rank with an empty
// shard contributes nothing. Throws ShapeError for logits that are not [N, K >= 1] or a label
// count other than N, ValueError for a label outside [0, K) (naming it and its index); the
// metrics check the same.
#include <cstdint>
#include <vector>

#include "syncbn/options.hpp"
#include "syncbn/tensor.hpp"

namespace syncbn::train {

struct CrossEntropyLossOptions {
  // In [0, 1]; the CrossEntropyLoss constructor throws ValueError otherwise.
  SYNCBN_ARG(double, label_smoothing) = 0.0;
};

class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(CrossEntropyLossOptions options = CrossEntropyLossOptions());
  const CrossEntropyLossOptions& options() const { return options_; }

  // Mean loss over the batch; keeps the softmax and the labels for backward.
  double forward(const Tensor& logits, const std::vector<std::int64_t>& labels);
  // Gradient with respect to the logits of the last forward, [N, K].
  Tensor backward(double grad_loss = 1.0) const;

 private:
  CrossEntropyLossOptions options_;
  Tensor saved_softmax_;
  std::vector<std::int64_t> saved_labels_;
};

// Row-wise index of the largest logit (the first one on ties), for [N, K] logits.
std::vector<std::int64_t> argmax(const Tensor& logits);
// How many rows have argmax == label; sum this across ranks for a global accuracy.
std::int64_t count_correct(const Tensor& logits, const std::vector<std::int64_t>& labels);
// count_correct / N (0 for an empty batch).
double accuracy(const Tensor& logits, const std::vector<std::int64_t>& labels);

}  // namespace syncbn::train
