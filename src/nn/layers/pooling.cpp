// Pooling for every rank: the templates check options and shapes, then hand a rank-free 3-D
// view (leading spatial sizes 1 for 1-D and 2-D) to the loops, so one loop serves all ranks.
#include "syncbn/nn/layers/pooling.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "syncbn/error.hpp"

namespace syncbn::nn {
namespace {
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

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// PyTorch's pooling_output_shape.
std::int64_t pooled_size(std::int64_t in, const Rule& r, bool ceil_mode) {
  const std::int64_t span = in + 2 * r.p - r.d * (r.k - 1) - 1 + (ceil_mode ? r.s - 1 : 0);
  std::int64_t out = floor_div(span, r.s) + 1;
  if (ceil_mode && (out - 1) * r.s >= in + r.p) --out;
  return out;
}

// The in-range positions of window o of a kernel/stride/padding/dilation rule.
Axis window_axis(std::int64_t o, std::int64_t in, const Rule& r) {
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
Axis adaptive_axis(std::int64_t o, std::int64_t in, std::int64_t out) {
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

void check_grad_shape(const std::string& name, const Shape& grad, const Shape& expected) {
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

// The index (in the plane) of the largest value a max window reads, or -1 when the window
// holds no input. Starts at the first position: NaN there wins unless a later NaN replaces it,
// as in PyTorch (which starts from -inf and takes any NaN it meets). Plain loops, with the unit
// step (no dilation) known at compile time: through the visitors, or with a run-time step, it
// measured 30-40% slower on MaxPool2d(3, 2, 1).
template <bool kUnitStep>
std::int64_t arg_max(const float* x, const Geometry& g, const Axis& a, const Axis& i,
                     const Axis& j) {
  if (a.count == 0 || i.count == 0 || j.count == 0) return -1;
  const std::int64_t h = g.in[1], w = g.in[2];
  const std::int64_t sa = kUnitStep ? 1 : a.step, si = kUnitStep ? 1 : i.step,
                     sj = kUnitStep ? 1 : j.step;
  std::int64_t best = (a.first * h + i.first) * w + j.first;
  float best_value = x[best];
  for (std::int64_t da = 0; da < a.count; ++da)
    for (std::int64_t di = 0; di < i.count; ++di) {
      const std::int64_t row = ((a.first + da * sa) * h + i.first + di * si) * w + j.first;
      for (std::int64_t dj = 0; dj < j.count; ++dj) {
        const float v = x[row + dj * sj];
        if (v > best_value || std::isnan(v)) {
          best_value = v;
          best = row + dj * sj;
        }
      }
    }
  return best;
}

// y and the arg-max indices of one plane.
template <bool kUnitStep>
void max_pool_plane(const float* x, const Geometry& g, const Windows& windows, float* y,
                    std::int32_t* arg) {
  std::int64_t at = 0;
  for (const Axis& a : windows[0])
    for (const Axis& i : windows[1])
      for (const Axis& j : windows[2]) {
        const std::int64_t best = arg_max<kUnitStep>(x, g, a, i, j);
        y[at] = best >= 0 ? x[best] : -std::numeric_limits<float>::infinity();
        arg[at++] = static_cast<std::int32_t>(best);
      }
}

std::string py_bool(bool b) {
  return b ? "True" : "False";
}
}  // namespace

// ---- MaxPool ----

template <std::size_t D>
MaxPoolNd<D>::MaxPoolNd(MaxPoolOptions<D> options) : options_(options) {
  const auto& o = options_;
  const std::string name = type_name() + "(" + extra_repr() + ")";
  check_window_options(name, o.kernel_size(), o.stride(), o.padding());
  SYNCBN_CHECK(o.dilation().all_positive(), name, ": dilation ", o.dilation().str(),
               " must be positive");
}

template <std::size_t D>
std::string MaxPoolNd<D>::type_name() const {
  return "MaxPool" + std::to_string(D) + "d";
}

template <std::size_t D>
std::string MaxPoolNd<D>::extra_repr() const {
  const auto& o = options_;
  return "kernel_size=" + o.kernel_size().given_str() + ", stride=" + o.stride().given_str() +
         ", padding=" + o.padding().given_str() + ", dilation=" + o.dilation().given_str() +
         ", ceil_mode=" + py_bool(o.ceil_mode());
}

template <std::size_t D>
Shape MaxPoolNd<D>::output_shape(const Shape& in) const {
  const auto& o = options_;
  const std::string name = type_name() + "(" + extra_repr() + ")";
  check_rank<D>(name, in);
  const auto rules = rules_of(o.kernel_size(), o.stride(), o.padding(), o.dilation());
  return with_spatial<D>(in, pooled_sizes<D>(name, in, rules, o.ceil_mode()));
}

template <std::size_t D>
Tensor MaxPoolNd<D>::forward(const Tensor& input) {
  const Shape out_shape = output_shape(input.shape());
  const auto& o = options_;
  const auto rules = rules_of(o.kernel_size(), o.stride(), o.padding(), o.dilation());
  std::array<std::int64_t, D> os{};
  std::copy(out_shape.end() - D, out_shape.end(), os.begin());
  const Geometry g = geometry_of<D>(input.shape(), os);
  SYNCBN_CHECK(g.in_plane() <= std::numeric_limits<std::int32_t>::max(), type_name(),
               ": plane too large for its arg-max indices");
  Tensor out = Tensor::empty(out_shape);
  saved_argmax_.resize(static_cast<std::size_t>(out.numel()));
  const Windows windows =
      make_windows(g, [&](int k, std::int64_t i) { return window_axis(i, g.in[k], rules[k]); });
  for (std::int64_t plane = 0; plane < g.planes; ++plane) {
    const float* x = input.data<float>() + plane * g.in_plane();
    float* y = out.data<float>() + plane * g.out_plane();
    std::int32_t* arg = saved_argmax_.data() + plane * g.out_plane();
    if (o.dilation() == SizeN<D>(1))
      max_pool_plane<true>(x, g, windows, y, arg);
    else
      max_pool_plane<false>(x, g, windows, y, arg);
  }
  saved_input_shape_ = input.shape();
  return out;
}

template <std::size_t D>
Tensor MaxPoolNd<D>::backward(const Tensor& grad_output) {
  SYNCBN_CHECK(!saved_input_shape_.empty(), type_name(), ": backward called before forward");
  const Shape out_shape = output_shape(saved_input_shape_);
  check_grad_shape(type_name() + "(" + extra_repr() + ")", grad_output.shape(), out_shape);
  Tensor dx(saved_input_shape_);
  const std::int64_t in_plane =
      shape_numel(Shape(saved_input_shape_.end() - D, saved_input_shape_.end()));
  const std::int64_t out_plane = shape_numel(Shape(out_shape.end() - D, out_shape.end()));
  const float* dy = grad_output.data<float>();
  float* out = dx.data<float>();
  const std::int32_t* arg = saved_argmax_.data();
  for (std::int64_t plane = 0; plane * out_plane < grad_output.numel(); ++plane) {
    float* dx_plane = out + plane * in_plane;
    for (std::int64_t i = plane * out_plane; i < (plane + 1) * out_plane; ++i)
      if (arg[i] >= 0) dx_plane[arg[i]] += dy[i];
  }
  return dx;
}

// ---- AvgPool ----

template <std::size_t D>
AvgPoolNd<D>::AvgPoolNd(AvgPoolOptions<D> options) : options_(options) {
  const auto& o = options_;
  check_window_options(type_name() + "(" + extra_repr() + ")", o.kernel_size(), o.stride(),
                       o.padding());
}

template <std::size_t D>
std::string AvgPoolNd<D>::type_name() const {
  return "AvgPool" + std::to_string(D) + "d";
}

template <std::size_t D>
std::string AvgPoolNd<D>::extra_repr() const {
  // PyTorch's AvgPool1d stores its sizes as 1-tuples; AvgPool2d/3d keep them as given.
  const auto& o = options_;
  const auto show = [](const SizeN<D>& s) { return D == 1 ? s.str() : s.given_str(); };
  return "kernel_size=" + show(o.kernel_size()) + ", stride=" + show(o.stride()) +
         ", padding=" + show(o.padding());
}

template <std::size_t D>
Shape AvgPoolNd<D>::output_shape(const Shape& in) const {
  const auto& o = options_;
  const std::string name = type_name() + "(" + extra_repr() + ")";
  check_rank<D>(name, in);
  const auto rules = rules_of(o.kernel_size(), o.stride(), o.padding(), SizeN<D>(1));
  return with_spatial<D>(in, pooled_sizes<D>(name, in, rules, o.ceil_mode()));
}

namespace {
// The divisor of one average window: its in-input positions, or (count_include_pad) the
// window clipped to the padded input [-p, in + p).
double avg_divisor(const std::array<Axis, 3>& w, bool include_pad) {
  double n = 1;
  for (const Axis& axis : w) n *= static_cast<double>(include_pad ? axis.span : axis.count);
  return n;
}

Windows avg_windows(const Geometry& g, const std::array<Rule, 3>& rules) {
  return make_windows(g, [&](int k, std::int64_t i) { return window_axis(i, g.in[k], rules[k]); });
}

Windows adaptive_windows(const Geometry& g) {
  return make_windows(g,
                      [&](int k, std::int64_t i) { return adaptive_axis(i, g.in[k], g.out[k]); });
}
}  // namespace

template <std::size_t D>
Tensor AvgPoolNd<D>::forward(const Tensor& input) {
  const Shape out_shape = output_shape(input.shape());
  const auto& o = options_;
  const auto rules = rules_of(o.kernel_size(), o.stride(), o.padding(), SizeN<D>(1));
  std::array<std::int64_t, D> os{};
  std::copy(out_shape.end() - D, out_shape.end(), os.begin());
  const Geometry g = geometry_of<D>(input.shape(), os);
  const Windows windows = avg_windows(g, rules);
  Tensor out = Tensor::empty(out_shape);
  for (std::int64_t plane = 0; plane < g.planes; ++plane) {
    const float* x = input.data<float>() + plane * g.in_plane();
    float* y = out.data<float>() + plane * g.out_plane();
    for_each_window(windows, [&](std::int64_t at, const std::array<Axis, 3>& w) {
      const double divisor = avg_divisor(w, o.count_include_pad());
      double s = 0;
      for_each_position(g, w, [&](std::int64_t p) { s += x[p]; });
      y[at] = divisor > 0 ? static_cast<float>(s / divisor) : 0.f;
    });
  }
  saved_input_shape_ = input.shape();
  return out;
}

template <std::size_t D>
Tensor AvgPoolNd<D>::backward(const Tensor& grad_output) {
  SYNCBN_CHECK(!saved_input_shape_.empty(), type_name(), ": backward called before forward");
  const Shape out_shape = output_shape(saved_input_shape_);
  check_grad_shape(type_name() + "(" + extra_repr() + ")", grad_output.shape(), out_shape);
  const auto& o = options_;
  const auto rules = rules_of(o.kernel_size(), o.stride(), o.padding(), SizeN<D>(1));
  std::array<std::int64_t, D> os{};
  std::copy(out_shape.end() - D, out_shape.end(), os.begin());
  const Geometry g = geometry_of<D>(saved_input_shape_, os);
  const Windows windows = avg_windows(g, rules);
  Tensor dx(saved_input_shape_);
  for (std::int64_t plane = 0; plane < g.planes; ++plane) {
    const float* dy = grad_output.data<float>() + plane * g.out_plane();
    float* gx = dx.data<float>() + plane * g.in_plane();
    for_each_window(windows, [&](std::int64_t at, const std::array<Axis, 3>& w) {
      const double divisor = avg_divisor(w, o.count_include_pad());
      if (divisor <= 0) return;
      const float share = static_cast<float>(dy[at] / divisor);
      for_each_position(g, w, [&](std::int64_t p) { gx[p] += share; });
    });
  }
  return dx;
}

// ---- AdaptiveAvgPool ----

template <std::size_t D>
AdaptiveAvgPoolNd<D>::AdaptiveAvgPoolNd(SizeN<D> output_size) : output_size_(output_size) {
  SYNCBN_CHECK(output_size.all_positive(), type_name(), ": output_size ", output_size.str(),
               " must be positive");
}

template <std::size_t D>
std::string AdaptiveAvgPoolNd<D>::type_name() const {
  return "AdaptiveAvgPool" + std::to_string(D) + "d";
}

template <std::size_t D>
std::string AdaptiveAvgPoolNd<D>::extra_repr() const {
  return "output_size=" + output_size_.given_str();
}

template <std::size_t D>
Shape AdaptiveAvgPoolNd<D>::output_shape(const Shape& in) const {
  const std::string name = type_name() + "(" + extra_repr() + ")";
  check_rank<D>(name, in);
  bool non_empty = true;
  for (std::size_t i = 0; i < D; ++i) non_empty = non_empty && in[in.size() - D + i] > 0;
  SYNCBN_CHECK_AS(ShapeError, non_empty, name,
                  ": expected non-empty spatial dims, got input of shape ", shape_str(in));
  return with_spatial<D>(in, output_size_.values());
}

template <std::size_t D>
Tensor AdaptiveAvgPoolNd<D>::forward(const Tensor& input) {
  Tensor out = Tensor::empty(output_shape(input.shape()));
  const Geometry g = geometry_of<D>(input.shape(), output_size_.values());
  const Windows windows = adaptive_windows(g);
  for (std::int64_t plane = 0; plane < g.planes; ++plane) {
    const float* x = input.data<float>() + plane * g.in_plane();
    float* y = out.data<float>() + plane * g.out_plane();
    for_each_window(windows, [&](std::int64_t at, const std::array<Axis, 3>& w) {
      double s = 0;
      for_each_position(g, w, [&](std::int64_t p) { s += x[p]; });
      y[at] = static_cast<float>(s / static_cast<double>(w[0].count * w[1].count * w[2].count));
    });
  }
  saved_input_shape_ = input.shape();
  return out;
}

// When the windows tile the input (sizes divisible by the output size, e.g. global pooling),
// each input element belongs to exactly one window, so dx is written once instead of
// zero-filled and accumulated.
template <std::size_t D>
Tensor AdaptiveAvgPoolNd<D>::backward(const Tensor& grad_output) {
  SYNCBN_CHECK(!saved_input_shape_.empty(), type_name(), ": backward called before forward");
  const Shape out_shape = output_shape(saved_input_shape_);
  check_grad_shape(type_name() + "(" + extra_repr() + ")", grad_output.shape(), out_shape);
  const Geometry g = geometry_of<D>(saved_input_shape_, output_size_.values());
  bool tiles = true;
  for (int k = 0; k < 3; ++k) tiles = tiles && g.in[k] % g.out[k] == 0;
  Tensor dx = tiles ? Tensor::empty(saved_input_shape_) : Tensor(saved_input_shape_);
  const Windows windows = adaptive_windows(g);
  for (std::int64_t plane = 0; plane < g.planes; ++plane) {
    const float* dy = grad_output.data<float>() + plane * g.out_plane();
    float* gx = dx.data<float>() + plane * g.in_plane();
    for_each_window(windows, [&](std::int64_t at, const std::array<Axis, 3>& w) {
      const float share = dy[at] / static_cast<float>(w[0].count * w[1].count * w[2].count);
      for_each_position(g, w, [&](std::int64_t p) { gx[p] = tiles ? share : gx[p] + share; });
    });
  }
  return dx;
}

template class MaxPoolNd<1>;
template class MaxPoolNd<2>;
template class MaxPoolNd<3>;
template class AvgPoolNd<1>;
template class AvgPoolNd<2>;
template class AvgPoolNd<3>;
template class AdaptiveAvgPoolNd<1>;
template class AdaptiveAvgPoolNd<2>;
template class AdaptiveAvgPoolNd<3>;

}  // namespace syncbn::nn
