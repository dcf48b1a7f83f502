#pragma once
// MinMaxObserver: records the running min and max of the float tensors it sees and turns them
// into per-tensor quantization parameters, as torch.ao.quantization.MinMaxObserver (1.13).
//
// Quantized range [qmin, qmax]: quant_min/quant_max when both are given (halved, rounding down,
// when reduce_range), else quint8 [0, 255] ([0, 127] with reduce_range) or qint8 [-128, 127]
// ([-64, 63]). With min_neg = min(min_val, 0) and max_pos = max(max_val, 0), all in float32:
//   affine:     scale = max((max_pos - min_neg) / float(qmax - qmin), eps)
//               zero_point = clamp(qmin - nearbyint(min_neg / scale), qmin, qmax)
//   symmetric:  scale = max(max(-min_neg, max_pos) / (float(qmax - qmin) / 2), eps)
//               zero_point = 0 (qint8), 128 (quint8), (qmin + qmax) / 2 (quint8, custom range)
// eps defaults to float32's machine epsilon. Nothing observed yet: scale 1, zero_point 0, as
// PyTorch (which also warns). Including 0 in [min_neg, max_pos] keeps 0.0 exactly representable.
#include <cfloat>
#include <cstdint>
#include <optional>

#include "syncbn/options.hpp"
#include "syncbn/quant/qtensor.hpp"
#include "syncbn/tensor.hpp"

namespace syncbn::quant {

enum class QScheme { PerTensorAffine, PerTensorSymmetric };

struct MinMaxObserverOptions {
  SYNCBN_ARG(QDType, dtype) = QDType::QUInt8;
  SYNCBN_ARG(QScheme, qscheme) = QScheme::PerTensorAffine;
  SYNCBN_ARG(bool, reduce_range) = false;
  // A custom range: both or neither, quant_min <= 0 <= quant_max, inside the dtype's range.
  SYNCBN_ARG(std::optional<std::int64_t>, quant_min);
  SYNCBN_ARG(std::optional<std::int64_t>, quant_max);
  SYNCBN_ARG(float, eps) = FLT_EPSILON;
};

// What calculate_qparams returns; scale is a float32 value, as PyTorch's float32 scale tensor.
struct QParams {
  float scale = 1.f;
  std::int64_t zero_point = 0;
};

class MinMaxObserver {
 public:
  // Throws ValueError for an invalid range, or for symmetric quint8 with reduce_range (which
  // PyTorch does not implement either).
  explicit MinMaxObserver(MinMaxObserverOptions options = MinMaxObserverOptions());

  // Folds x's min and max (float32) into the running values and returns x. An empty x changes
  // nothing. A NaN makes both running values NaN, as torch.aminmax / torch.min do.
  const Tensor& forward(const Tensor& x);
  // Throws ValueError when the running values are NaN (PyTorch asserts min_val <= max_val).
  QParams calculate_qparams() const;
  void reset_min_max_vals();

  // False until a non-empty tensor has been observed.
  bool has_observed() const;
  float min_val() const { return min_val_; }
  float max_val() const { return max_val_; }
  std::int64_t quant_min() const { return quant_min_; }
  std::int64_t quant_max() const { return quant_max_; }
  const MinMaxObserverOptions& options() const { return options_; }

 private:
  MinMaxObserverOptions options_;
  std::int64_t quant_min_ = 0, quant_max_ = 255;
  float min_val_, max_val_;
};

// torch.ao.quantization.default_observer in 1.13: MinMaxObserver(quant_min=0, quant_max=127),
// quint8 and per-tensor affine — the 7-bit activation range that reduce_range also gives.
MinMaxObserver default_observer();

}  // namespace syncbn::quant
