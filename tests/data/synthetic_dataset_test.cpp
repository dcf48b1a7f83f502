#include <gtest/gtest.h>

#include <numeric>

#include "syncbn/data/dataset.hpp"
#include "syncbn/error.hpp"

namespace syncbn {
namespace {

using data::SyntheticDataset;
using data::SyntheticDatasetOptions;

std::vector<std::int64_t> range(std::int64_t begin, std::int64_t end) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(end - begin));
  std::iota(v.begin(), v.end(), begin);
  return v;
}

TEST(SyntheticDataset, AnyShapeAndClassCount) {
  for (const Shape& shape : {Shape{1, 1, 1}, Shape{3, 5, 7}, Shape{2, 28, 28}}) {
    const SyntheticDataset ds(
        SyntheticDatasetOptions().size(50).num_classes(4).sample_shape(shape));
    EXPECT_EQ(ds.size(), 50);
    EXPECT_EQ(ds.num_classes(), 4);
    const data::Batch b = ds.get_batch(range(0, 50));
    Shape expected = shape;
    expected.insert(expected.begin(), 50);
    EXPECT_EQ(b.images.shape(), expected);
    for (std::int64_t label : b.labels) EXPECT_TRUE(label >= 0 && label < 4) << label;
  }
}

TEST(SyntheticDataset, DeterministicPerSeedAndIndex) {
  const auto opts = SyntheticDatasetOptions().size(100).seed(5);
  const SyntheticDataset a(opts), b(opts), other(SyntheticDatasetOptions(opts).seed(6));
  const data::Batch all = a.get_batch(range(0, 100));
  const data::Batch two = b.get_batch({42, 17});
  EXPECT_EQ(two.labels, (std::vector<std::int64_t>{all.labels[42], all.labels[17]}));
  const float* x = two.images.data<float>();
  const float* y = all.images.data<float>() + 17 * 784;
  EXPECT_TRUE(std::equal(x + 784, x + 2 * 784, y)) << "sample 17 depends on its batch";
  EXPECT_GT(max_abs_diff(other.get_batch(range(0, 100)).images, all.images), 0.5);
  EXPECT_EQ(a.label(42), all.labels[42]);
}

TEST(SyntheticDataset, LabelsCoverAllClasses) {
  const SyntheticDataset ds(SyntheticDatasetOptions().size(2000).num_classes(10));
  std::vector<int> count(10);
  for (std::int64_t i = 0; i < ds.size(); ++i) ++count[static_cast<std::size_t>(ds.label(i))];
  for (int c : count) EXPECT_GT(c, 120);  // ~200 each
}

// Learnable: a nearest-class-mean classifier fitted on 2000 samples must score >= 90% on 500
// held-out ones, so a small CNN has real signal to find; with the patterns drowned in noise the
// same classifier must do much worse (the test can tell signal from no signal).
double nearest_mean_accuracy(double noise, const Shape& shape = {1, 28, 28}) {
  const SyntheticDataset ds(
      SyntheticDatasetOptions().size(2500).num_classes(10).noise(noise).seed(3).sample_shape(
          shape));
  const std::int64_t per = shape_numel(shape);
  const data::Batch train = ds.get_batch(range(0, 2000)), test = ds.get_batch(range(2000, 2500));
  std::vector<std::vector<double>> mean(10, std::vector<double>(static_cast<std::size_t>(per)));
  std::vector<int> count(10);
  for (std::int64_t i = 0; i < 2000; ++i) {
    const auto k = static_cast<std::size_t>(train.labels[i]);
    ++count[k];
    for (std::int64_t p = 0; p < per; ++p) mean[k][p] += train.images.data<float>()[i * per + p];
  }
  for (int k = 0; k < 10; ++k)
    for (double& m : mean[k]) m /= std::max(count[k], 1);
  int correct = 0;
  for (std::int64_t i = 0; i < 500; ++i) {
    double best = 1e300;
    std::int64_t guess = -1;
    for (int k = 0; k < 10; ++k) {
      double d = 0;
      for (std::int64_t p = 0; p < per; ++p) {
        const double diff = test.images.data<float>()[i * per + p] - mean[k][p];
        d += diff * diff;
      }
      if (d < best) best = d, guess = k;
    }
    correct += guess == test.labels[i];
  }
  return correct / 500.0;
}

