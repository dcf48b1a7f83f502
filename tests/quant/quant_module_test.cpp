// Quantized BatchNorm modules as nn::Modules: names, repr, state_dict, input checks, the float
// entry points that must refuse, from_float / from_reference and convert_batchnorms.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "support/test_util.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/batchnorm.hpp"
#include "syncbn/quant/batchnorm.hpp"
#include "syncbn/quant/convert.hpp"

namespace syncbn::quant {
namespace {
using testing::error_of;
using testing::random_tensor;

MinMaxObserver calibrated(float lo, float hi) {
  MinMaxObserver observer;
  observer.forward(Tensor::from({2}, {lo, hi}));
  return observer;
}

TEST(QuantBatchNormModule, NamesAndReprFollowPyTorch) {
  EXPECT_EQ(BatchNorm2d(3).type_name(), "QuantizedBatchNorm2d");
  EXPECT_EQ(BNReLU3d(3).type_name(), "QuantizedBNReLU3d");
  EXPECT_EQ(
      BatchNorm2d(3).repr(),
      "QuantizedBatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
}

TEST(QuantBatchNormModule, StateDictHasPyTorchKeysShapesAndDtypes) {
  BatchNorm2d m(3);
  const nn::StateDict dict = m.state_dict();
  const std::map<std::string, std::pair<Shape, DType>> expected = {
      {"weight", {{3}, DType::Float32}},           {"bias", {{3}, DType::Float32}},
      {"running_mean", {{3}, DType::Float32}},     {"running_var", {{3}, DType::Float32}},
      {"num_batches_tracked", {{}, DType::Int64}}, {"scale", {{}, DType::Float32}},
      {"zero_point", {{}, DType::Int64}}};
  ASSERT_EQ(dict.size(), expected.size());
  for (const auto& [key, spec] : expected) {
    ASSERT_TRUE(dict.count(key)) << key;
    EXPECT_EQ(dict.at(key).shape(), spec.first) << key;
    EXPECT_EQ(dict.at(key).dtype(), spec.second) << key;
  }
  EXPECT_EQ(dict.at("scale").item(), 1.0);  // PyTorch's defaults: scale 1, zero_point 0
  EXPECT_EQ(dict.at("running_var").item(2), 1.0);
}

TEST(QuantBatchNormModule, StateDictRoundTripsAndAcceptsOneElementQParams) {
  BatchNorm3d a(4);
  a.running_mean = random_tensor({4}, 3);
  a.set_output_qparams(0.1, 42);
  nn::StateDict dict = a.state_dict();
  dict["scale"] = dict["scale"].reshape({1});  // as PyTorch saves it after from_float
  BatchNorm3d b(4);
  b.load_state_dict(dict);
  EXPECT_EQ(b.output_scale(), double(0.1f));  // held in float32, like PyTorch's buffer
  EXPECT_EQ(b.output_zero_point(), 42);
  EXPECT_EQ(max_abs_diff(b.running_mean, a.running_mean), 0.0);
}

TEST(QuantBatchNormModule, FloatForwardAndBackwardRefuse) {
  BatchNorm2d m(3);
  EXPECT_NE(error_of([&] {
              m.forward(Tensor::zeros({1, 3, 2, 2}));
            }).find("takes a quantized tensor"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              m.backward(Tensor::zeros({1, 3, 2, 2}));
            }).find("inference-only"),
            std::string::npos);
}

TEST(QuantBatchNormModule, InputChecksNameTheExpectedLayout) {
  const QTensor x4 = quantize_per_tensor(Tensor::zeros({1, 3, 2, 2}), 0.1, 0);
  const QTensor x5 = x4.reshape({1, 3, 2, 2, 1});
  EXPECT_EQ(error_of([&] { BatchNorm3d(3).forward(x4); }),
            "QuantizedBatchNorm3d: expected input of shape (N, C, D, H, W), got 4D input of shape "
            "[1, 3, 2, 2]");
  EXPECT_EQ(error_of([&] { BNReLU2d(3).forward(x5); }),
            "QuantizedBNReLU2d: expected input of shape (N, C, H, W), got 5D input of shape "
            "[1, 3, 2, 2, 1]");
  EXPECT_THROW(BatchNorm2d(4).forward(x4), ShapeError);
  BatchNorm2d m(3);
  m.set_output_qparams(0.1, 200);  // fine for quint8, not for a qint8 input
  EXPECT_THROW(m.forward(quantize_per_tensor(Tensor::zeros({1, 3, 2, 2}), 0.1, 0, QDType::QInt8)),
               ValueError);
  EXPECT_THROW(m.set_output_qparams(0.0, 0), ValueError);
  EXPECT_THROW(m.set_output_qparams(0.1, 256), ValueError);
}

TEST(QuantBatchNormModule, EmptyInputComesBackWithItsOwnQParams) {
  BatchNorm2d m(3);
  m.set_output_qparams(0.5, 7);
  const QTensor y = m.forward(quantize_per_tensor(Tensor::zeros({0, 3, 2, 2}), 0.1, 3));
  EXPECT_EQ(y.shape(), (Shape{0, 3, 2, 2}));
  EXPECT_EQ(y.q_scale(), 0.1);  // PyTorch 1.13 returns input.clone() here
  EXPECT_EQ(y.q_zero_point(), 3);
}

TEST(QuantBatchNormModule, OutVariantReusesTheBuffer) {
  BatchNorm2d m(3);
  const QTensor x = quantize_per_tensor(random_tensor({2, 3, 4, 4}, 1), 0.05, 128);
  QTensor out;
  batch_norm_out(out, x, m.weight.value, m.bias.value, m.running_mean, m.running_var, 1e-5, 0.1, 9);
  const std::uint8_t* storage = out.data();
  batch_norm_out(out, x, m.weight.value, m.bias.value, m.running_mean, m.running_var, 1e-5, 0.2, 8);
  EXPECT_EQ(out.data(), storage);
  EXPECT_EQ(out.q_zero_point(), 8);
  const QTensor fresh =
      batch_norm(x, m.weight.value, m.bias.value, m.running_mean, m.running_var, 1e-5, 0.2, 8);
  EXPECT_EQ(std::memcmp(fresh.data(), out.data(), x.numel()), 0);
  QTensor& alias = out;
  EXPECT_THROW(batch_norm_out(alias, out, m.weight.value, m.bias.value, m.running_mean,
                              m.running_var, 1e-5, 0.2, 8),
               ValueError);
  EXPECT_THROW(
      batch_norm(x, Tensor::ones({4}), m.bias.value, m.running_mean, m.running_var, 1e-5, 0.1, 0),
      ShapeError);
}

TEST(QuantFromFloat, CopiesStateAndTakesQParamsFromTheObserver) {
  nn::BatchNorm2d bn(nn::BatchNormOptions(3).eps(1e-3).momentum(0.3));
  bn.weight.value = random_tensor({3}, 1);
  bn.running_var = Tensor::full({3}, 2.0);
  const auto q = from_float(bn, calibrated(-1.f, 3.f), /*fuse_relu=*/true);
  EXPECT_EQ(q->type_name(), "QuantizedBNReLU2d");
  EXPECT_EQ(q->eps(), 1e-3);
  EXPECT_EQ(q->momentum(), 0.1);  // PyTorch's from_float does not carry momentum
  EXPECT_EQ(max_abs_diff(q->weight.value, bn.weight.value), 0.0);
  EXPECT_EQ(q->running_var.item(1), 2.0);
  EXPECT_EQ(q->output_scale(), double(4.f / 255.f));
  EXPECT_EQ(q->output_zero_point(), 64);  // 0 - round(-1 / (4/255)) = 64
}

TEST(QuantFromFloat, RejectsWhatCannotBeQuantized) {
  const MinMaxObserver ok = calibrated(0.f, 1.f);
  EXPECT_NE(error_of([&] { from_float(nn::BatchNorm1d(3), ok); }).find("no quantized counterpart"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              from_float(nn::BatchNorm2d(nn::BatchNormOptions(3).track_running_stats(false)), ok);
            }).find("no running statistics"),
            std::string::npos);
  EXPECT_NE(error_of([&] { from_float(nn::LazyBatchNorm2d(), ok); }).find("not been initialised"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { from_float(nn::BatchNorm2d(3), MinMaxObserver()); }).find("seen no data"),
      std::string::npos);
}

TEST(QuantFromFloat, NoAffineBecomesUnitWeightAndFromReferenceSetsQParams) {
  nn::BatchNorm3d bn(nn::BatchNormOptions(2).affine(false).momentum(0.3));
  const auto q = from_reference(bn, 0.1, 5);
  EXPECT_EQ(q->momentum(), 0.3);
  EXPECT_EQ(q->type_name(), "QuantizedBatchNorm3d");
  EXPECT_EQ(q->weight.value.item(1), 1.0);
  EXPECT_EQ(q->bias.value.item(0), 0.0);
  EXPECT_EQ(q->output_scale(), double(0.1f));
  EXPECT_EQ(q->output_zero_point(), 5);
}

std::shared_ptr<nn::Sequential> small_model() {
  auto inner = std::make_shared<nn::Sequential>();
  inner->push_back(std::make_shared<nn::BatchNorm3d>(2));
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::BatchNorm2d>(3));
  model->push_back(std::make_shared<nn::BatchNorm1d>(3));
  model->push_back(inner);
  return model;
}

