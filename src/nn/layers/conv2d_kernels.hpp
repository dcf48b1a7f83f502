#pragma once
// The arithmetic behind one Conv2d layer (internal). CMake compiles exactly one implementation
// of make_conv_kernels: conv2d_onednn.cpp (oneDNN, when found; SYNCBN_WITH_ONEDNN) or
// conv2d_im2col.cpp (im2col + OpenBLAS sgemm). Conv2d itself (conv2d.cpp) validates shapes and
// owns the parameters; the kernels own whatever they keep between forward and backward.
//
// Contracts, for a kernels object made for one layer's options:
//   forward: x [N, C, H, W] NCHW with N >= 1, w [O, C, kh, kw], b [O] or null; y already has the
//     output shape [N, O, OH, OW] and is completely overwritten. Keeps what backward needs.
//   backward: dy of y's shape from the last forward; writes all of dx (the last forward's input
//     shape, NCHW) and ADDS into dw [O, C, kh, kw] and db [O] (db null when there is no bias).
//     w is the weight the last forward used.
// One object is used by one thread at a time; different objects may run on different threads.
#include <memory>
#include <string>

#include "syncbn/nn/layers/conv2d.hpp"
#include "syncbn/tensor.hpp"

namespace syncbn::nn::detail {

class ConvKernels {
 public:
  virtual ~ConvKernels() = default;
  virtual void forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) = 0;
  virtual void backward(const Tensor& dy, const Tensor& w, float* dw, float* db, Tensor& dx) = 0;
};

std::unique_ptr<ConvKernels> make_conv_kernels(const Conv2dOptions& options);

// db[o] += sum over n and the plane of dy[n, o]: the bias gradient, for callers without a
// kernel that computes it (an empty input; the im2col kernels). dy is [N, O, OH, OW].
void add_channel_sums(const Tensor& dy, float* db);

// "oneDNN <version>" or "im2col+OpenBLAS", for logs and benchmark reports.
std::string conv_kernels_name();

}  // namespace syncbn::nn::detail
