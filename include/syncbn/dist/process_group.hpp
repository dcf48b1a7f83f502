#pragma once
// ProcessGroup: the one interface every communication backend implements (MPI, NCCL, Local,
// and the in-process threaded group used by tests). SyncBatchNorm and the training loop see only
// this, so they never include a backend header.
//
// Contract for every collective below: every rank of the group must call it, in the same order,
// with the same count and dtype; it blocks until this rank's result is ready; buffers are host
// memory and results are written in place (a rank's buffer is both input and output). A
// mismatch in order, count or dtype across ranks is reported as a CommError on every rank,
// naming the ranks and what each passed, never a hang or silent corruption (the collective
// guard around every backend's groups compares a small fingerprint before each collective; see
// Environment's options). Backend failures (an MPI or NCCL error code) are CommErrors too.
// Methods are not thread-safe: one thread per rank issues the collectives.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "syncbn/tensor.hpp"

namespace syncbn::dist {

enum class ReduceOp { Sum, Min, Max };
const char* reduce_op_name(ReduceOp op);

// Folds `records` records of `record_len` doubles from `in` into `inout`, record by record.
// Must be associative and commutative up to rounding: backends may apply it in any tree order.
using Combine = void (*)(const double* in, double* inout, std::size_t records,
                         std::size_t record_len);

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "mpi", "nccl", "local" or "threaded".
  virtual std::string backend() const = 0;

  // Element-wise reduction of `count` values over all ranks; every rank gets the result.
  // dtype: Float32, Float64 or Int64.
  virtual void allreduce(void* data, std::size_t count, DType dtype, ReduceOp op) = 0;
  // Reduction with a user combine over records of doubles, in one collective whose size does
  // not depend on the group size where the backend allows it (MPI: a user MPI_Op). NCCL has no
  // user ops: it gathers all records and folds them locally, in rank order.
  virtual void allreduce_custom(double* data, std::size_t records, std::size_t record_len,
                                Combine combine) = 0;
  // recv receives size() blocks of `count` values, block r from rank r. send and recv must not
  // overlap.
  virtual void allgather(const void* send, void* recv, std::size_t count, DType dtype) = 0;
  // Copies root's `count` values to every rank.
  virtual void broadcast(void* data, std::size_t count, DType dtype, int root) = 0;
  virtual void barrier() = 0;
  // Collective: ranks that pass the same color >= 0 form a new group, ordered by key then by
  // rank in this group; a rank passing a negative color gets nullptr.
  virtual std::shared_ptr<ProcessGroup> split(int color, int key) = 0;

  // Typed conveniences.
  void allreduce(float* data, std::size_t count, ReduceOp op = ReduceOp::Sum) {
    allreduce(data, count, DType::Float32, op);
  }
  void allreduce(double* data, std::size_t count, ReduceOp op = ReduceOp::Sum) {
    allreduce(data, count, DType::Float64, op);
  }
  void allreduce(std::int64_t* data, std::size_t count, ReduceOp op = ReduceOp::Sum) {
    allreduce(data, count, DType::Int64, op);
  }
  // In place over a tensor's whole storage.
  void allreduce(Tensor& tensor, ReduceOp op = ReduceOp::Sum) {
    allreduce(tensor.raw(), static_cast<std::size_t>(tensor.numel()), tensor.dtype(), op);
  }
  void broadcast(Tensor& tensor, int root) {
    broadcast(tensor.raw(), static_cast<std::size_t>(tensor.numel()), tensor.dtype(), root);
  }

  // Collective: a group of `ranks` (ranks of this group, in the new group's order). Every rank
  // of this group must call it with the same list; ranks not listed get nullptr.
  std::shared_ptr<ProcessGroup> new_group(const std::vector<int>& ranks);
};

}  // namespace syncbn::dist