TEST(QuantConvert, SwapsBatchNorm2dAnd3dByDottedName) {
  auto model = small_model();
  std::map<std::string, MinMaxObserver> observers{{"0", calibrated(-1.f, 1.f)},
                                                  {"2.0", calibrated(0.f, 2.f)}};
  EXPECT_EQ(convert_batchnorms(*model, observers, {"2.0"}), 2);
  EXPECT_EQ(model->child("0")->type_name(), "QuantizedBatchNorm2d");
  EXPECT_EQ(model->child("1")->type_name(), "BatchNorm1d");
  EXPECT_EQ(model->child("2")->child("0")->type_name(), "QuantizedBNReLU3d");
  EXPECT_TRUE(model->state_dict().count("2.0.zero_point"));
}

TEST(QuantConvert, MissingObserverIsAnErrorAndChangesNothing) {
  auto model = small_model();
  std::map<std::string, MinMaxObserver> observers{{"0", calibrated(-1.f, 1.f)}};
  EXPECT_NE(error_of([&] { convert_batchnorms(*model, observers); }).find("layer(s): 2.0"),
            std::string::npos);
  EXPECT_EQ(model->child("0")->type_name(), "BatchNorm2d");
  observers.emplace("2.0", calibrated(0.f, 1.f));
  EXPECT_THROW(convert_batchnorms(*model, observers, {"1"}), ValueError);  // BatchNorm1d
  EXPECT_EQ(model->child("0")->type_name(), "BatchNorm2d");
}

}  // namespace
}  // namespace syncbn::quant
