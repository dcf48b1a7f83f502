#include <cstring>

#include "mapped_file.hpp"
#include "syncbn/data/file_datasets.hpp"
#include "syncbn/error.hpp"
#include "syncbn/io/npy.hpp"

namespace syncbn::data {
namespace {

std::vector<std::int64_t> read_labels(const std::string& path, std::int64_t count,
                                      std::int64_t num_classes) {
  const Tensor t = io::load_npy(path);
  if (t.dtype() != DType::Int64 || t.dim() != 1)
    throw IoError(path + ": labels must be a 1-D int64 (<i8) array, got " + dtype_name(t.dtype()) +
                  " of shape " + shape_str(t.shape()));
  if (t.size(0) != count)
    throw IoError(path + ": " + std::to_string(t.size(0)) + " labels for " + std::to_string(count) +
                  " samples");
  const std::int64_t* v = t.data<std::int64_t>();
  for (std::int64_t i = 0; i < count; ++i)
    if (v[i] < 0 || v[i] >= num_classes)
      throw IoError(path + ": label " + std::to_string(v[i]) + " at index " + std::to_string(i) +
                    " is outside [0, " + std::to_string(num_classes) + ")");
  return std::vector<std::int64_t>(v, v + count);
}

}  // namespace

NpyDataset::NpyDataset(const std::string& samples_path, const std::string& labels_path,
                       std::int64_t num_classes)
    : samples_(std::make_unique<MappedFile>(samples_path)), num_classes_(num_classes) {
  const io::NpyHeader h = io::parse_npy_header(samples_->bytes(), samples_path);
  if (h.dtype != DType::Float32 && h.dtype != DType::UInt8)
    throw IoError(samples_path + ": samples must be float32 (<f4) or uint8 (|u1), got " +
                  dtype_name(h.dtype));
  if (h.shape.size() < 2 || h.shape.size() > 5)
    throw IoError(samples_path + ": samples must be [N, C], [N, C, L], [N, C, H, W] or " +
                  "[N, C, D, H, W], got shape " + shape_str(h.shape));
  bytes_ = h.dtype == DType::UInt8;
  data_ = reinterpret_cast<const unsigned char*>(samples_->bytes().data()) + h.data_offset;
  sample_shape_.assign(h.shape.begin() + 1, h.shape.end());
  labels_ = read_labels(labels_path, h.shape[0], num_classes);
}

NpyDataset::~NpyDataset() = default;

Batch NpyDataset::get_batch(const std::vector<std::int64_t>& indices) const {
  check_indices(indices);
  Batch batch = allocate_batch(indices);
  const std::int64_t n = shape_numel(sample_shape_);
  float* out = batch.images.data<float>();
  for (std::size_t i = 0; i < indices.size(); ++i) {
    float* dst = out + static_cast<std::int64_t>(i) * n;
    if (bytes_) {
      const unsigned char* src = data_ + indices[i] * n;
      for (std::int64_t k = 0; k < n; ++k) dst[k] = static_cast<float>(src[k]) / 255.f;
    } else {  // .npy data starts 64-byte aligned (NumPy pads the header), but copy to be safe
      std::memcpy(dst, data_ + indices[i] * n * 4, static_cast<std::size_t>(n) * 4);
    }
    batch.labels[i] = labels_[static_cast<std::size_t>(indices[i])];
  }
  return batch;
}

}  // namespace syncbn::data
