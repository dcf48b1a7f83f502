#include "syncbn/train/adamw.hpp"

#include <cmath>

#include "syncbn/error.hpp"

namespace syncbn::train {
namespace {
constexpr const char* kSuffixes[] = {".exp_avg", ".exp_avg_sq", ".step"};

// The scalars as PyTorch computes them: in double on the host, applied in float.
struct Update {
  float decay, beta1, beta2, step_size, bias_correction2_sqrt, eps;
};

void update(const Update& u, float* p, const float* g, float* m, float* v, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    p[i] *= u.decay;
    m[i] = m[i] * u.beta1 + (1.f - u.beta1) * g[i];
    v[i] = v[i] * u.beta2 + (1.f - u.beta2) * g[i] * g[i];
    p[i] -= u.step_size * (m[i] / (std::sqrt(v[i]) / u.bias_correction2_sqrt + u.eps));
  }
}

// Which of kSuffixes `key` ends in (-1 for none).
int suffix_index(const std::string& key) {
  for (int i = 0; i < 3; ++i) {
    const std::string s = kSuffixes[i];
    if (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0) return i;
  }
  return -1;
}
}  // namespace

AdamW::AdamW(NamedParameters parameters, AdamWOptions options)
    : Optimizer(std::move(parameters), "AdamW"), options_(options) {
  SYNCBN_CHECK(options_.lr() >= 0.0, "Invalid learning rate: ", options_.lr());
  SYNCBN_CHECK(options_.eps() >= 0.0, "Invalid epsilon value: ", options_.eps());
  SYNCBN_CHECK(options_.beta1() >= 0.0 && options_.beta1() < 1.0,
               "Invalid beta parameter at index 0: ", options_.beta1());
  SYNCBN_CHECK(options_.beta2() >= 0.0 && options_.beta2() < 1.0,
               "Invalid beta parameter at index 1: ", options_.beta2());
  SYNCBN_CHECK(options_.weight_decay() >= 0.0,
               "Invalid weight_decay value: ", options_.weight_decay());
}

void AdamW::set_lr(double lr) {
  SYNCBN_CHECK(lr >= 0.0, "Invalid learning rate: ", lr);
  options_.lr(lr);
}

void AdamW::step() {
  check_grad_shapes("AdamW");
  const double lr = options_.lr(), b1 = options_.beta1(), b2 = options_.beta2();
  for (const auto& [name, p] : parameters_) {
    if (!p->grad.defined()) continue;
    auto [it, fresh] = state_.try_emplace(name);
    State& s = it->second;
    if (fresh) s = {Tensor::zeros(p->value.shape()), Tensor::zeros(p->value.shape()), 0};
    s.step += 1;
    const Update u{static_cast<float>(1.0 - lr * options_.weight_decay()),
                   static_cast<float>(b1),
                   static_cast<float>(b2),
                   static_cast<float>(lr / (1.0 - std::pow(b1, s.step))),
                   static_cast<float>(std::sqrt(1.0 - std::pow(b2, s.step))),
                   static_cast<float>(options_.eps())};
    update(u, p->value.data<float>(), p->grad.data<float>(), s.exp_avg.data<float>(),
           s.exp_avg_sq.data<float>(), p->value.numel());
  }
}

nn::StateDict AdamW::state_dict() const {
  nn::StateDict out;
  for (const auto& [name, s] : state_) {
    out[name + kSuffixes[0]] = s.exp_avg.clone();
    out[name + kSuffixes[1]] = s.exp_avg_sq.clone();
    out[name + kSuffixes[2]] =
        Tensor::from(Shape{1}, std::vector<float>{static_cast<float>(s.step)});
  }
  return out;
}

void AdamW::load_state_dict(const nn::StateDict& state) {
  std::map<std::string, State> loaded;
  std::map<std::string, int> seen;  // parameter name -> bit set of the suffixes found
  for (const auto& [key, value] : state) {
    const int which = suffix_index(key);
    const auto [name, param] =
        parameter_of(key, which < 0 ? kSuffixes[0] : kSuffixes[which], "AdamW.load_state_dict");
    const Shape expected = which == 2 ? Shape{1} : param->value.shape();
    SYNCBN_CHECK_AS(ShapeError, value.shape() == expected, "AdamW.load_state_dict: '", key,
                    "' has shape ", shape_str(value.shape()), ", expected ", shape_str(expected));
    const Tensor v = value.to(DType::Float32);
    State& s = loaded[name];
    if (which == 0) s.exp_avg = v;
    if (which == 1) s.exp_avg_sq = v;
    if (which == 2) s.step = v.data<float>()[0];
    seen[name] |= 1 << which;
  }
  for (const auto& [name, bits] : seen)
    SYNCBN_CHECK(bits == 7, "AdamW.load_state_dict: parameter '", name,
                 "' needs all of .exp_avg, .exp_avg_sq and .step");
  state_ = std::move(loaded);
}

}  // namespace syncbn::train
