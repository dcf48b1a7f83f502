#pragma once
// What the training loop needs from an optimizer (SGD, AdamW): an update from the parameters'
// gradients, the learning rate for schedules, and state for checkpoints.
// Contract: the parameter pointers (from Module::named_parameters) must outlive the optimizer;
// step() and zero_grad() touch only its parameters and are not thread-safe.
#include <string>
#include <utility>
#include <vector>

#include "syncbn/nn/module.hpp"

namespace syncbn::train {

using NamedParameters = std::vector<std::pair<std::string, nn::Parameter*>>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of every parameter with a defined grad; ShapeError for a grad whose shape
  // differs from its parameter's (before changing anything).
  virtual void step() = 0;
  // Sets every gradient to zeros of its parameter's shape (defining it if needed).
  void zero_grad();

  virtual double lr() const = 0;
  // For schedules; throws ValueError for a negative lr.
  virtual void set_lr(double lr) = 0;
  const NamedParameters& parameters() const { return parameters_; }

  // The optimizer state as tensors keyed "<parameter name>.<state name>" (copies).
  virtual nn::StateDict state_dict() const = 0;
  // Replaces all optimizer state; ValueError (unknown key) or ShapeError leaves it unchanged.
  virtual void load_state_dict(const nn::StateDict& state) = 0;

 protected:
  // Throws ValueError naming `who` for a null or duplicate-named parameter.
  Optimizer(NamedParameters parameters, const char* who);
  // ShapeError naming `who` when a defined grad's shape differs from its parameter's.
  void check_grad_shapes(const char* who) const;
  // Splits a state key "<parameter name><suffix>" into that parameter; ValueError naming `who`
  // when the key has another suffix or names no parameter.
  std::pair<std::string, const nn::Parameter*> parameter_of(const std::string& key,
                                                            const std::string& suffix,
                                                            const char* who) const;

  NamedParameters parameters_;
};

// torch.nn.utils.clip_grad_norm_(norm_type=2): the 2-norm of all defined gradients together;
// when it exceeds max_norm, every gradient is scaled by max_norm / (norm + 1e-6). Returns the
// norm before clipping. ValueError for max_norm <= 0.
double clip_grad_norm(const NamedParameters& parameters, double max_norm);

}  // namespace syncbn::train
