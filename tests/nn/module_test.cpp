#include <gtest/gtest.h>

#include "support/test_util.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/batchnorm.hpp"
#include "syncbn/nn/groupnorm.hpp"

namespace syncbn::nn {
namespace {

std::shared_ptr<Sequential> small_tree() {
  auto inner = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<BatchNorm2d>(4), std::make_shared<GroupNorm>(2, 4)});
  return std::make_shared<Sequential>(
      std::vector<std::shared_ptr<Module>>{std::make_shared<BatchNorm2d>(4), inner});
}

TEST(Module, NamesAreDottedInRegistrationOrder) {
  auto tree = small_tree();
  std::vector<std::string> names;
  for (auto& [name, p] : tree->named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "1.0.weight", "1.0.bias",
                                             "1.1.weight", "1.1.bias"}));
  EXPECT_EQ(tree->named_buffers().size(), 6u);
}

TEST(Module, TrainAndEvalPropagate) {
  auto tree = small_tree();
  tree->eval();
  EXPECT_FALSE(tree->child("1")->child("0")->is_training());
  tree->train();
  EXPECT_TRUE(tree->child("1")->child("1")->is_training());
}

TEST(Module, StateDictRoundTrips) {
  auto a = small_tree();
  a->forward(Tensor::full({2, 4, 3, 3}, 1.0));
  auto b = small_tree();
  b->load_state_dict(a->state_dict());
  for (auto& [key, value] : a->state_dict())
    EXPECT_EQ(max_abs_diff(value, b->state_dict().at(key)), 0.0) << key;
}

TEST(Module, ReprNestsChildren) {
  EXPECT_EQ(
      small_tree()->repr(),
      "Sequential(\n"
      "  (0): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
      "  (1): Sequential(\n"
      "    (0): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
      "    (1): GroupNorm(2, 4, eps=1e-05, affine=True)\n"
      "  )\n"
      ")");
}

TEST(Module, UnknownChildIsAnError) {
  EXPECT_THROW(small_tree()->child("7"), ValueError);
}

std::vector<std::string> names_of(
    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named) {
  std::vector<std::string> out;
  for (const auto& [name, m] : named) out.push_back(name.empty() ? "<root>" : name);
  return out;
}

// A ResNet-shaped tree with PyTorch's names: model.layer1[0].conv1 is "layer1.0.conv1".
std::shared_ptr<Sequential> resnet_like() {
  auto block = std::make_shared<Sequential>();
  block->push_back("conv1", std::make_shared<BatchNorm2d>(4));
  block->push_back("bn1", std::make_shared<GroupNorm>(2, 4));
  auto layer1 = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{block});
  auto model = std::make_shared<Sequential>();
  model->push_back("bn1", std::make_shared<BatchNorm2d>(4));
  model->push_back("layer1", layer1);
  return model;
}

TEST(Module, NamedModulesArePreOrderWithPyTorchNames) {
  auto model = resnet_like();
  const auto named = model->named_modules();
  EXPECT_EQ(names_of(named), (std::vector<std::string>{"<root>", "bn1", "layer1", "layer1.0",
                                                       "layer1.0.conv1", "layer1.0.bn1"}));
  EXPECT_EQ(named[0].second, model);  // the root, sharing ownership with its holder
  EXPECT_EQ(named[4].second, model->get_submodule("layer1.0.conv1"));
  EXPECT_EQ(names_of(model->child("layer1")->named_modules("layer1")),
            (std::vector<std::string>{"layer1", "layer1.0", "layer1.0.conv1", "layer1.0.bn1"}));
  std::vector<std::string> types;
  for (const auto& m : model->modules()) types.push_back(m->type_name());
  EXPECT_EQ(types, (std::vector<std::string>{"Sequential", "BatchNorm2d", "Sequential",
                                             "Sequential", "BatchNorm2d", "GroupNorm"}));
}

