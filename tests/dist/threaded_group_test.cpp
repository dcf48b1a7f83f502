// The threaded in-process group, swept over ranks 1..8 and sizes {0, 1, 7, 1000, 1<<20} with
// closed-form expectations (each rank contributes its rank: the sum is n(n-1)/2).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

// Internal: the collective guard and the bare threaded transport it decorates.
#include "../../src/dist/guarded_group.hpp"
#include "../../src/dist/local/threaded_group.hpp"
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
                      EXPECT_NE(std::string(e.what()).find("ranks disagree on allreduce_sum count: "
                                                           "min 4 (rank 0) vs max 5 (rank 1)"),
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

// --- GuardedGroup, the collective guard, around the bare threaded transport ---

using detail::GuardedGroup;
using detail::GuardOptions;

// Runs fn(rank, guarded group) on one thread per rank of a bare threaded group of n, each rank
// wrapped with options(rank). fn must not leave a rank waiting: nothing releases it here.
void run_guarded(int n, const std::function<GuardOptions(int)>& options,
                 const std::function<void(int, ProcessGroup&)>& fn) {
  auto ranks = detail::make_threaded_ranks(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      GuardedGroup g(ranks[r], options(r));
      fn(r, g);
    });
  for (auto& t : threads) t.join();
}

GuardOptions checks_only(int) {
  return GuardOptions{true, nullptr};
}

TEST(GuardedThreadedGroup, MismatchedCountsNameBothRanksOnEveryRank) {
  std::atomic<int> errors{0};
  run_guarded(2, checks_only, [&](int rank, ProcessGroup& g) {
    std::vector<double> buf(5, 1.0);
    try {
      g.allreduce(buf.data(), rank == 1 ? 5 : 4);
      ADD_FAILURE() << "rank " << rank << ": expected a CommError";
    } catch (const CommError& e) {
      ++errors;
      EXPECT_EQ(std::string(e.what()),
                "collective mismatch: ranks disagree on allreduce_sum count: min 4 (rank 0) vs "
                "max 5 (rank 1) [threaded group of size 2, seen by rank " +
                    std::to_string(rank) + "]");
    }
    // The real collective was never issued: the group is still in step and usable.
    std::int64_t one = 1;
    g.allreduce(&one, 1);
    EXPECT_EQ(one, 2);
  });
  EXPECT_EQ(errors.load(), 2);
}

TEST(GuardedThreadedGroup, WithChecksOffTheTransportStillRefusesToReadPastACopy) {
  std::atomic<int> errors{0};
  run_guarded(
      2,
      [](int) {
        return GuardOptions{false, nullptr};
      },
      [&](int rank, ProcessGroup& g) {
        std::vector<double> buf(5, 1.0);
        try {
          g.allreduce(buf.data(), rank == 1 ? 5 : 4);
          ADD_FAILURE() << "rank " << rank << ": expected a CommError";
        } catch (const CommError& e) {
          ++errors;
          EXPECT_EQ(std::string(e.what()),
                    rank == 0
                        ? "threaded group of size 2: rank 0 passed 32 bytes but rank 1 passed 40"
                        : "threaded group of size 2: rank 1 passed 40 bytes but rank 0 passed 32");
        }
      });
  EXPECT_EQ(errors.load(), 2);
}

TEST(GuardedThreadedGroup, SubGroupsAreGuardedToo) {
  run_guarded(4, checks_only, [](int rank, ProcessGroup& g) {
    auto pair = g.split(rank / 2, rank);
    ASSERT_NE(pair, nullptr);
    float v[2] = {0, 0};
    try {
      pair->broadcast(v, 1, DType::Float32, pair->rank());  // each member names itself as root
      ADD_FAILURE() << "rank " << rank << ": expected a CommError";
    } catch (const CommError& e) {
      EXPECT_EQ(std::string(e.what()),
                "collective mismatch: ranks disagree on broadcast root: min 0 (rank 0) vs max 1 "
                "(rank 1) [threaded group of size 2, seen by rank " +
                    std::to_string(pair->rank()) + "]");
    }
  });
}

// Forwards to a transport and counts what reaches it: what the guard adds per collective.
class CountingGroup : public ProcessGroup {
 public:
  explicit CountingGroup(std::shared_ptr<ProcessGroup> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string backend() const override { return inner_->backend(); }
  void allreduce(void* d, std::size_t n, DType t, ReduceOp op) override {
    ++calls, inner_->allreduce(d, n, t, op);
  }
  void allreduce_custom(double* d, std::size_t k, std::size_t len, Combine c) override {
    ++calls, inner_->allreduce_custom(d, k, len, c);
  }
  void allgather(const void* s, void* r, std::size_t n, DType t) override {
    ++calls, inner_->allgather(s, r, n, t);
  }
  void broadcast(void* d, std::size_t n, DType t, int root) override {
    ++calls, inner_->broadcast(d, n, t, root);
  }
  void barrier() override { ++calls, inner_->barrier(); }
  std::shared_ptr<ProcessGroup> split(int, int) override { return nullptr; }
  int calls = 0;

 private:
  std::shared_ptr<ProcessGroup> inner_;
};

TEST(GuardedThreadedGroup, OneGuardCollectivePerCollectiveAndNoneWhenOff) {
  for (bool checks : {true, false}) {
    auto ranks = detail::make_threaded_ranks(2);
    std::vector<int> calls(2);
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; ++r)
      threads.emplace_back([&, r] {
        auto counting = std::make_shared<CountingGroup>(ranks[r]);
        GuardedGroup g(counting, GuardOptions{checks, nullptr});
        double x = 1;
        for (int i = 0; i < 5; ++i) g.allreduce(&x, 1);
        g.barrier();
        calls[r] = counting->calls;
      });
    for (auto& t : threads) t.join();
    EXPECT_EQ(calls[0], checks ? 12 : 6) << "checks " << checks;
    EXPECT_EQ(calls[1], calls[0]);
  }
}

TEST(GuardedThreadedGroup, WatchdogFiresWhenARankNeverJoins) {
  // Rank 2 is not in the pair; rank 1 joins the pair's allreduce only once rank 0's watchdog
  // has fired (or after 20 s, failing), so the test always ends.
  std::promise<int> fired;
  std::shared_future<int> exit_code = fired.get_future().share();
  auto watchdog = std::make_shared<detail::Watchdog>(0.2, 0, "threaded",
                                                     [&](int code) { fired.set_value(code); });
  ::testing::internal::CaptureStderr();
  run_guarded(
      3,
      [&](int r) {
        return GuardOptions{true, r == 0 ? watchdog : nullptr};
      },
      [&](int rank, ProcessGroup& g) {
        auto pair = g.split(rank < 2 ? 0 : -1, rank);
        if (!pair) return;
        if (rank == 1 && exit_code.wait_for(std::chrono::seconds(20)) != std::future_status::ready)
          ADD_FAILURE() << "the watchdog did not fire within 20 s";
        double x = 1;
        pair->allreduce(&x, 1);
        EXPECT_EQ(x, 2.0);
      });
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(exit_code.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(exit_code.get(), detail::Watchdog::kExitCode);
  EXPECT_NE(err.find("syncbn watchdog: rank 0 (threaded backend) has waited "), std::string::npos)
      << err;
  EXPECT_NE(err.find(" s in allreduce_sum(count=1, dtype=float64) on a group of size 2, longer "
                     "than the collective timeout of 0.2 s"),
            std::string::npos)
      << err;
}

}  // namespace
}  // namespace syncbn::dist
