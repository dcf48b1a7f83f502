// Plain (unsynchronised) BatchNorm on several ranks: each rank's running statistics drift apart,
// so the run must evaluate and save one model, rank 0's (PyTorch DDP's broadcast_buffers=True).
#include <gtest/gtest.h>

#include <filesystem>

#include "syncbn/builders/data.hpp"
#include "syncbn/builders/model.hpp"
#include "syncbn/data/dataset.hpp"
#include "syncbn/dist/local.hpp"
#include "syncbn/train/trainer.hpp"

namespace syncbn::train {
namespace {
using builders::build_model;
using builders::make_dataset;

const char* kTiny = R"(
model: {input: [1, 8, 8], num_classes: 4, stem_channels: 8, norm: batch,
        stages: [{channels: 8, blocks: 1, stride: 1}, {channels: 16, blocks: 1, stride: 2}]}
data: {dataset: synthetic, synthetic_train_size: 96, synthetic_test_size: 200}
train: {batch_size: 8, epochs: 1, seed: 3}
)";

TEST(BroadcastBuffers, TheReportedAccuracyIsTheSavedModels) {
  const std::string dir = ::testing::TempDir() + "syncbn_buffers";
  std::filesystem::remove_all(dir);
  const config::Config c = config::parse_config(kTiny, "tiny", {"train.checkpoint_dir=" + dir});
  std::vector<Summary> summaries(2);
  dist::spawn_ranks(2, [&](std::shared_ptr<dist::ProcessGroup> group) {
    summaries[static_cast<std::size_t>(group->rank())] = run_training(c, group, {});
  });
  // The saved model, evaluated alone on the same test set.
  auto model = build_model(c.model, c.train.seed);
  load_model_state(latest_checkpoint(dir), *model);
  const auto test = make_dataset(c, data::Split::Test);
  auto alone = dist::make_local_group();
  const Evaluation e = evaluate(*model, *test, *alone);
  EXPECT_EQ(e.samples, 200);
  for (const Summary& s : summaries) {
    EXPECT_DOUBLE_EQ(s.test_accuracy, e.accuracy);
    EXPECT_NEAR(s.test_loss, e.loss, 1e-6 * std::max(1.0, e.loss));
  }
}

}  // namespace
}  // namespace syncbn::train
