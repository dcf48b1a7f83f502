#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "support/file_test_util.hpp"
#include "syncbn/builders/data.hpp"
#include "syncbn/data/dataset.hpp"
#include "syncbn/data/idx.hpp"
#include "syncbn/error.hpp"

namespace syncbn {
namespace {

using data::FashionMnist;
using data::FashionMnistOptions;
using data::Split;
using testing::throws_with;

bool debian_files_present() {
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    if (!std::filesystem::exists(std::string(data::kFashionMnistDir) + "/" + name)) return false;
  return true;
}

// A miniature Fashion-MNIST directory: n images of 28x28 with pixel (i, y, x) = (i + y + 2x) % 256.
void write_fake(const std::string& dir, std::int64_t n, std::uint8_t bad_label = 0) {
  Tensor images({n, 28, 28}, DType::UInt8);
  for (std::int64_t i = 0; i < images.numel(); ++i) {
    const std::int64_t img = i / 784, y = i / 28 % 28, x = i % 28;
    images.data<std::uint8_t>()[i] = static_cast<std::uint8_t>((img + y + 2 * x) % 256);
  }
  Tensor labels({n}, DType::UInt8);
  for (std::int64_t i = 0; i < n; ++i)
    labels.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i % 10);
  if (bad_label) labels.data<std::uint8_t>()[n - 1] = bad_label;
  for (const char* split : {"train", "t10k"}) {
    data::save_idx(dir + "/" + split + "-images-idx3-ubyte.gz", images, true);
    data::save_idx(dir + "/" + split + "-labels-idx1-ubyte.gz", labels, true);
  }
}

TEST(FashionMnist, NormalisesLikeToTensorThenNormalize) {
  testing::TempDir dir;
  write_fake(dir.path(), 12);
  const FashionMnist ds(FashionMnistOptions().root(dir.path()));
  EXPECT_EQ(ds.size(), 12);
  EXPECT_EQ(ds.sample_shape(), (Shape{1, 28, 28}));
  const data::Batch b = ds.get_batch({11, 3, 3});
  ASSERT_EQ(b.images.shape(), (Shape{3, 1, 28, 28}));
  EXPECT_EQ(b.labels, (std::vector<std::int64_t>{1, 3, 3}));
  for (std::int64_t y = 0; y < 28; ++y)
    for (std::int64_t x = 0; x < 28; ++x) {
      const double raw = static_cast<double>((11 + y + 2 * x) % 256);
      const double expected = (raw / 255.0 - 0.2860) / 0.3530;
      ASSERT_NEAR(b.images.data<float>()[y * 28 + x], expected, 1e-5) << y << "," << x;
    }
  const FashionMnist plain(FashionMnistOptions().root(dir.path()).normalize(false));
  EXPECT_FLOAT_EQ(plain.get_batch({0}).images.data<float>()[27], (0 + 0 + 54) / 255.f);
  EXPECT_EQ(plain.get_batch({}).images.shape(), (Shape{0, 1, 28, 28}));
  EXPECT_THROW(plain.get_batch({12}), ValueError);
  EXPECT_THROW(plain.get_batch({-1}), ValueError);
}

std::vector<float> sample(const data::Batch& b, std::int64_t i) {
  const float* p = b.images.data<float>() + i * 784;
  return std::vector<float>(p, p + 784);
}

// Every augmented image must be exactly one of the (2p+1)^2 crops, possibly mirrored.
TEST(FashionMnist, AugmentationIsACropAndFlipDrawnFromSeedEpochIndex) {
  testing::TempDir dir;
  write_fake(dir.path(), 40);
  const auto opts =
      FashionMnistOptions().root(dir.path()).normalize(false).augment(true).crop_padding(3);
  FashionMnist ds(opts);
  const FashionMnist plain(FashionMnistOptions().root(dir.path()).normalize(false));
  std::vector<std::int64_t> all(40);
  for (std::int64_t i = 0; i < 40; ++i) all[i] = i;
  const data::Batch aug = ds.get_batch(all), orig = plain.get_batch(all);
  std::set<std::pair<int, int>> offsets;
  int flips = 0;
  for (std::int64_t i = 0; i < 40; ++i) {
    const float* a = aug.images.data<float>() + i * 784;
    const float* o = orig.images.data<float>() + i * 784;
    bool found = false;
    for (int dy = 0; dy <= 6 && !found; ++dy)
      for (int dx = 0; dx <= 6 && !found; ++dx)
        for (int flip = 0; flip < 2 && !found; ++flip) {
          bool same = true;
          for (int y = 0; y < 28 && same; ++y)
            for (int x = 0; x < 28 && same; ++x) {
              const int sy = y + dy - 3, sx = (flip ? 27 - x : x) + dx - 3;
              const float v = sy >= 0 && sy < 28 && sx >= 0 && sx < 28 ? o[sy * 28 + sx] : 0.f;
              same = a[y * 28 + x] == v;
            }
          if (same) found = true, offsets.insert({dy, dx}), flips += flip;
        }
    EXPECT_TRUE(found) << "sample " << i << " is not a crop/flip of the original";
  }
  EXPECT_GE(offsets.size(), 15u);  // 40 draws from 49 offsets
  EXPECT_GT(flips, 5);
  EXPECT_LT(flips, 35);
  // Deterministic per (seed, epoch, index), independent of batch composition.
  EXPECT_EQ(sample(ds.get_batch({5, 7}), 1), sample(aug, 7));
  EXPECT_EQ(sample(FashionMnist(opts).get_batch({7}), 0), sample(aug, 7));
  ds.set_epoch(1);
  const data::Batch next = ds.get_batch(all);
  int changed = 0;
  for (std::int64_t i = 0; i < 40; ++i) changed += sample(next, i) != sample(aug, i);
  EXPECT_GT(changed, 30) << "a new epoch should redraw most crops";
  const data::Batch reseeded = FashionMnist(FashionMnistOptions(opts).seed(99)).get_batch(all);
  int differs = 0;
  for (std::int64_t i = 0; i < 40; ++i) differs += sample(reseeded, i) != sample(aug, i);
  EXPECT_GT(differs, 30) << "another seed should draw other crops";
}

TEST(FashionMnist, BadInputIsAClearError) {
  testing::TempDir dir;
  EXPECT_TRUE(throws_with<IoError>([&] { FashionMnist(FashionMnistOptions().root(dir.path())); },
                                   {dir.file("train-images-idx3-ubyte.gz"), "cannot open"}));
  write_fake(dir.path(), 5, /*bad_label=*/10);
  EXPECT_TRUE(throws_with<IoError>(
      [&] { FashionMnist(FashionMnistOptions().root(dir.path()).split(Split::Test)); },
      {dir.file("t10k-labels-idx1-ubyte.gz"), "label 10 at index 4 is outside [0, 10)"}));
  EXPECT_THROW(FashionMnist(FashionMnistOptions().root(dir.path()).crop_padding(9)), ConfigError);
}

class RealFashionMnist : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!debian_files_present())
      GTEST_SKIP() << "Debian's dataset-fashion-mnist is not installed in "
                   << data::kFashionMnistDir;
  }
};

