// Tensor storage reuse (src/core/block_cache.hpp): a training step frees and allocates the same
// sizes every step, and a reused block must behave exactly like a fresh one.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "syncbn/tensor.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SYNCBN_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define SYNCBN_TEST_SANITIZED 1
#endif
#endif

namespace syncbn {
namespace {

constexpr std::int64_t kLarge = 1 << 15;  // 128 KiB of floats: above glibc's mmap threshold

TEST(BlockCache, FreedLargeBlockIsHandedOutAgain) {
#ifdef SYNCBN_TEST_SANITIZED
  GTEST_SKIP() << "sanitizer builds never cache, so use-after-free stays visible";
#else
  const char* mb = std::getenv("SYNCBN_TENSOR_CACHE_MB");
  if (mb != nullptr && std::string(mb) == "0") GTEST_SKIP() << "SYNCBN_TENSOR_CACHE_MB=0";
  const void* first = Tensor::empty({kLarge}).raw();
  const Tensor again = Tensor::empty({kLarge});
  EXPECT_EQ(again.raw(), first);
#endif
}

TEST(BlockCache, ZerosOnAReusedBlockAreZero) {
  { Tensor dirty = Tensor::full({kLarge}, 7.0); }
  const Tensor z = Tensor::zeros({kLarge});
  for (std::int64_t i = 0; i < z.numel(); ++i) ASSERT_EQ(z.data<float>()[i], 0.f) << i;
}

TEST(BlockCache, ThreadsAllocatingTheSameSizeGetTheirOwnBlocks) {
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t, &ok] {
      bool good = true;
      for (int round = 0; round < 200; ++round) {
        Tensor mine = Tensor::full({kLarge}, t);
        for (std::int64_t i = 0; i < mine.numel(); i += 997) good &= mine.data<float>()[i] == t;
      }
      ok[static_cast<std::size_t>(t)] = good;
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_TRUE(ok[static_cast<std::size_t>(t)]) << "thread " << t;
}

}  // namespace
}  // namespace syncbn
