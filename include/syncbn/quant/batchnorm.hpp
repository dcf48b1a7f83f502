#pragma once
// Quantized BatchNorm for inference, bit-exact with PyTorch 1.13's
// torch.ao.nn.quantized.BatchNorm2d/3d and torch.nn.intrinsic.quantized.BNReLU2d/3d.
//
// For an input x with codes q, scale s_in and zero point z_in, running stats (mean, var),
// weight w, bias b, eps, and output qparams (s_out, z_out), every code is mapped by
//   alpha = w / sqrt(var + eps) * s_in / s_out,   beta = (b - mean * w / sqrt(var + eps)) / s_out
//   y = clamp(z_out + nearbyint(alpha * (q - z_in) + beta), qmin, qmax)       (ReLU: y >= z_out)
// i.e. dequantize, eval-mode BatchNorm, (ReLU,) requantize — evaluated with PyTorch's exact
// float32/float64 steps and a fused multiply-add (src/quant/batch_norm_kernel.hpp), so the codes
// equal PyTorch's bit for bit. The output has the input's dtype. Batch statistics are never used.
//
// The modules are nn::Modules so that state_dict, load_state_dict, repr and module-swapping
// conversions work as for every other layer; their float forward/backward throw, because the
// layer is defined on quantized tensors only: call forward(const QTensor&).
#include <cstdint>
#include <memory>
#include <string>

#include "syncbn/nn/batchnorm.hpp"
#include "syncbn/nn/module.hpp"
#include "syncbn/quant/observer.hpp"
#include "syncbn/quant/qtensor.hpp"

namespace syncbn::quant {

// torch.ops.quantized.batch_norm (input of rank >= 2, channels in dim 1) and, with relu,
// batch_norm_relu. weight, bias, mean and var are float32 vectors of C entries (ShapeError
// otherwise); output_zero_point must fit the input's dtype (ValueError). As in PyTorch, an empty
// input is returned as it is, with its own qparams.
QTensor batch_norm(const QTensor& input, const Tensor& weight, const Tensor& bias,
                   const Tensor& mean, const Tensor& var, double eps, double output_scale,
                   std::int64_t output_zero_point, bool relu = false);
// The same, writing into `out` (reallocated unless it already has input's shape and dtype) so a
// caller can reuse one output buffer across calls. `out` must not be `input`.
void batch_norm_out(QTensor& out, const QTensor& input, const Tensor& weight, const Tensor& bias,
                    const Tensor& mean, const Tensor& var, double eps, double output_scale,
                    std::int64_t output_zero_point, bool relu = false);

class BatchNormBase : public nn::Module {
 public:
  // Parameters and buffers under PyTorch's state_dict keys: weight, bias, running_mean,
  // running_var (float32, C), num_batches_tracked (int64 scalar, kept for compatibility),
  // scale (float32 scalar) and zero_point (int64 scalar) of the output.
  nn::Parameter weight, bias;
  Tensor running_mean, running_var, num_batches_tracked, scale, zero_point;

  // Throws ShapeError unless input is 4D (2d variants) or 5D (3d) with num_features channels.
  QTensor forward(const QTensor& input);
  // Not defined for float tensors: throw ValueError naming the layer.
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;

  std::string type_name() const override;  // "QuantizedBatchNorm2d", "QuantizedBNReLU3d", ...
  std::string extra_repr() const override;

  std::int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }  // unused in inference; kept for repr
  bool relu_fused() const { return relu_; }
  nn::BatchNormVariant variant() const { return variant_; }  // TwoD or ThreeD

  // The output qparams. The scale is held in float32, as PyTorch's buffer, so output_scale()
  // returns the float32 value of what was set.
  double output_scale() const;
  std::int64_t output_zero_point() const;
  // Throws ValueError for a scale that is not positive and finite as float32, or a zero_point
  // outside [-128, 255]; forward then checks it against the input's dtype.
  void set_output_qparams(double output_scale, std::int64_t output_zero_point);

 protected:
  BatchNormBase(std::int64_t num_features, double eps, double momentum,
                nn::BatchNormVariant variant, bool relu);
  // Accepts PyTorch dicts whose scale / zero_point have shape [1] (from_float stores the
  // observer's 1-element tensors) by reading them as scalars.
  void prepare_load(nn::StateDict& dict, const std::string& prefix) override;

 private:
  std::int64_t num_features_;
  double eps_, momentum_;
  nn::BatchNormVariant variant_;
  bool relu_;
};

class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(std::int64_t num_features, double eps = 1e-5, double momentum = 0.1)
      : BatchNormBase(num_features, eps, momentum, nn::BatchNormVariant::TwoD, false) {}
};
class BatchNorm3d : public BatchNormBase {
 public:
  explicit BatchNorm3d(std::int64_t num_features, double eps = 1e-5, double momentum = 0.1)
      : BatchNormBase(num_features, eps, momentum, nn::BatchNormVariant::ThreeD, false) {}
};
// BatchNorm fused with ReLU: y = max(y, z_out), i.e. ReLU in the real domain.
class BNReLU2d : public BatchNormBase {
 public:
  explicit BNReLU2d(std::int64_t num_features, double eps = 1e-5, double momentum = 0.1)
      : BatchNormBase(num_features, eps, momentum, nn::BatchNormVariant::TwoD, true) {}
};
class BNReLU3d : public BatchNormBase {
 public:
  explicit BNReLU3d(std::int64_t num_features, double eps = 1e-5, double momentum = 0.1)
      : BatchNormBase(num_features, eps, momentum, nn::BatchNormVariant::ThreeD, true) {}
};

// Whether PyTorch has a quantized form of bn's class: BatchNorm2d and BatchNorm3d only.
bool has_quantized_form(const nn::BatchNormBase& bn);

// A quantized copy of a float BatchNorm2d/3d: weight, bias, running stats and eps are copied
// (affine=false gives weight 1 and bias 0, which is the same map); the output qparams
// come from observer.calculate_qparams(). fuse_relu gives a BNReLU module. Throws ValueError for
// a BatchNorm1d, an uninitialised lazy module, a module without running stats, or an observer
// that has seen no data (its qparams would be PyTorch's placeholder scale 1, zero_point 0).
std::shared_ptr<BatchNormBase> from_float(const nn::BatchNormBase& bn,
                                          const MinMaxObserver& observer, bool fuse_relu = false);
// As from_float with the output qparams given (PyTorch's from_reference); this one also copies
// momentum (None becomes 0.1), as PyTorch's does. Neither changes what forward computes.
std::shared_ptr<BatchNormBase> from_reference(const nn::BatchNormBase& bn, double output_scale,
                                              std::int64_t output_zero_point,
                                              bool fuse_relu = false);

}  // namespace syncbn::quant
