#include "syncbn/nn/layers/basic_block.hpp"

#include "relu.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/layers/conv2d.hpp"

namespace syncbn::nn {
namespace {
std::shared_ptr<Module> make_norm(const NormFactory& norm, std::int64_t channels) {
  SYNCBN_CHECK(static_cast<bool>(norm), "BasicBlock: the norm factory is empty");
  auto m = norm(channels);
  SYNCBN_CHECK(m != nullptr, "BasicBlock: the norm factory returned null for ", channels,
               " channels");
  return m;
}

void check_same_shape(const Tensor& a, const Tensor& b) {
  SYNCBN_CHECK_AS(ShapeError, a.shape() == b.shape(), "BasicBlock: residual branch shape ",
                  shape_str(a.shape()), " does not match shortcut shape ", shape_str(b.shape()));
}

Tensor add(Tensor a, const Tensor& b) {
  check_same_shape(a, b);
  float* p = a.data<float>();
  const float* q = b.data<float>();
  for (std::int64_t i = 0; i < a.numel(); ++i) p[i] += q[i];
  return a;
}

}  // namespace

NormFactory batch_norm2d_factory(BatchNormOptions options) {
  return [options](std::int64_t channels) {
    return std::make_shared<BatchNorm2d>(BatchNormOptions(options).num_features(channels));
  };
}

BasicBlock::BasicBlock(std::int64_t inplanes, std::int64_t planes, std::int64_t stride,
                       const NormFactory& norm, Generator& gen)
    : has_downsample_(stride != 1 || inplanes != planes) {
  register_module(
      "conv1", std::make_shared<Conv2d>(
                   Conv2dOptions(inplanes, planes, 3).stride(stride).padding(1).bias(false), gen));
  register_module("bn1", make_norm(norm, planes));
  register_module("conv2", std::make_shared<Conv2d>(
                               Conv2dOptions(planes, planes, 3).padding(1).bias(false), gen));
  register_module("bn2", make_norm(norm, planes));
  if (has_downsample_) {
    auto down = std::make_shared<Sequential>();
    down->push_back(std::make_shared<Conv2d>(
        Conv2dOptions(inplanes, planes, 1).stride(stride).bias(false), gen));
    down->push_back(make_norm(norm, planes));
    register_module("downsample", down);
  }
}

// The residual add and the last ReLU are one pass over the output, in place; the ReLU keeps
// one byte per element for backward.
Tensor BasicBlock::forward(const Tensor& input) {
  Tensor x = child("conv1")->forward(input);
  x = child("bn1")->forward(x);
  x = relu_inner_.forward(x);
  x = child("conv2")->forward(x);
  x = child("bn2")->forward(x);
  add_relu_(x, has_downsample_ ? child("downsample")->forward(input) : input);
  return x;
}

void BasicBlock::add_relu_(Tensor& x, const Tensor& shortcut) {
  check_same_shape(x, shortcut);
  float* p = x.data<float>();
  const float* q = shortcut.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) p[i] += q[i];
  out_mask_.resize(static_cast<std::size_t>(x.numel()));
  detail::relu_forward(p, x.numel(), p, out_mask_.data());
  out_shape_ = x.shape();
}

Tensor BasicBlock::backward(const Tensor& grad_output) {
  SYNCBN_CHECK_AS(ShapeError, grad_output.shape() == out_shape_, "BasicBlock: grad_output shape ",
                  shape_str(grad_output.shape()), " does not match the output shape ",
                  shape_str(out_shape_));
  Tensor g = Tensor::empty(grad_output.shape());
  detail::relu_backward(grad_output.data<float>(), out_mask_.data(), g.numel(), g.data<float>());
  Tensor d = child("bn2")->backward(g);
  d = child("conv2")->backward(d);
  d = relu_inner_.backward(d);
  d = child("bn1")->backward(d);
  d = child("conv1")->backward(d);
  if (has_downsample_) return add(std::move(d), child("downsample")->backward(g));
  return add(std::move(d), g);
}

void resnet_init_(Module& root, Generator& gen, bool zero_init_residual) {
  kaiming_normal_conv_weights_(root, gen);
  if (!zero_init_residual) return;
  for (const auto& module : root.modules())
    if (auto* block = dynamic_cast<BasicBlock*>(module.get()))
      for (auto& [name, p] : block->child("bn2")->named_parameters())
        if (name == "weight") p->value.fill_(0.0);
}

}  // namespace syncbn::nn
