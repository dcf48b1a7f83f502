#pragma once
// Module tree, PyTorch-style: parameters (with gradients), buffers, named children, train/eval,
// state_dict. There is no autograd: each module's backward(grad_output) uses what its last
// forward(input) saved, accumulates parameter gradients into Parameter::grad and returns
// grad_input. Modules are not copyable; parameter and buffer pointers stay valid for a module's
// lifetime.
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "syncbn/tensor.hpp"

namespace syncbn::nn {

// A trainable tensor and its gradient (same shape, accumulated by backward, cleared by zero_grad).
struct Parameter {
  Tensor value;
  Tensor grad;
};

// Keys as PyTorch names them ("layer1.0.bn1.running_mean"); num_batches_tracked is int64.
using StateDict = std::map<std::string, Tensor>;

// enable_shared_from_this: named_modules() lists the root as a shared_ptr like its descendants.
class Module : public std::enable_shared_from_this<Module> {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // The PyTorch class name, e.g. "BatchNorm2d"; used by repr and conversions.
  virtual std::string type_name() const = 0;
  virtual Tensor forward(const Tensor& input) = 0;
  // Gradient w.r.t. the last forward's input; adds parameter gradients into Parameter::grad.
  virtual Tensor backward(const Tensor& grad_output) = 0;
  // One line of settings, PyTorch's extra_repr ("64, eps=1e-05, momentum=0.1, ...").
  virtual std::string extra_repr() const { return ""; }

  // Sets training mode here and in every descendant.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Depth-first, registration order, dotted names, as PyTorch's named_parameters().
  std::vector<std::pair<std::string, Parameter*>> named_parameters();
  std::vector<std::pair<std::string, Tensor*>> named_buffers();
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const {
    return children_;
  }
  // The direct submodules, registration order (torch.nn.Module.children()).
  std::vector<std::shared_ptr<Module>> children() const;
  // This module and every descendant, pre-order in registration order, as PyTorch's
  // named_modules(): "" (or `prefix`) for this module, then "layer1", "layer1.0",
  // "layer1.0.conv1", ... A module reachable along several paths is listed once, under its first
  // path, with its subtree, unless remove_duplicate is false (then once per path: what a pass
  // that swaps modules by path needs). The list is a snapshot: swapping modules while iterating
  // it is safe. The root's pointer does not own it when the root is not held by a shared_ptr.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules(
      const std::string& prefix = "", bool remove_duplicate = true) const;
  // named_modules() without the names.
  std::vector<std::shared_ptr<Module>> modules() const;
  // Calls fn on every descendant (each child's subtree first, in registration order), then on
  // this module: PyTorch's apply() order. Returns *this for chaining.
  Module& apply(const std::function<void(Module&)>& fn);
  void zero_grad();

  // Parameters and buffers by dotted name (copies).
  StateDict state_dict() const;
  // Copies matching entries in. strict: unknown or missing keys are an error listing all of
  // them; a shape mismatch is always an error naming the key and both shapes. Throws ValueError
  // or ShapeError and leaves the module unchanged on error.
  void load_state_dict(const StateDict& dict, bool strict = true);

  // PyTorch-like multi-line description of the tree.
  std::string repr() const;

  std::shared_ptr<Module> child(const std::string& name) const;
  // Replaces the child called `name` (it must exist); used by module-swapping conversions.
  void replace_child(const std::string& name, std::shared_ptr<Module> module);
  // The descendant at a dotted path from named_modules() ("" is this module), as PyTorch's
  // get_submodule. Throws ValueError naming the path and the part that does not exist.
  std::shared_ptr<Module> get_submodule(const std::string& target) const;
  // Replaces the descendant at a non-empty dotted path (it must exist): replace_child on its
  // parent. With named_modules(), this is how a pass swaps modules anywhere in a tree.
  void set_submodule(const std::string& target, std::shared_ptr<Module> module);

 protected:
  void register_parameter(std::string name, Parameter* parameter);
  void register_buffer(std::string name, Tensor* buffer);
  void unregister_buffer(const std::string& name);
  std::shared_ptr<Module> register_module(std::string name, std::shared_ptr<Module> module);
  // Called after training mode changes, before children are visited.
  virtual void on_train(bool /*on*/) {}
  // Lets a module adapt `dict` entries under `prefix` before they are checked and copied
  // (state-dict version migration, lazy materialisation). `dict` is a private copy.
  virtual void prepare_load(StateDict& /*dict*/, const std::string& /*prefix*/) {}

 private:
  void collect_state(const std::string& prefix, StateDict& out) const;
  void prepare_tree(StateDict& dict, const std::string& prefix);
  void repr_into(std::string& out, int indent) const;
  // The root of named_modules() and get_submodule(): owning when a shared_ptr holds this module.
  std::shared_ptr<Module> shared_self() const;
  // Appends the descendants below `prefix`; `seen` (when deduplicating) holds those listed.
  void collect_modules(const std::string& prefix, std::set<const Module*>* seen,
                       std::vector<std::pair<std::string, std::shared_ptr<Module>>>& out) const;

  bool training_ = true;
  std::vector<std::pair<std::string, Parameter*>> parameters_;
  std::vector<std::pair<std::string, Tensor*>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Runs children in order; backward runs them in reverse.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  // Appends under the next index ("0", "1", ...) and returns the module.
  std::shared_ptr<Module> push_back(std::shared_ptr<Module> module);
  // Appends under `name` (PyTorch's Sequential(OrderedDict(...))), e.g. "conv1", "layer1".
  std::shared_ptr<Module> push_back(std::string name, std::shared_ptr<Module> module);
  std::size_t size() const { return named_children().size(); }

  std::string type_name() const override { return "Sequential"; }
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;
};

}  // namespace syncbn::nn
