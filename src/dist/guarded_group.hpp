#pragma once
// GuardedGroup: the one collective guard, a decorator around any ProcessGroup (the pattern of
// PyTorch c10d's ProcessGroupWrapper). The MPI, NCCL and threaded groups are plain transports;
// the backends and spawn_ranks hand out their world wrapped in this, so the ProcessGroup
// contract's promises (a mismatch is a CommError naming the ranks on every rank, a rank stuck in
// a collective ends the job) hold the same way on every backend.
//
// Per collective: arm the watchdog, then (checks on, group size > 1) compare fingerprints in ONE
// small collective of the inner group (an allreduce Min of the fields and their negations), then
// call the inner collective. Only when the fingerprints differ does a second inner collective
// (an allgather of the fields) find which ranks differ, so the message names both.
#include <memory>
#include <string>

#include "syncbn/dist/environment.hpp"
#include "syncbn/dist/process_group.hpp"
#include "watchdog.hpp"

namespace syncbn::dist::detail {

// Shared by a world group and every group split from it.
struct GuardOptions {
  bool check_collectives = true;
  // Null: no watchdog. One per process, whatever the number of groups: it watches the one
  // collective this process's issuing thread is in.
  std::shared_ptr<Watchdog> watchdog;
};

// The guard an Environment's options ask for: checks as options.check_collectives, and a
// watchdog when options.collective_timeout_s > 0 that names `world_rank` and `backend` and ends
// the job through `abort`.
GuardOptions guard_options(const EnvironmentOptions& options, int world_rank,
                           const std::string& backend, Watchdog::AbortFn abort);

class GuardedGroup : public ProcessGroup {
 public:
  GuardedGroup(std::shared_ptr<ProcessGroup> inner, GuardOptions options);

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return inner_->backend(); }

  void allreduce(void* data, std::size_t count, DType dtype, ReduceOp op) override;
  void allreduce_custom(double* data, std::size_t records, std::size_t record_len,
                        Combine combine) override;
  void allgather(const void* send, void* recv, std::size_t count, DType dtype) override;
  void broadcast(void* data, std::size_t count, DType dtype, int root) override;
  void barrier() override;
  // A guarded sub-group with the same options (and so the same watchdog), or nullptr.
  std::shared_ptr<ProcessGroup> split(int color, int key) override;

  using ProcessGroup::allreduce;
  using ProcessGroup::broadcast;

 private:
  // Arms the watchdog, compares fingerprints (when enabled) and runs `call`, the inner
  // collective. Argument checks stay in the transports, so they run after the comparison: every
  // rank then has the same arguments and throws the same error instead of leaving others waiting.
  template <typename Call>
  void run(const Fingerprint& print, Call&& call);
  void check_fingerprint(const Fingerprint& print);

  std::shared_ptr<ProcessGroup> inner_;
  GuardOptions options_;
  int rank_ = 0, size_ = 1;
};

}  // namespace syncbn::dist::detail
