#include "syncbn/nn/layers/conv2d.hpp"

#include <algorithm>
#include <memory>

#include "conv2d_kernels.hpp"
#include "grad.hpp"
#include "syncbn/error.hpp"

namespace syncbn::nn {
namespace {
// y = bias broadcast over each plane (or zeros): the whole output when the input has no
// pixels, so no window reads anything.
void fill_with_bias(const Tensor* bias, Tensor& y) {
  const std::int64_t n = y.size(0), channels = y.size(1), plane = y.size(2) * y.size(3);
  float* out = y.data<float>();
  for (std::int64_t i = 0; i < n * channels; ++i)
    std::fill_n(out + i * plane, plane, bias ? bias->data<float>()[i % channels] : 0.f);
}
}  // namespace

void detail::add_channel_sums(const Tensor& dy, float* db) {
  const std::int64_t n = dy.size(0), channels = dy.size(1), plane = dy.size(2) * dy.size(3);
  const float* g = dy.data<float>();
  for (std::int64_t i = 0; i < n * channels; ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < plane; ++j) s += g[i * plane + j];
    db[i % channels] += static_cast<float>(s);
  }
}

Conv2d::Conv2d(Conv2dOptions options, Generator& gen) : options_(options) {
  const auto& o = options_;
  SYNCBN_CHECK(o.in_channels() > 0 && o.out_channels() > 0, "Conv2d: in_channels (",
               o.in_channels(), ") and out_channels (", o.out_channels(), ") must be positive");
  SYNCBN_CHECK(
      o.kernel_size().h > 0 && o.kernel_size().w > 0 && o.stride().h > 0 && o.stride().w > 0,
      "Conv2d: kernel_size ", o.kernel_size().str(), " and stride ", o.stride().str(),
      " must be positive");
  SYNCBN_CHECK(o.padding().h >= 0 && o.padding().w >= 0, "Conv2d: padding ", o.padding().str(),
               " must be non-negative");
  const Shape shape{o.out_channels(), o.in_channels(), o.kernel_size().h, o.kernel_size().w};
  weight = {Tensor::zeros(shape), Tensor::zeros(shape)};
  register_parameter("weight", &weight);
  if (o.bias()) {
    bias = {Tensor::zeros({o.out_channels()}), Tensor::zeros({o.out_channels()})};
    register_parameter("bias", &bias);
  }
  init::default_reset_(weight.value, &bias.value, gen);
  kernels_ = detail::make_conv_kernels(options_);
}

Conv2d::Conv2d(Conv2dOptions options, std::uint64_t seed)
    : Conv2d(options, *std::make_unique<Generator>(seed)) {}

Conv2d::~Conv2d() = default;

std::string Conv2d::backend() {
  return detail::conv_kernels_name();
}

std::string Conv2d::extra_repr() const {
  const auto& o = options_;
  return std::to_string(o.in_channels()) + ", " + std::to_string(o.out_channels()) +
         ", kernel_size=" + o.kernel_size().str() + ", stride=" + o.stride().str() +
         (o.padding() != Size2(0) ? ", padding=" + o.padding().str() : "") +
         (o.bias() ? "" : ", bias=False");
}

Shape Conv2d::output_shape(const Shape& in) const {
  const auto& o = options_;
  const std::string name = "Conv2d(" + extra_repr() + ")";
  SYNCBN_CHECK_AS(ShapeError, in.size() == 4, name, ": expected 4D input [N, C, H, W] (got ",
                  in.size(), "D input of shape ", shape_str(in), ")");
  SYNCBN_CHECK_AS(ShapeError, in[1] == o.in_channels(), name, ": expected input with ",
                  o.in_channels(), " channels, got input of shape ", shape_str(in));
  const std::int64_t oh = (in[2] + 2 * o.padding().h - o.kernel_size().h) / o.stride().h + 1;
  const std::int64_t ow = (in[3] + 2 * o.padding().w - o.kernel_size().w) / o.stride().w + 1;
  const bool fits = in[2] + 2 * o.padding().h >= o.kernel_size().h &&
                    in[3] + 2 * o.padding().w >= o.kernel_size().w;
  SYNCBN_CHECK_AS(ShapeError, fits, name, ": input of shape ", shape_str(in),
                  " is smaller than the kernel after padding (output would be ", oh, "x", ow, ")");
  return {in[0], o.out_channels(), oh, ow};
}

Tensor Conv2d::forward(const Tensor& input) {
  Tensor out = Tensor::empty(output_shape(input.shape()));  // every element is written below
  const Tensor* b = options_.bias() ? &bias.value : nullptr;
  if (input.numel() > 0)
    kernels_->forward(input, weight.value, b, out);
  else if (out.numel() > 0)  // no pixels, but padding makes windows: they see only zeros
    fill_with_bias(b, out);
  saved_input_shape_ = input.shape();
  has_saved_ = true;
  return out;
}

Tensor Conv2d::backward(const Tensor& grad_output) {
  SYNCBN_CHECK(has_saved_, "Conv2d(", extra_repr(), "): backward called before forward");
  const Shape out_shape = output_shape(saved_input_shape_);
  SYNCBN_CHECK_AS(ShapeError, grad_output.shape() == out_shape, "Conv2d(", extra_repr(),
                  "): grad_output shape ", shape_str(grad_output.shape()),
                  " does not match the output shape ", shape_str(out_shape));
  float* dw = detail::grad_for_accumulation(weight);
  float* db = options_.bias() ? detail::grad_for_accumulation(bias) : nullptr;
  if (shape_numel(saved_input_shape_) > 0) {
    Tensor dx = Tensor::empty(saved_input_shape_);  // the kernels write all of it
    kernels_->backward(grad_output, weight.value, dw, db, dx);
    return dx;
  }
  if (db != nullptr) detail::add_channel_sums(grad_output, db);
  return Tensor(saved_input_shape_);
}

void kaiming_normal_conv_weights_(Module& root, Generator& gen) {
  // modules() order (pre-order), as torchvision's loop: it fixes the draws from `gen`.
  for (const auto& module : root.modules())
    if (auto* conv = dynamic_cast<Conv2d*>(module.get()))
      init::kaiming_normal_(conv->weight.value, gen, 0.0, init::FanMode::FanOut,
                            init::Nonlinearity::ReLU);
}

}  // namespace syncbn::nn