TEST(Module, ChildrenAreTheDirectSubmodulesOnly) {
  auto model = resnet_like();
  const auto kids = model->children();
  ASSERT_EQ(kids.size(), 2u);
  EXPECT_EQ(kids[0], model->child("bn1"));
  EXPECT_EQ(kids[1], model->child("layer1"));
  EXPECT_TRUE(kids[0]->children().empty());
}

// PyTorch lists a module reachable along two paths once (first path, subtree included);
// remove_duplicate=false lists every path, which is what swapping by path needs.
TEST(Module, SharedModulesAreListedOnceUnlessAskedForEveryPath) {
  auto shared = std::make_shared<Sequential>(
      std::vector<std::shared_ptr<Module>>{std::make_shared<BatchNorm2d>(4)});
  auto root = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{shared, shared});
  EXPECT_EQ(names_of(root->named_modules()), (std::vector<std::string>{"<root>", "0", "0.0"}));
  EXPECT_EQ(names_of(root->named_modules("", false)),
            (std::vector<std::string>{"<root>", "0", "0.0", "1", "1.0"}));
  EXPECT_EQ(root->modules().size(), 3u);
}

TEST(Module, ARootNotHeldByASharedPtrIsListedWithoutOwnership) {
  Sequential root(std::vector<std::shared_ptr<Module>>{std::make_shared<BatchNorm2d>(4)});
  const auto named = root.named_modules();
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].second.get(), &root);
  EXPECT_EQ(named[0].second.use_count(), 0);  // nothing will try to delete a stack object
  EXPECT_EQ(root.get_submodule("").get(), &root);
}

// PyTorch's apply: each child's subtree first, then the module itself.
TEST(Module, ApplyVisitsChildrenBeforeTheirParent) {
  auto model = resnet_like();
  std::vector<const Module*> visited;
  Module& returned = model->apply([&](Module& m) { visited.push_back(&m); });
  EXPECT_EQ(&returned, model.get());
  const auto block = model->get_submodule("layer1.0");
  EXPECT_EQ(visited,
            (std::vector<const Module*>{model->child("bn1").get(), block->child("conv1").get(),
                                        block->child("bn1").get(), block.get(),
                                        model->child("layer1").get(), model.get()}));
}

TEST(Module, GetSubmoduleNamesWhatIsMissing) {
  auto model = resnet_like();
  EXPECT_EQ(model->get_submodule("layer1.0.bn1")->type_name(), "GroupNorm");
  EXPECT_EQ(model->get_submodule(""), model);
  EXPECT_EQ(testing::error_of([&] { model->get_submodule("layer1.0.conv9"); }),
            "Sequential has no submodule 'layer1.0.conv9': Sequential 'layer1.0' has no child "
            "'conv9'");
  EXPECT_EQ(testing::error_of([&] { model->get_submodule("layer2.0"); }),
            "Sequential has no submodule 'layer2.0': Sequential has no child 'layer2'");
  EXPECT_THROW(model->get_submodule("layer1."), ValueError);
}

TEST(Module, SetSubmoduleSwapsByPath) {
  auto model = resnet_like();
  auto replacement = std::make_shared<GroupNorm>(1, 4);
  model->set_submodule("layer1.0.conv1", replacement);
  EXPECT_EQ(model->get_submodule("layer1.0.conv1"), replacement);
  EXPECT_EQ(names_of(model->named_modules())[4], "layer1.0.conv1");  // same place, same name
  model->set_submodule("bn1", replacement);
  EXPECT_EQ(model->child("bn1"), replacement);
  EXPECT_EQ(testing::error_of([&] { model->set_submodule("layer1.1", replacement); }),
            "Sequential has no submodule 'layer1.1': Sequential 'layer1' has no child '1'");
  EXPECT_THROW(model->set_submodule("", replacement), ValueError);
  EXPECT_THROW(model->set_submodule("bn1", nullptr), ValueError);
}

}  // namespace
}  // namespace syncbn::nn
