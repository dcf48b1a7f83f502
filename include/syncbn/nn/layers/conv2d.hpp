#pragma once
// Conv2d (torch.nn.Conv2d, groups = 1, dilation = 1), NCHW float32.
//
// Input x [N, C, H, W], weight w [O, C, kh, kw], optional bias b [O]:
//   OH = (H + 2*ph - kh) / sh + 1,  OW = (W + 2*pw - kw) / sw + 1   (floor division)
//   y[n, o, i, j] = b[o] + sum_{c,u,v} w[o, c, u, v] * x[n, c, i*sh - ph + u, j*sw - pw + v]
// (x is zero outside the image). Backward: dx[n, c, h, w] = sum dy * w over the windows that
// read x[n, c, h, w]; dW += sum_{n,i,j} dy * x-window; db += sum_{n,i,j} dy.
//
// Two implementations, chosen when syncbn is configured (SYNCBN_WITH_ONEDNN; backend() says
// which): oneDNN's direct JIT convolutions on its blocked layout (Debian's libdnnl 2.6), else
// im2col + OpenBLAS sgemm. oneDNN is the default because it was several times faster on the
// model zoo's convolutions; the measurements and how to repeat them are in bench/README.md.
// The blocked copy of the input that forward makes for the kernel is also the copy backward
// needs, so it replaces the saved input instead of adding a pass.
//
// The primitives are built once per input shape (the last, smaller batch of an epoch and eval
// batches get their own, kept beside the training shape) and reused every step. Compute threads
// follow syncbn::set_num_threads (both backends).
//
// Parameters: weight, bias (absent when bias=false), named as PyTorch's. Contract: forward keeps
// a copy of its input (or the kernel's layout of it) for backward; backward accumulates into
// weight.grad / bias.grad. Throws ShapeError naming the layer and the shapes for a non-4D input,
// a channel mismatch or an output smaller than 1x1.
#include <cstdint>
#include <memory>
#include <string>

#include "syncbn/nn/layers/init.hpp"
#include "syncbn/nn/layers/size2.hpp"
#include "syncbn/nn/module.hpp"
#include "syncbn/options.hpp"

namespace syncbn::nn {
namespace detail {
class ConvKernels;
}  // namespace detail

struct Conv2dOptions {
  Conv2dOptions(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  SYNCBN_ARG(std::int64_t, in_channels);
  SYNCBN_ARG(std::int64_t, out_channels);
  SYNCBN_ARG(Size2, kernel_size);
  SYNCBN_ARG(Size2, stride) = 1;
  SYNCBN_ARG(Size2, padding) = 0;
  SYNCBN_ARG(bool, bias) = true;
};

class Conv2d : public Module {
 public:
  // Initialises weight and bias as PyTorch's reset_parameters, drawing from `gen`.
  // Throws ValueError for non-positive channels, kernel or stride, or negative padding.
  Conv2d(Conv2dOptions options, Generator& gen);
  // Same, from a fresh generator seeded with `seed`.
  explicit Conv2d(Conv2dOptions options, std::uint64_t seed = 0);
  ~Conv2d() override;

  // The implementation compiled in: "oneDNN 2.6.3" or "im2col+OpenBLAS".
  static std::string backend();

  Parameter weight, bias;
  const Conv2dOptions& options() const { return options_; }

  std::string type_name() const override { return "Conv2d"; }
  // "3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False"
  std::string extra_repr() const override;
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;

  // Output shape for an input shape; throws ShapeError as forward does.
  Shape output_shape(const Shape& input_shape) const;

 private:
  Conv2dOptions options_;
  std::unique_ptr<detail::ConvKernels> kernels_;  // keeps the input for backward
  Shape saved_input_shape_;
  bool has_saved_ = false;
};

// torchvision ResNet's conv init: kaiming_normal_(mode=fan_out, nonlinearity=relu) on the
// weight of every Conv2d in the tree (biases untouched), in named_parameters order.
void kaiming_normal_conv_weights_(Module& root, Generator& gen);

}  // namespace syncbn::nn
