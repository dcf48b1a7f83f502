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
// floats: vectorised loops rather than a libc call per row. Forced inline: with two callers GCC
// made it a call per output row, which cost 30% of im2col at 7x7.
[[gnu::always_inline]] inline void unfold_row(const float* in_row, std::int64_t offset,
                                              std::int64_t sw, Range cols, std::int64_t ow,
                                              float* d) {
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
[[gnu::always_inline]] inline void fold_row(const float* src, std::int64_t offset, std::int64_t sw,
                                            Range cols, float* dst) {
  if (sw == 1) {
    float* d = dst + cols.lo + offset;  // contiguous: let the compiler vectorise it
    const float* s = src + cols.lo;
#pragma omp simd
    for (std::int64_t j = 0; j < cols.hi - cols.lo; ++j) d[j] += s[j];
  } else {
    for (std::int64_t j = cols.lo; j < cols.hi; ++j) dst[j * sw + offset] += src[j];
  }
}

// The valid output ranges of one kernel tap (t, u, v) in depth, rows and columns, and its
// input offsets (dilation applied).
struct Tap {
  Range depth, rows, cols;
  std::int64_t t, u, v;
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

// One cols row (one channel c, one kernel tap p) for every image: per image and output depth
// a, the (OH, OW) slab, zero-padded. The sizes are copied to locals once per row: zero() may
// compile to memset, after which values read through a reference would be reloaded on every
// image row.
void unfold_tap(const float* x, const ConvGeometry& g, std::int64_t c, const Tap& p,
                std::int64_t images, float* row) {
  const std::int64_t oh = g.oh, ow = g.ow, w = g.w, sh = g.sh, sw = g.sw, od = g.od;
  const std::int64_t image = g.image(), plane = g.h * w, L = g.l();
  const Range depth = p.depth, rows = p.rows, cols = p.cols;
  const std::int64_t row0 = p.u - g.ph, offset = p.v - g.pw, depth0 = p.t - g.pd, sd = g.sd;
  for (std::int64_t b = 0; b < images; ++b) {
    const float* volume = x + b * image + c * g.d * plane;
    for (std::int64_t a = 0; a < od; ++a) {
      float* dst = row + b * L + a * oh * ow;
      if (a < depth.lo || a >= depth.hi) {
        zero(dst, oh * ow);
        continue;
      }
      const float* in = volume + (a * sd + depth0) * plane;
      zero(dst, rows.lo * ow);
      for (std::int64_t i = rows.lo; i < rows.hi; ++i)
        unfold_row(in + (i * sh + row0) * w, offset, sw, cols, ow, dst + i * ow);
      zero(dst + rows.hi * ow, (oh - rows.hi) * ow);
    }
  }
}

// The inverse of unfold_tap's slab for the in-range rows of output depth a: adds into the volume.
void fold_slab(const float* src, const ConvGeometry& g, const Tap& p, std::int64_t a,
               float* volume) {
  float* plane = volume + (a * g.sd - g.pd + p.t) * g.h * g.w;
  const std::int64_t offset = p.v - g.pw;
  for (std::int64_t i = p.rows.lo; i < p.rows.hi; ++i)
    fold_row(src + i * g.ow, offset, g.sw, p.cols, plane + (i * g.sh - g.ph + p.u) * g.w);
}

// Conv1d/Conv2d (one output depth, no depth taps): the 2-D loops as they were before the
// 3-D generalisation, dilation added. Kept separate because Conv2d is the training hot path:
// the general loops (unfold_tap) measured 20-30% slower on 7x7 and 14x14 planes.
void im2col_planar(const float* x, const ConvGeometry& g, std::int64_t images, float* cols) {
  const std::int64_t L = g.l(), ld = images * L;
  for (std::int64_t c = 0; c < g.c; ++c)
    for (std::int64_t u = 0; u < g.kh; ++u)
      for (std::int64_t v = 0; v < g.kw; ++v) {
        float* row = cols + ((c * g.kh + u) * g.kw + v) * ld;
        const std::int64_t du = u * g.dh, dv = v * g.dw;
        const Range rows = valid(g.oh, g.sh, g.ph, du, g.h), cs = valid(g.ow, g.sw, g.pw, dv, g.w);
        for (std::int64_t b = 0; b < images; ++b) {
          const float* plane = x + b * g.image() + c * g.h * g.w;
          float* dst = row + b * L;
          zero(dst, rows.lo * g.ow);
          for (std::int64_t i = rows.lo; i < rows.hi; ++i)
            unfold_row(plane + (i * g.sh - g.ph + du) * g.w, dv - g.pw, g.sw, cs, g.ow,
                       dst + i * g.ow);
          zero(dst + rows.hi * g.ow, (g.oh - rows.hi) * g.ow);
        }
      }
}
}  // namespace

void im2col(const float* x, const ConvGeometry& g, std::int64_t images, float* cols) {
  if (g.d == 1 && g.od == 1 && g.kd == 1 && g.pd == 0) return im2col_planar(x, g, images, cols);
  // Loops written out rather than through a visitor: a lambda here measured ~40% slower.
  const std::int64_t ld = images * g.l();
  std::int64_t row = 0;
  for (std::int64_t c = 0; c < g.c; ++c)
    for (std::int64_t t = 0; t < g.kd; ++t)
      for (std::int64_t u = 0; u < g.kh; ++u)
        for (std::int64_t v = 0; v < g.kw; ++v, ++row)
          unfold_tap(x, g, c, tap(g, t, u, v), images, cols + row * ld);
}

// (The general loops match the old 2-D col2im's speed, so col2im needs no planar copy.)
void col2im_add(const float* cols, const ConvGeometry& g, std::int64_t images, float* dx) {
  const std::int64_t L = g.l(), ld = images * L, slab = g.oh * g.ow, volume = g.d * g.h * g.w;
  std::int64_t row = 0;
  for (std::int64_t c = 0; c < g.c; ++c)
    for (std::int64_t t = 0; t < g.kd; ++t)
      for (std::int64_t u = 0; u < g.kh; ++u)
        for (std::int64_t v = 0; v < g.kw; ++v, ++row) {
          const Tap p = tap(g, t, u, v);
          for (std::int64_t b = 0; b < images; ++b)
            for (std::int64_t a = p.depth.lo; a < p.depth.hi; ++a)
              fold_slab(cols + row * ld + b * L + a * slab, g, p, a,
                        dx + b * g.image() + c * volume);
        }
}

}  // namespace syncbn::nn::detail
