// Mismatched collectives must become the same CommError on every rank (not a hang, not a
// truncated buffer), and leave the group usable. Needs two ranks or more.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "mpi_world.hpp"
#include "syncbn/error.hpp"

namespace syncbn::dist {
namespace {

using syncbn::testing::mpi_world;

// Runs fn on this rank and expects a CommError whose message is `want` followed by the group
// suffix every mismatch carries.
void expect_mismatch(const std::function<void()>& fn, const std::string& want) {
  ProcessGroup& g = mpi_world();
  const std::string suffix = " [" SYNCBN_TEST_BACKEND " group of size " + std::to_string(g.size()) +
                             ", seen by rank " + std::to_string(g.rank()) + "]";
  try {
    fn();
    ADD_FAILURE() << "expected a CommError: " << want;
  } catch (const CommError& e) {
    EXPECT_EQ(std::string(e.what()), want + suffix);
  }
  // The real collective was never issued, so the group still works.
  std::int64_t one = 1;
  g.allreduce(&one, 1);
  EXPECT_EQ(one, g.size());
}

class MpiMismatch : public ::testing::Test {
 protected:
  void SetUp() override {
    if (mpi_world().size() < 2) GTEST_SKIP() << "a mismatch needs two ranks";
  }
  ProcessGroup& g = mpi_world();
  int last = g.size() - 1;
};

TEST_F(MpiMismatch, CountDiffersOnLastRank) {
  std::vector<float> data(5, 1.f);
  expect_mismatch([&] { g.allreduce(data.data(), g.rank() == last ? 5 : 4); },
                  "collective mismatch: ranks disagree on allreduce_sum count: min 4 (rank 0) vs "
                  "max 5 (rank " +
                      std::to_string(last) + ")");
}

TEST_F(MpiMismatch, AllgatherCountWouldTruncate) {
  std::vector<double> send(3), recv(3 * g.size());
  expect_mismatch(
      [&] { g.allgather(send.data(), recv.data(), g.rank() == 0 ? 3 : 2, DType::Float64); },
      "collective mismatch: ranks disagree on allgather count: min 2 (rank 1) vs max 3 "
      "(rank 0)");
}

TEST_F(MpiMismatch, DtypeDiffers) {
  double buf[2] = {0, 0};
  expect_mismatch(
      [&] { g.allreduce(buf, 1, g.rank() == 0 ? DType::Float64 : DType::Float32, ReduceOp::Max); },
      "collective mismatch: ranks disagree on allreduce_max dtype: float32 (rank 1) vs float64 "
      "(rank 0)");
}

TEST_F(MpiMismatch, DifferentCollectives) {
  double x = 0;
  expect_mismatch(
      [&] {
        if (g.rank() == last)
          g.broadcast(&x, 1, DType::Float64, 0);
        else
          g.allreduce(&x, 1);
      },
      "collective mismatch: ranks disagree on the collective: rank 0 called allreduce_sum, rank " +
          std::to_string(last) + " called broadcast (this rank called " +
          (g.rank() == last ? "broadcast(count=1, dtype=float64, root=0))"
                            : "allreduce_sum(count=1, dtype=float64))"));
}

TEST_F(MpiMismatch, BarrierAgainstAllreduce) {
  double x = 0;
  expect_mismatch(
      [&] {
        if (g.rank() == 0)
          g.barrier();
        else
          g.allreduce(&x, 1, ReduceOp::Min);
      },
      std::string("collective mismatch: ranks disagree on the collective: rank 1 called "
                  "allreduce_min, rank 0 called barrier (this rank called ") +
          (g.rank() == 0 ? "barrier(count=0, dtype=float32))"
                         : "allreduce_min(count=1, dtype=float64))"));
}

TEST_F(MpiMismatch, BroadcastRootDiffers) {
  float x = 0;
  expect_mismatch(
      [&] { g.broadcast(&x, 1, DType::Float32, g.rank() == 0 ? 0 : 1); },
      "collective mismatch: ranks disagree on broadcast root: min 0 (rank 0) vs max 1 (rank 1)");
}

TEST_F(MpiMismatch, CustomRecordLengthDiffers) {
  std::vector<double> rec(6, 0.0);
  auto add = [](const double* in, double* io, std::size_t k, std::size_t len) {
    for (std::size_t i = 0; i < k * len; ++i) io[i] += in[i];
  };
  // Same element count (6), different record shapes: 3 records of 2 vs 2 records of 3.
  expect_mismatch(
      [&] {
        if (g.rank() == 0)
          g.allreduce_custom(rec.data(), 3, 2, add);
        else
          g.allreduce_custom(rec.data(), 2, 3, add);
      },
      "collective mismatch: ranks disagree on allreduce_custom record_len: min 2 (rank 0) vs max 3 "
      "(rank 1)");
}

TEST_F(MpiMismatch, InsideASubGroup) {
  auto pair = g.split(g.rank() / 2, 0);
  ASSERT_NE(pair, nullptr);
  if (pair->size() < 2) return;  // the odd rank out at np=3 has nobody to disagree with
  std::int64_t v[2] = {0, 0};
  try {
    pair->allreduce(v, pair->rank() == 0 ? 1 : 2);
    ADD_FAILURE() << "expected a CommError";
  } catch (const CommError& e) {
    EXPECT_EQ(std::string(e.what()),
              "collective mismatch: ranks disagree on allreduce_sum count: min 1 (rank 0) vs max 2 "
              "(rank 1) [" SYNCBN_TEST_BACKEND " group of size 2, seen by rank " +
                  std::to_string(pair->rank()) + "]");
  }
}

}  // namespace
}  // namespace syncbn::dist
