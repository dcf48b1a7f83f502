#pragma once
// 2-D pooling over (C, H, W) or (N, C, H, W) input; every (n, c) plane is pooled on its own.
//
// MaxPool2d (torch.nn.MaxPool2d, dilation 1): with implicit -inf padding p,
//   OH = floor((H + 2p - k + (ceil_mode ? s - 1 : 0)) / s) + 1, minus one in ceil_mode when the
//   last window would start inside the right padding (PyTorch's rule); OW likewise.
//   y[i, j] = max over the window; backward routes dy to the arg-max (the first one on ties,
//   NaN wins), so dx is dy scattered, summed where windows overlap.
//   Padding above half the kernel is a ValueError, as in PyTorch.
//
// AdaptiveAvgPool2d (torch.nn.AdaptiveAvgPool2d): output (OH, OW) fixed; window i covers rows
//   [floor(i*H/OH), ceil((i+1)*H/OH)) (and columns likewise), y = mean over it, and backward
//   spreads dy/area over the window. Output 1x1 is global average pooling.
//
// Contract: forward saves what backward needs (arg-max indices, input shape); errors name the
// layer and the shapes (ShapeError for input rank or an output smaller than 1x1).
#include <cstdint>
#include <string>
#include <vector>

#include "syncbn/nn/layers/size2.hpp"
#include "syncbn/nn/module.hpp"
#include "syncbn/options.hpp"

namespace syncbn::nn {

struct MaxPool2dOptions {
  // stride defaults to kernel_size, as in PyTorch.
  MaxPool2dOptions(Size2 kernel_size)
      : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT
  SYNCBN_ARG(Size2, kernel_size);
  SYNCBN_ARG(Size2, stride);
  SYNCBN_ARG(Size2, padding) = 0;
  SYNCBN_ARG(bool, ceil_mode) = false;
};

class MaxPool2d : public Module {
 public:
  // Throws ValueError for a non-positive kernel or stride, or padding outside [0, kernel/2].
  explicit MaxPool2d(MaxPool2dOptions options);
  const MaxPool2dOptions& options() const { return options_; }

  std::string type_name() const override { return "MaxPool2d"; }
  // "kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=False"
  std::string extra_repr() const override;
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;
  Shape output_shape(const Shape& input_shape) const;

 private:
  MaxPool2dOptions options_;
  Shape saved_input_shape_;
  std::vector<std::int32_t> saved_argmax_;  // per output element, index inside its plane
};

class AdaptiveAvgPool2d : public Module {
 public:
  // Throws ValueError unless both output sizes are positive.
  explicit AdaptiveAvgPool2d(Size2 output_size);
  Size2 output_size() const { return output_size_; }

  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  // "output_size=(1, 1)"
  std::string extra_repr() const override;
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;
  Shape output_shape(const Shape& input_shape) const;

 private:
  Size2 output_size_;
  Shape saved_input_shape_;
};

}  // namespace syncbn::nn
