// The optimisation keys end to end: their config round trip and errors, optimizer steps with
// train.accumulate, and an AdamW run (with accumulation, clipping and label smoothing) that
// resumes mid-run to exactly the checkpoint of the uninterrupted run.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_util.hpp"
#include "syncbn/config/config.hpp"
#include "syncbn/dist/local.hpp"
#include "syncbn/error.hpp"
#include "syncbn/io/safetensors.hpp"
#include "syncbn/train/trainer.hpp"

namespace syncbn::train {
namespace {

const char* kTiny = R"(
model: {input: [1, 8, 8], num_classes: 4, stem_channels: 8,
        stages: [{channels: 8, blocks: 1, stride: 1}, {channels: 16, blocks: 1, stride: 2}]}
data: {dataset: synthetic, synthetic_train_size: 128, synthetic_test_size: 32}
train: {batch_size: 16, epochs: 2, seed: 5}
)";

config::Config tiny(const config::Overrides& overrides) {
  return config::parse_config(kTiny, "tiny", overrides);
}

std::string fresh_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "syncbn_optimisation_" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(OptimisationConfig, KeysRoundTripThroughToYaml) {
  const config::Config c =
      tiny({"optimizer.name=adamw", "optimizer.betas=[0.8, 0.95]", "optimizer.eps=1e-6",
            "optimizer.clip_grad_norm=2.5", "train.accumulate=4", "train.scale_lr=true",
            "train.label_smoothing=0.1"});
  const config::Config back = config::parse_config(config::to_yaml(c), "round trip");
  EXPECT_EQ(back.optimizer.name, "adamw");
  EXPECT_EQ(back.optimizer.betas, (std::vector<double>{0.8, 0.95}));
  EXPECT_EQ(back.optimizer.eps, 1e-6);
  EXPECT_EQ(back.optimizer.weight_decay, 0.01);  // AdamW's default when the file omits it
  EXPECT_EQ(back.optimizer.clip_grad_norm, 2.5);
  EXPECT_EQ(back.train.accumulate, 4);
  EXPECT_TRUE(back.train.scale_lr);
  EXPECT_EQ(back.train.label_smoothing, 0.1);
  EXPECT_EQ(config::to_yaml(back), config::to_yaml(c));
}

TEST(OptimisationConfig, DefaultsKeepSgdAndAnExplicitDecay) {
  EXPECT_EQ(tiny({}).optimizer.name, "sgd");
  EXPECT_EQ(tiny({}).optimizer.weight_decay, 5e-4);
  EXPECT_EQ(tiny({"optimizer.name=adamw", "optimizer.weight_decay=0"}).optimizer.weight_decay, 0);
  EXPECT_EQ(tiny({}).train.accumulate, 1);
  EXPECT_FALSE(tiny({}).train.scale_lr);
}

TEST(OptimisationConfig, RefusesBadValuesNamingTheKey) {
  for (const char* bad :
       {"optimizer.name=adam", "optimizer.betas=[1, 0.9]", "optimizer.betas=[0.9]",
        "optimizer.eps=-1", "optimizer.clip_grad_norm=-0.5", "train.accumulate=0",
        "train.accumulate=2000", "train.label_smoothing=1.5"}) {
    SCOPED_TRACE(bad);
    const std::string key = std::string(bad).substr(0, std::string(bad).find('='));
    try {
      tiny({bad});
      ADD_FAILURE() << "accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

TEST(Accumulation, CountsOptimizerStepsWithAShortLastStep) {
  // 128 samples / 16 = 8 micro-batches per epoch; 3 per step: 3 + 3 + 2.
  const std::string dir = fresh_dir("steps");
  const Summary s =
      run_training(tiny({"train.checkpoint_dir=" + dir, "train.accumulate=3", "train.epochs=1"}),
                   dist::make_local_group(), {});
  EXPECT_EQ(s.steps, 3);
  std::filesystem::remove_all(dir);
}

TEST(AdamWTraining, ResumesToTheUninterruptedCheckpoint) {
  const config::Overrides options = {"optimizer.name=adamw", "optimizer.lr=0.003",
                                     "train.accumulate=2", "optimizer.clip_grad_norm=0.5",
                                     "train.label_smoothing=0.1"};
  // Both runs are 2 epochs long (the cosine schedule depends on it); the first one stops after
  // 4 steps, at the end of epoch 1 (8 micro-batches of 2).
  auto with = [&](const std::string& dir, std::int64_t max_steps) {
    config::Overrides o = options;
    o.push_back("train.checkpoint_dir=" + dir);
    o.push_back("train.max_steps=" + std::to_string(max_steps));
    return tiny(o);
  };
  const std::string straight = fresh_dir("straight"), resumed = fresh_dir("resumed");
  run_training(with(straight, 0), dist::make_local_group(), {});
  run_training(with(resumed, 4), dist::make_local_group(), {});
  RunOptions resume;
  resume.resume_from = latest_checkpoint(resumed);
  const Summary s = run_training(with(resumed, 0), dist::make_local_group(), resume);
  EXPECT_EQ(s.start_step, 4);
  EXPECT_EQ(s.steps, 8);
  const auto a = io::load_safetensors(latest_checkpoint(straight)).tensors;
  const auto b = io::load_safetensors(latest_checkpoint(resumed)).tensors;
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(a.count("optimizer.fc.weight.exp_avg_sq"));
  for (const auto& [key, value] : a) {
    ASSERT_TRUE(b.count(key)) << key;
    if (value.dtype() != DType::Float32) continue;
    EXPECT_TRUE(testing::all_close(value, b.at(key), 0, 0)) << key;
  }
  std::filesystem::remove_all(straight);
  std::filesystem::remove_all(resumed);
}

}  // namespace
}  // namespace syncbn::train
