#include "core/block_cache.hpp"

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SYNCBN_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define SYNCBN_SANITIZED 1
#endif
#endif

namespace syncbn::detail {
namespace {

std::size_t capacity_from_env() {
#ifdef SYNCBN_SANITIZED
  return 0;
#else
  const char* mb = std::getenv("SYNCBN_TENSOR_CACHE_MB");
  if (mb == nullptr || *mb == '\0') return std::size_t{1024} << 20;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(mb, &end, 10);
  return *end == '\0' ? static_cast<std::size_t>(value) << 20 : 0;  // garbage: no caching
#endif
}

class BlockCache {
 public:
  std::byte* take(std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(bytes);
    if (it == free_.end() || it->second.empty()) return nullptr;
    std::byte* block = it->second.back();
    it->second.pop_back();
    held_ -= bytes;
    return block;
  }
  // False when the cache is full (the caller frees the block).
  bool keep(std::byte* block, std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (held_ + bytes > capacity_) return false;
    free_[bytes].push_back(block);
    held_ += bytes;
    return true;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [bytes, blocks] : free_)
      for (std::byte* block : blocks) std::free(block);
    free_.clear();
    held_ = 0;
  }
  bool enabled() const { return capacity_ > 0; }

 private:
  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<std::byte*>> free_;
  std::size_t held_ = 0;
  const std::size_t capacity_ = capacity_from_env();
};

// Never destroyed: tensors in static objects may be freed after any destructor would have run.
BlockCache& cache() {
  static BlockCache* instance = new BlockCache();
  return *instance;
}

bool cacheable(std::size_t bytes) {
  return bytes >= kMinCachedBytes && cache().enabled();
}

}  // namespace

std::byte* allocate_block(std::size_t bytes, std::size_t alignment) {
  if (cacheable(bytes))
    if (std::byte* block = cache().take(bytes)) return block;
  auto* block = static_cast<std::byte*>(std::aligned_alloc(alignment, bytes));
  if (block == nullptr && cacheable(bytes)) {  // the cache may hold what the system lacks
    cache().clear();
    block = static_cast<std::byte*>(std::aligned_alloc(alignment, bytes));
  }
  return block;
}

void free_block(std::byte* block, std::size_t bytes) noexcept {
  if (block == nullptr) return;
  try {
    if (cacheable(bytes) && cache().keep(block, bytes)) return;
  } catch (...) {  // no memory for the cache's own bookkeeping: just free the block
  }
  std::free(block);
}

}  // namespace syncbn::detail
