// Backend selection as pure functions of an environment map, and the local Environment; no MPI
// launch needed (binary syncbn_environment_tests, registered as mpi_env.* in ctest).
#include <gtest/gtest.h>

#include "syncbn/dist/environment.hpp"
#include "syncbn/error.hpp"

#ifndef SYNCBN_MPI_BUILT
#error "tests/mpi/CMakeLists.txt defines SYNCBN_MPI_BUILT to 0 or 1"
#endif

namespace syncbn::dist {
namespace {

TEST(DetectLauncher, NothingMeansNoLauncher) {
  EXPECT_EQ(detect_launcher({}), "");
  EXPECT_EQ(detect_launcher({{"HOME", "/root"}, {"SLURM_JOB_ID", "7"}}), "");
  EXPECT_EQ(resolve_backend("auto", {}), "local");
}

TEST(DetectLauncher, OpenMpiEvenForOneRank) {
  EXPECT_EQ(detect_launcher({{"OMPI_COMM_WORLD_SIZE", "1"}}), "OMPI_COMM_WORLD_SIZE=1");
  EXPECT_EQ(resolve_backend("auto", {{"OMPI_COMM_WORLD_SIZE", "4"}}), "mpi");
}

TEST(DetectLauncher, HydraPmixAndMvapich) {
  EXPECT_EQ(detect_launcher({{"PMI_SIZE", "2"}, {"PMI_RANK", "1"}}), "PMI_SIZE=2");
  EXPECT_EQ(detect_launcher({{"PMIX_RANK", "0"}}), "PMIX_RANK=0");
  EXPECT_EQ(detect_launcher({{"MV2_COMM_WORLD_SIZE", "8"}}), "MV2_COMM_WORLD_SIZE=8");
}

TEST(DetectLauncher, SlurmNeedsSeveralTasksAndATaskRank) {
  EXPECT_EQ(detect_launcher({{"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "2"}}), "SLURM_NTASKS=4");
  // srun -n 1, or a batch script's own environment: nothing to join.
  EXPECT_EQ(detect_launcher({{"SLURM_NTASKS", "1"}, {"SLURM_PROCID", "0"}}), "");
  EXPECT_EQ(detect_launcher({{"SLURM_NTASKS", "4"}}), "");
  EXPECT_EQ(resolve_backend("auto", {{"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "1"}}), "mpi");
}

TEST(ResolveBackend, ExplicitNamesWinOverTheLauncher) {
  const EnvMap mpirun{{"OMPI_COMM_WORLD_SIZE", "2"}};
  EXPECT_EQ(resolve_backend("local", mpirun), "local");
  EXPECT_EQ(resolve_backend("nccl", mpirun), "nccl");
  EXPECT_EQ(resolve_backend("mpi", {}), "mpi");
}

TEST(ResolveBackend, UnknownNameListsTheValidOnes) {
  try {
    resolve_backend("gloo", {});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "unknown process-group backend 'gloo'; valid backends: auto, mpi, nccl, local");
  }
}

TEST(EnvOverrides, ParseTimeoutAndCheckSwitch) {
  const EnvironmentOptions defaults;
  EXPECT_EQ(apply_env_overrides(defaults, {}).collective_timeout_s, 300);
  EXPECT_TRUE(apply_env_overrides(defaults, {}).check_collectives);
  const auto o = apply_env_overrides(
      defaults, {{"SYNCBN_COLLECTIVE_TIMEOUT", "2.5"}, {"SYNCBN_CHECK_COLLECTIVES", "0"}});
  EXPECT_EQ(o.collective_timeout_s, 2.5);
  EXPECT_FALSE(o.check_collectives);
  EXPECT_TRUE(apply_env_overrides(o, {{"SYNCBN_CHECK_COLLECTIVES", "on"}}).check_collectives);
  EXPECT_EQ(apply_env_overrides(o, {{"SYNCBN_COLLECTIVE_TIMEOUT", "0"}}).collective_timeout_s, 0);
}

// A sub-second limit aborts healthy jobs, so it is refused; <= 0 still disables the watchdog.
TEST(EnvOverrides, TimeoutBelowASecondOrInfiniteIsRefused) {
  for (const char* value : {"0.001", "0.5", "inf", "nan"})
    EXPECT_THROW(apply_env_overrides({}, {{"SYNCBN_COLLECTIVE_TIMEOUT", value}}), ConfigError)
        << value;
  try {
    apply_env_overrides({}, {{"SYNCBN_COLLECTIVE_TIMEOUT", "0.001"}});
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "SYNCBN_COLLECTIVE_TIMEOUT: expected at least 1 second (or <= 0 to disable the "
                 "watchdog), got '0.001'");
  }
  EXPECT_EQ(apply_env_overrides({}, {{"SYNCBN_COLLECTIVE_TIMEOUT", "1"}}).collective_timeout_s, 1);
  EXPECT_EQ(apply_env_overrides({}, {{"SYNCBN_COLLECTIVE_TIMEOUT", "-1"}}).collective_timeout_s,
            -1);
}

TEST(EnvOverrides, BadValuesNameTheVariable) {
  try {
    apply_env_overrides({}, {{"SYNCBN_COLLECTIVE_TIMEOUT", "5min"}});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(
        e.what(),
        "SYNCBN_COLLECTIVE_TIMEOUT: expected a number of seconds (<= 0 disables), got '5min'");
  }
  try {
    apply_env_overrides({}, {{"SYNCBN_CHECK_COLLECTIVES", "maybe"}});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "SYNCBN_CHECK_COLLECTIVES: expected 0/1/false/true/off/on, got 'maybe'");
  }
}

TEST(LocalEnvironment, IsAWorldOfOne) {
  int argc = 1;
  char name[] = "test";
  char* args[] = {name, nullptr};
  char** argv = args;
  EnvironmentOptions options;
  options.backend = "local";
  Environment env(argc, argv, options);
  EXPECT_EQ(env.backend(), "local");
  EXPECT_EQ(env.describe(), "backend local: rank 0 of 1 (single process)");
  auto world = env.world();
  EXPECT_EQ(world->size(), 1);
  double x = 3;
  world->allreduce(&x, 1);
  EXPECT_EQ(x, 3);
  EXPECT_EQ(argc, 1);
}

TEST(LocalEnvironment, UnknownBackendThrowsBeforeStartingAnything) {
  int argc = 0;
  char** argv = nullptr;
  EnvironmentOptions options;
  options.backend = "MPI";  // names are lower case
  EXPECT_THROW(Environment(argc, argv, options), ConfigError);
}

// The only test here that starts MPI (as a singleton, without mpirun): MPI cannot be initialised
// twice in one process.
TEST(MpiEnvironment, SingletonWithoutLauncherOrStubError) {
  int argc = 1;
  char name[] = "test";
  char* args[] = {name, nullptr};
  char** argv = args;
  EnvironmentOptions options;
  options.backend = "mpi";
  try {
    Environment env(argc, argv, options);
    EXPECT_TRUE(SYNCBN_MPI_BUILT);
    EXPECT_EQ(env.describe().rfind("backend mpi: rank 0 of 1 (", 0), 0u) << env.describe();
    std::int64_t x = 5;
    env.world()->allreduce(&x, 1, ReduceOp::Max);
    EXPECT_EQ(x, 5);
  } catch (const ConfigError& e) {
    EXPECT_FALSE(SYNCBN_MPI_BUILT) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind(
                  "syncbn was built without MPI; reconfigure with -DSYNCBN_WITH_MPI=ON", 0),
              0u)
        << e.what();
  }
}

}  // namespace
}  // namespace syncbn::dist
