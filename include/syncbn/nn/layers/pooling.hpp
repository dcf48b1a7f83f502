#pragma once
// Pooling over D = 1, 2 or 3 spatial dimensions, as torch.nn's MaxPool{1,2,3}d,
// AvgPool{1,2,3}d and AdaptiveAvgPool{1,2,3}d. Input (C, *S) or (N, C, *S), S the D spatial
// sizes; every (n, c) plane is pooled on its own, float32.
//
// Window geometry (MaxPool, AvgPool), per spatial dimension, kernel k, stride s (default k),
// padding p, dilation d (MaxPool only; 1 for AvgPool):
//   out = floor((in + 2p - d*(k-1) - 1 + (ceil_mode ? s - 1 : 0)) / s) + 1,
//   minus one in ceil_mode when the last window would start inside the right padding
//   ((out-1)*s >= in + p; PyTorch's rule). Window i reads positions i*s - p + u*d, u < k.
//   Padding above half the kernel is a ValueError, as in PyTorch.
//
// MaxPool: y = max over the window's positions inside the input (padding is -inf); backward
//   routes dy to the arg-max (the first one on ties, NaN wins), summed where windows overlap.
// AvgPool: y = sum over the window's positions inside the input / divisor, where the divisor
//   is the number of positions inside the input when count_include_pad=false, else the window
//   clipped to the padded input [-p, in + p) (so a ceil_mode window hanging past the padding
//   counts only its part inside it). Backward spreads dy/divisor over the same positions.
// AdaptiveAvgPool: output size fixed; window i covers [floor(i*in/out), ceil((i+1)*in/out)),
//   y = mean over it; backward spreads dy/volume over the window. Output 1 is global pooling.
//
// Contract: forward saves what backward needs (arg-max indices, input shape); backward needs the
// preceding forward. Errors name the layer (its repr) and the shapes: ValueError from the
// constructors for a non-positive kernel, stride, dilation or output size or a bad padding;
// ShapeError for an input of another rank, an empty plane where one is needed, an output smaller
// than 1 or a grad_output of the wrong shape.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "syncbn/nn/layers/size.hpp"
#include "syncbn/nn/module.hpp"
#include "syncbn/options.hpp"

namespace syncbn::nn {

template <std::size_t D>
struct MaxPoolOptions {
  // stride defaults to kernel_size, as in PyTorch.
  MaxPoolOptions(SizeN<D> kernel_size)  // NOLINT: implicit, MaxPool2d(3)
      : kernel_size_(kernel_size), stride_(kernel_size) {}
  SYNCBN_ARG(SizeN<D>, kernel_size);
  SYNCBN_ARG(SizeN<D>, stride);
  SYNCBN_ARG(SizeN<D>, padding) = 0;
  SYNCBN_ARG(SizeN<D>, dilation) = 1;
  SYNCBN_ARG(bool, ceil_mode) = false;
};
using MaxPool1dOptions = MaxPoolOptions<1>;
using MaxPool2dOptions = MaxPoolOptions<2>;
using MaxPool3dOptions = MaxPoolOptions<3>;

template <std::size_t D>
class MaxPoolNd : public Module {
 public:
  // Throws ValueError for a non-positive kernel, stride or dilation, or padding outside
  // [0, kernel/2].
  explicit MaxPoolNd(MaxPoolOptions<D> options);
  const MaxPoolOptions<D>& options() const { return options_; }

  // "MaxPool1d", "MaxPool2d", "MaxPool3d"
  std::string type_name() const override;
  // As PyTorch, sizes as given: "kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False"
  std::string extra_repr() const override;
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;
  Shape output_shape(const Shape& input_shape) const;

 private:
  MaxPoolOptions<D> options_;
  Shape saved_input_shape_;
  std::vector<std::int32_t> saved_argmax_;  // per output element, index inside its plane
};
using MaxPool1d = MaxPoolNd<1>;
using MaxPool2d = MaxPoolNd<2>;
using MaxPool3d = MaxPoolNd<3>;

template <std::size_t D>
struct AvgPoolOptions {
  // stride defaults to kernel_size, as in PyTorch.
  AvgPoolOptions(SizeN<D> kernel_size)  // NOLINT: implicit, AvgPool2d(3)
      : kernel_size_(kernel_size), stride_(kernel_size) {}
  SYNCBN_ARG(SizeN<D>, kernel_size);
  SYNCBN_ARG(SizeN<D>, stride);
  SYNCBN_ARG(SizeN<D>, padding) = 0;
  SYNCBN_ARG(bool, ceil_mode) = false;
  SYNCBN_ARG(bool, count_include_pad) = true;
};
using AvgPool1dOptions = AvgPoolOptions<1>;
using AvgPool2dOptions = AvgPoolOptions<2>;
using AvgPool3dOptions = AvgPoolOptions<3>;

template <std::size_t D>
class AvgPoolNd : public Module {
 public:
  // Throws ValueError for a non-positive kernel or stride, or padding outside [0, kernel/2].
  explicit AvgPoolNd(AvgPoolOptions<D> options);
  const AvgPoolOptions<D>& options() const { return options_; }

  // "AvgPool1d", "AvgPool2d", "AvgPool3d"
  std::string type_name() const override;
  // As PyTorch: "kernel_size=3, stride=3, padding=0" (AvgPool1d: tuples, "kernel_size=(3,)");
  // ceil_mode and count_include_pad are not printed (PyTorch does not print them either).
  std::string extra_repr() const override;
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;
  Shape output_shape(const Shape& input_shape) const;

 private:
  AvgPoolOptions<D> options_;
  Shape saved_input_shape_;
};
using AvgPool1d = AvgPoolNd<1>;
using AvgPool2d = AvgPoolNd<2>;
using AvgPool3d = AvgPoolNd<3>;

template <std::size_t D>
class AdaptiveAvgPoolNd : public Module {
 public:
  // Throws ValueError unless every output size is positive.
  explicit AdaptiveAvgPoolNd(SizeN<D> output_size);
  SizeN<D> output_size() const { return output_size_; }

  // "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"
  std::string type_name() const override;
  // As PyTorch, the size as given: "output_size=1" or "output_size=(1, 1)"
  std::string extra_repr() const override;
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;
  Shape output_shape(const Shape& input_shape) const;

 private:
  SizeN<D> output_size_;
  Shape saved_input_shape_;
};
using AdaptiveAvgPool1d = AdaptiveAvgPoolNd<1>;
using AdaptiveAvgPool2d = AdaptiveAvgPoolNd<2>;
using AdaptiveAvgPool3d = AdaptiveAvgPoolNd<3>;

extern template class MaxPoolNd<1>;
extern template class MaxPoolNd<2>;
extern template class MaxPoolNd<3>;
extern template class AvgPoolNd<1>;
extern template class AvgPoolNd<2>;
extern template class AvgPoolNd<3>;
extern template class AdaptiveAvgPoolNd<1>;
extern template class AdaptiveAvgPoolNd<2>;
extern template class AdaptiveAvgPoolNd<3>;

}  // namespace syncbn::nn
