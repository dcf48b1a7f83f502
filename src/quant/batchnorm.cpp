#include "syncbn/quant/batchnorm.hpp"

#include "batch_norm_kernel.hpp"
#include "core/py_repr.hpp"
#include "syncbn/error.hpp"

namespace syncbn::quant {
namespace {
using nn::detail::py_float;

void check_vector(const Tensor& t, const char* name, std::int64_t channels, const QTensor& input) {
  SYNCBN_CHECK_AS(ShapeError, t.defined() && t.dtype() == DType::Float32 && t.numel() == channels,
                  "quantized batch_norm: ", name, " must be a float32 tensor of ", channels,
                  " elements (the channels of input shape ", shape_str(input.shape()), "), got ",
                  t.defined()
                      ? std::string(dtype_name(t.dtype())) + " of shape " + shape_str(t.shape())
                      : std::string("an undefined tensor"));
}

void check_arguments(const QTensor& input, const Tensor& weight, const Tensor& bias,
                     const Tensor& mean, const Tensor& var, double output_scale,
                     std::int64_t output_zero_point) {
  SYNCBN_CHECK(input.defined(), "quantized batch_norm: undefined input");
  SYNCBN_CHECK_AS(ShapeError, input.dim() >= 2,
                  "quantized batch_norm: expected input of rank 2 or more (N, C, *), got shape ",
                  shape_str(input.shape()));
  const std::int64_t channels = input.size(1);
  check_vector(weight, "weight", channels, input);
  check_vector(bias, "bias", channels, input);
  check_vector(mean, "running_mean", channels, input);
  check_vector(var, "running_var", channels, input);
  check_qparams(output_scale, output_zero_point, input.dtype(), "quantized batch_norm output");
}

}  // namespace

void batch_norm_out(QTensor& out, const QTensor& input, const Tensor& weight, const Tensor& bias,
                    const Tensor& mean, const Tensor& var, double eps, double output_scale,
                    std::int64_t output_zero_point, bool relu) {
  SYNCBN_CHECK(&out != &input, "quantized batch_norm_out: out must not be the input");
  check_arguments(input, weight, bias, mean, var, output_scale, output_zero_point);
  if (input.numel() == 0) {  // PyTorch returns a copy of the empty input, qparams and all
    out = input;
    return;
  }
  const detail::FusedParams params =
      detail::fused_params(weight, bias, mean, var, eps, input.q_scale(), output_scale);
  if (out.defined() && out.shape() == input.shape() && out.dtype() == input.dtype())
    out.set_qparams(output_scale, output_zero_point);
  else
    out = QTensor(Tensor::empty(input.shape(), DType::UInt8), output_scale, output_zero_point,
                  input.dtype());  // the kernel writes every code: no zero-fill
  detail::batch_norm_codes(input, params, output_zero_point, relu, out);
}

QTensor batch_norm(const QTensor& input, const Tensor& weight, const Tensor& bias,
                   const Tensor& mean, const Tensor& var, double eps, double output_scale,
                   std::int64_t output_zero_point, bool relu) {
  QTensor out;
  batch_norm_out(out, input, weight, bias, mean, var, eps, output_scale, output_zero_point, relu);
  return out;
}

BatchNormBase::BatchNormBase(std::int64_t num_features, double eps, double momentum,
                             nn::BatchNormVariant variant, bool relu)
    : num_features_(num_features), eps_(eps), momentum_(momentum), variant_(variant), relu_(relu) {
  SYNCBN_ASSERT(variant == nn::BatchNormVariant::TwoD || variant == nn::BatchNormVariant::ThreeD,
                "quantized BatchNorm exists for 2d and 3d only");
  const char* suffix = nn::variant_suffix(variant_);
  SYNCBN_CHECK(num_features > 0, "Quantized BatchNorm", suffix,
               ": num_features must be positive, got ", num_features);
  SYNCBN_CHECK(eps > 0, "Quantized BatchNorm", suffix, ": eps must be positive, got ", eps);
  weight.value = Tensor::ones({num_features});
  bias.value = Tensor::zeros({num_features});
  running_mean = Tensor::zeros({num_features});
  running_var = Tensor::ones({num_features});
  num_batches_tracked = Tensor::scalar_int64(0);
  scale = Tensor::full({}, 1.0);
  zero_point = Tensor::zeros({}, DType::Int64);
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  for (auto [name, buffer] : {std::pair<const char*, Tensor*>{"running_mean", &running_mean},
                              {"running_var", &running_var},
                              {"num_batches_tracked", &num_batches_tracked},
                              {"scale", &scale},
                              {"zero_point", &zero_point}})
    register_buffer(name, buffer);
  eval();  // inference-only: training mode would change nothing, but eval is the honest state
}

std::string BatchNormBase::type_name() const {
  return std::string(relu_ ? "QuantizedBNReLU" : "QuantizedBatchNorm") +
         nn::variant_suffix(variant_);
}

std::string BatchNormBase::extra_repr() const {
  return std::to_string(num_features_) + ", eps=" + py_float(eps_) +
         ", momentum=" + py_float(momentum_) + ", affine=True, track_running_stats=True";
}

double BatchNormBase::output_scale() const {
  return scale.data<float>()[0];
}
std::int64_t BatchNormBase::output_zero_point() const {
  return zero_point.data<std::int64_t>()[0];
}

void BatchNormBase::set_output_qparams(double output_scale, std::int64_t output_zero_point) {
  // Either 8-bit dtype may arrive, so accept the union of their ranges here.
  SYNCBN_CHECK(output_zero_point >= qdtype_min(QDType::QInt8) &&
                   output_zero_point <= qdtype_max(QDType::QUInt8),
               type_name(), ": output zero_point ", output_zero_point, " is outside [-128, 255]");
  check_qparams(output_scale, 0, QDType::QUInt8, type_name().c_str());
  scale.data<float>()[0] = static_cast<float>(output_scale);
  zero_point.data<std::int64_t>()[0] = output_zero_point;
}

QTensor BatchNormBase::forward(const QTensor& input) {
  const bool is_3d = variant_ == nn::BatchNormVariant::ThreeD;
  SYNCBN_CHECK_AS(ShapeError, input.dim() == (is_3d ? 5 : 4), type_name(),
                  ": expected input of shape ", is_3d ? "(N, C, D, H, W)" : "(N, C, H, W)",
                  ", got ", input.dim(), "D input of shape ", shape_str(input.shape()));
  SYNCBN_CHECK_AS(ShapeError, input.size(1) == num_features_, type_name(), "(", num_features_,
                  "): expected input with ", num_features_, " channels, got ", input.size(1),
                  " (input shape ", shape_str(input.shape()), ")");
  // PyTorch passes the float32 scale buffer to the op as a double: so do we.
  return batch_norm(input, weight.value, bias.value, running_mean, running_var, eps_,
                    output_scale(), output_zero_point(), relu_);
}

Tensor BatchNormBase::forward(const Tensor&) {
  throw ValueError(type_name() +
                   ": forward takes a quantized tensor (QTensor); quantize the input with "
                   "quant::quantize_per_tensor first");
}

Tensor BatchNormBase::backward(const Tensor&) {
  throw ValueError(type_name() + " is inference-only: it has no backward");
}

void BatchNormBase::prepare_load(nn::StateDict& dict, const std::string& prefix) {
  for (const char* key : {"scale", "zero_point"}) {
    auto it = dict.find(prefix + key);
    if (it != dict.end() && it->second.shape() == Shape{1}) it->second = it->second.reshape({});
  }
}

}  // namespace syncbn::quant
