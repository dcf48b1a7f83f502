// Training with background loading is training without it: the same parameters bit for bit,
// across an epoch boundary (set_epoch with augmentation) and a mid-epoch stop, and the data-wait
// metric lands in metrics.jsonl.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "syncbn/dist/local.hpp"
#include "syncbn/error.hpp"
#include "syncbn/io/safetensors.hpp"
#include "syncbn/train/trainer.hpp"

namespace syncbn::train {
namespace {

const char* kTiny = R"(
model: {input: [2, 8, 8], num_classes: 4, stem_channels: 8,
        stages: [{channels: 8, blocks: 1, stride: 1}, {channels: 16, blocks: 1, stride: 2}]}
data: {dataset: synthetic, synthetic_train_size: 128, synthetic_test_size: 32, augment: true,
       crop_padding: 2, mean: [0.1, -0.2], std: [1.5, 0.8]}
train: {batch_size: 16, epochs: 2, seed: 3, max_steps: 11}
)";

// Trains with data.prefetch = `depth` into a fresh directory; returns the saved tensors.
io::TensorMap train_with(std::int64_t depth, const std::string& dir, std::ostream* log = nullptr) {
  std::filesystem::remove_all(dir);
  const config::Config c = config::parse_config(
      kTiny, "tiny", {"data.prefetch=" + std::to_string(depth), "train.checkpoint_dir=" + dir});
  RunOptions options;
  options.log = log;
  run_training(c, dist::make_local_group(), options);
  return io::load_safetensors(dir + "/last.safetensors").tensors;
}

TEST(PrefetchTraining, SameParametersWithAndWithoutPrefetch) {
  const std::string base = ::testing::TempDir() + "syncbn_prefetch_";
  const io::TensorMap inline_run = train_with(0, base + "0");
  for (std::int64_t depth : {1, 3}) {
    const io::TensorMap ahead = train_with(depth, base + std::to_string(depth));
    ASSERT_EQ(ahead.size(), inline_run.size());
    for (const auto& [name, t] : inline_run) {
      const Tensor& u = ahead.at(name);
      ASSERT_EQ(t.shape(), u.shape()) << name;
      ASSERT_EQ(t.nbytes(), u.nbytes()) << name;
      EXPECT_EQ(std::memcmp(t.raw(), u.raw(), t.nbytes()), 0) << name << " depth " << depth;
    }
  }
}

TEST(PrefetchTraining, MetricsRecordTheDataWait) {
  const std::string dir = ::testing::TempDir() + "syncbn_prefetch_metrics";
  std::ostringstream log;
  train_with(2, dir, &log);
  EXPECT_NE(log.str().find("data wait"), std::string::npos) << log.str();
  std::ifstream in(dir + "/metrics.jsonl");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("\"data_wait_ms_mean\": "), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("\"data_wait_ms_max\": "), std::string::npos) << text.str();
}

// A file that fails to decode while a background thread loads it stops the run with the
// decoder's error, naming the file, as inline loading does.
TEST(PrefetchTraining, LoadingErrorReachesTheCallerWithItsMessage) {
  const std::string root = ::testing::TempDir() + "syncbn_prefetch_broken";
  std::filesystem::remove_all(root);
  for (const char* split : {"train", "test"})
    for (const char* cls : {"a", "b"}) {
      std::filesystem::create_directories(root + "/" + split + "/" + cls);
      std::ofstream(root + "/" + split + "/" + cls + "/broken.png") << "not a png";
    }
  for (const char* depth : {"0", "2"}) {
    const config::Config c = config::parse_config(
        "model: {input: [1, 8, 8], num_classes: 2, stem_channels: 4, stages: [{channels: 4}]}\n"
        "data: {dataset: image_folder}\ntrain: {batch_size: 1, epochs: 1}\n",
        "broken",
        {"data.dir=" + root, "data.prefetch=" + std::string(depth),
         "train.checkpoint_dir=" + root + "/run"});
    try {
      run_training(c, dist::make_local_group(), {});
      ADD_FAILURE() << "a broken image trained (prefetch " << depth << ")";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace syncbn::train
