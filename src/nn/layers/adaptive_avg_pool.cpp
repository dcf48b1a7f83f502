// AdaptiveAvgPool1d/2d/3d (contract and formulas in pooling.hpp).
#include "pool_windows.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/layers/pooling.hpp"

namespace syncbn::nn {
using namespace detail;  // NOLINT: the window helpers of pool_windows.hpp
namespace {
Windows adaptive_windows(const Geometry& g) {
  return make_windows(g,
                      [&](int k, std::int64_t i) { return adaptive_axis(i, g.in[k], g.out[k]); });
}
}  // namespace

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

template class AdaptiveAvgPoolNd<1>;
template class AdaptiveAvgPoolNd<2>;
template class AdaptiveAvgPoolNd<3>;

}  // namespace syncbn::nn
