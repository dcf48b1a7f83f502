#pragma once
// The world group of the MPI test binary (syncbn_mpi_tests), set by its main() from the
// Environment that owns MPI. Tests run on every rank, in the same order, so each test body is
// a sequence of collectives like any SPMD program: never return early on one rank only (use
// EXPECT_*, not ASSERT_*, around collectives), or the other ranks' next collective will report
// a mismatch.
#include <memory>

#include "syncbn/dist/process_group.hpp"

// The backend the suite runs on: MPI, or NCCL in syncbn_nccl_sim_tests (CUDA and NCCL replaced
// by the host-memory stand-in nccl_sim.cpp).
#ifndef SYNCBN_TEST_BACKEND
#define SYNCBN_TEST_BACKEND "mpi"
#endif

namespace syncbn::testing {

dist::ProcessGroup& mpi_world();
std::shared_ptr<dist::ProcessGroup> mpi_world_ptr();

}  // namespace syncbn::testing
