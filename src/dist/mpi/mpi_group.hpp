#pragma once
// MpiGroup: ProcessGroup over an MPI communicator of its own. It duplicates the communicator it
// is given, so its traffic can never match messages the caller sends on the original, and sets
// MPI_ERRORS_RETURN on the duplicate so every failure comes back as a code we turn into a
// CommError (with the MPI error string and this rank) instead of killing the process.
//
// A plain transport: the fingerprint check and the watchdog are GuardedGroup's, which the MPI
// backend wraps around its world (split() of the guarded world wraps the sub-groups too).
#include <mpi.h>

#include <memory>

#include "syncbn/dist/process_group.hpp"

namespace syncbn::dist::detail {

class MpiGroup : public ProcessGroup {
 public:
  // Collective over `comm`. The caller keeps ownership of `comm`; the group owns a duplicate.
  static std::shared_ptr<MpiGroup> duplicate(MPI_Comm comm);
  // Takes ownership of `comm` (a communicator fresh from MPI_Comm_split).
  explicit MpiGroup(MPI_Comm comm);
  // Frees the communicator unless MPI is already finalized (a group that outlived its
  // Environment), in which case MPI has reclaimed it.
  ~MpiGroup() override;
  MpiGroup(const MpiGroup&) = delete;
  MpiGroup& operator=(const MpiGroup&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void allreduce(void* data, std::size_t count, DType dtype, ReduceOp op) override;
  void allreduce_custom(double* data, std::size_t records, std::size_t record_len,
                        Combine combine) override;
  void allgather(const void* send, void* recv, std::size_t count, DType dtype) override;
  void broadcast(void* data, std::size_t count, DType dtype, int root) override;
  void barrier() override;
  std::shared_ptr<ProcessGroup> split(int color, int key) override;

  using ProcessGroup::allreduce;
  using ProcessGroup::broadcast;

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace syncbn::dist::detail
