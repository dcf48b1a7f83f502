#include "im2col.hpp"

#include <algorithm>

namespace syncbn::nn::detail {
namespace {
// Output positions [lo, hi) whose input index o*stride - pad + offset lies inside [0, in).
struct Range {
  std::int64_t lo, hi;
};

Range valid(std::int64_t out, std::int64_t stride, std::int64_t pad, std::int64_t offset,
            std::int64_t in) {
  const std::int64_t first = pad - offset;  // smallest o*stride that is in range
  const std::int64_t last = in - 1 + pad - offset;
  if (last < 0) return {0, 0};
  const std::int64_t lo = first > 0 ? (first + stride - 1) / stride : 0;
  const std::int64_t hi = std::min(out, last / stride + 1);
  return {std::min(lo, hi), hi};
}

void zero(float* p, std::int64_t n) {
  std::fill_n(p, std::max<std::int64_t>(n, 0), 0.f);
}

// One output row of one kernel tap: d[j] = in_row[j*sw + offset] inside `cols`, zero outside.
// (The offset stays an index: in_row + offset may point before the row.) Rows are a few dozen
// floats: vectorised loops rather than a libc call per row.
void unfold_row(const float* in_row, std::int64_t offset, std::int64_t sw, Range cols,
                std::int64_t ow, float* d) {
  for (std::int64_t j = 0; j < cols.lo; ++j) d[j] = 0.f;
  if (sw == 1) {
    const float* s = in_row + cols.lo + offset;
    float* t = d + cols.lo;
#pragma omp simd
    for (std::int64_t j = 0; j < cols.hi - cols.lo; ++j) t[j] = s[j];
  } else {
    for (std::int64_t j = cols.lo; j < cols.hi; ++j) d[j] = in_row[j * sw + offset];
  }
  for (std::int64_t j = cols.hi; j < ow; ++j) d[j] = 0.f;
}

// dst[j*sw + offset] += src[j] for j in `cols`.
void fold_row(const float* src, std::int64_t offset, std::int64_t sw, Range cols, float* dst) {
  if (sw == 1) {
    float* d = dst + cols.lo + offset;  // contiguous: let the compiler vectorise it
    const float* s = src + cols.lo;
#pragma omp simd
    for (std::int64_t j = 0; j < cols.hi - cols.lo; ++j) d[j] += s[j];
  } else {
    for (std::int64_t j = cols.lo; j < cols.hi; ++j) dst[j * sw + offset] += src[j];
  }
}

// The valid output ranges of one kernel tap (t, u, v) in depth, rows and columns.
struct Tap {
  Range depth, rows, cols;
  std::int64_t t, u, v;  // the tap's input offsets, dilation applied
};

Tap tap(const ConvGeometry& g, std::int64_t t, std::int64_t u, std::int64_t v) {
  const std::int64_t ot = t * g.dd, ou = u * g.dh, ov = v * g.dw;
  return {valid(g.od, g.sd, g.pd, ot, g.d),
          valid(g.oh, g.sh, g.ph, ou, g.h),
          valid(g.ow, g.sw, g.pw, ov, g.w),
          ot,
          ou,
          ov};
}

// Calls fn(tap, row index) for every kernel tap of every channel, in row order of cols.
template <typename Fn>
void for_each_tap(const ConvGeometry& g, Fn&& fn) {
  std::int64_t row = 0;
  for (std::int64_t c = 0; c < g.c; ++c)
    for (std::int64_t t = 0; t < g.kd; ++t)
      for (std::int64_t u = 0; u < g.kh; ++u)
        for (std::int64_t v = 0; v < g.kw; ++v) fn(c, tap(g, t, u, v), row++);
}

// One image's part of one cols row: the (OH, OW) slab of output depth a, zero-padded.
void unfold_slab(const float* volume, const ConvGeometry& g, const Tap& p, std::int64_t a,
                 float* dst) {
  if (a < p.depth.lo || a >= p.depth.hi) return zero(dst, g.oh * g.ow);
  const float* plane = volume + (a * g.sd - g.pd + p.t) * g.h * g.w;
  zero(dst, p.rows.lo * g.ow);
  for (std::int64_t i = p.rows.lo; i < p.rows.hi; ++i)
    unfold_row(plane + (i * g.sh - g.ph + p.u) * g.w, p.v - g.pw, g.sw, p.cols, g.ow,
               dst + i * g.ow);
  zero(dst + p.rows.hi * g.ow, (g.oh - p.rows.hi) * g.ow);
}
}  // namespace

void im2col(const float* x, const ConvGeometry& g, std::int64_t images, float* cols) {
  const std::int64_t L = g.l(), ld = images * L, slab = g.oh * g.ow;
  for_each_tap(g, [&](std::int64_t c, const Tap& p, std::int64_t row) {
    for (std::int64_t b = 0; b < images; ++b) {
      const float* volume = x + b * g.image() + c * g.d * g.h * g.w;
      for (std::int64_t a = 0; a < g.od; ++a)
        unfold_slab(volume, g, p, a, cols + row * ld + b * L + a * slab);
    }
  });
}

void col2im_add(const float* cols, const ConvGeometry& g, std::int64_t images, float* dx) {
  const std::int64_t L = g.l(), ld = images * L, slab = g.oh * g.ow;
  for_each_tap(g, [&](std::int64_t c, const Tap& p, std::int64_t row) {
    for (std::int64_t b = 0; b < images; ++b) {
      float* volume = dx + b * g.image() + c * g.d * g.h * g.w;
      for (std::int64_t a = p.depth.lo; a < p.depth.hi; ++a) {
        float* plane = volume + (a * g.sd - g.pd + p.t) * g.h * g.w;
        const float* src = cols + row * ld + b * L + a * slab;
        for (std::int64_t i = p.rows.lo; i < p.rows.hi; ++i)
          fold_row(src + i * g.ow, p.v - g.pw, g.sw, p.cols, plane + (i * g.sh - g.ph + p.u) * g.w);
      }
    }
  });
}

}  // namespace syncbn::nn::detail
