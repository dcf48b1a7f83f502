#include "syncbn/nn/layers/residual.hpp"

#include "relu.hpp"
#include "syncbn/error.hpp"

namespace syncbn::nn {
namespace {
// a += b, element-wise; both of one shape (checked by the caller).
void add_into(Tensor& a, const Tensor& b) {
  float* p = a.data<float>();
  const float* q = b.data<float>();
  for (std::int64_t i = 0; i < a.numel(); ++i) p[i] += q[i];
}

void check_same_shape(const Tensor& main, const Tensor& shortcut, const char* what) {
  SYNCBN_CHECK_AS(ShapeError, main.shape() == shortcut.shape(), "Residual: the main path's ", what,
                  " shape ", shape_str(main.shape()), " does not match the shortcut's ",
                  shape_str(shortcut.shape()));
}
}  // namespace

Residual::Residual(bool relu, std::string shortcut_name)
    : relu_(relu), shortcut_name_(std::move(shortcut_name)) {
  SYNCBN_CHECK(!shortcut_name_.empty(), "Residual: the shortcut name is empty");
}

void Residual::add_main(const std::string& name, std::shared_ptr<Module> module) {
  SYNCBN_CHECK(module != nullptr, "Residual: main-path layer '", name, "' is null");
  SYNCBN_CHECK(!name.empty() && name != shortcut_name_, "Residual: main-path layer name '", name,
               "' is empty or the shortcut's");
  register_module(name, std::move(module));
  main_.push_back(name);
}

void Residual::set_shortcut(std::shared_ptr<Module> module) {
  SYNCBN_CHECK(module != nullptr, "Residual: the shortcut is null");
  SYNCBN_CHECK(!has_shortcut_, "Residual: the shortcut is already set");
  register_module(shortcut_name_, std::move(module));
  has_shortcut_ = true;
}

Tensor Residual::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& name : main_) x = child(name)->forward(x);
  const Tensor shortcut = has_shortcut_ ? child(shortcut_name_)->forward(input) : input;
  check_same_shape(x, shortcut, "output");
  // Copy-on-write: when the main path handed back its input's storage (an Identity), the first
  // write below takes a private copy, so the caller's tensor is never changed.
  add_into(x, shortcut);
  if (relu_) {
    out_mask_.resize(static_cast<std::size_t>(x.numel()));
    detail::relu_forward(x.data<float>(), x.numel(), x.data<float>(), out_mask_.data());
  }
  out_shape_ = x.shape();
  has_saved_ = true;
  return x;
}

Tensor Residual::backward(const Tensor& grad_output) {
  SYNCBN_CHECK_AS(ShapeError, has_saved_ && grad_output.shape() == out_shape_,
                  "Residual: grad_output shape ", shape_str(grad_output.shape()),
                  " does not match the last forward's output shape ", shape_str(out_shape_));
  Tensor g = grad_output;
  if (relu_) {
    g = Tensor::empty(grad_output.shape());
    detail::relu_backward(grad_output.data<float>(), out_mask_.data(), g.numel(), g.data<float>());
  }
  Tensor d = g;
  for (auto it = main_.rbegin(); it != main_.rend(); ++it) d = child(*it)->backward(d);
  const Tensor ds = has_shortcut_ ? child(shortcut_name_)->backward(g) : g;
  check_same_shape(d, ds, "input-gradient");
  add_into(d, ds);
  return d;
}

}  // namespace syncbn::nn
