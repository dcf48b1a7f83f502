// The threaded in-process group, swept over ranks 1..8 and sizes {0, 1, 7, 1000, 1<<20} with
// closed-form expectations (each rank contributes its rank: the sum is n(n-1)/2).
#include <gtest/gtest.h>

#include <atomic>

#include "syncbn/dist/local.hpp"
#include "syncbn/error.hpp"

namespace syncbn::dist {
namespace {

const std::size_t kSizes[] = {0, 1, 7, 1000, 1 << 20};

TEST(ThreadedGroup, AllreduceSumMinMax) {
  for (int n = 1; n <= 8; ++n) {
    for (std::size_t count : kSizes) {
      spawn_ranks(n, [&](std::shared_ptr<ProcessGroup> group) {
        ProcessGroup& g = *group;
        std::vector<double> sum(count, g.rank()), mx(count, g.rank());
        std::vector<std::int64_t> mn(count, g.rank() + 10);
        g.allreduce(sum.data(), count);
        g.allreduce(mx.data(), count, ReduceOp::Max);
        g.allreduce(mn.data(), count, ReduceOp::Min);
        for (std::size_t i = 0; i < count; i += 997) {
          ASSERT_EQ(sum[i], n * (n - 1) / 2.0);
          ASSERT_EQ(mx[i], n - 1);
          ASSERT_EQ(mn[i], 10);
        }
      });
    }
  }
}

TEST(ThreadedGroup, AllgatherBroadcastCustom) {
  for (int n = 1; n <= 8; ++n) {
    spawn_ranks(n, [&](std::shared_ptr<ProcessGroup> group) {
      ProcessGroup& g = *group;
      float mine[2] = {float(g.rank()), float(2 * g.rank())};
      std::vector<float> all(2 * n);
      g.allgather(mine, all.data(), 2, DType::Float32);
      for (int r = 0; r < n; ++r) ASSERT_EQ(all[2 * r + 1], 2.f * r);
      std::int64_t v = g.rank() == n - 1 ? 42 : -1;
      g.broadcast(&v, 1, DType::Int64, n - 1);
      ASSERT_EQ(v, 42);
      double rec[2] = {1, double(g.rank())};  // (count, max)
      g.allreduce_custom(rec, 1, 2,
                         [](const double* in, double* io, std::size_t k, std::size_t len) {
                           for (std::size_t i = 0; i < k; ++i) {
                             io[i * len] += in[i * len];
                             io[i * len + 1] = std::max(io[i * len + 1], in[i * len + 1]);
                           }
                         });
      ASSERT_EQ(rec[0], n);
      ASSERT_EQ(rec[1], n - 1);
      g.barrier();
    });
  }
}

TEST(ThreadedGroup, SubGroupsReduceOverMembersOnly) {
  spawn_ranks(4, [](std::shared_ptr<ProcessGroup> group) {
    ProcessGroup& g = *group;
    auto pair = g.split(g.rank() / 2, g.rank());
    double v = g.rank();
    pair->allreduce(&v, 1);
    ASSERT_EQ(v, g.rank() < 2 ? 1.0 : 5.0);
    auto evens = g.new_group({0, 2});
    ASSERT_EQ(evens != nullptr, g.rank() % 2 == 0);
    if (evens) {
      double w = g.rank();
      evens->allreduce(&w, 1);
      ASSERT_EQ(w, 2.0);
      ASSERT_EQ(evens->rank(), g.rank() / 2);
    }
  });
}

TEST(ThreadedGroup, MismatchedCountsFailOnEveryRank) {
  std::atomic<int> errors{0};
  EXPECT_THROW(
      spawn_ranks(3,
                  [&](std::shared_ptr<ProcessGroup> group) {
                    ProcessGroup& g = *group;
                    std::vector<float> buf(g.rank() == 1 ? 5 : 4);
                    try {
                      g.allreduce(buf.data(), buf.size());
                    } catch (const CommError& e) {
                      ++errors;
                      EXPECT_NE(std::string(e.what()).find("rank 1 called allreduce_sum(count=5"),
                                std::string::npos)
                          << e.what();
                      throw;
                    }
                  }),
      CommError);
  EXPECT_EQ(errors.load(), 3);
}

TEST(ThreadedGroup, AFailingRankReleasesTheOthers) {
  EXPECT_THROW(spawn_ranks(4,
                           [](std::shared_ptr<ProcessGroup> group) {
                             ProcessGroup& g = *group;
                             if (g.rank() == 2) throw ValueError("rank two gives up");
                             g.barrier();
                           }),
               ValueError);
}

TEST(LocalGroup, IsAWorldOfOne) {
  auto g = make_local_group();
  EXPECT_EQ(g->size(), 1);
  float x = 3;
  g->allreduce(&x, 1);
  EXPECT_EQ(x, 3.f);
  EXPECT_EQ(g->split(-1, 0), nullptr);
}

}  // namespace
}  // namespace syncbn::dist
