#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "syncbn/data/sampler.hpp"
#include "syncbn/error.hpp"

namespace syncbn {
namespace {

using data::DistributedSampler;
using data::DistributedSamplerOptions;

// The global order the ranks jointly imply: position r + k*W holds rank r's k-th index.
std::vector<std::int64_t> interleave(std::int64_t n, std::int64_t world,
                                     DistributedSamplerOptions o, std::int64_t epoch) {
  std::vector<std::int64_t> order;
  std::vector<DistributedSampler> ranks;
  for (std::int64_t r = 0; r < world; ++r) {
    ranks.emplace_back(n, o.num_replicas(world).rank(r));
    ranks.back().set_epoch(epoch);
    EXPECT_EQ(ranks.back().num_samples(), ranks.front().num_samples());
    EXPECT_EQ(ranks.back().steps_per_epoch(), ranks.front().steps_per_epoch());
  }
  for (std::int64_t k = 0; k < ranks.front().num_samples(); ++k)
    for (const auto& s : ranks) order.push_back(s.indices()[static_cast<std::size_t>(k)]);
  return order;
}

const std::int64_t kSizes[] = {0, 1, 2, 5, 7, 16, 33, 100};

TEST(DistributedSampler, PaddedOrderIsOnePermutationRepeatedCyclically) {
  for (std::int64_t world = 1; world <= 8; ++world)
    for (std::int64_t n : kSizes)
      for (std::int64_t epoch : {0, 3}) {
        SCOPED_TRACE("W=" + std::to_string(world) + " N=" + std::to_string(n));
        const auto order = interleave(n, world, DistributedSamplerOptions().seed(11), epoch);
        const std::int64_t expected_total = (n + world - 1) / world * world;
        ASSERT_EQ(static_cast<std::int64_t>(order.size()), expected_total);
        std::vector<std::int64_t> head(order.begin(), order.begin() + n);
        std::sort(head.begin(), head.end());
        for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(head[i], i) << "not a permutation";
        for (std::int64_t p = n; p < expected_total; ++p) EXPECT_EQ(order[p], order[p % n]);
      }
}

TEST(DistributedSampler, DropLastGivesDisjointEqualShares) {
  for (std::int64_t world = 1; world <= 8; ++world)
    for (std::int64_t n : kSizes) {
      const auto order = interleave(n, world, DistributedSamplerOptions().drop_last(true), 1);
      ASSERT_EQ(static_cast<std::int64_t>(order.size()), n / world * world);
      std::vector<std::int64_t> sorted = order;
      std::sort(sorted.begin(), sorted.end());
      EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "overlap";
      for (std::int64_t i : order) EXPECT_TRUE(i >= 0 && i < n);
    }
}

TEST(DistributedSampler, WithoutShuffleMatchesPyTorchByHand) {
  // N=10, W=3: padded order 0..9,0,1; rank r takes positions r, r+3, r+6, r+9.
  const std::vector<std::vector<std::int64_t>> expected = {
      {0, 3, 6, 9}, {1, 4, 7, 0}, {2, 5, 8, 1}};
  for (std::int64_t r = 0; r < 3; ++r)
    EXPECT_EQ(DistributedSampler(10, DistributedSamplerOptions(3, r).shuffle(false)).indices(),
              expected[static_cast<std::size_t>(r)]);
  EXPECT_EQ(DistributedSampler(10, DistributedSamplerOptions(3, 2).shuffle(false).drop_last(true))
                .indices(),
            (std::vector<std::int64_t>{2, 5, 8}));
  // Padding longer than the data (N=2, W=5): 0,1,0,1,0.
  EXPECT_EQ(interleave(2, 5, DistributedSamplerOptions().shuffle(false), 0),
            (std::vector<std::int64_t>{0, 1, 0, 1, 0}));
}

TEST(DistributedSampler, EpochsReshuffleIdenticallyOnEveryRank) {
  const auto o = DistributedSamplerOptions().seed(4);
  const auto e0 = interleave(100, 4, o, 0), e1 = interleave(100, 4, o, 1);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(interleave(100, 4, o, 1), e1) << "same epoch must give the same order";
  EXPECT_NE(interleave(100, 4, DistributedSamplerOptions().seed(5), 1), e1);
  // PyTorch seeds with seed + epoch.
  EXPECT_EQ(interleave(100, 4, DistributedSamplerOptions().seed(5), 0), e1);
  // The order does not depend on the world size (the permutation is global).
  const auto w1 = interleave(100, 1, o, 1);
  EXPECT_EQ(std::vector<std::int64_t>(w1.begin(), w1.begin() + 100),
            std::vector<std::int64_t>(e1.begin(), e1.begin() + 100));
}

// Fisher-Yates with unbiased draws: each value lands first about equally often.
TEST(DistributedSampler, ShuffleIsUniformEnough) {
  std::vector<int> first(10);
  DistributedSampler s(10, DistributedSamplerOptions());
  for (std::int64_t epoch = 0; epoch < 4000; ++epoch) {
    s.set_epoch(epoch);
    ++first[static_cast<std::size_t>(s.indices()[0])];
  }
  for (int c : first) EXPECT_TRUE(c > 300 && c < 500) << c;  // expect 400, sd 19
}

TEST(DistributedSampler, BatchesTileTheRankIndices) {
  for (bool drop_last_batch : {false, true})
    for (std::int64_t world = 1; world <= 8; ++world) {
      DistributedSampler s(37, DistributedSamplerOptions(world, world - 1)
                                   .batch_size(4)
                                   .drop_last_batch(drop_last_batch));
      const std::int64_t per_rank = (37 + world - 1) / world;
      EXPECT_EQ(s.steps_per_epoch(), drop_last_batch ? per_rank / 4 : (per_rank + 3) / 4);
      std::vector<std::int64_t> joined;
      while (s.has_next()) {
        const auto b = s.next_batch();
        EXPECT_TRUE(b.size() == 4 || (!drop_last_batch && !s.has_next())) << b.size();
        joined.insert(joined.end(), b.begin(), b.end());
      }
      const auto& all = s.indices();
      EXPECT_EQ(joined, std::vector<std::int64_t>(all.begin(), all.begin() + joined.size()));
      EXPECT_EQ(static_cast<std::int64_t>(joined.size()),
                drop_last_batch ? per_rank / 4 * 4 : per_rank);
      EXPECT_THROW(s.next_batch(), ValueError);
    }
}

// A batch larger than the rank's share is one short batch, however large: (n + b - 1) / b
// overflowed for b near 2^63 and reported 0 steps per epoch.
TEST(DistributedSampler, HugeBatchSizeIsOneBatch) {
  const std::int64_t huge = std::numeric_limits<std::int64_t>::max();
  for (std::int64_t b : {huge, huge - 1, std::int64_t{1} << 62}) {
    DistributedSampler s(10, DistributedSamplerOptions(2, 1).batch_size(b));
    EXPECT_EQ(s.steps_per_epoch(), 1) << b;
    EXPECT_EQ(s.next_batch(), s.indices());
  }
}

TEST(DistributedSampler, StateResumesMidEpoch) {
  const auto o = DistributedSamplerOptions(3, 1).batch_size(5).seed(9);
  DistributedSampler a(200, o);
  a.set_epoch(2);
  a.next_batch();
  a.next_batch();
  const data::SamplerState saved = a.state();
  EXPECT_EQ(saved, (data::SamplerState{2, 2}));
  DistributedSampler b(200, o);
  b.load_state(saved);
  while (a.has_next()) ASSERT_EQ(a.next_batch(), b.next_batch());
  EXPECT_FALSE(b.has_next());
  b.load_state({2, b.steps_per_epoch()});  // an epoch saved just as it finished
  EXPECT_FALSE(b.has_next());
  EXPECT_THROW(b.load_state({2, b.steps_per_epoch() + 1}), ValueError);
  EXPECT_THROW(b.load_state({-1, 0}), ValueError);
}

TEST(DistributedSampler, RejectsBadOptions) {
  EXPECT_THROW(DistributedSampler(10, DistributedSamplerOptions(0, 0)), ConfigError);
  EXPECT_THROW(DistributedSampler(10, DistributedSamplerOptions(2, 2)), ConfigError);
  EXPECT_THROW(DistributedSampler(10, DistributedSamplerOptions(2, -1)), ConfigError);
  EXPECT_THROW(DistributedSampler(-1, DistributedSamplerOptions()), ConfigError);
  EXPECT_THROW(DistributedSampler(10, DistributedSamplerOptions().batch_size(0)), ConfigError);
  DistributedSampler s(10, DistributedSamplerOptions());
  EXPECT_THROW(s.set_epoch(-1), ValueError);
  EXPECT_THROW(s.batch(10), ValueError);
  EXPECT_EQ(DistributedSampler(0, DistributedSamplerOptions()).steps_per_epoch(), 0);
}

}  // namespace
}  // namespace syncbn
