#pragma once
// Identity (torch.nn.Identity): y = x and dx = dy, for any shape, sharing the data (no copy).
// No parameters; its repr is "Identity()". Stateless, so backward needs no preceding forward.
#include <string>

#include "syncbn/nn/module.hpp"

namespace syncbn::nn {

class Identity : public Module {
 public:
  Identity() = default;
  std::string type_name() const override { return "Identity"; }
  Tensor forward(const Tensor& input) override { return input; }
  Tensor backward(const Tensor& grad_output) override { return grad_output; }
};

}  // namespace syncbn::nn
