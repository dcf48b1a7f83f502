// Collectives of the MPI world group with closed-form expectations: rank r contributes
// r + (i % 5) at index i, so the sum is n(n-1)/2 + n*(i % 5), the max n-1 + (i % 5).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "mpi_world.hpp"
#include "syncbn/error.hpp"

namespace syncbn::dist {
namespace {

using syncbn::testing::mpi_world;

const std::size_t kSizes[] = {0, 1, 7, 1000, 1 << 20};

// Index of the first element where got != want(i), or -1.
template <typename T, typename Want>
std::int64_t first_wrong(const std::vector<T>& got, Want want) {
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != static_cast<T>(want(i))) return static_cast<std::int64_t>(i);
  return -1;
}

template <typename T>
void check_allreduce() {
  ProcessGroup& g = mpi_world();
  const int n = g.size(), r = g.rank();
  for (std::size_t count : kSizes) {
    std::vector<T> sum(count), mn(count), mx(count);
    for (std::size_t i = 0; i < count; ++i)
      sum[i] = mx[i] = T(r + i % 5), mn[i] = T(r + 10 + i % 5);
    g.allreduce(sum.data(), count, ReduceOp::Sum);
    g.allreduce(mn.data(), count, ReduceOp::Min);
    g.allreduce(mx.data(), count, ReduceOp::Max);
    EXPECT_EQ(first_wrong(sum, [&](std::size_t i) { return n * (n - 1) / 2 + n * (i % 5); }), -1)
        << "sum, count " << count;
    EXPECT_EQ(first_wrong(mn, [&](std::size_t i) { return 10 + i % 5; }), -1)
        << "min, count " << count;
    EXPECT_EQ(first_wrong(mx, [&](std::size_t i) { return n - 1 + i % 5; }), -1)
        << "max, count " << count;
  }
}

TEST(MpiCollectives, AllreduceFloat) {
  check_allreduce<float>();
}
TEST(MpiCollectives, AllreduceDouble) {
  check_allreduce<double>();
}
TEST(MpiCollectives, AllreduceInt64) {
  check_allreduce<std::int64_t>();
}

TEST(MpiCollectives, AllreduceTensorInPlace) {
  ProcessGroup& g = mpi_world();
  Tensor t = Tensor::full({2, 3}, g.rank() + 1.0);
  g.allreduce(t);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    EXPECT_EQ(t.item(i), g.size() * (g.size() + 1) / 2.0);
}

template <typename T>
void check_allgather(DType dtype) {
  ProcessGroup& g = mpi_world();
  for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}}) {
    std::vector<T> mine(count), all(count * g.size());
    for (std::size_t i = 0; i < count; ++i) mine[i] = T((g.rank() * 31 + i) % 200);
    g.allgather(mine.data(), all.data(), count, dtype);
    EXPECT_EQ(first_wrong(all, [&](std::size_t k) { return (k / count * 31 + k % count) % 200; }),
              -1)
        << dtype_name(dtype) << " count " << count;
  }
}

TEST(MpiCollectives, AllgatherEveryDtype) {
  check_allgather<float>(DType::Float32);
  check_allgather<double>(DType::Float64);
  check_allgather<std::int64_t>(DType::Int64);
  check_allgather<std::uint8_t>(DType::UInt8);
}

TEST(MpiCollectives, BroadcastFromEveryRoot) {
  ProcessGroup& g = mpi_world();
  for (int root = 0; root < g.size(); ++root) {
    for (std::size_t count : {std::size_t{0}, std::size_t{7}, std::size_t{1000}}) {
      std::vector<double> data(count, -1.0);
      if (g.rank() == root)
        for (std::size_t i = 0; i < count; ++i) data[i] = root * 100.0 + i;
      g.broadcast(data.data(), count, DType::Float64, root);
      EXPECT_EQ(first_wrong(data, [&](std::size_t i) { return root * 100.0 + i; }), -1)
          << "root " << root;
    }
    Tensor t = Tensor::full({4}, g.rank() == root ? 7.0 : 0.0, DType::Int64);
    g.broadcast(t, root);
    EXPECT_EQ(t.item(3), 7.0);
  }
}

TEST(MpiCollectives, BroadcastRootOutOfRangeFailsOnEveryRank) {
  ProcessGroup& g = mpi_world();
  double x = 0;
  try {
    g.broadcast(&x, 1, DType::Float64, g.size());
    ADD_FAILURE() << "expected a CommError";
  } catch (const CommError& e) {
    EXPECT_EQ(std::string(e.what()), "broadcast root " + std::to_string(g.size()) +
                                         " out of range for a group of size " +
                                         std::to_string(g.size()));
  }
}

TEST(MpiCollectives, AllreduceRejectsUInt8OnEveryRank) {
  std::uint8_t x = 1;
  EXPECT_THROW(mpi_world().allreduce(&x, 1, DType::UInt8, ReduceOp::Sum), CommError);
}

TEST(MpiCollectives, BarrierAndWorldShape) {
  ProcessGroup& g = mpi_world();
  EXPECT_EQ(g.backend(), SYNCBN_TEST_BACKEND);
  EXPECT_GE(g.rank(), 0);
  EXPECT_LT(g.rank(), g.size());
  g.barrier();
  std::int64_t ranks = 1;
  g.allreduce(&ranks, 1);
  EXPECT_EQ(ranks, g.size());
}

}  // namespace
}  // namespace syncbn::dist
