// A host-memory stand-in for the CUDA runtime and NCCL calls that src/dist/nccl makes, linked
// into syncbn_nccl_sim_tests in place of the real libraries (its definitions take precedence over
// libcudart's and libnccl's). It runs the NCCL backend's own code — staging, in-place gathers,
// fingerprints, the custom fold, split — on machines without a GPU, with NCCL's semantics done
// over MPI. It is strict where a GPU would be: "device" pointers must come from cudaMalloc and
// host pointers must not be passed as device ones; work on a stream (copies and collectives) runs
// only at cudaStreamSynchronize, so a result read before the wait is stale here as it would be
// on a GPU. What it cannot test: real devices, NVLink/IB transports, CUDA error paths.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <vector>

struct CUstream_st {
  std::vector<std::function<void()>> pending;  // runs at cudaStreamSynchronize
};
struct ncclComm {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 1;
};

namespace {

// Live cudaMalloc blocks: start -> size.
std::map<std::uintptr_t, std::size_t>& device_blocks() {
  static std::map<std::uintptr_t, std::size_t> blocks;
  return blocks;
}
std::vector<CUstream_st*>& streams() {
  static std::vector<CUstream_st*> all;
  return all;
}

// Whether [p, p + bytes) lies inside one cudaMalloc block.
bool on_device(const void* p, std::size_t bytes) {
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  auto& blocks = device_blocks();
  auto it = blocks.upper_bound(at);
  if (it == blocks.begin()) return false;
  --it;
  return at + bytes <= it->first + it->second;
}

void run_pending(CUstream_st* s) {
  auto work = std::move(s->pending);
  s->pending.clear();
  for (auto& step : work) step();
}

MPI_Datatype mpi_type(ncclDataType_t t) {
  switch (t) {
    case ncclFloat32:
      return MPI_FLOAT;
    case ncclFloat64:
      return MPI_DOUBLE;
    case ncclInt64:
      return MPI_INT64_T;
    case ncclUint8:
      return MPI_UINT8_T;
    default:
      return MPI_DATATYPE_NULL;
  }
}
std::size_t type_size(ncclDataType_t t) {
  int bytes = 0;
  MPI_Type_size(mpi_type(t), &bytes);
  return static_cast<std::size_t>(bytes);
}
MPI_Op mpi_op(ncclRedOp_t op) {
  return op == ncclSum ? MPI_SUM : op == ncclMin ? MPI_MIN : op == ncclMax ? MPI_MAX : MPI_OP_NULL;
}

// What ncclGetUniqueId hands out: who made it, and which of its ids this is.
struct SimId {
  int creator;  // rank in MPI_COMM_WORLD
  int serial;
};
constexpr int kTagBase = 23000;  // p2p tags on MPI_COMM_WORLD for communicator set-up

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// The members' world ranks in communicator-rank order, gathered by the creator (rank 0).
std::vector<int> members_of(const SimId& id, int nranks, int rank) {
  const int tag = kTagBase + id.serial % 4096;
  std::vector<int> members(static_cast<std::size_t>(nranks));
  if (rank == 0) {
    members[0] = world_rank();
    for (int i = 1; i < nranks; ++i) {
      int hello[2];  // {rank, world rank}
      MPI_Recv(hello, 2, MPI_INT, MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      members[static_cast<std::size_t>(hello[0])] = hello[1];
    }
    for (int i = 1; i < nranks; ++i)
      MPI_Send(members.data(), nranks, MPI_INT, members[static_cast<std::size_t>(i)], tag,
               MPI_COMM_WORLD);
  } else {
    int hello[2] = {rank, world_rank()};
    MPI_Send(hello, 2, MPI_INT, id.creator, tag, MPI_COMM_WORLD);
    MPI_Recv(members.data(), nranks, MPI_INT, id.creator, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
  return members;
}

}  // namespace

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}
const char* cudaGetErrorName(cudaError_t rc) {
  return rc == cudaSuccess ? "cudaSuccess" : "cudaErrorSimulated";
}
const char* cudaGetErrorString(cudaError_t rc) {
  return rc == cudaSuccess ? "no error" : "simulated CUDA error";
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (*p == nullptr) return cudaErrorMemoryAllocation;
  device_blocks()[reinterpret_cast<std::uintptr_t>(*p)] = bytes;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  for (auto* s : streams()) run_pending(s);  // cudaFree synchronizes the device
  if (device_blocks().erase(reinterpret_cast<std::uintptr_t>(p)) == 0) return cudaErrorInvalidValue;
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  *stream = new CUstream_st;
  streams().push_back(*stream);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  run_pending(stream);  // pending work completes, as on a device
  auto& all = streams();
  for (auto it = all.begin(); it != all.end(); ++it)
    if (*it == stream) {
      all.erase(it);
      break;
    }
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  run_pending(stream);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  const bool h2d = kind == cudaMemcpyHostToDevice, d2h = kind == cudaMemcpyDeviceToHost;
  if (!h2d && !d2h) return cudaErrorInvalidMemcpyDirection;
  if (on_device(dst, bytes) != h2d || on_device(src, bytes) != d2h) return cudaErrorInvalidValue;
  stream->pending.push_back([=] { std::memcpy(dst, src, bytes); });
  return cudaSuccess;
}

ncclResult_t ncclGetVersion(int* version) {
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}
const char* ncclGetErrorString(ncclResult_t rc) {
  return rc == ncclSuccess ? "no error" : "simulated NCCL error";
}
const char* ncclGetLastError(ncclComm_t) {
  return "";
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t, ncclResult_t* async) {
  *async = ncclSuccess;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  static int serial = 0;
  std::memset(id, 0, sizeof *id);
  const SimId sim{world_rank(), serial++};
  std::memcpy(id->internal, &sim, sizeof sim);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* out, int nranks, ncclUniqueId id, int rank) {
  if (nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
  SimId sim;
  std::memcpy(&sim, id.internal, sizeof sim);
  const std::vector<int> members = members_of(sim, nranks, rank);
  MPI_Group world_group, group;
  MPI_Comm_group(MPI_COMM_WORLD, &world_group);
  MPI_Group_incl(world_group, nranks, members.data(), &group);
  auto* comm = new ncclComm;
  MPI_Comm_create_group(MPI_COMM_WORLD, group, kTagBase + sim.serial % 4096, &comm->comm);
  MPI_Group_free(&group);
  MPI_Group_free(&world_group);
  comm->rank = rank;
  comm->size = nranks;
  *out = comm;
  return ncclSuccess;
}
ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  MPI_Comm_free(&comm->comm);
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  const std::size_t bytes = count * type_size(type);
  if (!on_device(send, bytes) || !on_device(recv, bytes)) return ncclInvalidArgument;
  stream->pending.push_back([=] {
    MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, static_cast<int>(count), mpi_type(type),
                  mpi_op(op), comm->comm);
  });
  return ncclSuccess;
}

ncclResult_t ncclAllGather(const void* send, void* recv, size_t count, ncclDataType_t type,
                           ncclComm_t comm, cudaStream_t stream) {
  const std::size_t bytes = count * type_size(type);
  if (!on_device(send, bytes) || !on_device(recv, bytes * comm->size)) return ncclInvalidArgument;
  const bool in_place = send == static_cast<const char*>(recv) + bytes * comm->rank;
  stream->pending.push_back([=] {
    MPI_Allgather(in_place ? MPI_IN_PLACE : send, static_cast<int>(count), mpi_type(type), recv,
                  static_cast<int>(count), mpi_type(type), comm->comm);
  });
  return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type,
                           int root, ncclComm_t comm, cudaStream_t stream) {
  const std::size_t bytes = count * type_size(type);
  if (!on_device(recv, bytes) || (comm->rank == root && !on_device(send, bytes)))
    return ncclInvalidArgument;
  stream->pending.push_back([=] {
    if (comm->rank == root && send != recv) std::memmove(recv, send, bytes);
    MPI_Bcast(recv, static_cast<int>(count), mpi_type(type), root, comm->comm);
  });
  return ncclSuccess;
}

}  // extern "C"
