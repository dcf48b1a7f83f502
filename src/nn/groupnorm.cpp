#include "syncbn/nn/groupnorm.hpp"

#include <cmath>
#include <cstdio>
#include <utility>

#include "syncbn/error.hpp"

namespace syncbn::nn {
namespace {
struct Layout {
  std::int64_t n, groups, channels_per_group, s;
  std::int64_t group_len() const { return channels_per_group * s; }
};

Layout layout_of(const Tensor& x, std::int64_t groups) {
  Layout l{x.size(0), groups, x.size(1) / groups, 1};
  for (std::int64_t i = 2; i < x.dim(); ++i) l.s *= x.size(i);
  return l;
}
}  // namespace

GroupNorm::GroupNorm(GroupNormOptions options) : options_(options) {
  SYNCBN_CHECK(options_.num_groups() > 0 && options_.num_channels() > 0, "GroupNorm: num_groups (",
               options_.num_groups(), ") and num_channels (", options_.num_channels(),
               ") must be positive");
  SYNCBN_CHECK(options_.num_channels() % options_.num_groups() == 0,
               "num_channels must be divisible by num_groups (got num_channels=",
               options_.num_channels(), ", num_groups=", options_.num_groups(), ")");
  if (options_.affine()) {
    weight = {Tensor::ones({options_.num_channels()}), Tensor::zeros({options_.num_channels()})};
    bias = {Tensor::zeros({options_.num_channels()}), Tensor::zeros({options_.num_channels()})};
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
  }
}

std::string GroupNorm::extra_repr() const {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%lld, %lld, eps=%g, affine=%s",
                static_cast<long long>(options_.num_groups()),
                static_cast<long long>(options_.num_channels()), options_.eps(),
                options_.affine() ? "True" : "False");
  return buf;
}

Tensor GroupNorm::forward(const Tensor& input) {
  SYNCBN_CHECK_AS(ShapeError, input.dim() >= 2 && input.size(1) == options_.num_channels(),
                  "GroupNorm(", options_.num_groups(), ", ", options_.num_channels(),
                  "): expected (N, ", options_.num_channels(), ", *) input, got shape ",
                  shape_str(input.shape()));
  const Layout l = layout_of(input, options_.num_groups());
  const float* x = input.data<float>();
  Tensor out(input.shape());
  float* y = out.data<float>();
  saved_mean_.assign(l.n * l.groups, 0.0);
  saved_invstd_.assign(l.n * l.groups, 0.0);
  for (std::int64_t ng = 0; ng < l.n * l.groups; ++ng) {
    const float* p = x + ng * l.group_len();
    const double shift = l.group_len() > 0 ? p[0] : 0.0;
    double s = 0, ss = 0;
#pragma omp simd reduction(+ : s, ss)
    for (std::int64_t i = 0; i < l.group_len(); ++i) {
      const double d = p[i] - shift;
      s += d;
      ss += d * d;
    }
    const double m = static_cast<double>(l.group_len());
    const double var = std::max(0.0, ss / m - (s / m) * (s / m));
    saved_mean_[ng] = shift + s / m;
    saved_invstd_[ng] = 1.0 / std::sqrt(var + options_.eps());
    // y = (x - hi) * scale + offset with the mean split into float hi + lo: x - hi is exact, so
    // y stays accurate when |mean| >> std, where a fused x * scale + offset cancels badly.
    const float hi = static_cast<float>(saved_mean_[ng]);
    const double lo = saved_mean_[ng] - hi;
    for (std::int64_t cg = 0; cg < l.channels_per_group; ++cg) {
      const std::int64_t c = ng % l.groups * l.channels_per_group + cg;
      const double w = options_.affine() ? weight.value.data<float>()[c] : 1.0;
      const double b = options_.affine() ? bias.value.data<float>()[c] : 0.0;
      const float scale = static_cast<float>(saved_invstd_[ng] * w);
      const float offset = static_cast<float>(b - lo * saved_invstd_[ng] * w);
      const std::int64_t at = ng * l.group_len() + cg * l.s;
      for (std::int64_t i = 0; i < l.s; ++i) y[at + i] = (x[at + i] - hi) * scale + offset;
    }
  }
  saved_input_ = input;
  return out;
}

Tensor GroupNorm::backward(const Tensor& grad_output) {
  SYNCBN_CHECK(saved_input_.defined(), "GroupNorm: backward called before forward");
  SYNCBN_CHECK_AS(ShapeError, grad_output.shape() == saved_input_.shape(),
                  "GroupNorm: grad_output shape ", shape_str(grad_output.shape()),
                  " does not match input ", shape_str(saved_input_.shape()));
  const Layout l = layout_of(saved_input_, options_.num_groups());
  const float* x = std::as_const(saved_input_).data<float>();
  const float* dy = grad_output.data<float>();
  Tensor dx(saved_input_.shape());
  float* out = dx.data<float>();
  for (std::int64_t ng = 0; ng < l.n * l.groups; ++ng) {
    const double mean = saved_mean_[ng], invstd = saved_invstd_[ng];
    double sum_g = 0, sum_g_xhat = 0;
    for (std::int64_t cg = 0; cg < l.channels_per_group; ++cg) {
      const std::int64_t c = ng % l.groups * l.channels_per_group + cg;
      const double w = options_.affine() ? weight.value.data<float>()[c] : 1.0;
      double sdy = 0, sdy_xhat = 0;
      for (std::int64_t i = 0, at = ng * l.group_len() + cg * l.s; i < l.s; ++i) {
        sdy += dy[at + i];
        sdy_xhat += dy[at + i] * (x[at + i] - mean) * invstd;
      }
      if (options_.affine()) {
        weight.grad.data<float>()[c] += static_cast<float>(sdy_xhat);
        bias.grad.data<float>()[c] += static_cast<float>(sdy);
      }
      sum_g += w * sdy;
      sum_g_xhat += w * sdy_xhat;
    }
    const double m = static_cast<double>(l.group_len());
    for (std::int64_t cg = 0; cg < l.channels_per_group; ++cg) {
      const std::int64_t c = ng % l.groups * l.channels_per_group + cg;
      const double w = options_.affine() ? weight.value.data<float>()[c] : 1.0;
      for (std::int64_t i = 0, at = ng * l.group_len() + cg * l.s; i < l.s; ++i) {
        const double xhat = (x[at + i] - mean) * invstd;
        out[at + i] =
            static_cast<float>(invstd / m * (m * w * dy[at + i] - sum_g - xhat * sum_g_xhat));
      }
    }
  }
  return dx;
}

}  // namespace syncbn::nn
