#include <algorithm>
#include <cmath>
#include <filesystem>

#include "syncbn/data/file_datasets.hpp"
#include "syncbn/error.hpp"

namespace syncbn::data {
namespace fs = std::filesystem;
namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::vector<std::string> sorted_entries(const fs::path& dir, bool want_dirs) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const bool is_dir = entry.is_directory();
    if (want_dirs ? is_dir : (!is_dir && is_image_name(entry.path())))
      names.push_back(entry.path().filename().string());
  }
  if (ec) throw IoError("cannot list '" + dir.string() + "': " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

// Source coordinate of output index `o` for F.interpolate(align_corners=False): half-pixel
// centres, clamped at 0 below; the upper neighbour is clamped to the last pixel.
struct Tap {
  std::int64_t lo, hi;
  float frac;
};
std::vector<Tap> taps(std::int64_t in, std::int64_t out) {
  std::vector<Tap> t(static_cast<std::size_t>(out));
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (std::int64_t o = 0; o < out; ++o) {
    const double src = std::max(0.0, (o + 0.5) * scale - 0.5);
    const auto lo = std::min(static_cast<std::int64_t>(src), in - 1);
    t[static_cast<std::size_t>(o)] = {lo, std::min(lo + 1, in - 1), static_cast<float>(src - lo)};
  }
  return t;
}

}  // namespace

std::vector<float> resize_bilinear(const std::vector<float>& in, std::int64_t channels,
                                   std::int64_t height, std::int64_t width, std::int64_t out_height,
                                   std::int64_t out_width) {
  const std::vector<Tap> ys = taps(height, out_height), xs = taps(width, out_width);
  std::vector<float> out(static_cast<std::size_t>(channels * out_height * out_width));
  for (std::int64_t c = 0; c < channels; ++c) {
    const float* src = in.data() + c * height * width;
    float* dst = out.data() + c * out_height * out_width;
    for (std::int64_t y = 0; y < out_height; ++y) {
      const Tap& ty = ys[static_cast<std::size_t>(y)];
      for (std::int64_t x = 0; x < out_width; ++x) {
        const Tap& tx = xs[static_cast<std::size_t>(x)];
        const float top =
            src[ty.lo * width + tx.lo] * (1 - tx.frac) + src[ty.lo * width + tx.hi] * tx.frac;
        const float bottom =
            src[ty.hi * width + tx.lo] * (1 - tx.frac) + src[ty.hi * width + tx.hi] * tx.frac;
        dst[y * out_width + x] = top * (1 - ty.frac) + bottom * ty.frac;
      }
    }
  }
  return out;
}

ImageFolder::ImageFolder(ImageFolderOptions options) : options_(std::move(options)) {
  SYNCBN_CHECK_AS(ConfigError, options_.channels() == 1 || options_.channels() == 3,
                  "ImageFolder: channels must be 1 or 3, got ", options_.channels());
  SYNCBN_CHECK_AS(ConfigError,
                  options_.height() > 0 && options_.width() > 0 && options_.resize() >= 0,
                  "ImageFolder: bad size ", options_.height(), "x", options_.width(), " resize ",
                  options_.resize());
  const fs::path root(options_.root());
  if (!fs::is_directory(root))
    throw IoError("image folder '" + root.string() + "' is not a directory");
  classes_ = sorted_entries(root, true);
  if (classes_.empty())
    throw IoError("image folder '" + root.string() + "' has no class sub-folders");
  for (std::size_t k = 0; k < classes_.size(); ++k) {
    const fs::path dir = root / classes_[k];
    const std::vector<std::string> names = sorted_entries(dir, false);
    if (names.empty())
      throw IoError("class folder '" + dir.string() + "' holds no .png/.jpg/.jpeg image");
    for (const std::string& name : names) {
      files_.push_back((dir / name).string());
      labels_.push_back(static_cast<std::int64_t>(k));
    }
  }
}

// Decode, scale to [0, 1], grey -> 3 channels, resize the shorter side, centre-crop.
void ImageFolder::fill_sample(std::int64_t index, float* out) const {
  const std::string& path = file(index);
  const Image image = decode_image(path);
  const std::int64_t C = options_.channels(), H = options_.height(), W = options_.width();
  if (image.channels == 3 && C == 1)
    throw IoError(path + ": colour image, but model.input asks for 1 channel (convert the " +
                  "images to greyscale, or use 3 input channels)");
  const std::int64_t hw = image.height * image.width;
  std::vector<float> planes(static_cast<std::size_t>(C * hw));
  for (std::int64_t c = 0; c < C; ++c)
    for (std::int64_t p = 0; p < hw; ++p)
      planes[static_cast<std::size_t>(c * hw + p)] =
          image.pixels[static_cast<std::size_t>((image.channels == 1 ? 0 : c) * hw + p)] / 255.f;
  const std::int64_t side = options_.resize() > 0 ? options_.resize() : std::max(H, W);
  std::int64_t rh = side, rw = side;  // torchvision: the longer side truncated, int(side * l / s)
  if (image.height < image.width)
    rw = side * image.width / image.height;
  else
    rh = side * image.height / image.width;
  if (rh != image.height || rw != image.width)
    planes = resize_bilinear(planes, C, image.height, image.width, rh, rw);
  if (rh < H || rw < W)
    throw IoError(path + ": resized to " + std::to_string(rw) + "x" + std::to_string(rh) +
                  ", smaller than the " + std::to_string(W) + "x" + std::to_string(H) +
                  " crop (raise data.resize)");
  // torchvision's CenterCrop: offsets int(round((size - crop) / 2)), Python rounding half to even.
  const auto top = static_cast<std::int64_t>(std::nearbyint((rh - H) / 2.0));
  const auto left = static_cast<std::int64_t>(std::nearbyint((rw - W) / 2.0));
  for (std::int64_t c = 0; c < C; ++c)
    for (std::int64_t y = 0; y < H; ++y)
      for (std::int64_t x = 0; x < W; ++x)
        out[(c * H + y) * W + x] =
            planes[static_cast<std::size_t>((c * rh + y + top) * rw + x + left)];
}

Batch ImageFolder::get_batch(const std::vector<std::int64_t>& indices) const {
  check_indices(indices);
  Batch batch = allocate_batch(indices);
  const std::int64_t n = shape_numel(sample_shape());
  for (std::size_t i = 0; i < indices.size(); ++i) {
    fill_sample(indices[i], batch.images.data<float>() + static_cast<std::int64_t>(i) * n);
    batch.labels[i] = labels_[static_cast<std::size_t>(indices[i])];
  }
  return batch;
}

}  // namespace syncbn::data
