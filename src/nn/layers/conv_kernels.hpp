#pragma once
// The arithmetic behind one Conv1d/2d/3d layer (internal). CMake compiles exactly one
// implementation of make_conv_kernels: conv_onednn.cpp (oneDNN, when found; SYNCBN_WITH_ONEDNN)
// or conv_im2col.cpp (im2col + OpenBLAS sgemm). ConvNd itself (conv.cpp) validates options and
// shapes and owns the parameters; the kernels own whatever they keep between forward and
// backward, and see the layer only through the rank-free ConvSpec.
//
// Contracts, for a kernels object made for one layer's spec:
//   forward: x [N, C, *S] contiguous with N >= 1 and numel > 0, w [O, C/G, *k], b [O] or null;
//     y already has the output shape [N, O, *OS] and is completely overwritten. Keeps what
//     backward needs.
//   backward: dy of y's shape from the last forward; writes all of dx (the last forward's input
//     shape) and ADDS into dw [O, C/G, *k] and db [O] (db null when there is no bias).
//     w is the weight the last forward used.
// One object is used by one thread at a time; different objects may run on different threads.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "syncbn/tensor.hpp"

namespace syncbn::nn::detail {

// A convolution's options with the spatial rank as data (1, 2 or 3 entries per vector).
struct ConvSpec {
  std::int64_t in_channels, out_channels, groups;
  std::vector<std::int64_t> kernel, stride, padding, dilation;
  bool bias;
  std::size_t rank() const { return kernel.size(); }
};

class ConvKernels {
 public:
  virtual ~ConvKernels() = default;
  virtual void forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) = 0;
  virtual void backward(const Tensor& dy, const Tensor& w, float* dw, float* db, Tensor& dx) = 0;
};

std::unique_ptr<ConvKernels> make_conv_kernels(const ConvSpec& spec);

// db[o] += sum over n and the spatial positions of dy[n, o]: the bias gradient, for callers
// without a kernel that computes it (an empty input; the im2col kernels). dy is [N, O, *S].
void add_channel_sums(const Tensor& dy, float* db);

// "oneDNN <version>" or "im2col+OpenBLAS", for logs and benchmark reports.
std::string conv_kernels_name();

}  // namespace syncbn::nn::detail
