// End to end: W ranks x batch B with SyncBatchNorm for one epoch == 1 rank x batch W*B on the
// same data order, for every parameter, running statistic and momentum buffer. Rank 0 repeats
// the run alone (local group) and compares the two checkpoints. One model per BatchNorm rank:
// the 2-D template ResNet, an MLP with BatchNorm1d and a 3-D conv net with BatchNorm3d, the last
// two written in the model language. 84 samples divide among 1..4 ranks, but not into batches
// of 8: every rank's last batch is short.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "mpi_world.hpp"
#include "support/test_util.hpp"
#include "syncbn/config/config.hpp"
#include "syncbn/dist/local.hpp"
#include "syncbn/io/safetensors.hpp"
#include "syncbn/train/trainer.hpp"

namespace syncbn::train {
namespace {

struct Model {
  const char* yaml;
  int batch_norms;
};

const Model kResnetTemplate{R"(
model: {input: [1, 8, 8], num_classes: 4, norm: sync_batch, stem_channels: 8,
        stages: [{channels: 8, blocks: 1, stride: 1}, {channels: 16, blocks: 1, stride: 2}]}
)",
                            6};

const Model kMlpBn1d{R"(
model:
  input: [12]
  num_classes: 4
  layers:
    fc1: {type: linear, out_features: 16}
    bn1: {type: batch_norm1d}
    relu1: relu
    fc2: {type: linear, out_features: $num_classes}
)",
                     1};

const Model kConv3dBn3d{R"(
model:
  input: [2, 4, 6, 6]
  num_classes: 4
  layers:
    conv1: {type: conv3d, out_channels: 4, kernel_size: 3, padding: 1, bias: false}
    bn1: {type: batch_norm3d}
    relu1: relu
    pool: {type: adaptive_avg_pool3d, output_size: 1}
    flatten: flatten
    fc: {type: linear, out_features: $num_classes}
)",
                        1};

config::Config job(const Model& model, std::int64_t batch, const std::string& dir) {
  const std::string rest = R"(
data: {dataset: synthetic, synthetic_train_size: 84, synthetic_test_size: 24}
optimizer: {lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.0001}
train: {epochs: 1, seed: 3}
)";
  return config::parse_config(
      model.yaml + rest, "equivalence",
      {"train.batch_size=" + std::to_string(batch), "train.checkpoint_dir=" + dir});
}

// A directory per run, named by rank 0's pid (every rank learns it).
std::string run_dir(dist::ProcessGroup& world, const std::string& name) {
  std::int64_t root_pid = world.rank() == 0 ? ::getpid() : 0;
  world.allreduce(&root_pid, 1);
  return ::testing::TempDir() + "syncbn_equivalence_" + name + "_" + std::to_string(root_pid);
}

void expect_same_checkpoints(const std::string& a_path, const std::string& b_path) {
  const auto a = io::load_safetensors(a_path).tensors;
  const auto b = io::load_safetensors(b_path).tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, value] : a) {
    ASSERT_TRUE(b.count(key)) << key;
    if (value.dtype() == DType::Int64) {
      EXPECT_EQ(value.item(), b.at(key).item()) << key;
      continue;
    }
    EXPECT_TRUE(testing::all_close(value, b.at(key), 1e-4, 1e-6)) << key;
  }
}

void expect_ranks_times_batch_equal_one_rank(const Model& model, const std::string& name) {
  auto world = testing::mpi_world_ptr();
  const std::int64_t b = 8, w = world->size();
  const std::string dir = run_dir(*world, name);
  const Summary parallel = run_training(job(model, b, dir + "/parallel"), world, {});
  EXPECT_EQ(parallel.steps, (84 / w + b - 1) / b);  // one epoch, the last batch short
  EXPECT_EQ(parallel.sync_layers, w > 1 ? model.batch_norms : 0);
  if (world->rank() != 0) return;
  run_training(job(model, b * w, dir + "/single"), dist::make_local_group(), {});
  expect_same_checkpoints(dir + "/parallel/last.safetensors", dir + "/single/last.safetensors");
  std::filesystem::remove_all(dir);
}

TEST(TrainEquivalenceMpi, ResnetTemplateWithBatchNorm2d) {
  expect_ranks_times_batch_equal_one_rank(kResnetTemplate, "resnet");
}

TEST(TrainEquivalenceMpi, MlpWithBatchNorm1d) {
  expect_ranks_times_batch_equal_one_rank(kMlpBn1d, "mlp");
}

TEST(TrainEquivalenceMpi, Conv3dNetWithBatchNorm3d) {
  expect_ranks_times_batch_equal_one_rank(kConv3dBn3d, "conv3d");
}

}  // namespace
}  // namespace syncbn::train
