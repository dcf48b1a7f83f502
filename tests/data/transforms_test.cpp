// Transforms against naive references: crop/flip must be one of the (2p+1)^2 * 2 crops of the
// zero-padded image, computed here independently, and the same draws as FashionMnist's own
// augmentation; normalisation against (x - mean) / std per channel.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "syncbn/data/dataset.hpp"
#include "syncbn/data/transforms.hpp"
#include "syncbn/error.hpp"

namespace syncbn::data {
namespace {

// [C, H, W] samples with distinct nonzero values, so every crop is distinguishable.
class CountingImages : public Dataset {
 public:
  explicit CountingImages(Shape shape) : shape_(std::move(shape)) {}
  std::int64_t size() const override { return 1000; }
  std::int64_t num_classes() const override { return 2; }
  Shape sample_shape() const override { return shape_; }
  Batch get_batch(const std::vector<std::int64_t>& indices) const override {
    check_indices(indices);
    Batch b = allocate_batch(indices);
    const std::int64_t n = shape_numel(shape_);
    for (std::size_t i = 0; i < indices.size(); ++i) {
      for (std::int64_t k = 0; k < n; ++k)
        b.images.data<float>()[static_cast<std::int64_t>(i) * n + k] =
            static_cast<float>(1 + k + 1000 * indices[i]);
      b.labels[i] = indices[i] % 2;
    }
    return b;
  }

 private:
  Shape shape_;
};

// The naive crop: pad by p with zeros, take the window at (oy, ox), mirror if asked.
std::vector<float> reference_crop(const std::vector<float>& img, std::int64_t c, std::int64_t h,
                                  std::int64_t w, std::int64_t p, std::int64_t oy, std::int64_t ox,
                                  bool flip) {
  const std::int64_t ph = h + 2 * p, pw = w + 2 * p;
  std::vector<float> padded(static_cast<std::size_t>(c * ph * pw), 0.f);
  for (std::int64_t ch = 0; ch < c; ++ch)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x)
        padded[static_cast<std::size_t>((ch * ph + y + p) * pw + x + p)] =
            img[static_cast<std::size_t>((ch * h + y) * w + x)];
  std::vector<float> out(img.size());
  for (std::int64_t ch = 0; ch < c; ++ch)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x) {
        const float v = padded[static_cast<std::size_t>((ch * ph + y + oy) * pw + x + ox)];
        const std::int64_t dst_x = flip ? w - 1 - x : x;
        out[static_cast<std::size_t>((ch * h + y) * w + dst_x)] = v;
      }
  return out;
}

std::vector<float> sample(const Batch& b, std::int64_t i) {
  const std::int64_t n = b.images.numel() / b.images.shape()[0];
  const float* p = b.images.data<float>() + i * n;
  return {p, p + n};
}

TEST(Transforms, CropFlipIsOneOfThePaddedCropsAndCoversThemAll) {
  const std::int64_t c = 2, h = 5, w = 6, p = 2;
  auto inner = std::make_unique<CountingImages>(Shape{c, h, w});
  const CountingImages& raw = *inner;
  TransformedDataset t(std::move(inner), TransformOptions().augment(true).crop_padding(p).seed(7));
  t.set_epoch(3);
  std::vector<std::int64_t> indices(400);
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int64_t>(i);
  const Batch got = t.get_batch(indices);
  const Batch orig = raw.get_batch(indices);
  std::set<std::tuple<std::int64_t, std::int64_t, bool>> seen;
  for (std::size_t i = 0; i < indices.size(); ++i) {
    int matches = 0;
    for (std::int64_t oy = 0; oy <= 2 * p; ++oy)
      for (std::int64_t ox = 0; ox <= 2 * p; ++ox)
        for (bool flip : {false, true})
          if (reference_crop(sample(orig, i), c, h, w, p, oy, ox, flip) == sample(got, i)) {
            ++matches;
            seen.insert({oy, ox, flip});
          }
    EXPECT_EQ(matches, 1) << "sample " << i;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>((2 * p + 1) * (2 * p + 1) * 2));
}

TEST(Transforms, DrawsDependOnSeedEpochAndIndexOnly) {
  auto make = [](std::uint64_t seed) {
    return TransformedDataset(std::make_unique<CountingImages>(Shape{1, 8, 8}),
                              TransformOptions().augment(true).seed(seed));
  };
  TransformedDataset a = make(1), b = make(1), other_seed = make(2);
  a.set_epoch(0);
  b.set_epoch(0);
  // Same index in another batch, position or data set object: the same sample.
  EXPECT_EQ(sample(a.get_batch({5, 9}), 1), sample(b.get_batch({9}), 0));
  int differ_seed = 0, differ_epoch = 0;
  for (std::int64_t i = 0; i < 50; ++i) {
    const auto base = sample(a.get_batch({i}), 0);
    differ_seed += base != sample(other_seed.get_batch({i}), 0);
    b.set_epoch(1);
    differ_epoch += base != sample(b.get_batch({i}), 0);
    b.set_epoch(0);
  }
  EXPECT_GT(differ_seed, 35);  // 1/50 of the 50 draws coincide by chance
  EXPECT_GT(differ_epoch, 35);
}

