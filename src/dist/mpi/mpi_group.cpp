#include "mpi_group.hpp"

#include "custom_op.hpp"
#include "mpi_util.hpp"
#include "syncbn/error.hpp"

namespace syncbn::dist::detail {

std::shared_ptr<MpiGroup> MpiGroup::duplicate(MPI_Comm comm) {
  int rank = -1, size = 0;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank", -1, 0);
  check_mpi(MPI_Comm_size(comm, &size), "MPI_Comm_size", rank, 0);
  MPI_Comm dup = MPI_COMM_NULL;
  check_mpi(MPI_Comm_dup(comm, &dup), "MPI_Comm_dup", rank, size);
  return std::make_shared<MpiGroup>(dup);
}

MpiGroup::MpiGroup(MPI_Comm comm) : comm_(comm) {
  // Set before anything else can fail on this communicator.
  check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", -1, 0);
  check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank", -1, 0);
  check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", rank_, 0);
}

MpiGroup::~MpiGroup() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  // Nothing to report to from a destructor; a failed free only leaks a communicator.
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiGroup::allreduce(void* data, std::size_t count, DType dtype, ReduceOp op) {
  SYNCBN_CHECK_AS(CommError, dtype != DType::UInt8, "allreduce does not support uint8");
  const MPI_Op mpi_op = op == ReduceOp::Sum ? MPI_SUM : op == ReduceOp::Min ? MPI_MIN : MPI_MAX;
  const int n = mpi_count(count, "allreduce");
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, n, mpi_type(dtype), mpi_op, comm_), "MPI_Allreduce",
            rank_, size_);
}

void MpiGroup::allreduce_custom(double* data, std::size_t records, std::size_t record_len,
                                Combine combine) {
  const int n = mpi_count(records, "allreduce_custom");
  // A zero-length record would need a zero-size datatype; there is nothing to combine anyway.
  if (n == 0 || record_len == 0) return;
  const CustomOps::Handles h = CustomOps::instance().get(combine, record_len, rank_, size_);
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, n, h.type, h.op, comm_), "MPI_Allreduce (custom op)",
            rank_, size_);
}

void MpiGroup::allgather(const void* send, void* recv, std::size_t count, DType dtype) {
  // The whole receive buffer must be addressable with int counts and displacements too.
  mpi_count(count * static_cast<std::size_t>(size_), "allgather (count * group size)");
  const int n = mpi_count(count, "allgather");
  check_mpi(MPI_Allgather(send, n, mpi_type(dtype), recv, n, mpi_type(dtype), comm_),
            "MPI_Allgather", rank_, size_);
}

void MpiGroup::broadcast(void* data, std::size_t count, DType dtype, int root) {
  SYNCBN_CHECK_AS(CommError, root >= 0 && root < size_, "broadcast root ", root,
                  " out of range for a group of size ", size_);
  check_mpi(MPI_Bcast(data, mpi_count(count, "broadcast"), mpi_type(dtype), root, comm_),
            "MPI_Bcast", rank_, size_);
}

void MpiGroup::barrier() {
  check_mpi(MPI_Barrier(comm_), "MPI_Barrier", rank_, size_);
}

std::shared_ptr<ProcessGroup> MpiGroup::split(int color, int key) {
  MPI_Comm out = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &out), "MPI_Comm_split",
            rank_, size_);
  if (out == MPI_COMM_NULL) return nullptr;
  return std::make_shared<MpiGroup>(out);
}

}  // namespace syncbn::dist::detail
