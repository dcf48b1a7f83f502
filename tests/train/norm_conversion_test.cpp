// The launcher's BatchNorm -> SyncBatchNorm conversion: which layers, which groups (k
// consecutive ranks from model.sync_group_size), and the errors for a group size the world
// cannot be cut into. Multi-rank cases on the threaded in-process group.
#include <gtest/gtest.h>

#include "syncbn/builders/model.hpp"
#include "syncbn/dist/local.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"
#include "syncbn/train/norm_conversion.hpp"

namespace syncbn::train {
namespace {

config::Config tiny(const std::string& conversion_overrides = "") {
  config::Overrides o;
  if (!conversion_overrides.empty()) o.emplace_back(conversion_overrides);
  return config::parse_config(R"(
model: {input: [1, 8, 8], num_classes: 4, stem_channels: 8,
        stages: [{channels: 8, blocks: 1, stride: 1}, {channels: 16, blocks: 1, stride: 2}]}
)",
                              "tiny", o);
}

TEST(NormConversion, PlansGroupsOfConsecutiveRanks) {
  EXPECT_EQ(plan_sync_groups(tiny(), 4).describe(), "SyncBatchNorm across all 4 ranks");
  const SyncGroups pairs = plan_sync_groups(tiny("model.sync_group_size=2"), 4);
  EXPECT_EQ(pairs.size, 2);
  EXPECT_EQ(pairs.count, 2);
  EXPECT_EQ(pairs.describe(), "SyncBatchNorm in 2 groups of 2 ranks");
  EXPECT_EQ(plan_sync_groups(tiny("model.sync_group_size=4"), 4).count, 1);
  EXPECT_EQ(plan_sync_groups(tiny(), 1).describe(), "no SyncBatchNorm: one rank");
  EXPECT_EQ(plan_sync_groups(tiny("model.norm=batch"), 4).size, 0);
}

TEST(NormConversion, RefusesAGroupSizeTheWorldCannotBeCutInto) {
  const auto message = [](const std::string& k, int world) {
    try {
      plan_sync_groups(tiny("model.sync_group_size=" + k), world);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("3", 4).find("model.sync_group_size 3 does not divide the world size 4"),
            std::string::npos)
      << message("3", 4);
  EXPECT_NE(message("8", 4).find("model.sync_group_size 8 is larger than the world size 4"),
            std::string::npos)
      << message("8", 4);
  EXPECT_NE(message("8", 4).find("tiny"), std::string::npos);
  // Nothing to synchronise on one rank, or without conversion: the size is not checked.
  EXPECT_EQ(message("8", 1), "no error");
  EXPECT_EQ(plan_sync_groups(tiny("model.sync_group_size=3"), 1).size, 0);
}

TEST(NormConversion, ListsTheBatchNormLayersInTreeOrder) {
  const auto model = builders::build_model(tiny().model, 0);
  const std::vector<std::string> expected = {"bn1",          "layer1.0.bn1",
                                             "layer1.0.bn2", "layer2.0.bn1",
                                             "layer2.0.bn2", "layer2.0.downsample.1"};
  EXPECT_EQ(convertible_batchnorms(*model), expected);
}

// Each SyncBatchNorm's group is its pair of consecutive ranks: a sum over it of the world ranks
// is 4g + 1 for pair g, and every layer shares the one group.
TEST(NormConversion, ConvertsWithinGroupsOfConsecutiveRanks) {
  dist::spawn_ranks(4, [](std::shared_ptr<dist::ProcessGroup> world) {
    const config::Config c = tiny("model.sync_group_size=2");
    auto model = convert_norms(builders::build_model(c.model, 0), plan_sync_groups(c, 4), world);
    EXPECT_TRUE(convertible_batchnorms(*model).empty());
    std::shared_ptr<dist::ProcessGroup> group;
    int sync_layers = 0;
    for (const auto& m : model->modules()) {
      auto sync = std::dynamic_pointer_cast<nn::SyncBatchNorm>(m);
      if (!sync) continue;
      ++sync_layers;
      if (!group) group = sync->process_group();
      EXPECT_EQ(sync->process_group(), group);
    }
    EXPECT_EQ(sync_layers, 6);
    ASSERT_TRUE(group);
    EXPECT_EQ(group->size(), 2);
    EXPECT_EQ(group->rank(), world->rank() % 2);
    std::int64_t sum = world->rank();
    group->allreduce(&sum, 1);
    EXPECT_EQ(sum, 4 * (world->rank() / 2) + 1);
  });
}

}  // namespace
}  // namespace syncbn::train