TEST(Transforms, FlipOffIsCropOnly) {
  TransformedDataset t(std::make_unique<CountingImages>(Shape{1, 4, 4}),
                       TransformOptions().augment(true).crop_padding(0).horizontal_flip(false));
  CountingImages raw(Shape{1, 4, 4});
  EXPECT_EQ(sample(t.get_batch({3}), 0), sample(raw.get_batch({3}), 0));
}

TEST(Transforms, NormalizesPerChannel) {
  const std::vector<double> mean{0.5, -1.25, 3}, std{2, 0.5, 4};
  TransformedDataset t(std::make_unique<CountingImages>(Shape{3, 2, 2}),
                       TransformOptions().mean(mean).std(std));
  CountingImages raw(Shape{3, 2, 2});
  const auto got = sample(t.get_batch({2}), 0), in = sample(raw.get_batch({2}), 0);
  for (std::size_t k = 0; k < in.size(); ++k) {
    const std::size_t ch = k / 4;
    EXPECT_NEAR(got[k], (in[k] - mean[ch]) / std[ch], 1e-6 * std::abs(in[k])) << k;
  }
  // One value for every channel.
  TransformedDataset one(std::make_unique<CountingImages>(Shape{3, 2, 2}),
                         TransformOptions().mean({1}).std({2}));
  const auto g1 = sample(one.get_batch({2}), 0);
  for (std::size_t k = 0; k < in.size(); ++k) EXPECT_FLOAT_EQ(g1[k], (in[k] - 1) / 2) << k;
}

TEST(Transforms, AugmentThenNormalizeLikeTorchvision) {
  // Padding is black before Normalize: a padded pixel becomes (0 - mean) / std.
  TransformedDataset t(std::make_unique<CountingImages>(Shape{1, 3, 3}),
                       TransformOptions().augment(true).crop_padding(3).mean({0.5}).std({0.25}));
  int padded = 0;
  for (std::int64_t i = 0; i < 20; ++i)
    for (float v : sample(t.get_batch({i}), 0)) padded += v == -2.f;
  EXPECT_GT(padded, 0);
}

TEST(Transforms, BadOptionsAreConfigErrors) {
  auto make = [](Shape shape, TransformOptions o) {
    TransformedDataset(std::make_unique<CountingImages>(std::move(shape)), std::move(o));
  };
  EXPECT_THROW(make({3, 4, 4}, TransformOptions().mean({0, 0}).std({1, 1})), ConfigError);
  EXPECT_THROW(make({3, 4, 4}, TransformOptions().mean({0}).std({1, 1})), ConfigError);
  EXPECT_THROW(make({1, 4, 4}, TransformOptions().mean({0}).std({0})), ConfigError);
  EXPECT_THROW(make({1, 4, 4}, TransformOptions().augment(true).crop_padding(-1)), ConfigError);
  EXPECT_THROW(make({16}, TransformOptions().augment(true)), ConfigError);
  EXPECT_NO_THROW(make({16}, TransformOptions().mean({0.1}).std({0.2})));
}

TEST(Transforms, WithTransformsWrapsOnlyWhenAsked) {
  auto inner = std::make_unique<CountingImages>(Shape{1, 4, 4});
  const Dataset* raw = inner.get();
  EXPECT_EQ(with_transforms(std::move(inner), TransformOptions()).get(), raw);
  EXPECT_NE(dynamic_cast<TransformedDataset*>(
                with_transforms(std::make_unique<CountingImages>(Shape{1, 4, 4}),
                                TransformOptions().augment(true))
                    .get()),
            nullptr);
}

}  // namespace
}  // namespace syncbn::data

namespace syncbn::data {
namespace {

// The wrapper makes FashionMnist's own augmentation draws, so either path trains the same.
TEST(Transforms, SameDrawsAsFashionMnistAugmentation) {
  const std::string root = kFashionMnistDir;
  if (!std::ifstream(root + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed in " << root;
  auto base = FashionMnistOptions().normalize(false).crop_padding(3).seed(11);
  FashionMnist own(FashionMnistOptions(base).augment(true));
  TransformedDataset wrapped(std::make_unique<FashionMnist>(base),
                             TransformOptions().augment(true).crop_padding(3).seed(11));
  own.set_epoch(2);
  wrapped.set_epoch(2);
  const std::vector<std::int64_t> indices{0, 17, 59999, 1234};
  const Batch a = own.get_batch(indices), b = wrapped.get_batch(indices);
  for (std::int64_t i = 0; i < a.images.numel(); ++i)
    ASSERT_EQ(a.images.data<float>()[i], b.images.data<float>()[i]) << i;
}

}  // namespace
}  // namespace syncbn::data
