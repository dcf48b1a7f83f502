#pragma once
// NcclGroup: ProcessGroup over an NCCL communicator on this process's CUDA device. Buffers in
// the ProcessGroup contract are host memory, so each collective copies the host buffer to a
// device scratch buffer, runs the NCCL collective on the group's stream, waits for it and copies
// the result back: correct everywhere, but only worth it for callers whose data already lives
// on the GPU in spirit (large gradient buckets); small SyncBN statistics are faster over MPI.
//
// Each NcclGroup keeps the MPI group with the same members ("bootstrap"): rank 0's ncclUniqueId
// travels through its broadcast, and split() splits it to build the sub-group's communicator.
//
// A plain transport: the fingerprint check and the watchdog are GuardedGroup's, which the NCCL
// backend wraps around its world.
#include <memory>
#include <vector>

#include "nccl_util.hpp"
#include "syncbn/dist/process_group.hpp"

namespace syncbn::dist::detail {

class NcclGroup : public ProcessGroup {
 public:
  // Collective over `bootstrap`: creates an NCCL communicator with the same ranks. The CUDA
  // device must already be selected (cudaSetDevice) on every rank.
  explicit NcclGroup(std::shared_ptr<ProcessGroup> bootstrap);
  ~NcclGroup() override;
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  void allreduce(void* data, std::size_t count, DType dtype, ReduceOp op) override;
  // NCCL has no user reduction ops: all-gathers every rank's records (size() times the data of
  // one rank) and folds them on the host in rank order, so every rank computes the same result.
  void allreduce_custom(double* data, std::size_t records, std::size_t record_len,
                        Combine combine) override;
  void allgather(const void* send, void* recv, std::size_t count, DType dtype) override;
  void broadcast(void* data, std::size_t count, DType dtype, int root) override;
  void barrier() override;
  std::shared_ptr<ProcessGroup> split(int color, int key) override;
  // ncclCommAbort: cancels whatever this rank has in flight, for ending the job after an error.
  // The group is unusable afterwards.
  void abort();

  using ProcessGroup::allreduce;
  using ProcessGroup::broadcast;

 private:
  // Host <-> scratch copies and the stream wait, with their return codes checked.
  void* to_device(const void* host, std::size_t bytes, std::size_t capacity);
  void to_host(void* host, const void* device, std::size_t bytes);
  void wait(const char* what);

  std::shared_ptr<ProcessGroup> bootstrap_;
  int rank_ = 0, size_ = 1;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer scratch_;
};

}  // namespace syncbn::dist::detail
