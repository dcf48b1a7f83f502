#include <gtest/gtest.h>

#include <type_traits>

#include "support/test_util.hpp"
#include "syncbn/dist/local.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/groupnorm.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"

namespace syncbn::nn {
namespace {

std::shared_ptr<Sequential> model() {
  auto inner = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<BatchNorm1d>(BatchNormOptions(4).momentum(std::nullopt).eps(1e-3)),
      std::make_shared<GroupNorm>(2, 4), std::make_shared<LazyBatchNorm3d>()});
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<BatchNorm2d>(4), inner, std::make_shared<SyncBatchNorm>(4)});
}

TEST(ConvertSyncBatchNorm, ReplacesEveryBatchNormAndKeepsState) {
  auto m = model();
  m->child("0")->forward(testing::random_tensor({3, 4, 2, 2}, 1));  // non-trivial running stats
  m->child("0")->eval();
  const StateDict before = m->state_dict();
  auto converted = convert_sync_batchnorm(m);
  EXPECT_EQ(converted, m);
  EXPECT_EQ(count_sync_batchnorm(*m), 4);  // three converted + one already Sync
  auto first = std::dynamic_pointer_cast<SyncBatchNorm>(m->child("0"));
  ASSERT_NE(first, nullptr);
  EXPECT_FALSE(first->is_training());
  auto inner = m->child("1");
  auto bn1 = std::dynamic_pointer_cast<SyncBatchNorm>(inner->child("0"));
  ASSERT_NE(bn1, nullptr);
  EXPECT_FALSE(bn1->options().momentum().has_value());
  EXPECT_EQ(bn1->options().eps(), 1e-3);
  EXPECT_NE(std::dynamic_pointer_cast<GroupNorm>(inner->child("1")), nullptr);
  EXPECT_TRUE(std::dynamic_pointer_cast<SyncBatchNorm>(inner->child("2"))->is_lazy());
  const StateDict after = m->state_dict();
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [key, value] : before) EXPECT_EQ(max_abs_diff(value, after.at(key)), 0.0) << key;
}

TEST(ConvertSyncBatchNorm, RootBatchNormIsReturnedConverted) {
  auto root = convert_sync_batchnorm(std::make_shared<BatchNorm3d>(2));
  EXPECT_EQ(root->type_name(), "SyncBatchNorm");
}

// The template overload: a Sequential stays a Sequential, a BatchNorm root becomes the
// SyncBatchNorm, a Module stays a Module.
TEST(ConvertSyncBatchNorm, KeepsTheCallersType) {
  auto group = dist::make_local_group();
  std::shared_ptr<Sequential> m = model();
  const Sequential* before = m.get();
  m = convert_sync_batchnorm(m, group);
  EXPECT_EQ(m.get(), before);
  EXPECT_EQ(m->size(), 3u);
  EXPECT_EQ(std::dynamic_pointer_cast<SyncBatchNorm>(m->child("0"))->process_group(), group);
  static_assert(std::is_same_v<decltype(convert_sync_batchnorm(m)), std::shared_ptr<Sequential>>);

  std::shared_ptr<SyncBatchNorm> sync = convert_sync_batchnorm(std::make_shared<BatchNorm2d>(3));
  EXPECT_EQ(sync->options().num_features(), 3);
  auto already = std::make_shared<SyncBatchNorm>(3);
  EXPECT_EQ(convert_sync_batchnorm(already), already);
  std::shared_ptr<Module> as_module = model();
  static_assert(
      std::is_same_v<decltype(convert_sync_batchnorm(as_module)), std::shared_ptr<Module>>);
}

// As PyTorch's recursion: a BatchNorm shared by two parents is converted under both names.
TEST(ConvertSyncBatchNorm, ASharedBatchNormIsConvertedUnderEveryPath) {
  auto bn = std::make_shared<BatchNorm2d>(4);
  auto m = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      bn, std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{bn})});
  convert_sync_batchnorm(m);
  EXPECT_EQ(m->get_submodule("0")->type_name(), "SyncBatchNorm");
  EXPECT_EQ(m->get_submodule("1.0")->type_name(), "SyncBatchNorm");
  revert_sync_batchnorm(m);
  EXPECT_EQ(m->get_submodule("1.0")->type_name(), "BatchNorm2d");
}

// A layer reachable along two paths is one layer (modules() lists it once).
TEST(CountSyncBatchNorm, CountsASharedLayerOnce) {
  auto sync = std::make_shared<SyncBatchNorm>(4);
  Sequential m(std::vector<std::shared_ptr<Module>>{sync, sync, std::make_shared<BatchNorm2d>(4)});
  EXPECT_EQ(count_sync_batchnorm(m), 1);
}

TEST(BatchNormVariant, NamesTheClass) {
  EXPECT_EQ(BatchNorm1d(2).variant(), BatchNormVariant::OneD);
  EXPECT_EQ(LazyBatchNorm2d().variant(), BatchNormVariant::TwoD);
  EXPECT_EQ(BatchNorm3d(2).variant(), BatchNormVariant::ThreeD);
  EXPECT_EQ(SyncBatchNorm(2).variant(), BatchNormVariant::Any);
  EXPECT_EQ(SyncBatchNorm::from_batchnorm(BatchNorm3d(2), nullptr)->to_batchnorm()->type_name(),
            "BatchNorm3d");
  EXPECT_STREQ(variant_suffix(BatchNormVariant::TwoD), "2d");
  EXPECT_STREQ(variant_suffix(BatchNormVariant::Any), "");
  EXPECT_EQ(testing::error_of([] { BatchNorm1d(0); }),
            "BatchNorm1d: num_features must be positive, got 0");
}

TEST(RevertSyncBatchNorm, RestoresPlainVariantsAndState) {
  auto m = model();
  convert_sync_batchnorm(m);
  for (const char* layer : {"0", "2"})
    m->child(layer)->forward(testing::random_tensor({3, 4, 2, 2}, 2));
  const StateDict trained = m->state_dict();
  revert_sync_batchnorm(m);
  EXPECT_EQ(count_sync_batchnorm(*m), 0);
  EXPECT_EQ(m->child("0")->type_name(), "BatchNorm2d");
  EXPECT_EQ(m->child("1")->child("0")->type_name(), "BatchNorm1d");
  EXPECT_EQ(m->child("1")->child("2")->type_name(), "LazyBatchNorm3d");
  EXPECT_EQ(m->child("2")->type_name(), "BatchNorm2d");  // native SyncBN, variant from its input
  for (const auto& [key, value] : trained)
    EXPECT_EQ(max_abs_diff(value, m->state_dict().at(key)), 0.0) << key;
}

TEST(RevertSyncBatchNorm, UnknownVariantIsAClearError) {
  EXPECT_THROW(revert_sync_batchnorm(std::make_shared<SyncBatchNorm>(3)), ValueError);
}

}  // namespace
}  // namespace syncbn::nn
