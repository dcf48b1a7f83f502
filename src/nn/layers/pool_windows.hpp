#pragma once
// Window arithmetic shared by the pooling layers (internal). Every rank is viewed as 3-D: the
// spatial sizes of a 1-D or 2-D input get leading 1s, so one loop nest serves all ranks.
// The windows along each axis are tabulated once per call (Windows) rather than per output
// element: the per-window arithmetic showed in MaxPool2d's time.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "syncbn/error.hpp"
#include "syncbn/nn/layers/size.hpp"
#include "syncbn/tensor.hpp"

namespace syncbn::nn::detail {
// The positions first + u*step, u < count, that one window reads along one axis (all inside
// the input).
struct Axis {
  std::int64_t first, step, count;
  std::int64_t span;  // AvgPool's divisor factor with count_include_pad (else count)
};

// A window rule along one axis, kernel k, stride s, padding p, dilation d.
struct Rule {
  std::int64_t k = 1, s = 1, p = 0, d = 1;
};

// Planes and per-axis sizes of a pooling problem, as 3-D.
struct Geometry {
  std::int64_t planes;
  std::array<std::int64_t, 3> in, out;
  std::int64_t in_plane() const { return in[0] * in[1] * in[2]; }
  std::int64_t out_plane() const { return out[0] * out[1] * out[2]; }
};

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// PyTorch's pooling_output_shape.
inline std::int64_t pooled_size(std::int64_t in, const Rule& r, bool ceil_mode) {
  const std::int64_t span = in + 2 * r.p - r.d * (r.k - 1) - 1 + (ceil_mode ? r.s - 1 : 0);
  std::int64_t out = floor_div(span, r.s) + 1;
  if (ceil_mode && (out - 1) * r.s >= in + r.p) --out;
  return out;
}

// The in-range positions of window o of a kernel/stride/padding/dilation rule.
inline Axis window_axis(std::int64_t o, std::int64_t in, const Rule& r) {
  const std::int64_t start = o * r.s - r.p;
  const std::int64_t span = std::min(start + r.k, in + r.p) - start;  // inside the padding
  if (r.d == 1) {  // the common case, without the divisions
    const std::int64_t lo = std::max<std::int64_t>(start, 0);
    return {lo, 1, std::max<std::int64_t>(std::min(start + r.k, in) - lo, 0), span};
  }
  const std::int64_t lo = start < 0 ? (-start + r.d - 1) / r.d : 0;  // first u inside
  const std::int64_t hi = std::min(r.k, (in - start + r.d - 1) / r.d);
  return {start + lo * r.d, r.d, std::max<std::int64_t>(hi - lo, 0), span};
}

// Adaptive bin o of `out` bins over `in` positions: [floor(o*in/out), ceil((o+1)*in/out)).
inline Axis adaptive_axis(std::int64_t o, std::int64_t in, std::int64_t out) {
  const std::int64_t begin = o * in / out, end = ((o + 1) * in + out - 1) / out;
  return {begin, 1, end - begin, end - begin};
}

// The windows along each of the 3 axes, computed once per call rather than per output element
// (the per-window arithmetic showed in MaxPool2d's time).
using Windows = std::array<std::vector<Axis>, 3>;

template <typename AxisOf>
Windows make_windows(const Geometry& g, AxisOf&& axis_of) {
  Windows w;
  for (int k = 0; k < 3; ++k)
    for (std::int64_t o = 0; o < g.out[k]; ++o) w[k].push_back(axis_of(k, o));
  return w;
}

// Calls fn(output index in plane, axes) for every output position of one plane.
template <typename Fn>
void for_each_window(const Windows& w, Fn&& fn) {
  std::int64_t at = 0;
  for (const Axis& a : w[0])
    for (const Axis& i : w[1])
      for (const Axis& j : w[2]) fn(at++, std::array<Axis, 3>{a, i, j});
}

// Calls fn(index in plane) for every position a window reads.
template <typename Fn>
void for_each_position(const Geometry& g, const std::array<Axis, 3>& w, Fn&& fn) {
  for (std::int64_t a = 0; a < w[0].count; ++a)
    for (std::int64_t i = 0; i < w[1].count; ++i) {
      const std::int64_t row =
          ((w[0].first + a * w[0].step) * g.in[1] + w[1].first + i * w[1].step) * g.in[2];
      const std::int64_t first = row + w[2].first, step = w[2].step, count = w[2].count;
      if (step == 1) {  // contiguous: lets the compiler keep the loop tight
        for (std::int64_t j = first; j < first + count; ++j) fn(j);
      } else {
        for (std::int64_t j = 0; j < count; ++j) fn(first + j * step);
      }
    }
}

template <std::size_t D>
std::string rank_error(const std::string& name, const Shape& in) {
  static const char* const kLayouts[] = {"", "(C, L) or (N, C, L)", "(C, H, W) or (N, C, H, W)",
                                         "(C, D, H, W) or (N, C, D, H, W)"};
  return name + ": expected " + std::to_string(D + 1) + "D or " + std::to_string(D + 2) +
         "D input " + kLayouts[D] + ", got shape " + shape_str(in);
}

template <std::size_t D>
void check_rank(const std::string& name, const Shape& in) {
  SYNCBN_CHECK_AS(ShapeError, in.size() == D + 1 || in.size() == D + 2, rank_error<D>(name, in));
}

// The input's last D sizes as a 3-D geometry with the given output sizes.
template <std::size_t D>
Geometry geometry_of(const Shape& in, const std::array<std::int64_t, D>& out) {
  Geometry g{in.size() == D + 1 ? in[0] : in[0] * in[1], {1, 1, 1}, {1, 1, 1}};
  for (std::size_t i = 0; i < D; ++i) {
    g.in[3 - D + i] = in[in.size() - D + i];
    g.out[3 - D + i] = out[i];
  }
  return g;
}

template <std::size_t D>
Shape with_spatial(Shape in, const std::array<std::int64_t, D>& out) {
  std::copy(out.begin(), out.end(), in.end() - D);
  return in;
}

// The D window rules as 3-D (identity rules on the leading axes).
template <std::size_t D>
std::array<Rule, 3> rules_of(const SizeN<D>& k, const SizeN<D>& s, const SizeN<D>& p,
                             const SizeN<D>& d) {
  std::array<Rule, 3> r{};
  for (std::size_t i = 0; i < D; ++i) r[3 - D + i] = {k[i], s[i], p[i], d[i]};
  return r;
}

template <std::size_t D>
std::array<std::int64_t, D> pooled_sizes(const std::string& name, const Shape& in,
                                         const std::array<Rule, 3>& rules, bool ceil_mode) {
  std::array<std::int64_t, D> out{};
  bool positive = true;
  for (std::size_t i = 0; i < D; ++i) {
    out[i] = pooled_size(in[in.size() - D + i], rules[3 - D + i], ceil_mode);
    positive = positive && out[i] >= 1;
  }
  SYNCBN_CHECK_AS(ShapeError, positive, name, ": input of shape ", shape_str(in),
                  " gives an output of ", shape_str(Shape(out.begin(), out.end())),
                  "; output size is too small");
  return out;
}

inline void check_grad_shape(const std::string& name, const Shape& grad, const Shape& expected) {
  SYNCBN_CHECK_AS(ShapeError, grad == expected, name, ": grad_output shape ", shape_str(grad),
                  " does not match the output shape ", shape_str(expected));
}

template <std::size_t D>
void check_window_options(const std::string& name, const SizeN<D>& k, const SizeN<D>& s,
                          const SizeN<D>& p) {
  SYNCBN_CHECK(k.all_positive() && s.all_positive(), name, ": kernel_size ", k.str(),
               " and stride ", s.str(), " must be positive");
  bool half = p.all_non_negative();
  for (std::size_t i = 0; i < D; ++i) half = half && p[i] <= k[i] / 2;
  SYNCBN_CHECK(half, name, ": pad should be at most half of kernel size, but got pad=", p.str(),
               ", kernel_size=", k.str());
}
}  // namespace syncbn::nn::detail
