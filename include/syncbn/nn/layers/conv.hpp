#pragma once
// Conv1d, Conv2d, Conv3d (torch.nn.Conv1d/2d/3d, padding_mode "zeros"): one implementation over
// the spatial rank D, float32, channels first: input [N, C, *S] with S the D spatial sizes
// (L; H, W; or D, H, W). Only the batched form is accepted (N may be 0).
//
// With kernel k, stride s, padding p, dilation d (one each per spatial dimension) and G groups:
//   out_size = floor((in_size + 2p - d*(k-1) - 1) / s) + 1          per spatial dimension
//   weight [O, C/G, *k], bias [O] (absent when bias=false); output channel o reads the input
//   channels of its group g = o / (O/G), i.e. c in [g*C/G, (g+1)*C/G):
//   y[n, o, i] = b[o] + sum_{c in group, u} w[o, c - g*C/G, u] * x[n, c, i*s - p + u*d]
// for every output position i and kernel position u (vectors over the D dims); x is zero
// outside the input. Backward: dx[n, c, j] = sum of dy * w over the windows that read
// x[n, c, j]; dW += sum_{n, i} dy * x-window; db += sum_{n, i} dy.
//
// Two implementations, chosen when syncbn is configured (SYNCBN_WITH_ONEDNN; backend() says
// which): oneDNN's direct JIT convolutions on its blocked layout (Debian's libdnnl 2.6), else
// N-d im2col (with dilation, one GEMM per group) + OpenBLAS sgemm. oneDNN is the default because
// it was several times faster on the model zoo's convolutions (bench/README.md). The primitives
// are built once per input shape and reused every step (see conv_onednn.cpp). Compute threads
// follow syncbn::set_num_threads (both backends).
//
// Parameters: weight, bias, named as PyTorch's; initialised as PyTorch's reset_parameters
// (kaiming_uniform_(a=sqrt(5)) with fan_in = C/G * prod(k)). Contract: forward keeps a copy of
// its input (or the kernel's layout of it) for backward; backward accumulates into weight.grad /
// bias.grad and needs the preceding forward. Errors name the layer (its repr) and the shapes:
// ValueError from the constructor for non-positive channels, kernel, stride, dilation or groups,
// negative padding, or channels not divisible by groups; ShapeError from forward/output_shape
// for an input that is not (D+2)-dimensional, has the wrong channel count or is smaller than the
// dilated kernel after padding, and from backward for a grad_output of the wrong shape.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "syncbn/nn/layers/init.hpp"
#include "syncbn/nn/layers/size.hpp"
#include "syncbn/nn/module.hpp"
#include "syncbn/options.hpp"

namespace syncbn::nn {
namespace detail {
class ConvKernels;
}  // namespace detail

// Options of a D-dimensional convolution: ConvOptions<2>(in, out, 3).stride(2).padding(1).
template <std::size_t D>
struct ConvOptions {
  ConvOptions(std::int64_t in_channels, std::int64_t out_channels, SizeN<D> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  SYNCBN_ARG(std::int64_t, in_channels);
  SYNCBN_ARG(std::int64_t, out_channels);
  SYNCBN_ARG(SizeN<D>, kernel_size);
  SYNCBN_ARG(SizeN<D>, stride) = 1;
  SYNCBN_ARG(SizeN<D>, padding) = 0;
  SYNCBN_ARG(SizeN<D>, dilation) = 1;
  SYNCBN_ARG(std::int64_t, groups) = 1;
  SYNCBN_ARG(bool, bias) = true;
};

using Conv1dOptions = ConvOptions<1>;
using Conv2dOptions = ConvOptions<2>;
using Conv3dOptions = ConvOptions<3>;

template <std::size_t D>
class ConvNd : public Module {
 public:
  // Initialises weight and bias as PyTorch's reset_parameters, drawing from `gen`.
  // Throws ValueError for invalid options (see the file comment), naming the layer.
  ConvNd(ConvOptions<D> options, Generator& gen);
  // Same, from a fresh generator seeded with `seed`.
  explicit ConvNd(ConvOptions<D> options, std::uint64_t seed = 0);
  ~ConvNd() override;

  // The implementation compiled in: "oneDNN 2.6.3" or "im2col+OpenBLAS".
  static std::string backend();

  Parameter weight, bias;
  const ConvOptions<D>& options() const { return options_; }

  // "Conv1d", "Conv2d", "Conv3d"
  std::string type_name() const override;
  // As PyTorch: "3, 16, kernel_size=(3, 3), stride=(1, 1)" then ", padding=(1, 1)",
  // ", dilation=(2, 2)", ", groups=2", ", bias=False" each only when not the default.
  std::string extra_repr() const override;
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;

  // Output shape for an input shape [N, C, *S]; throws ShapeError as forward does.
  Shape output_shape(const Shape& input_shape) const;

 private:
  ConvOptions<D> options_;
  std::unique_ptr<detail::ConvKernels> kernels_;  // keeps the input for backward
  Shape saved_input_shape_;
  bool has_saved_ = false;
};

using Conv1d = ConvNd<1>;
using Conv2d = ConvNd<2>;
using Conv3d = ConvNd<3>;

extern template class ConvNd<1>;
extern template class ConvNd<2>;
extern template class ConvNd<3>;

// torchvision ResNet's conv init: kaiming_normal_(mode=fan_out, nonlinearity=relu) on the
// weight of every Conv1d/2d/3d in the tree (biases untouched), in modules() order. (torchvision
// itself only has Conv2d; the other ranks get the same rule.)
void kaiming_normal_conv_weights_(Module& root, Generator& gen);

}  // namespace syncbn::nn