TEST(SyntheticDataset, ClassesAreSeparable) {
  EXPECT_GE(nearest_mean_accuracy(0.5), 0.9);
  EXPECT_LT(nearest_mean_accuracy(50.0), 0.5);
}

// Every sample rank a model can take carries the class: [C, L] for BatchNorm1d over a sequence,
// [C, D, H, W] for 3-D convolutions. ([C] alone is one constant per class and channel, so it
// needs channels to tell 10 classes apart.)
TEST(SyntheticDataset, ClassesAreSeparableInEveryRank) {
  EXPECT_GE(nearest_mean_accuracy(0.5, {64}), 0.9);
  EXPECT_GE(nearest_mean_accuracy(0.5, {2, 64}), 0.9);
  EXPECT_GE(nearest_mean_accuracy(0.5, {1, 4, 8, 8}), 0.9);
}

// Fewer spatial dims are the [C, D, H, W] wave with the missing sizes 1, exactly: [C, L] is
// [C, 1, L], and [C, 1, H, W] is [C, H, W] (so 3-D samples are what they were before 1-D and
// 4-D ones existed). Along the depth the wave really varies.
TEST(SyntheticDataset, LowerRanksAreTheWaveWithSizeOneDims) {
  auto batch = [](const Shape& shape) {
    const auto o = SyntheticDatasetOptions().size(20).num_classes(5).seed(7).sample_shape(shape);
    return SyntheticDataset(o).get_batch(range(0, 20));
  };
  const data::Batch row = batch({3, 11}), image_row = batch({3, 1, 11});
  EXPECT_EQ(row.labels, image_row.labels);
  EXPECT_EQ(max_abs_diff(row.images.reshape({20, 3, 1, 11}), image_row.images), 0.0);
  const data::Batch image = batch({2, 5, 6}), volume = batch({2, 1, 5, 6});
  EXPECT_EQ(max_abs_diff(image.images.reshape({20, 2, 1, 5, 6}), volume.images), 0.0);
  const data::Batch deep =
      SyntheticDataset(SyntheticDatasetOptions().size(1).sample_shape({1, 4, 5, 6}).noise(0))
          .get_batch({0});
  const Tensor slices = deep.images.reshape({4, 30});
  EXPECT_GT(max_abs_diff(slices.narrow(0, 0, 1), slices.narrow(0, 2, 1)), 0.1);
}

TEST(SyntheticDataset, RejectsBadOptions) {
  using O = SyntheticDatasetOptions;
  EXPECT_THROW(SyntheticDataset(O().size(-1)), ConfigError);
  EXPECT_THROW(SyntheticDataset(O().num_classes(0)), ConfigError);
  EXPECT_THROW(SyntheticDataset(O().sample_shape({})), ConfigError);
  EXPECT_THROW(SyntheticDataset(O().sample_shape({1, 2, 3, 4, 5})), ConfigError);
  EXPECT_THROW(SyntheticDataset(O().sample_shape({0})), ConfigError);
  EXPECT_THROW(SyntheticDataset(O().sample_shape({1, 1 << 14, 1 << 14, 1 << 14})), ConfigError);
  EXPECT_THROW(SyntheticDataset(O().sample_shape({1, 0, 28})), ConfigError);
  EXPECT_THROW(SyntheticDataset(O().sample_shape({1 << 20, 1 << 20, 1 << 20})), ConfigError);
  EXPECT_THROW(SyntheticDataset(O().noise(-1)), ConfigError);
  const SyntheticDataset ds(O().size(3));
  EXPECT_THROW(ds.get_batch({3}), ValueError);
  EXPECT_THROW(ds.label(-1), ValueError);
  EXPECT_EQ(SyntheticDataset(O().size(0)).get_batch({}).images.shape(), (Shape{0, 1, 28, 28}));
}

}  // namespace
}  // namespace syncbn
