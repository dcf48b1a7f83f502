// split / new_group over MPI: sub-groups reduce over their members only, order by key, and
// ranks that opt out get nullptr. Written for any world size; at np=4 the pairs are {0,1} and
// {2,3} and the even group is {0,2}.
#include <gtest/gtest.h>

#include <vector>

#include "mpi_world.hpp"

namespace syncbn::dist {
namespace {

using syncbn::testing::mpi_world;

std::int64_t sum_of_world_ranks(ProcessGroup& group, int world_rank) {
  std::int64_t v = world_rank;
  group.allreduce(&v, 1);
  return v;
}

TEST(MpiGroups, PairsReduceOverTheirMembersOnly) {
  ProcessGroup& world = mpi_world();
  const int r = world.rank(), n = world.size();
  auto pair = world.split(r / 2, r);
  ASSERT_NE(pair, nullptr);
  const int first = r / 2 * 2, members = std::min(2, n - first);
  EXPECT_EQ(pair->size(), members);
  EXPECT_EQ(pair->rank(), r - first);
  EXPECT_EQ(pair->backend(), SYNCBN_TEST_BACKEND);
  EXPECT_EQ(sum_of_world_ranks(*pair, r), members == 2 ? 2 * first + 1 : first);
  // Pairs run different numbers of collectives: nothing may leak between them or into world.
  for (int i = 0; i < r / 2; ++i) pair->barrier();
  EXPECT_EQ(sum_of_world_ranks(world, r), n * (n - 1) / 2);
}

TEST(MpiGroups, NewGroupOfEvenRanks) {
  ProcessGroup& world = mpi_world();
  const int r = world.rank(), n = world.size();
  std::vector<int> evens;
  for (int k = 0; k < n; k += 2) evens.push_back(k);
  auto group = world.new_group(evens);
  if (r % 2 == 1) {
    EXPECT_EQ(group, nullptr);
  } else {
    ASSERT_NE(group, nullptr);
    EXPECT_EQ(group->size(), static_cast<int>(evens.size()));
    EXPECT_EQ(group->rank(), r / 2);
    std::int64_t expected = 0;
    for (int k : evens) expected += k;
    EXPECT_EQ(sum_of_world_ranks(*group, r), expected);  // at np=4: 0 + 2
  }
  world.barrier();
}

TEST(MpiGroups, KeyOrdersTheNewRanks) {
  ProcessGroup& world = mpi_world();
  auto reversed = world.split(0, -world.rank());
  ASSERT_NE(reversed, nullptr);
  EXPECT_EQ(reversed->rank(), world.size() - 1 - world.rank());
  std::vector<std::int64_t> order(world.size());
  const std::int64_t mine = world.rank();
  reversed->allgather(&mine, order.data(), 1, DType::Int64);
  for (int k = 0; k < world.size(); ++k) EXPECT_EQ(order[k], world.size() - 1 - k);
}

TEST(MpiGroups, NegativeColorGivesNullptr) {
  ProcessGroup& world = mpi_world();
  auto without_zero = world.split(world.rank() == 0 ? -1 : 0, world.rank());
  if (world.rank() == 0) {
    EXPECT_EQ(without_zero, nullptr);
  } else {
    ASSERT_NE(without_zero, nullptr);
    EXPECT_EQ(without_zero->size(), world.size() - 1);
    EXPECT_EQ(sum_of_world_ranks(*without_zero, world.rank()),
              world.size() * (world.size() - 1) / 2);
  }
  EXPECT_EQ(world.split(-5, 0), nullptr);  // every rank opts out
}

TEST(MpiGroups, SplitOfASplit) {
  ProcessGroup& world = mpi_world();
  auto all = world.split(7, 0);
  ASSERT_NE(all, nullptr);
  auto single = all->split(all->rank(), 0);  // a group of one per rank
  ASSERT_NE(single, nullptr);
  EXPECT_EQ(single->size(), 1);
  EXPECT_EQ(sum_of_world_ranks(*single, world.rank()), world.rank());
  EXPECT_EQ(sum_of_world_ranks(*all, world.rank()), world.size() * (world.size() - 1) / 2);
}

}  // namespace
}  // namespace syncbn::dist
