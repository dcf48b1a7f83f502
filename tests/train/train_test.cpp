// The training loop in one process: model structure and names, bucketed gradient averaging on
// the threaded group, checkpoint/resume exactness, and the errors a user meets first.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/test_util.hpp"
#include "syncbn/builders/model.hpp"
#include "syncbn/dist/local.hpp"
#include "syncbn/error.hpp"
#include "syncbn/io/safetensors.hpp"
#include "syncbn/train/gradient_sync.hpp"
#include "syncbn/train/trainer.hpp"

namespace syncbn::train {
namespace {
using builders::build_model;

const char* kTiny = R"(
model: {input: [1, 8, 8], num_classes: 4, stem_channels: 8,
        stages: [{channels: 8, blocks: 1, stride: 1}, {channels: 16, blocks: 1, stride: 2}]}
data: {dataset: synthetic, synthetic_train_size: 128, synthetic_test_size: 32}
train: {batch_size: 16, epochs: 2, seed: 5}
)";

std::string fresh_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "syncbn_train_" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

config::Config tiny(const config::Overrides& overrides) {
  return config::parse_config(kTiny, "tiny", overrides);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Trains `steps` optimizer steps into a fresh checkpoint dir `name` and returns the dir.
std::string trained(const std::string& name, std::int64_t steps) {
  const std::string dir = fresh_dir(name);
  run_training(tiny({"train.checkpoint_dir=" + dir, "train.max_steps=" + std::to_string(steps)}),
               dist::make_local_group(), {});
  return dir;
}

// Resumes from `dir` with config overrides on a local group; returns the CheckpointError text
// ("" when the resume was accepted).
std::string resume_error(const std::string& dir, config::Overrides overrides) {
  overrides.push_back("train.checkpoint_dir=" + dir);
  RunOptions resume;
  resume.resume_from = latest_checkpoint(dir);
  try {
    run_training(tiny(overrides), dist::make_local_group(), resume);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ModelBuilder, TorchvisionStyleNames) {
  auto model = build_model(tiny({}).model, 0);
  const auto state = model->state_dict();
  for (const char* key :
       {"conv1.weight", "bn1.running_mean", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.num_batches_tracked", "fc.weight", "fc.bias"})
    EXPECT_TRUE(state.count(key)) << key;
  Tensor logits = model->forward(testing::random_tensor({3, 1, 8, 8}, 1));
  EXPECT_EQ(logits.shape(), (Shape{3, 4}));
}

TEST(ModelBuilder, NormVariants) {
  EXPECT_EQ(
      build_model(tiny({"model.norm=group:4"}).model, 0)->state_dict().count("bn1.running_mean"),
      0u);
  EXPECT_EQ(build_model(tiny({"model.norm=batch_no_running_stats"}).model, 0)
                ->state_dict()
                .count("bn1.running_var"),
            0u);
  EXPECT_EQ(build_model(tiny({"model.norm=none"}).model, 0)->state_dict().count("bn1.weight"), 0u);
  EXPECT_THROW(build_model(tiny({"model.norm=group:3"}).model, 0), ConfigError);
  // A ModelConfig built in code skips the reader's checks: G = 0 is refused, not a division by 0.
  config::ModelConfig no_groups = tiny({}).model;
  no_groups.norm = {config::NormKind::Group, 0};
  EXPECT_THROW(build_model(no_groups, 0), ConfigError);
}

TEST(ModelBuilder, SameSeedSameWeights) {
  auto a = build_model(tiny({}).model, 9)->state_dict(),
       b = build_model(tiny({}).model, 9)->state_dict();
  for (const auto& [k, v] : a) EXPECT_EQ(max_abs_diff(v, b.at(k)), 0.0) << k;
}

TEST(GradientSync, AveragesInBucketsWithOneCollectiveEach) {
  for (int world : {1, 2, 3}) {
    dist::spawn_ranks(world, [&](std::shared_ptr<dist::ProcessGroup> group) {
      dist::ProcessGroup& g = *group;
      auto model = build_model(tiny({}).model, 0);
      auto params = model->named_parameters();
      for (auto& [name, p] : params) p->grad = Tensor::full(p->value.shape(), g.rank() + 1.0);
      GradientSync sync(params, 4096);  // small buckets: several collectives
      std::vector<float> extra{float(g.rank())};
      const int collectives = sync.average(g, extra);
      EXPECT_EQ(collectives, world > 1 ? static_cast<int>(sync.bucket_count()) : 0);
      EXPECT_GT(sync.bucket_count(), 3u);
      EXPECT_EQ(extra[0], world * (world - 1) / 2.0f);
      for (auto& [name, p] : params)
        EXPECT_FLOAT_EQ(p->grad.data<float>()[0], (world + 1) / 2.0f) << name;
    });
  }
}

TEST(Trainer, LearnsTheSyntheticData) {
  const Summary s =
      run_training(tiny({"train.checkpoint_dir=" + fresh_dir("learn"), "train.epochs=4"}),
                   dist::make_local_group(), {});
  EXPECT_GT(s.test_accuracy, 0.9);
  EXPECT_EQ(s.steps, 4 * 8);
}

TEST(Trainer, ResumeEndsWhereAnUninterruptedRunEnds) {
  const std::string whole = fresh_dir("whole"), split = fresh_dir("split");
  run_training(tiny({"train.checkpoint_dir=" + whole}), dist::make_local_group(), {});
  // Stop in the middle of epoch 2 (step 11 of 16 in all), then resume from the checkpoint.
  const Summary first = run_training(tiny({"train.checkpoint_dir=" + split, "train.max_steps=11"}),
                                     dist::make_local_group(), {});
  EXPECT_TRUE(first.stopped_early);
  RunOptions resume;
  resume.resume_from = latest_checkpoint(split);
  ASSERT_FALSE(resume.resume_from.empty());
  const Summary second =
      run_training(tiny({"train.checkpoint_dir=" + split}), dist::make_local_group(), resume);
  EXPECT_EQ(second.start_step, 11);
  EXPECT_EQ(second.steps, 16);
  const auto a = io::load_safetensors(whole + "/last.safetensors").tensors;
  const auto b = io::load_safetensors(split + "/last.safetensors").tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) EXPECT_EQ(max_abs_diff(v, b.at(k)), 0.0) << k;
}

TEST(Trainer, ResumingIntoAnotherModelListsTheMismatches) {
  const std::string dir = fresh_dir("mismatch");
  run_training(tiny({"train.checkpoint_dir=" + dir, "train.max_steps=2"}), dist::make_local_group(),
               {});
  RunOptions resume;
  resume.resume_from = latest_checkpoint(dir);
  try {
    run_training(tiny({"train.checkpoint_dir=" + dir, "model.stem_channels=4"}),
                 dist::make_local_group(), resume);
    FAIL() << "mismatched checkpoint accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("conv1.weight"), std::string::npos) << e.what();
  }
}

TEST(Trainer, DataThatDoesNotFitTheModelIsAConfigError) {
  EXPECT_THROW(run_training(tiny({"model.input=[3, 8, 8]", "data.dataset=fashion_mnist"}),
                            dist::make_local_group(), {}),
               Error);
  try {
    run_training(tiny({"model.input=[1, 28, 28]", "data.dataset=fashion_mnist",
                       "model.num_classes=4", "train.checkpoint_dir=" + fresh_dir("fit")}),
                 dist::make_local_group(), {});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.num_classes is 4"), std::string::npos) << e.what();
  }
}

TEST(Trainer, DivergenceStopsWithoutOverwritingTheCheckpoint) {
  const std::string dir = fresh_dir("diverge");
  run_training(tiny({"train.checkpoint_dir=" + dir, "train.max_steps=2"}), dist::make_local_group(),
               {});
  const auto before = io::load_safetensors(dir + "/last.safetensors").tensors;
  RunOptions resume;
  resume.resume_from = latest_checkpoint(dir);
  try {
    run_training(tiny({"train.checkpoint_dir=" + dir, "optimizer.lr=1e30"}),
                 dist::make_local_group(), resume);
    FAIL() << "a diverging run finished";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(what.find("non-finite") != std::string::npos ||
                what.find("NaN or Inf") != std::string::npos)
        << what;
  }
  const auto after = io::load_safetensors(dir + "/last.safetensors").tensors;
  for (const auto& [k, v] : before) EXPECT_EQ(max_abs_diff(v, after.at(k)), 0.0) << k;
}

// The position lives in the header; an edit there must not resume from the wrong place.
TEST(Checkpoint, EditedPositionIsRefused) {
  const std::string dir = trained("edited", 11);  // epoch index 1, step 3
  const std::string path = dir + "/last.safetensors";
  std::string bytes = read_file(path);
  const auto at = bytes.find(R"("epoch":"1")");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 9] = '0';
  write_file(path, bytes);
  const std::string error = resume_error(dir, {});
  EXPECT_TRUE(contains(error, path) && contains(error, "checksum mismatch")) << error;
}

// Mid-epoch, the step counts batches of one size over one shuffle on one number of ranks.
TEST(Checkpoint, MidEpochResumeRefusesAnotherBatchSizeOrSeed) {
  const std::string dir = trained("units", 3);
  const std::string error = resume_error(dir, {"train.batch_size=8", "train.seed=6"});
  EXPECT_TRUE(contains(error, "train.batch_size: checkpoint 16, this run 8")) << error;
  EXPECT_TRUE(contains(error, "train.seed: checkpoint 5, this run 6")) << error;
  EXPECT_TRUE(contains(error, dir + "/last.safetensors")) << error;
  // What does not change the meaning of the position may change: people extend runs.
  EXPECT_EQ(resume_error(dir, {"train.epochs=3", "optimizer.lr=0.05"}), "");
}

TEST(Checkpoint, MidEpochResumeRefusesAnotherWorldSize) {
  const std::string dir = trained("world", 3);
  RunOptions resume;
  resume.resume_from = latest_checkpoint(dir);
  try {
    dist::spawn_ranks(2, [&](std::shared_ptr<dist::ProcessGroup> group) {
      run_training(tiny({"train.checkpoint_dir=" + dir}), group, resume);
    });
    FAIL() << "resumed a 1-rank mid-epoch checkpoint on 2 ranks";
  } catch (const CheckpointError& e) {
    EXPECT_TRUE(contains(e.what(), "world size: checkpoint 1, this run 2")) << e.what();
  }
}

// At an epoch boundary nothing is counted in the old units, so the next epoch may use new ones.
TEST(Checkpoint, EpochBoundaryResumeMayChangeTheBatchSize) {
  const std::string dir = trained("boundary", 8);  // 128 samples / 16 = one whole epoch
  RunOptions resume;
  resume.resume_from = latest_checkpoint(dir);
  const Summary s = run_training(tiny({"train.checkpoint_dir=" + dir, "train.batch_size=32"}),
                                 dist::make_local_group(), resume);
  EXPECT_EQ(s.steps, 8 + 128 / 32);
}

// A SIGKILL during a write leaves <name>.tmp.<pid>.<n>; the next start removes those whose
// writer is gone and leaves everything else alone.
TEST(Checkpoint, StartRemovesTemporariesOfDeadWriters) {
  const std::string dir = fresh_dir("stale");
  std::filesystem::create_directories(dir);
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  const std::string prefix = dir + "/last.safetensors.tmp.";
  const std::string stale = prefix + std::to_string(dead) + ".0",
                    own = prefix + std::to_string(::getpid()) + ".7",
                    live = prefix + std::to_string(::getppid()) + ".0", other = prefix + "notes",
                    foreign = dir + "/model.safetensors.tmp." + std::to_string(dead) + ".0";
  for (const auto& f : {stale, own, live, other, foreign}) write_file(f, "partial");
  run_training(tiny({"train.checkpoint_dir=" + dir, "train.max_steps=1"}), dist::make_local_group(),
               {});
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_FALSE(std::filesystem::exists(own)) << "this process is not writing it yet";
  EXPECT_TRUE(std::filesystem::exists(live)) << "a live process may be writing it";
  EXPECT_TRUE(std::filesystem::exists(other));
  EXPECT_TRUE(std::filesystem::exists(foreign));
}

TEST(Checkpoint, MetricsWriteErrorsNameTheFile) {
  std::ostringstream log;
  RunOptions options;
  options.log = &log;
  try {
    run_training(tiny({"train.checkpoint_dir=" + fresh_dir("full"), "train.metrics=/dev/full",
                       "train.max_steps=8"}),
                 dist::make_local_group(), options);
    FAIL() << "metrics written to /dev/full without an error";
  } catch (const IoError& e) {
    EXPECT_TRUE(contains(e.what(), "/dev/full") && contains(e.what(), std::strerror(ENOSPC)))
        << e.what();
  }
}

// The number after "epoch" in `log`'s first line containing `marker`.
std::string epoch_in(const std::string& log, const std::string& marker) {
  std::istringstream lines(log);
  std::smatch m;
  for (std::string line; std::getline(lines, line);)
    if (contains(line, marker) && std::regex_search(line, m, std::regex("epoch (\\d+)")))
      return m[1];
  return "no line with '" + marker + "' in:\n" + log;
}

// Stop, resume, and the per-epoch line of the epoch it resumed in all count epochs alike.
TEST(Checkpoint, StopAndResumeMessagesNumberEpochsAlike) {
  const std::string dir = fresh_dir("messages");
  std::atomic<bool> stop{true};
  std::ostringstream stopped, resumed;
  RunOptions first;
  first.log = &stopped;
  first.stop_requested = &stop;
  run_training(tiny({"train.checkpoint_dir=" + dir}), dist::make_local_group(), first);
  RunOptions second;
  second.log = &resumed;
  second.resume_from = latest_checkpoint(dir);
  run_training(tiny({"train.checkpoint_dir=" + dir}), dist::make_local_group(), second);
  const std::string per_epoch = epoch_in(resumed.str(), "train_loss");
  EXPECT_EQ(per_epoch, "1");
  EXPECT_EQ(epoch_in(stopped.str(), "checkpoint written"), per_epoch);
  EXPECT_EQ(epoch_in(resumed.str(), "resumed from"), per_epoch);
}

}  // namespace
}  // namespace syncbn::train
