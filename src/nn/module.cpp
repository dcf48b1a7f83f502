#include "syncbn/nn/module.hpp"

#include <algorithm>
#include <cstring>

#include "syncbn/error.hpp"

namespace syncbn::nn {
namespace {
std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "\"" : ", \"") + item + "\"";
  return out;
}
}  // namespace

void Module::train(bool on) {
  training_ = on;
  on_train(on);
  for (auto& [name, child] : children_) child->train(on);
}

std::vector<std::pair<std::string, Parameter*>> Module::named_parameters() {
  std::vector<std::pair<std::string, Parameter*>> out(parameters_);
  for (auto& [prefix, child] : children_)
    for (auto& [name, p] : child->named_parameters()) out.emplace_back(prefix + "." + name, p);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
  std::vector<std::pair<std::string, Tensor*>> out(buffers_);
  for (auto& [prefix, child] : children_)
    for (auto& [name, b] : child->named_buffers()) out.emplace_back(prefix + "." + name, b);
  return out;
}

void Module::zero_grad() {
  for (auto& [name, p] : named_parameters()) p->grad = Tensor::zeros(p->value.shape());
}

StateDict Module::state_dict() const {
  StateDict out;
  collect_state("", out);
  return out;
}

void Module::collect_state(const std::string& prefix, StateDict& out) const {
  for (const auto& [name, p] : parameters_) out[prefix + name] = p->value;
  for (const auto& [name, b] : buffers_) out[prefix + name] = *b;
  for (const auto& [name, child] : children_) child->collect_state(prefix + name + ".", out);
}

void Module::prepare_tree(StateDict& dict, const std::string& prefix) {
  prepare_load(dict, prefix);
  for (auto& [name, child] : children_) child->prepare_tree(dict, prefix + name + ".");
}

void Module::load_state_dict(const StateDict& source, bool strict) {
  StateDict dict(source);
  prepare_tree(dict, "");
  std::vector<std::pair<std::string, Tensor*>> targets;
  for (auto& [name, p] : named_parameters()) targets.emplace_back(name, &p->value);
  for (auto& entry : named_buffers()) targets.push_back(entry);

  std::vector<std::string> missing, unexpected, mismatched;
  for (auto& [name, target] : targets) {
    auto it = dict.find(name);
    if (it == dict.end()) {
      missing.push_back(name);
    } else if (it->second.shape() != target->shape()) {
      mismatched.push_back("size mismatch for " + name + ": copying a param with shape " +
                           shape_str(it->second.shape()) +
                           " from checkpoint, the shape in current model is " +
                           shape_str(target->shape()));
    }
  }
  // Not a structured binding: C++17 does not let a lambda capture one (clang rejects it).
  for (const auto& entry : dict) {
    const std::string& name = entry.first;
    bool known =
        std::any_of(targets.begin(), targets.end(), [&](auto& t) { return t.first == name; });
    if (!known) unexpected.push_back(name);
  }
  // ". " after the key lists, as PyTorch words it (its messages carry that trailing space).
  std::string problems;
  if (strict && !missing.empty())
    problems += "\n\tMissing key(s) in state_dict: " + join(missing) + ". ";
  if (strict && !unexpected.empty())
    problems += "\n\tUnexpected key(s) in state_dict: " + join(unexpected) + ". ";
  for (const auto& m : mismatched) problems += "\n\t" + m + ".";
  SYNCBN_CHECK_AS(ValueError, problems.empty(), "Error(s) in loading state_dict for ", type_name(),
                  ":", problems);
  for (auto& [name, target] : targets) {
    auto it = dict.find(name);
    if (it != dict.end()) *target = it->second.to(target->dtype());
  }
}

std::string Module::repr() const {
  std::string out;
  repr_into(out, 0);
  return out;
}

void Module::repr_into(std::string& out, int indent) const {
  out += type_name() + "(";
  if (children_.empty()) {
    out += extra_repr() + ")";
    return;
  }
  if (!extra_repr().empty()) out += "\n" + std::string(indent + 2, ' ') + extra_repr();
  for (const auto& [name, child] : children_) {
    out += "\n" + std::string(indent + 2, ' ') + "(" + name + "): ";
    child->repr_into(out, indent + 2);
  }
  out += "\n" + std::string(indent, ' ') + ")";
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  for (const auto& [n, c] : children_)
    if (n == name) return c;
  throw ValueError(type_name() + " has no child module '" + name + "'");
}

