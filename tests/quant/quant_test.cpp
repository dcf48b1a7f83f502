// Quantized tensors, MinMaxObserver and quantized BatchNorm: contracts, errors and module
// plumbing. Bit-exactness against PyTorch is golden_test.cpp's job; the kernel checks here use
// an independent scalar reference of the same formula (batch_norm_kernel.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "support/test_util.hpp"
#include "syncbn/error.hpp"
#include "syncbn/quant/batchnorm.hpp"
#include "syncbn/quant/observer.hpp"
#include "syncbn/quant/qtensor.hpp"

namespace syncbn::quant {
namespace {
using testing::error_of;
using testing::random_tensor;

TEST(QTensor, QuantizeRoundsHalfToEvenAndClamps) {
  // scale 0.5: x / scale is exact, so these are exact ties 0.5, 1.5, 2.5, -0.5, -1.5.
  const Tensor x = Tensor::from({8}, {0.25f, 0.75f, 1.25f, -0.25f, -0.75f, 1000.f, -1000.f, 0.f});
  const QTensor q = quantize_per_tensor(x, 0.5, 10);
  const std::vector<int> expected = {10, 12, 12, 10, 8, 255, 0, 10};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(q.int_repr().item(i), expected[i]) << i;
  EXPECT_EQ(q.int_repr().dtype(), DType::UInt8);
}

TEST(QTensor, QInt8CodesAreSignedInIntRepr) {
  const QTensor q =
      quantize_per_tensor(Tensor::from({4}, {-1.f, 0.f, 1.f, 100.f}), 0.1, -3, QDType::QInt8);
  const Tensor codes = q.int_repr();
  EXPECT_EQ(codes.dtype(), DType::Int64);
  EXPECT_EQ(codes.item(0), -13);
  EXPECT_EQ(codes.item(1), -3);
  EXPECT_EQ(codes.item(2), 7);
  EXPECT_EQ(codes.item(3), 127);
  const QTensor back = make_per_tensor_quantized_tensor(codes, 0.1, -3, QDType::QInt8);
  EXPECT_EQ(std::memcmp(back.data(), q.data(), 4), 0);
  EXPECT_FLOAT_EQ(back.dequantize().item(0), -10 * 0.1f);
}

TEST(QTensor, DequantizeIsWithinHalfAStepOfTheInput) {
  const Tensor x = random_tensor({3, 4, 5}, 1);
  const QTensor q = quantize_per_tensor(x, 0.05, 128);
  const Tensor back = dequantize(q);
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    if (std::abs(x.item(i)) < 6.0) {
      EXPECT_LE(std::abs(back.item(i) - x.item(i)), 0.025 + 1e-6);
    }
  }
  EXPECT_EQ(q.reshape({12, 5}).shape(), (Shape{12, 5}));
}

TEST(QTensor, NonFiniteInputsSaturate) {
  const float inf = std::numeric_limits<float>::infinity();
  const QTensor q = quantize_per_tensor(
      Tensor::from({3}, {inf, -inf, std::numeric_limits<float>::quiet_NaN()}), 0.1, 7);
  EXPECT_EQ(q.int_repr().item(0), 255);  // PyTorch 1.13 overflows to 0 here (documented)
  EXPECT_EQ(q.int_repr().item(1), 0);
  EXPECT_EQ(q.int_repr().item(2), 0);  // NaN gives qmin, as in PyTorch
}

TEST(QTensor, InvalidQParamsAreRejected) {
  const Tensor x = Tensor::zeros({2});
  EXPECT_NE(error_of([&] { quantize_per_tensor(x, 0.0, 0); }).find("scale must be positive"),
            std::string::npos);
  EXPECT_THROW(quantize_per_tensor(x, -0.1, 0), ValueError);
  EXPECT_THROW(quantize_per_tensor(x, std::nan(""), 0), ValueError);
  EXPECT_THROW(quantize_per_tensor(x, 1e-50, 0), ValueError);  // 0 as float32
  EXPECT_NE(
      error_of([&] { quantize_per_tensor(x, 0.1, 256); }).find("outside the quint8 range [0, 255]"),
      std::string::npos);
  EXPECT_THROW(quantize_per_tensor(x, 0.1, -129, QDType::QInt8), ValueError);
  EXPECT_THROW(quantize_per_tensor(Tensor::zeros({2}, DType::Float64), 0.1, 0), ValueError);
  EXPECT_THROW(make_per_tensor_quantized_tensor(Tensor::full({1}, 300, DType::Int64), 0.1, 0,
                                                QDType::QUInt8),
               ValueError);
  EXPECT_THROW(QTensor(Tensor::zeros({2}), 0.1, 0, QDType::QUInt8), ValueError);  // float storage
}

TEST(MinMaxObserver, NothingObservedGivesPlaceholderQParams) {
  MinMaxObserver observer;
  EXPECT_FALSE(observer.has_observed());
  observer.forward(Tensor::zeros({0, 3}));
  EXPECT_FALSE(observer.has_observed());
  const QParams q = observer.calculate_qparams();
  EXPECT_EQ(q.scale, 1.f);
  EXPECT_EQ(q.zero_point, 0);
}

TEST(MinMaxObserver, RangeIncludesZeroAndAccumulatesAcrossBatches) {
  MinMaxObserver observer;  // quint8 [0, 255], affine
  observer.forward(Tensor::from({2}, {1.f, 2.f}));
  EXPECT_EQ(observer.min_val(), 1.f);
  observer.forward(Tensor::from({2}, {3.f, 4.f}));
  EXPECT_EQ(observer.max_val(), 4.f);
  const QParams q = observer.calculate_qparams();
  EXPECT_EQ(q.scale, 4.f / 255.f);  // min_neg = 0, so the range is [0, 4]
  EXPECT_EQ(q.zero_point, 0);
  observer.reset_min_max_vals();
  EXPECT_FALSE(observer.has_observed());
}

TEST(MinMaxObserver, RangesFollowDtypeReduceRangeAndCustomBounds) {
  EXPECT_EQ(default_observer().quant_max(), 127);
  EXPECT_EQ(MinMaxObserver(MinMaxObserverOptions().reduce_range(true)).quant_max(), 127);
  const MinMaxObserver s8(MinMaxObserverOptions().dtype(QDType::QInt8).reduce_range(true));
  EXPECT_EQ(s8.quant_min(), -64);
  EXPECT_EQ(s8.quant_max(), 63);
  const MinMaxObserver custom(
      MinMaxObserverOptions().quant_min(0).quant_max(201).reduce_range(true));
  EXPECT_EQ(custom.quant_max(), 100);
}

TEST(MinMaxObserver, BadConfigurationsAndNaNAreErrors) {
  using O = MinMaxObserverOptions;
  EXPECT_THROW(MinMaxObserver(O().quant_min(0)), ValueError);
  EXPECT_THROW(MinMaxObserver(O().quant_min(1).quant_max(10)), ValueError);  // must include 0
  EXPECT_THROW(MinMaxObserver(O().quant_min(0).quant_max(300)), ValueError);
  EXPECT_THROW(MinMaxObserver(O().qscheme(QScheme::PerTensorSymmetric).reduce_range(true)),
               ValueError);
  MinMaxObserver observer;
  observer.forward(Tensor::from({2}, {1.f, std::numeric_limits<float>::quiet_NaN()}));
  EXPECT_TRUE(std::isnan(observer.min_val()));
  EXPECT_THROW(observer.calculate_qparams(), ValueError);
}

// Scalar reference of batch_norm_kernel.hpp's formula, written independently of the kernel.
Tensor reference_codes(const QTensor& x, const BatchNormBase& m) {
  const std::int64_t c = x.size(1), s = x.numel() / (x.size(0) * c);
  Tensor out(x.shape(), DType::UInt8);
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const std::int64_t ch = (i / s) % c;
    const float root = std::sqrt(m.running_var.data<float>()[ch] + float(m.eps()));
    const float inv = float(1.0 / double(root));
    const float w = m.weight.value.data<float>()[ch], b = m.bias.value.data<float>()[ch];
    const float alpha = float(double(inv * w) * (x.q_scale() / m.output_scale()));
    const float shifted = b - m.running_mean.data<float>()[ch] * inv * w;  // -ffp-contract=off
    const float beta = float(double(shifted) / m.output_scale());
    const float v = std::fma(alpha, float(int(x.data()[i]) - x.q_zero_point()), beta);
    long q = std::lrint(v) + m.output_zero_point();
    if (m.relu_fused()) q = std::max(q, long(m.output_zero_point()));
    out.data<std::uint8_t>()[i] = std::uint8_t(std::clamp(q, 0L, 255L));
  }
  return out;
}

