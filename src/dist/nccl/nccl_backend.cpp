// The NCCL backend's lifetime: an MPI bootstrap (NCCL runs under mpirun and needs a side channel
// for its unique id), one CUDA device per rank, the world communicator. Every rank decides
// together whether the GPUs are usable, so a rank without a device fails with a clear error on
// every rank instead of leaving the others stuck in ncclCommInitRank.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "../backends.hpp"
#include "../guarded_group.hpp"
#include "nccl_group.hpp"
#include "syncbn/error.hpp"

namespace syncbn::dist::detail {
namespace {

// This rank's index among the ranks on the same host, from the hostnames of all ranks: it picks
// the GPU without depending on a particular launcher's LOCAL_RANK variable.
int local_rank(ProcessGroup& world) {
  std::array<char, 256> mine{};
  gethostname(mine.data(), mine.size() - 1);
  std::vector<char> all(mine.size() * static_cast<std::size_t>(world.size()));
  world.allgather(mine.data(), all.data(), mine.size(), DType::UInt8);
  int local = 0;
  for (int r = 0; r < world.rank(); ++r)
    if (std::memcmp(all.data() + mine.size() * r, mine.data(), mine.size()) == 0) ++local;
  return local;
}

// Selects this rank's device; returns "" or why it cannot.
std::string select_device(int local, int* device) {
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc == cudaSuccess && count == 0)
    return "no CUDA device available: cudaGetDeviceCount found 0 devices";
  if (rc == cudaSuccess) rc = cudaSetDevice(*device = local % count);
  if (rc == cudaSuccess) return "";
  return std::string("no CUDA device available: ") + cudaGetErrorString(rc);
}

// Collective: throws on every rank if any rank has no usable device.
void agree_on_devices(ProcessGroup& world, const std::string& my_error) {
  std::int64_t ok = my_error.empty() ? 1 : 0;
  std::vector<std::int64_t> all(static_cast<std::size_t>(world.size()));
  world.allgather(&ok, all.data(), 1, DType::Int64);
  if (!my_error.empty())
    throw CommError("NCCL backend: " + my_error + " (rank " + std::to_string(world.rank()) + ")");
  const auto bad = std::find(all.begin(), all.end(), 0);
  if (bad != all.end())
    throw CommError("NCCL backend: rank " + std::to_string(bad - all.begin()) +
                    " has no usable CUDA device (see that rank's error); this rank " +
                    std::to_string(world.rank()) + " stops too");
}

class NcclBackend : public Backend {
 public:
  NcclBackend(int& argc, char**& argv, const EnvironmentOptions& options)
      : bootstrap_(make_mpi_backend(argc, argv, options)) {
    auto world = bootstrap_->world();
    agree_on_devices(*world, select_device(local_rank(*world), &device_));
    nccl_ = std::make_shared<NcclGroup>(world);
    world_ = std::make_shared<GuardedGroup>(
        nccl_, guard_options(options, world->rank(), "nccl", abort_job));
  }

  // NCCL communicators go before MPI: nccl_ and world_ are declared after bootstrap_.
  ~NcclBackend() override = default;

  std::shared_ptr<ProcessGroup> world() const override { return world_; }
  void abort_communicators() override { nccl_->abort(); }

  std::string describe() const override {
    return "rank " + std::to_string(world_->rank()) + " of " + std::to_string(world_->size()) +
           " (NCCL " + nccl_version() + " on CUDA device " + std::to_string(device_) +
           "; bootstrap over MPI " + bootstrap_->describe() + ")";
  }

 private:
  std::unique_ptr<Backend> bootstrap_;
  int device_ = -1;
  std::shared_ptr<NcclGroup> nccl_;  // the world's transport, for abort_communicators
  std::shared_ptr<GuardedGroup> world_;
};

}  // namespace

std::unique_ptr<Backend> make_nccl_backend(int& argc, char**& argv,
                                           const EnvironmentOptions& options) {
  return std::make_unique<NcclBackend>(argc, argv, options);
}

}  // namespace syncbn::dist::detail