void Module::replace_child(const std::string& name, std::shared_ptr<Module> module) {
  for (auto& [n, c] : children_) {
    if (n == name) {
      c = std::move(module);
      return;
    }
  }
  throw ValueError(type_name() + " has no child module '" + name + "'");
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [name, child] : children_) out.push_back(child);
  return out;
}

std::shared_ptr<Module> Module::shared_self() const {
  auto self = std::const_pointer_cast<Module>(weak_from_this().lock());
  // Not held by a shared_ptr (e.g. on the stack): alias an empty owner, so nothing deletes it.
  if (!self) self = std::shared_ptr<Module>(std::shared_ptr<Module>(), const_cast<Module*>(this));
  return self;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules(
    const std::string& prefix, bool remove_duplicate) const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out{{prefix, shared_self()}};
  std::set<const Module*> seen{this};
  collect_modules(prefix, remove_duplicate ? &seen : nullptr, out);
  return out;
}

void Module::collect_modules(
    const std::string& prefix, std::set<const Module*>* seen,
    std::vector<std::pair<std::string, std::shared_ptr<Module>>>& out) const {
  for (const auto& [name, child] : children_) {
    if (seen != nullptr && !seen->insert(child.get()).second) continue;
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    out.emplace_back(path, child);
    child->collect_modules(path, seen, out);
  }
}

std::vector<std::shared_ptr<Module>> Module::modules() const {
  std::vector<std::shared_ptr<Module>> out;
  for (auto& [name, module] : named_modules()) out.push_back(std::move(module));
  return out;
}

Module& Module::apply(const std::function<void(Module&)>& fn) {
  // A copy: fn may swap modules in the tree while it runs.
  for (auto& [name, child] : std::vector(children_)) child->apply(fn);
  fn(*this);
  return *this;
}

std::shared_ptr<Module> Module::get_submodule(const std::string& target) const {
  std::shared_ptr<Module> module = shared_self();
  std::string::size_type begin = 0;
  while (!target.empty() && begin <= target.size()) {
    const auto end = std::min(target.find('.', begin), target.size());
    const std::string part = target.substr(begin, end - begin);
    const auto& kids = module->children_;
    auto it = std::find_if(kids.begin(), kids.end(), [&](auto& c) { return c.first == part; });
    SYNCBN_CHECK(
        it != kids.end(), type_name(), " has no submodule '", target, "': ", module->type_name(),
        begin == 0 ? "" : " '" + target.substr(0, begin - 1) + "'", " has no child '", part, "'");
    module = it->second;
    begin = end + 1;
  }
  return module;
}

void Module::set_submodule(const std::string& target, std::shared_ptr<Module> module) {
  SYNCBN_CHECK(!target.empty(), "set_submodule: an empty path names ", type_name(),
               " itself, which has no parent to hold a replacement");
  SYNCBN_CHECK(module != nullptr, "set_submodule: the module for '", target, "' is null");
  get_submodule(target);  // an error naming the whole path when it does not exist
  const auto dot = target.rfind('.');
  if (dot == std::string::npos) return replace_child(target, std::move(module));
  get_submodule(target.substr(0, dot))->replace_child(target.substr(dot + 1), std::move(module));
}

void Module::register_parameter(std::string name, Parameter* parameter) {
  parameters_.emplace_back(std::move(name), parameter);
}

void Module::register_buffer(std::string name, Tensor* buffer) {
  buffers_.emplace_back(std::move(name), buffer);
}

void Module::unregister_buffer(const std::string& name) {
  buffers_.erase(
      std::remove_if(buffers_.begin(), buffers_.end(), [&](auto& b) { return b.first == name; }),
      buffers_.end());
}

std::shared_ptr<Module> Module::register_module(std::string name, std::shared_ptr<Module> module) {
  SYNCBN_CHECK(module != nullptr, "register_module: module '", name, "' is null");
  children_.emplace_back(std::move(name), module);
  return module;
}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

std::shared_ptr<Module> Sequential::push_back(std::shared_ptr<Module> module) {
  return register_module(std::to_string(size()), std::move(module));
}

std::shared_ptr<Module> Sequential::push_back(std::string name, std::shared_ptr<Module> module) {
  return register_module(std::move(name), std::move(module));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (auto& [name, child] : named_children()) x = child->forward(x);
  return x;
}

Tensor Sequential::backward(const Tensor& grad_output) {
  Tensor g = grad_output;
  const auto& children = named_children();
  for (auto it = children.rbegin(); it != children.rend(); ++it) g = it->second->backward(g);
  return g;
}

}  // namespace syncbn::nn
