#pragma once
// Tensor storage allocation with reuse of freed blocks. A training step allocates and frees the
// same activation and gradient sizes every step; from glibc each large block is fresh mmap'ed
// (or trimmed and regrown) memory, so every step pays one page fault per 4 KiB touched, about
// 10 us each on the VMs we measure on (ResNet-18, batch 32: ~1,500 faults, 15% of the step).
// Freed blocks of at least kMinCachedBytes are kept, by exact size, and handed out again.
//
// The cache holds at most SYNCBN_TENSOR_CACHE_MB MiB (read once; default 1024, 0 disables it);
// a block freed while the cache is full goes back to the system. When the system refuses an
// allocation, the cache is emptied and the allocation retried once. Sanitizer builds never
// cache, so use-after-free stays visible. Thread-safe (one mutex; a few per layer call).
#include <cstddef>

namespace syncbn::detail {

inline constexpr std::size_t kMinCachedBytes = 16 * 1024;

// `bytes` (> 0, a multiple of `alignment`) aligned to `alignment`; nullptr when out of memory.
std::byte* allocate_block(std::size_t bytes, std::size_t alignment);
// Returns a block from allocate_block with the size it was allocated with.
void free_block(std::byte* block, std::size_t bytes) noexcept;

}  // namespace syncbn::detail
