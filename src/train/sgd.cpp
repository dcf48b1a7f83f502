#include "syncbn/train/sgd.hpp"

#include "syncbn/error.hpp"

namespace syncbn::train {
namespace {
constexpr const char* kBufferSuffix = ".momentum_buffer";

// The hyper-parameters in the precision the update runs in (float, as PyTorch for float32).
struct Update {
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
};

// weight_decay == 0 adds nothing, not 0 * p (which would turn an inf parameter into NaN).
float decayed(const Update& u, float grad, float p) {
  return u.weight_decay != 0.f ? grad + u.weight_decay * p : grad;
}

void update_without_momentum(const Update& u, float* p, const float* grad, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) p[i] -= u.lr * decayed(u, grad[i], p[i]);
}

void update_with_momentum(const Update& u, float* p, const float* grad, float* buf, bool fresh,
                          std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = decayed(u, grad[i], p[i]);
    buf[i] = fresh ? g : u.momentum * buf[i] + (1.f - u.dampening) * g;
    p[i] -= u.lr * (u.nesterov ? g + u.momentum * buf[i] : buf[i]);
  }
}
}  // namespace

SGD::SGD(NamedParameters parameters, SGDOptions options)
    : Optimizer(std::move(parameters), "SGD"), options_(options) {
  SYNCBN_CHECK(options_.lr() >= 0.0, "Invalid learning rate: ", options_.lr());
  SYNCBN_CHECK(options_.momentum() >= 0.0, "Invalid momentum value: ", options_.momentum());
  SYNCBN_CHECK(options_.weight_decay() >= 0.0,
               "Invalid weight_decay value: ", options_.weight_decay());
  SYNCBN_CHECK(!options_.nesterov() || (options_.momentum() > 0.0 && options_.dampening() == 0.0),
               "Nesterov momentum requires a momentum and zero dampening");
}

void SGD::set_lr(double lr) {
  SYNCBN_CHECK(lr >= 0.0, "Invalid learning rate: ", lr);
  options_.lr(lr);
}

void SGD::step() {
  check_grad_shapes("SGD");
  const Update u{static_cast<float>(options_.lr()), static_cast<float>(options_.momentum()),
                 static_cast<float>(options_.dampening()),
                 static_cast<float>(options_.weight_decay()), options_.nesterov()};
  for (const auto& [name, p] : parameters_) {
    if (!p->grad.defined()) continue;
    float* value = p->value.data<float>();
    const float* grad = p->grad.data<float>();
    if (options_.momentum() == 0.0) {
      update_without_momentum(u, value, grad, p->value.numel());
      continue;
    }
    auto [it, fresh] = momentum_buffer_.try_emplace(name, p->value.shape());
    update_with_momentum(u, value, grad, it->second.data<float>(), fresh, p->value.numel());
  }
}

nn::StateDict SGD::state_dict() const {
  nn::StateDict out;
  for (const auto& [name, buf] : momentum_buffer_) out[name + kBufferSuffix] = buf;
  return out;
}

void SGD::load_state_dict(const nn::StateDict& state) {
  std::map<std::string, Tensor> loaded;
  for (const auto& [key, value] : state) {
    const auto [name, param] = parameter_of(key, kBufferSuffix, "SGD.load_state_dict");
    SYNCBN_CHECK_AS(ShapeError, value.shape() == param->value.shape(), "SGD.load_state_dict: '",
                    key, "' has shape ", shape_str(value.shape()), ", the parameter ",
                    shape_str(param->value.shape()));
    loaded[name] = value.to(DType::Float32);
  }
  momentum_buffer_ = std::move(loaded);
}

}  // namespace syncbn::train
