#pragma once
// A read-only memory map of a whole file, so large sample arrays are paged in on demand.
// Private to src/data.
#include <cstddef>
#include <string>
#include <string_view>

namespace syncbn::data {

class MappedFile {
 public:
  // Throws IoError naming `path` when it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::string_view bytes() const { return {static_cast<const char*>(data_), size_}; }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace syncbn::data
