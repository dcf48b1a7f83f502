#include "syncbn/nn/layers/conv.hpp"

#include <algorithm>
#include <memory>

#include "conv_kernels.hpp"
#include "grad.hpp"
#include "syncbn/error.hpp"

namespace syncbn::nn {
namespace {
// Elements per (n, channel) of a [N, C, *S] shape.
std::int64_t per_channel(const Shape& s) {
  std::int64_t p = 1;
  for (std::size_t i = 2; i < s.size(); ++i) p *= s[i];
  return p;
}

// y = bias broadcast over each channel (or zeros): the whole output when the input has no
// elements, so no window reads anything.
void fill_with_bias(const Tensor* bias, Tensor& y) {
  const std::int64_t rows = y.size(0) * y.size(1), channels = y.size(1),
                     plane = per_channel(y.shape());
  float* out = y.data<float>();
  for (std::int64_t i = 0; i < rows; ++i)
    std::fill_n(out + i * plane, plane, bias ? bias->data<float>()[i % channels] : 0.f);
}

template <std::size_t D>
std::vector<std::int64_t> to_vector(const SizeN<D>& s) {
  return {s.values().begin(), s.values().end()};
}

template <std::size_t D>
detail::ConvSpec spec_of(const ConvOptions<D>& o) {
  return {o.in_channels(),
          o.out_channels(),
          o.groups(),
          to_vector(o.kernel_size()),
          to_vector(o.stride()),
          to_vector(o.padding()),
          to_vector(o.dilation()),
          o.bias()};
}
}  // namespace

void detail::add_channel_sums(const Tensor& dy, float* db) {
  const std::int64_t rows = dy.size(0) * dy.size(1), channels = dy.size(1),
                     plane = per_channel(dy.shape());
  const float* g = dy.data<float>();
  for (std::int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < plane; ++j) s += g[i * plane + j];
    db[i % channels] += static_cast<float>(s);
  }
}

template <std::size_t D>
ConvNd<D>::ConvNd(ConvOptions<D> options, Generator& gen) : options_(options) {
  const auto& o = options_;
  const std::string name = type_name() + "(" + extra_repr() + ")";
  SYNCBN_CHECK(o.in_channels() > 0 && o.out_channels() > 0, name, ": in_channels (",
               o.in_channels(), ") and out_channels (", o.out_channels(), ") must be positive");
  SYNCBN_CHECK(
      o.kernel_size().all_positive() && o.stride().all_positive() && o.dilation().all_positive(),
      name, ": kernel_size ", o.kernel_size().str(), ", stride ", o.stride().str(),
      " and dilation ", o.dilation().str(), " must be positive");
  SYNCBN_CHECK(o.padding().all_non_negative(), name, ": padding ", o.padding().str(),
               " must be non-negative");
  SYNCBN_CHECK(o.groups() > 0, name, ": groups (", o.groups(), ") must be positive");
  SYNCBN_CHECK(o.in_channels() % o.groups() == 0 && o.out_channels() % o.groups() == 0, name,
               ": in_channels (", o.in_channels(), ") and out_channels (", o.out_channels(),
               ") must be divisible by groups (", o.groups(), ")");
  Shape shape{o.out_channels(), o.in_channels() / o.groups()};
  for (std::size_t i = 0; i < D; ++i) shape.push_back(o.kernel_size()[i]);
  weight = {Tensor::zeros(shape), Tensor::zeros(shape)};
  register_parameter("weight", &weight);
  if (o.bias()) {
    bias = {Tensor::zeros({o.out_channels()}), Tensor::zeros({o.out_channels()})};
    register_parameter("bias", &bias);
  }
  init::default_reset_(weight.value, &bias.value, gen);
  kernels_ = detail::make_conv_kernels(spec_of(options_));
}

template <std::size_t D>
ConvNd<D>::ConvNd(ConvOptions<D> options, std::uint64_t seed)
    : ConvNd(options, *std::make_unique<Generator>(seed)) {}

