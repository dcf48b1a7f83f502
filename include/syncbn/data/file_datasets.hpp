#pragma once
// Data sets read from the user's own files (configs/README.md, "Data"): NumPy arrays, the binary
// CIFAR-10/100 files and a folder of PNG/JPEG images per class. Pixels come out as torchvision's
// ToTensor gives them (uint8 / 255, no normalisation). Every defect is an IoError naming the
// file and what is wrong; a label outside [0, num_classes) is one too.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "syncbn/data/dataset.hpp"

namespace syncbn::data {

class MappedFile;

// A pair of .npy files: samples [N, *sample_shape] float32 or uint8 (divided by 255), sample
// rank 1 to 4, and labels [N] int64 in [0, num_classes). The samples stay memory-mapped, read
// only for the indices asked for; the labels are read and checked whole.
class NpyDataset : public Dataset {
 public:
  NpyDataset(const std::string& samples_path, const std::string& labels_path,
             std::int64_t num_classes);
  ~NpyDataset() override;

  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  std::int64_t num_classes() const override { return num_classes_; }
  Shape sample_shape() const override { return sample_shape_; }
  Batch get_batch(const std::vector<std::int64_t>& indices) const override;

 private:
  std::unique_ptr<MappedFile> samples_;
  const unsigned char* data_ = nullptr;  // into samples_
  bool bytes_ = false;                   // uint8 samples (else float32)
  Shape sample_shape_;
  std::vector<std::int64_t> labels_;
  std::int64_t num_classes_;
};

enum class CifarKind { Cifar10, Cifar100 };

// The binary CIFAR files in `root`: CIFAR-10's data_batch_1..5.bin (train) and test_batch.bin,
// records of 1 label byte + 3072 pixel bytes; CIFAR-100's train.bin and test.bin, records of a
// coarse and a fine label byte + 3072 pixels (the fine label, 100 classes, is used). Samples are
// [3, 32, 32]; the files are read whole (150 MB for the training split).
class CifarDataset : public Dataset {
 public:
  CifarDataset(const std::string& root, CifarKind kind, Split split);

  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  std::int64_t num_classes() const override { return kind_ == CifarKind::Cifar10 ? 10 : 100; }
  Shape sample_shape() const override { return {3, 32, 32}; }
  Batch get_batch(const std::vector<std::int64_t>& indices) const override;

 private:
  void read_file(const std::string& path);

  CifarKind kind_;
  std::vector<std::uint8_t> pixels_;
  std::vector<std::int64_t> labels_;
};

struct ImageFolderOptions {
  SYNCBN_ARG(std::string, root);
  SYNCBN_ARG(std::int64_t, channels) = 3;  // 1 or 3
  SYNCBN_ARG(std::int64_t, height) = 32;
  SYNCBN_ARG(std::int64_t, width) = 32;
  SYNCBN_ARG(std::int64_t, resize) = 0;  // the shorter side's size; 0 = max(height, width)
};

// torchvision's ImageFolder: root/<class>/<image>, class names sorted (byte order) give labels
// 0, 1, ...; in each class the .png/.jpg/.jpeg files (any case) sorted by name. Each image is
// decoded when asked for (PNG via libpng, JPEG via libjpeg; the type comes from the magic bytes),
// scaled to [0, 1], resized so its shorter side is resize() (bilinear as
// F.interpolate(align_corners=False), no antialiasing) and center-cropped to height x width.
// Grey images are replicated to 3 channels; a colour image with channels() == 1 is an error (no
// silent conversion); alpha is dropped (colour values kept, as PIL's convert("RGB")).
class ImageFolder : public Dataset {
 public:
  explicit ImageFolder(ImageFolderOptions options);

  std::int64_t size() const override { return static_cast<std::int64_t>(files_.size()); }
  std::int64_t num_classes() const override { return static_cast<std::int64_t>(classes_.size()); }
  Shape sample_shape() const override {
    return {options_.channels(), options_.height(), options_.width()};
  }
  Batch get_batch(const std::vector<std::int64_t>& indices) const override;

  const std::vector<std::string>& classes() const { return classes_; }
  const std::string& file(std::int64_t index) const {
    return files_[static_cast<std::size_t>(index)];
  }

 private:
  void fill_sample(std::int64_t index, float* out) const;

  ImageFolderOptions options_;
  std::vector<std::string> classes_;
  std::vector<std::string> files_;
  std::vector<std::int64_t> labels_;
};

// A decoded image: pixels [channels, height, width] as bytes, channels 1 or 3.
struct Image {
  std::int64_t channels = 0, height = 0, width = 0;
  std::vector<std::uint8_t> pixels;
};
// Decodes a PNG or JPEG file (by its magic bytes). Throws IoError naming the file.
Image decode_image(const std::string& path);
// Bilinear resize of [C, H, W] floats (F.interpolate(mode='bilinear', align_corners=False)).
std::vector<float> resize_bilinear(const std::vector<float>& in, std::int64_t channels,
                                   std::int64_t height, std::int64_t width, std::int64_t out_height,
                                   std::int64_t out_width);

}  // namespace syncbn::data
