#pragma once
// AdamW (torch.optim.AdamW of PyTorch 1.13, amsgrad=False, maximize=False), per parameter p with
// gradient g, step count t (from 1), in this order:
//   p = p * (1 - lr * weight_decay)                          (decoupled decay)
//   m = beta1 * m + (1 - beta1) * g                          (exp_avg, starts at 0)
//   v = beta2 * v + (1 - beta2) * g * g                      (exp_avg_sq, starts at 0)
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Parameters whose grad is undefined are skipped and get no state. The state is exported per
// parameter name as "<name>.exp_avg", "<name>.exp_avg_sq" and "<name>.step" (shape [1]).
#include <map>
#include <string>

#include "syncbn/options.hpp"
#include "syncbn/train/optimizer.hpp"

namespace syncbn::train {

struct AdamWOptions {
  explicit AdamWOptions(double lr) : lr_(lr) {}
  SYNCBN_ARG(double, lr);
  SYNCBN_ARG(double, beta1) = 0.9;
  SYNCBN_ARG(double, beta2) = 0.999;
  SYNCBN_ARG(double, eps) = 1e-8;
  SYNCBN_ARG(double, weight_decay) = 0.01;
};

class AdamW : public Optimizer {
 public:
  // Throws ValueError as PyTorch does: negative lr, eps or weight_decay, a beta outside [0, 1);
  // also for a null or duplicate-named parameter.
  AdamW(NamedParameters parameters, AdamWOptions options);

  void step() override;
  double lr() const override { return options_.lr(); }
  void set_lr(double lr) override;
  const AdamWOptions& options() const { return options_; }

  nn::StateDict state_dict() const override;
  // Every parameter in `state` needs all three keys with the right shapes; parameters absent
  // start afresh. Throws ValueError or ShapeError and leaves the state unchanged.
  void load_state_dict(const nn::StateDict& state) override;

 private:
  struct State {
    Tensor exp_avg, exp_avg_sq;
    double step = 0;
  };
  AdamWOptions options_;
  std::map<std::string, State> state_;  // by parameter name
};

}  // namespace syncbn::train
