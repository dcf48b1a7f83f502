#include <fstream>
#include <iterator>

#include "syncbn/data/file_datasets.hpp"
#include "syncbn/error.hpp"

namespace syncbn::data {
namespace {

constexpr std::size_t kPixels = 3 * 32 * 32;

std::string file_in(const std::string& root, const std::string& name) {
  return root.empty() || root.back() == '/' ? root + name : root + "/" + name;
}

std::vector<std::string> files_of(CifarKind kind, Split split) {
  if (kind == CifarKind::Cifar100) return {split == Split::Train ? "train.bin" : "test.bin"};
  if (split == Split::Test) return {"test_batch.bin"};
  std::vector<std::string> names;
  for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
  return names;
}

}  // namespace

CifarDataset::CifarDataset(const std::string& root, CifarKind kind, Split split) : kind_(kind) {
  for (const std::string& name : files_of(kind, split)) read_file(file_in(root, name));
}

void CifarDataset::read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open '" + path + "' for reading");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t label_bytes = kind_ == CifarKind::Cifar10 ? 1 : 2;
  const std::size_t record = label_bytes + kPixels;
  if (bytes.empty() || bytes.size() % record != 0)
    throw IoError(path + ": " + std::to_string(bytes.size()) +
                  " bytes is not a whole, non-zero number of " + std::to_string(record) +
                  "-byte CIFAR records (truncated or not a CIFAR binary file)");
  const std::size_t count = bytes.size() / record;
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  for (std::size_t r = 0; r < count; ++r) {
    const std::uint8_t* rec = data + r * record;
    const std::int64_t label = rec[label_bytes - 1];  // CIFAR-100: the fine label
    if (label >= num_classes())
      throw IoError(path + ": record " + std::to_string(r) + " has label " + std::to_string(label) +
                    ", outside [0, " + std::to_string(num_classes()) + ")");
    labels_.push_back(label);
    pixels_.insert(pixels_.end(), rec + label_bytes, rec + record);
  }
}

Batch CifarDataset::get_batch(const std::vector<std::int64_t>& indices) const {
  check_indices(indices);
  Batch batch = allocate_batch(indices);
  float* out = batch.images.data<float>();
  for (std::size_t i = 0; i < indices.size(); ++i) {
    const std::uint8_t* src = pixels_.data() + static_cast<std::size_t>(indices[i]) * kPixels;
    for (std::size_t k = 0; k < kPixels; ++k) out[i * kPixels + k] = src[k] / 255.f;
    batch.labels[i] = labels_[static_cast<std::size_t>(indices[i])];
  }
  return batch;
}

}  // namespace syncbn::data
