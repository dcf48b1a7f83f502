#pragma once
// Unfolding input patches into GEMM columns and folding them back (internal to the im2col
// convolution). Every rank is handled as 3-D: Conv1d as (1, 1, L), Conv2d as (1, H, W), so the
// depth loops run once and the 2-D path costs what it did before.
// Layout for a run of `images` consecutive images: cols[K = C*kd*kh*kw][images * L],
// L = OD*OH*OW; row (c, t, u, v) holds x[c, a*sd - pd + t*dd, i*sh - ph + u*dh, j*sw - pw + v*dw]
// for image b at column b*L + (a*OH + i)*OW + j (zero outside the input).
#include <cstdint>

namespace syncbn::nn::detail {

struct ConvGeometry {
  std::int64_t c;           // input channels (all groups)
  std::int64_t d, h, w;     // input size
  std::int64_t kd, kh, kw;  // kernel
  std::int64_t sd, sh, sw;  // stride
  std::int64_t pd, ph, pw;  // zero padding
  std::int64_t dd, dh, dw;  // dilation
  std::int64_t od, oh, ow;  // output size
  std::int64_t k() const { return c * kd * kh * kw; }
  std::int64_t l() const { return od * oh * ow; }
  std::int64_t image() const { return c * d * h * w; }
};

// Writes every element of cols (padding positions as zeros), so cols need not be cleared.
void im2col(const float* x, const ConvGeometry& g, std::int64_t images, float* cols);
// dx[images, C, D, H, W] += fold(cols): each column value is added to the pixel it came from.
void col2im_add(const float* cols, const ConvGeometry& g, std::int64_t images, float* dx);

}  // namespace syncbn::nn::detail
