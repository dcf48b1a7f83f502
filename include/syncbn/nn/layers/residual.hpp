#pragma once
// Residual: a residual block assembled from any layers (the model language's `residual`).
//
//   y = act(main(x) + shortcut(x)),   act = ReLU or the identity
//   main = the main-path children in registration order; shortcut = the child called
//   `shortcut_name` (a Sequential) when there is one, else the identity.
// Backward: g = dy * [y > 0] (or dy without an activation) flows back through both branches;
// dx = main's dx + shortcut's dx.
//
// The main-path layers are registered directly on the block under their own names, as
// torchvision registers conv1, bn1, ... on a BasicBlock, and the shortcut as one child, so
// state_dict keys read "layer1.0.conv1.weight", "layer1.0.downsample.0.weight". forward and
// backward look children up by name each call, so a child swapped in later (for example by
// convert_sync_batchnorm) is the one used.
// Contract: backward follows the forward it belongs to; children save their own inputs. A
// main-path output whose shape differs from the shortcut's is a ShapeError naming both shapes.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "syncbn/nn/module.hpp"

namespace syncbn::nn {

class Residual : public Module {
 public:
  // Throws ValueError for an empty shortcut name.
  explicit Residual(bool relu = true, std::string shortcut_name = "downsample");

  // Appends a main-path layer under `name`. Throws ValueError for a null module, an empty
  // name, or the shortcut's name.
  void add_main(const std::string& name, std::shared_ptr<Module> module);
  // Sets the shortcut (registered under shortcut_name()); at most once.
  void set_shortcut(std::shared_ptr<Module> module);

  bool has_shortcut() const { return has_shortcut_; }
  bool relu() const { return relu_; }
  const std::string& shortcut_name() const { return shortcut_name_; }
  const std::vector<std::string>& main_names() const { return main_; }

  // Its repr lists the children only, as torchvision's BasicBlock.
  std::string type_name() const override { return "Residual"; }
  Tensor forward(const Tensor& input) override;
  Tensor backward(const Tensor& grad_output) override;

 private:
  bool relu_;
  std::string shortcut_name_;
  bool has_shortcut_ = false;
  std::vector<std::string> main_;       // main-path children, in order
  std::vector<std::uint8_t> out_mask_;  // the last forward's y > 0, for backward
  Shape out_shape_;
  bool has_saved_ = false;
};

}  // namespace syncbn::nn
