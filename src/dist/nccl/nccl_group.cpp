#include "nccl_group.hpp"

#include <cstring>

#include "syncbn/error.hpp"

namespace syncbn::dist::detail {
namespace {

ncclRedOp_t nccl_op(ReduceOp op) {
  return op == ReduceOp::Sum ? ncclSum : op == ReduceOp::Min ? ncclMin : ncclMax;
}

}  // namespace

NcclGroup::NcclGroup(std::shared_ptr<ProcessGroup> bootstrap)
    : bootstrap_(std::move(bootstrap)), rank_(bootstrap_->rank()), size_(bootstrap_->size()) {
  // Rank 0's id travels with its status, so that if rank 0 cannot make one every rank throws
  // instead of the others waiting in ncclCommInitRank for a rank that is gone.
  struct {
    ncclUniqueId id;
    std::int64_t status;
  } hello;
  std::memset(&hello, 0, sizeof hello);
  if (rank_ == 0) hello.status = ncclGetUniqueId(&hello.id);
  bootstrap_->broadcast(&hello, sizeof hello, DType::UInt8, 0);
  check_nccl(static_cast<ncclResult_t>(hello.status), nullptr, "ncclGetUniqueId (on rank 0)",
             rank_);
  check_nccl(ncclCommInitRank(&comm_, size_, hello.id, rank_), nullptr, "ncclCommInitRank", rank_);
  const cudaError_t rc = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
  if (rc != cudaSuccess) ncclCommDestroy(comm_);  // the destructor will not run
  check_cuda(rc, "cudaStreamCreateWithFlags", rank_);
}

NcclGroup::~NcclGroup() {
  // Destroy, not abort: every rank reaches here after its last collective completed (each one
  // waits for its stream), so there is no in-flight work to cancel.
  if (comm_) ncclCommDestroy(comm_);
  if (stream_) cudaStreamDestroy(stream_);
}

void NcclGroup::abort() {
  if (comm_) ncclCommAbort(comm_);
  comm_ = nullptr;
}

void* NcclGroup::to_device(const void* host, std::size_t bytes, std::size_t capacity) {
  void* dev = scratch_.reserve(capacity, rank_);
  if (bytes)
    check_cuda(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, stream_),
               "cudaMemcpyAsync (host to device)", rank_);
  return dev;
}

void NcclGroup::to_host(void* host, const void* device, std::size_t bytes) {
  if (bytes)
    check_cuda(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream_),
               "cudaMemcpyAsync (device to host)", rank_);
  wait("cudaStreamSynchronize");
}

void NcclGroup::wait(const char* what) {
  check_cuda(cudaStreamSynchronize(stream_), what, rank_);
  // A failed peer surfaces here rather than as a return code of the enqueue call.
  ncclResult_t async = ncclSuccess;
  check_nccl(ncclCommGetAsyncError(comm_, &async), comm_, "ncclCommGetAsyncError", rank_);
  check_nccl(async, comm_, "NCCL collective (asynchronous error)", rank_);
}

void NcclGroup::allreduce(void* data, std::size_t count, DType dtype, ReduceOp op) {
  SYNCBN_CHECK_AS(CommError, dtype != DType::UInt8, "allreduce does not support uint8");
  const std::size_t bytes = count * dtype_size(dtype);
  void* dev = to_device(data, bytes, bytes);
  check_nccl(ncclAllReduce(dev, dev, count, nccl_type(dtype), nccl_op(op), comm_, stream_), comm_,
             "ncclAllReduce", rank_);
  to_host(data, dev, bytes);
}

void NcclGroup::allreduce_custom(double* data, std::size_t records, std::size_t record_len,
                                 Combine combine) {
  const std::size_t count = records * record_len;
  if (count == 0) return;
  std::vector<double> all(count * static_cast<std::size_t>(size_));
  allgather(data, all.data(), count, DType::Float64);
  // Rank order on every rank: the same fold, so bit-identical results everywhere.
  std::memcpy(data, all.data(), count * sizeof(double));
  for (int r = 1; r < size_; ++r) combine(all.data() + count * r, data, records, record_len);
}

void NcclGroup::allgather(const void* send, void* recv, std::size_t count, DType dtype) {
  const std::size_t bytes = count * dtype_size(dtype);
  auto* dev = static_cast<std::byte*>(scratch_.reserve(bytes * size_, rank_));
  // In place: this rank's block already sits at its offset in the receive buffer.
  if (bytes)
    check_cuda(cudaMemcpyAsync(dev + bytes * rank_, send, bytes, cudaMemcpyHostToDevice, stream_),
               "cudaMemcpyAsync (host to device)", rank_);
  check_nccl(ncclAllGather(dev + bytes * rank_, dev, count, nccl_type(dtype), comm_, stream_),
             comm_, "ncclAllGather", rank_);
  to_host(recv, dev, bytes * size_);
}

void NcclGroup::broadcast(void* data, std::size_t count, DType dtype, int root) {
  SYNCBN_CHECK_AS(CommError, root >= 0 && root < size_, "broadcast root ", root,
                  " out of range for a group of size ", size_);
  const std::size_t bytes = count * dtype_size(dtype);
  void* dev = to_device(data, rank_ == root ? bytes : 0, bytes);
  check_nccl(ncclBroadcast(dev, dev, count, nccl_type(dtype), root, comm_, stream_), comm_,
             "ncclBroadcast", rank_);
  to_host(data, dev, bytes);
}

void NcclGroup::barrier() {
  // NCCL has no barrier; a one-element allreduce that every rank must join is one.
  void* dev = scratch_.reserve(sizeof(float), rank_);
  check_nccl(ncclAllReduce(dev, dev, 1, ncclFloat32, ncclSum, comm_, stream_), comm_,
             "ncclAllReduce (barrier)", rank_);
  wait("cudaStreamSynchronize (barrier)");
}

std::shared_ptr<ProcessGroup> NcclGroup::split(int color, int key) {
  auto sub = bootstrap_->split(color, key);
  if (!sub) return nullptr;
  return std::make_shared<NcclGroup>(std::move(sub));
}

}  // namespace syncbn::dist::detail
