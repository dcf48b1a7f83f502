// main() of syncbn_mpi_tests: owns MPI through an Environment, runs the gtest suite on every
// rank and exits non-zero on every rank if any rank saw a failure. Only rank 0 prints gtest's
// usual report; other ranks print their failures only, prefixed with their rank, so a failure
// on rank 3 is visible without four interleaved copies of the report.
#include <gtest/gtest.h>

#include <cstdio>

#include "mpi_world.hpp"
#include "syncbn/dist/environment.hpp"

namespace syncbn::testing {
namespace {

std::shared_ptr<dist::ProcessGroup> g_world;

class FailuresOnly : public ::testing::EmptyTestEventListener {
 public:
  explicit FailuresOnly(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_,
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.message());
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Failed())
      std::fprintf(stderr, "[rank %d] FAILED %s.%s\n", rank_, info.test_suite_name(), info.name());
  }

 private:
  int rank_;
};

}  // namespace

dist::ProcessGroup& mpi_world() {
  return *g_world;
}
std::shared_ptr<dist::ProcessGroup> mpi_world_ptr() {
  return g_world;
}

}  // namespace syncbn::testing

int main(int argc, char** argv) {
  syncbn::dist::EnvironmentOptions options;
  options.backend = SYNCBN_TEST_BACKEND;
  // Well under ctest's TIMEOUT: a hung test ends with the watchdog's message naming the rank and
  // collective instead of a bare ctest timeout.
  options.collective_timeout_s = 60;
  syncbn::dist::Environment env(argc, argv, options);
  ::testing::InitGoogleTest(&argc, argv);
  auto world = env.world();
  syncbn::testing::g_world = world;
  if (world->rank() == 0) std::printf("%s\n", env.describe().c_str());

  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (world->rank() != 0) {
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new syncbn::testing::FailuresOnly(world->rank()));
  }
  const int mine = RUN_ALL_TESTS();

  std::int64_t failed = mine != 0 ? 1 : 0;
  world->allreduce(&failed, 1, syncbn::dist::ReduceOp::Max);
  if (world->rank() == 0 && failed && mine == 0)
    std::fprintf(stderr, "syncbn_mpi_tests: another rank failed (see its [rank N] lines)\n");
  syncbn::testing::g_world.reset();  // groups go before the Environment finalizes MPI
  return failed ? 1 : 0;
}
