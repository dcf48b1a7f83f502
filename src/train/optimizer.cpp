#include "syncbn/train/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "syncbn/error.hpp"

namespace syncbn::train {

Optimizer::Optimizer(NamedParameters parameters, const char* who)
    : parameters_(std::move(parameters)) {
  std::set<std::string> seen;
  for (const auto& [name, p] : parameters_) {
    SYNCBN_CHECK(p != nullptr, who, ": parameter '", name, "' is null");
    SYNCBN_CHECK(seen.insert(name).second, who, ": parameter '", name, "' appears twice");
  }
}

void Optimizer::zero_grad() {
  for (const auto& [name, p] : parameters_) {
    if (p->grad.defined() && p->grad.shape() == p->value.shape())
      p->grad.fill_(0.0);
    else
      p->grad = Tensor::zeros(p->value.shape());
  }
}

void Optimizer::check_grad_shapes(const char* who) const {
  for (const auto& [name, p] : parameters_)
    SYNCBN_CHECK_AS(ShapeError, !p->grad.defined() || p->grad.shape() == p->value.shape(), who,
                    ": grad of '", name, "' has shape ", shape_str(p->grad.shape()),
                    ", the parameter ", shape_str(p->value.shape()));
}

std::pair<std::string, const nn::Parameter*> Optimizer::parameter_of(const std::string& key,
                                                                     const std::string& suffix,
                                                                     const char* who) const {
  const bool has_suffix = key.size() > suffix.size() &&
                          key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
  const std::string name = has_suffix ? key.substr(0, key.size() - suffix.size()) : key;
  const nn::Parameter* param = nullptr;
  for (const auto& [n, p] : parameters_)
    if (n == name) param = p;
  SYNCBN_CHECK(has_suffix && param != nullptr, who, ": unexpected key '", key,
               "' (expected '<parameter name>", suffix, "')");
  return {name, param};
}

double clip_grad_norm(const NamedParameters& parameters, double max_norm) {
  SYNCBN_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  double sum_squares = 0;
  for (const auto& [name, p] : parameters) {
    if (!p->grad.defined()) continue;
    const float* g = p->grad.data<float>();
    for (std::int64_t i = 0; i < p->grad.numel(); ++i) sum_squares += double{g[i]} * g[i];
  }
  const double norm = std::sqrt(sum_squares);
  const double coef = std::min(1.0, max_norm / (norm + 1e-6));
  if (coef < 1.0)  // PyTorch multiplies by 1 too; skipping it changes nothing
    for (const auto& [name, p] : parameters) {
      if (!p->grad.defined()) continue;
      float* g = p->grad.data<float>();
      for (std::int64_t i = 0; i < p->grad.numel(); ++i) g[i] = static_cast<float>(g[i] * coef);
    }
  return norm;
}

}  // namespace syncbn::train