template <std::size_t D>
ConvNd<D>::~ConvNd() = default;

template <std::size_t D>
std::string ConvNd<D>::backend() {
  return detail::conv_kernels_name();
}

template <std::size_t D>
std::string ConvNd<D>::type_name() const {
  return "Conv" + std::to_string(D) + "d";
}

template <std::size_t D>
std::string ConvNd<D>::extra_repr() const {
  const auto& o = options_;
  return std::to_string(o.in_channels()) + ", " + std::to_string(o.out_channels()) +
         ", kernel_size=" + o.kernel_size().str() + ", stride=" + o.stride().str() +
         (o.padding() != SizeN<D>(0) ? ", padding=" + o.padding().str() : "") +
         (o.dilation() != SizeN<D>(1) ? ", dilation=" + o.dilation().str() : "") +
         (o.groups() != 1 ? ", groups=" + std::to_string(o.groups()) : "") +
         (o.bias() ? "" : ", bias=False");
}

template <std::size_t D>
Shape ConvNd<D>::output_shape(const Shape& in) const {
  const auto& o = options_;
  const std::string name = type_name() + "(" + extra_repr() + ")";
  static const char* const kLayout[] = {"", "[N, C, L]", "[N, C, H, W]", "[N, C, D, H, W]"};
  SYNCBN_CHECK_AS(ShapeError, in.size() == D + 2, name, ": expected ", D + 2, "D input ",
                  kLayout[D], " (got ", in.size(), "D input of shape ", shape_str(in), ")");
  SYNCBN_CHECK_AS(ShapeError, in[1] == o.in_channels(), name, ": expected input with ",
                  o.in_channels(), " channels, got input of shape ", shape_str(in));
  Shape out{in[0], o.out_channels()};
  bool fits = true;
  for (std::size_t i = 0; i < D; ++i) {
    const std::int64_t span =
        in[i + 2] + 2 * o.padding()[i] - o.dilation()[i] * (o.kernel_size()[i] - 1) - 1;
    fits = fits && span >= 0;
    out.push_back(span >= 0 ? span / o.stride()[i] + 1 : 0);
  }
  SYNCBN_CHECK_AS(ShapeError, fits, name, ": input of shape ", shape_str(in),
                  " is smaller than the (dilated) kernel after padding");
  return out;
}

template <std::size_t D>
Tensor ConvNd<D>::forward(const Tensor& input) {
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

template <std::size_t D>
Tensor ConvNd<D>::backward(const Tensor& grad_output) {
  const std::string name = type_name() + "(" + extra_repr() + ")";
  SYNCBN_CHECK(has_saved_, name, ": backward called before forward");
  const Shape out_shape = output_shape(saved_input_shape_);
  SYNCBN_CHECK_AS(ShapeError, grad_output.shape() == out_shape, name, ": grad_output shape ",
                  shape_str(grad_output.shape()), " does not match the output shape ",
                  shape_str(out_shape));
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

template class ConvNd<1>;
template class ConvNd<2>;
template class ConvNd<3>;

namespace {
template <std::size_t D>
bool init_if_conv(Module& module, Generator& gen) {
  auto* conv = dynamic_cast<ConvNd<D>*>(&module);
  if (conv != nullptr)
    init::kaiming_normal_(conv->weight.value, gen, 0.0, init::FanMode::FanOut,
                          init::Nonlinearity::ReLU);
  return conv != nullptr;
}
}  // namespace

void kaiming_normal_conv_weights_(Module& root, Generator& gen) {
  // modules() order (pre-order), as torchvision's loop: it fixes the draws from `gen`.
  for (const auto& module : root.modules())
    if (!init_if_conv<2>(*module, gen) && !init_if_conv<1>(*module, gen))
      init_if_conv<3>(*module, gen);
}

}  // namespace syncbn::nn
