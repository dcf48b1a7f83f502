// MaxPool1d/2d/3d (contract and formulas in pooling.hpp).
#include <cmath>
#include <limits>

#include "pool_windows.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/layers/pooling.hpp"

namespace syncbn::nn {
using namespace detail;  // NOLINT: the window helpers of pool_windows.hpp
namespace {
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

template class MaxPoolNd<1>;
template class MaxPoolNd<2>;
template class MaxPoolNd<3>;

}  // namespace syncbn::nn
