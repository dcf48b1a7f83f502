#pragma once
// Linear (torch.nn.Linear): y = x W^T + b on the last dimension.
//   x [*, in], W [out, in], b [out]  ->  y [*, out]
// Backward, with the leading dims flattened into M rows:
//   dx = dy W,  dW += dy^T x,  db += sum_rows(dy)
// All three are single OpenBLAS sgemm calls (see syncbn/threads.hpp).
// Contract: forward saves a copy of its input; backward accumulates into weight.grad and
// bias.grad. Throws ShapeError naming the layer and the shapes when the last dimension of the
// input is not in_features (or the input is 0-D).
#include <cstdint>
#include <string>

#include "syncbn/nn/layers/init.hpp"
#include "syncbn/nn/module.hpp"
#include "syncbn/options.hpp"

namespace syncbn::nn {

struct LinearOptions {
  LinearOptions(std::int64_t in_features, std::int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  SYNCBN_ARG(std::int64_t, in_features);
  SYNCBN_ARG(std::int64_t, out_features);
  SYNCBN_ARG(bool, bias) = true;
};

class Linear : public Module {
 public:
  // PyTorch's reset_parameters from `gen`: weight kaiming_uniform_(a=sqrt(5)), bias
  // U(-1/sqrt(in), 1/sqrt(in)). Throws ValueError for non-positive feature counts.
  Linear(LinearOptions options, Generator& gen);
  explicit Linear(LinearOptions options, std::uint64_t seed = 0);

  Parameter weight, bias;  // bias absent when bias=false
  const LinearOptions& options() const { return options_; }

  std::string type_name() const override { return "Linear"; }
  // "in_features=512, out_features=10, bias=True"
  std::string extra_repr() const override;
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;

 private:
  void check_input(const Tensor& input) const;
  LinearOptions options_;
  Tensor saved_input_;
};

}  // namespace syncbn::nn