void randomise(BatchNormBase& m, std::uint32_t seed) {
  const auto c = m.num_features();
  m.weight.value = random_tensor({c}, seed, 1.f, 0.5f);
  m.bias.value = random_tensor({c}, seed + 1);
  m.running_mean = random_tensor({c}, seed + 2);
  m.running_var = Tensor::full({c}, 0.7);
  m.set_output_qparams(0.03, 100);
}

TEST(QuantBatchNorm, KernelMatchesScalarReferenceOnLargeOddShapes) {
  // All three take the table path (>= 256 codes per channel); [700, 33, 7] is above the
  // parallel grain, so it splits channels across OpenMP threads; planes of 1, 7 and 1031 codes
  // exercise the masked tails.
  for (const Shape& shape : {Shape{3, 5, 1031}, Shape{700, 33, 7}, Shape{9000, 3, 1}}) {
    for (bool relu : {false, true}) {
      std::shared_ptr<BatchNormBase> m;
      if (relu)
        m = std::make_shared<BNReLU2d>(shape[1]);
      else
        m = std::make_shared<BatchNorm2d>(shape[1]);
      randomise(*m, 5);
      const QTensor x = quantize_per_tensor(random_tensor(shape, 7, 0.f, 2.f), 0.02, 120);
      const QTensor x4 = x.reshape({shape[0], shape[1], shape[2], 1});
      const QTensor y = m->forward(x4);
      EXPECT_EQ(std::memcmp(y.data(), reference_codes(x4, *m).raw(), x.numel()), 0)
          << shape_str(shape) << " relu=" << relu;
    }
  }
}

}  // namespace
}  // namespace syncbn::quant
