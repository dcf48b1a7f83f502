#pragma once
// SGD with momentum (torch.optim.SGD, maximize=False), the exact PyTorch update per parameter p
// with gradient g, in this order:
//   g = g + weight_decay * p                          (when weight_decay != 0)
//   if momentum != 0:
//     buf = g                                          (first step: buffer is a copy of g)
//     buf = momentum * buf + (1 - dampening) * g       (later steps)
//     g = nesterov ? g + momentum * buf : buf
//   p = p - lr * g
// Parameters whose grad is undefined are skipped (no buffer is created), as PyTorch skips
// grad=None. The buffer is the optimizer state, exported per parameter name as
// "<name>.momentum_buffer" for checkpoints.
// Contract: the parameter pointers (from Module::named_parameters) must outlive the optimizer.
// step() and zero_grad() touch only this optimizer's parameters and are not thread-safe.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "syncbn/options.hpp"
#include "syncbn/train/optimizer.hpp"

namespace syncbn::train {

struct SGDOptions {
  explicit SGDOptions(double lr) : lr_(lr) {}
  SYNCBN_ARG(double, lr);
  SYNCBN_ARG(double, momentum) = 0.0;
  SYNCBN_ARG(double, dampening) = 0.0;
  SYNCBN_ARG(bool, nesterov) = false;
  SYNCBN_ARG(double, weight_decay) = 0.0;
};

class SGD : public Optimizer {
 public:
  // Throws ValueError as PyTorch does: negative lr, momentum or weight_decay, or nesterov
  // without momentum > 0 and dampening == 0; also for a null or duplicate-named parameter.
  SGD(NamedParameters parameters, SGDOptions options);

  // One update of every parameter with a defined grad. Throws ShapeError when a grad's shape
  // differs from its parameter's (before changing anything).
  void step() override;

  double lr() const override { return options_.lr(); }
  // For schedules; throws ValueError for a negative lr.
  void set_lr(double lr) override;
  const SGDOptions& options() const { return options_; }

  // Momentum buffers that exist, keyed "<parameter name>.momentum_buffer" (copies).
  nn::StateDict state_dict() const override;
  // Replaces all optimizer state. Every key must be "<known parameter>.momentum_buffer" with
  // that parameter's shape; parameters without a key get no buffer (their next step starts it
  // afresh). Throws ValueError (unknown key) or ShapeError and leaves the state unchanged.
  void load_state_dict(const nn::StateDict& state) override;

 private:
  SGDOptions options_;
  std::map<std::string, Tensor> momentum_buffer_;  // by parameter name
};

}  // namespace syncbn::train