TEST_F(RealFashionMnist, BothSplitsLoadWithBalancedLabels) {
  for (Split split : {Split::Train, Split::Test}) {
    const FashionMnist ds(FashionMnistOptions().split(split));
    const std::int64_t n = split == Split::Train ? 60000 : 10000;
    EXPECT_EQ(ds.size(), n);
    EXPECT_EQ(ds.num_classes(), 10);
    EXPECT_EQ(ds.sample_shape(), (Shape{1, 28, 28}));
    std::vector<std::int64_t> count(10);
    for (std::int64_t label : ds.labels()) {
      ASSERT_TRUE(label >= 0 && label < 10) << label;
      ++count[static_cast<std::size_t>(label)];
    }
    for (std::int64_t c : count) EXPECT_EQ(c, n / 10);
    EXPECT_EQ(ds.get_batch({0, n - 1}).images.shape(), (Shape{2, 1, 28, 28}));
  }
}

// An MLP's model.input [784] reads the images flattened (x.view(B, -1)); [1, 28, 28] reads them
// as they are; any other shape is refused, naming both.
TEST_F(RealFashionMnist, TheDataBuilderFlattensForAModelInputOf784) {
  auto config = [](const char* input) {
    return config::parse_config("model: {input: " + std::string(input) +
                                    ", num_classes: 10, layers: {fc: {type: linear, "
                                    "out_features: 10}}}\n",
                                "mlp");
  };
  const auto flat = builders::make_dataset(config("[784]"), Split::Test);
  const auto images = builders::make_dataset(config("[1, 28, 28]"), Split::Test);
  EXPECT_NO_THROW(builders::check_fits(config("[784]"), *flat));
  EXPECT_EQ(flat->sample_shape(), (Shape{784}));
  const data::Batch a = flat->get_batch({3, 9999}), b = images->get_batch({3, 9999});
  EXPECT_EQ(a.images.shape(), (Shape{2, 784}));
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(max_abs_diff(a.images, b.images.reshape({2, 784})), 0.0);
  EXPECT_TRUE(
      throws_with<ConfigError>([&] { builders::check_fits(config("[28, 28]"), *images); },
                               {"model.input is [28, 28]", "samples of shape [1, 28, 28]"}));
}

// The documented constants must be the training set's own statistics (to 4 decimals).
TEST_F(RealFashionMnist, NormalisationConstantsMatchTheTrainingData) {
  const FashionMnist ds;
  const Tensor& raw = ds.raw_images();
  double sum = 0, sum_sq = 0;
  for (std::int64_t i = 0; i < raw.numel(); ++i) {
    const double v = raw.data<std::uint8_t>()[i] / 255.0;
    sum += v, sum_sq += v * v;
  }
  const double mean = sum / raw.numel();
  const double std_dev = std::sqrt(sum_sq / raw.numel() - mean * mean);
  EXPECT_NEAR(mean, data::kFashionMnistMean, 5e-5);
  EXPECT_NEAR(std_dev, data::kFashionMnistStd, 5e-5);
}

}  // namespace
}  // namespace syncbn
