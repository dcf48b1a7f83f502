#include <algorithm>
#include <array>
#include <cmath>

#include "rng.hpp"
#include "syncbn/data/dataset.hpp"
#include "syncbn/error.hpp"

namespace syncbn::data {
namespace {

constexpr std::int64_t kMaxClasses = 1 << 20;
constexpr std::int64_t kMaxSampleElements = std::int64_t{1} << 26;
constexpr double kTwoPi = 6.283185307179586;
// Distinct streams for the three kinds of draws, so e.g. class 3's pattern and sample 3's
// noise never share random numbers.
enum Stream : std::uint64_t { kPattern = 1, kLabel = 2, kNoise = 3 };

void validate(const SyntheticDatasetOptions& o) {
  SYNCBN_CHECK_AS(ConfigError, o.size() >= 0, "SyntheticDataset: size must be >= 0, got ",
                  o.size());
  SYNCBN_CHECK_AS(ConfigError, o.num_classes() >= 1 && o.num_classes() <= kMaxClasses,
                  "SyntheticDataset: num_classes must be in [1, ", kMaxClasses, "], got ",
                  o.num_classes());
  const Shape& s = o.sample_shape();
  const bool positive = std::all_of(s.begin(), s.end(), [](std::int64_t d) { return d > 0; });
  SYNCBN_CHECK_AS(ConfigError, s.size() >= 1 && s.size() <= 4 && positive,
                  "SyntheticDataset: sample_shape must be [C], [C, L], [C, H, W] or [C, D, H, W] "
                  "with positive sizes, got ",
                  shape_str(s));
  std::int64_t elements = 1;  // checked before each product, so it cannot overflow
  for (std::int64_t d : s) {
    SYNCBN_CHECK_AS(ConfigError, d <= kMaxSampleElements / elements,
                    "SyntheticDataset: sample_shape ", shape_str(s), " exceeds ",
                    kMaxSampleElements, " elements");
    elements *= d;
  }
  SYNCBN_CHECK_AS(ConfigError, o.noise() >= 0 && std::isfinite(o.noise()),
                  "SyntheticDataset: noise must be finite and >= 0, got ", o.noise());
}

// The spatial sizes as [D, H, W], missing leading ones set to 1: [C, L] is a row (W = L), [C]
// a single point. The wave's terms for size-1 dimensions are exactly 0, so a [C, H, W] sample
// is computed as it was before other ranks existed.
std::array<std::int64_t, 3> spatial_dhw(const Shape& s) {
  std::array<std::int64_t, 3> dhw{1, 1, 1};
  std::copy(s.begin() + 1, s.end(), dhw.end() - static_cast<std::ptrdiff_t>(s.size() - 1));
  return dhw;
}

}  // namespace

SyntheticDataset::SyntheticDataset(SyntheticDatasetOptions options) : options_(std::move(options)) {
  validate(options_);
  const std::int64_t channels = options_.sample_shape()[0];
  for (std::int64_t k = 0; k < options_.num_classes(); ++k) {
    detail::Rng rng(detail::hash_key({options_.seed(), kPattern, static_cast<std::uint64_t>(k)}));
    // Spread orientations evenly over half a turn and vary frequency and phase, so neighbouring
    // classes still differ; the random jitter keeps different seeds from being identical.
    const double angle = 3.141592653589793 * (k + 0.5 * rng.uniform()) / options_.num_classes();
    const double freq = 1.0 + static_cast<double>(k % 3) + rng.uniform();
    ClassPattern p{kTwoPi * freq * std::cos(angle),
                   kTwoPi * freq * std::sin(angle),
                   0.0,
                   kTwoPi * rng.uniform(),
                   {}};
    // Amplitudes in +-[0.5, 1]: every channel carries the pattern, with a class-specific sign mix.
    for (std::int64_t c = 0; c < channels; ++c)
      p.amplitude.push_back((rng.next() & 1 ? 1.0 : -1.0) * (0.5 + 0.5 * rng.uniform()));
    // Depth frequency, drawn last so the draws above (all a [C, H, W] sample uses) are unchanged.
    p.kz = kTwoPi * (1.0 + static_cast<double>(k % 2) + rng.uniform());
    patterns_.push_back(std::move(p));
  }
}

std::int64_t SyntheticDataset::label(std::int64_t index) const {
  SYNCBN_CHECK(index >= 0 && index < size(), "SyntheticDataset: index ", index,
               " is out of range for a data set of size ", size());
  detail::Rng rng(detail::hash_key({options_.seed(), kLabel, static_cast<std::uint64_t>(index)}));
  return static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(options_.num_classes())));
}

void SyntheticDataset::fill_sample(std::int64_t index, float* out) const {
  const Shape& s = options_.sample_shape();
  const auto [depth, height, width] = spatial_dhw(s);
  const ClassPattern& p = patterns_[static_cast<std::size_t>(label(index))];
  detail::Rng noise(detail::hash_key({options_.seed(), kNoise, static_cast<std::uint64_t>(index)}));
  for (std::int64_t c = 0; c < s[0]; ++c)
    for (std::int64_t d = 0; d < depth; ++d)
      for (std::int64_t h = 0; h < height; ++h)
        for (std::int64_t w = 0; w < width; ++w) {
          // With depth 1 the first term is +0.0, and adding it changes no bit of the rest.
          const double wave =
              std::cos(p.kz * d / depth + p.ky * h / height + p.kx * w / width + p.phase);
          const double value =
              p.amplitude[static_cast<std::size_t>(c)] * wave + options_.noise() * noise.normal();
          *out++ = static_cast<float>(value);
        }
}

Batch SyntheticDataset::get_batch(const std::vector<std::int64_t>& indices) const {
  check_indices(indices);
  Batch batch = allocate_batch(indices);
  const std::int64_t per_sample = shape_numel(options_.sample_shape());
  float* out = batch.images.data<float>();
  for (std::size_t i = 0; i < indices.size(); ++i) {
    fill_sample(indices[i], out + static_cast<std::int64_t>(i) * per_sample);
    batch.labels[i] = label(indices[i]);
  }
  return batch;
}

}  // namespace syncbn::data
