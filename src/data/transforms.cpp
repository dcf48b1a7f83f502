#include "syncbn/data/transforms.hpp"

#include <cstring>
#include <utility>

#include "rng.hpp"
#include "syncbn/error.hpp"

namespace syncbn::data {
namespace {

void check_options(const TransformOptions& o, const Shape& sample) {
  const std::size_t channels = sample.empty() ? 1 : static_cast<std::size_t>(sample[0]);
  SYNCBN_CHECK_AS(ConfigError, o.mean().size() == o.std().size(), "transforms: data.mean has ",
                  o.mean().size(), " values but data.std has ", o.std().size());
  SYNCBN_CHECK_AS(
      ConfigError, o.mean().empty() || o.mean().size() == 1 || o.mean().size() == channels,
      "transforms: data.mean/data.std need 1 or ", channels, " values (one per channel of ",
      shape_str(sample), " samples), got ", o.mean().size());
  for (double s : o.std())
    SYNCBN_CHECK_AS(ConfigError, s > 0, "transforms: data.std values must be > 0, got ", s);
  SYNCBN_CHECK_AS(ConfigError, o.crop_padding() >= 0,
                  "transforms: data.crop_padding must be >= 0, got ", o.crop_padding());
  SYNCBN_CHECK_AS(ConfigError, !o.augment() || sample.size() == 3,
                  "transforms: data.augment needs [C, H, W] image samples, got ",
                  shape_str(sample));
}

}  // namespace

void random_crop_flip(const float* in, float* out, const Shape& sample_shape,
                      const TransformOptions& options, std::int64_t epoch, std::int64_t index) {
  const std::int64_t channels = sample_shape[0], height = sample_shape[1], width = sample_shape[2];
  const std::int64_t pad = options.crop_padding();
  detail::Rng rng(detail::hash_key(
      {options.seed(), static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(index)}));
  // Draw order as FashionMnist's augmentation: row offset, column offset, flip bit.
  const std::int64_t dy = static_cast<std::int64_t>(rng.below(2 * pad + 1)) - pad;
  const std::int64_t dx = static_cast<std::int64_t>(rng.below(2 * pad + 1)) - pad;
  const bool flip = options.horizontal_flip() && (rng.next() & 1);
  for (std::int64_t c = 0; c < channels; ++c) {
    const float* src = in + c * height * width;
    float* dst = out + c * height * width;
    for (std::int64_t y = 0; y < height; ++y) {
      const std::int64_t sy = y + dy;
      for (std::int64_t x = 0; x < width; ++x) {
        const std::int64_t sx = (flip ? width - 1 - x : x) + dx;
        const bool inside = sy >= 0 && sy < height && sx >= 0 && sx < width;
        dst[y * width + x] = inside ? src[sy * width + sx] : 0.f;
      }
    }
  }
}

void normalize_batch(Tensor& images, const std::vector<double>& mean,
                     const std::vector<double>& std) {
  if (mean.empty()) return;
  const Shape& shape = images.shape();
  const std::int64_t batch = shape[0];
  const std::int64_t channels = shape.size() > 1 ? shape[1] : 1;
  const std::int64_t inner = batch * channels == 0 ? 0 : images.numel() / (batch * channels);
  float* data = images.data<float>();
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t c = 0; c < channels; ++c) {
      const std::size_t k = mean.size() == 1 ? 0 : static_cast<std::size_t>(c);
      // As torchvision: (x - mean) / std in float32.
      const float m = static_cast<float>(mean[k]), s = static_cast<float>(std[k]);
      float* p = data + (b * channels + c) * inner;
      for (std::int64_t i = 0; i < inner; ++i) p[i] = (p[i] - m) / s;
    }
  }
}

TransformedDataset::TransformedDataset(std::unique_ptr<Dataset> inner, TransformOptions options)
    : inner_(std::move(inner)), options_(std::move(options)) {
  SYNCBN_CHECK_AS(ConfigError, inner_ != nullptr, "TransformedDataset: no inner data set");
  check_options(options_, inner_->sample_shape());
}

void TransformedDataset::set_epoch(std::int64_t epoch) {
  epoch_ = epoch;
  inner_->set_epoch(epoch);
}

Batch TransformedDataset::get_batch(const std::vector<std::int64_t>& indices) const {
  Batch batch = inner_->get_batch(indices);
  if (options_.augment() && !indices.empty()) {
    const Shape sample = sample_shape();
    const std::int64_t n = shape_numel(sample);
    std::vector<float> copy(static_cast<std::size_t>(n));
    float* data = batch.images.data<float>();
    for (std::size_t i = 0; i < indices.size(); ++i) {
      float* s = data + static_cast<std::int64_t>(i) * n;
      std::memcpy(copy.data(), s, copy.size() * sizeof(float));
      random_crop_flip(copy.data(), s, sample, options_, epoch_, indices[i]);
    }
  }
  normalize_batch(batch.images, options_.mean(), options_.std());
  return batch;
}

std::unique_ptr<Dataset> with_transforms(std::unique_ptr<Dataset> inner, TransformOptions options) {
  if (!options.augment() && options.mean().empty()) {
    check_options(options, inner->sample_shape());
    return inner;
  }
  return std::make_unique<TransformedDataset>(std::move(inner), std::move(options));
}

}  // namespace syncbn::data
