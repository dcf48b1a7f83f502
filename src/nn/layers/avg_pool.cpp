// AvgPool1d/2d/3d (contract and formulas in pooling.hpp).
#include "pool_windows.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/layers/pooling.hpp"

namespace syncbn::nn {
using namespace detail;  // NOLINT: the window helpers of pool_windows.hpp
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
}  // namespace

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

template class AvgPoolNd<1>;
template class AvgPoolNd<2>;
template class AvgPoolNd<3>;

}  // namespace syncbn::nn
