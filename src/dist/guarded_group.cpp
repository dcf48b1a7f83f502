#include "guarded_group.hpp"

#include <vector>

#include "syncbn/error.hpp"

namespace syncbn::dist::detail {

GuardOptions guard_options(const EnvironmentOptions& options, int world_rank,
                           const std::string& backend, Watchdog::AbortFn abort) {
  GuardOptions guard;
  guard.check_collectives = options.check_collectives;
  if (options.collective_timeout_s > 0)
    guard.watchdog = std::make_shared<Watchdog>(options.collective_timeout_s, world_rank, backend,
                                                std::move(abort));
  return guard;
}

GuardedGroup::GuardedGroup(std::shared_ptr<ProcessGroup> inner, GuardOptions options)
    : inner_(std::move(inner)), options_(std::move(options)) {
  SYNCBN_CHECK(inner_ != nullptr, "GuardedGroup: the inner process group is null");
  rank_ = inner_->rank();
  size_ = inner_->size();
}

template <typename Call>
void GuardedGroup::run(const Fingerprint& print, Call&& call) {
  WatchdogScope armed(options_.watchdog.get(), print, size_);
  if (options_.check_collectives && size_ > 1) check_fingerprint(print);
  call();
}

void GuardedGroup::check_fingerprint(const Fingerprint& print) {
  const FingerprintFields mine = fields_of(print);
  // Min of each field and of its negation (= -max) in one allreduce of contiguous int64: the
  // cheapest reduction every backend has. (MPI's MINLOC would name the ranks too, but Open MPI
  // reduces its padded pair type several times slower.)
  std::int64_t extremes[2 * kFingerprintFields];
  for (std::size_t i = 0; i < kFingerprintFields; ++i)
    extremes[i] = mine[i], extremes[kFingerprintFields + i] = -mine[i];
  inner_->allreduce(extremes, 2 * kFingerprintFields, DType::Int64, ReduceOp::Min);
  bool agree = true;
  for (std::size_t i = 0; i < kFingerprintFields; ++i)
    agree = agree && extremes[i] == -extremes[kFingerprintFields + i];
  if (agree) return;
  // Every rank saw the same extremes, so all of them take this second step together.
  std::vector<FingerprintFields> all(static_cast<std::size_t>(size_));
  inner_->allgather(mine.data(), all.data(), kFingerprintFields, DType::Int64);
  throw CommError(
      mismatch_message(print, spreads_of(all.data(), size_), inner_->backend(), rank_, size_));
}

void GuardedGroup::allreduce(void* data, std::size_t count, DType dtype, ReduceOp op) {
  run({allreduce_collective(op), dtype, count, 0},
      [&] { inner_->allreduce(data, count, dtype, op); });
}

void GuardedGroup::allreduce_custom(double* data, std::size_t records, std::size_t record_len,
                                    Combine combine) {
  const Fingerprint print{Collective::AllreduceCustom, DType::Float64, records * record_len,
                          static_cast<std::int64_t>(record_len)};
  run(print, [&] { inner_->allreduce_custom(data, records, record_len, combine); });
}

void GuardedGroup::allgather(const void* send, void* recv, std::size_t count, DType dtype) {
  run({Collective::Allgather, dtype, count, 0},
      [&] { inner_->allgather(send, recv, count, dtype); });
}

void GuardedGroup::broadcast(void* data, std::size_t count, DType dtype, int root) {
  run({Collective::Broadcast, dtype, count, root},
      [&] { inner_->broadcast(data, count, dtype, root); });
}

void GuardedGroup::barrier() {
  run({Collective::Barrier, DType::Float32, 0, 0}, [&] { inner_->barrier(); });
}

std::shared_ptr<ProcessGroup> GuardedGroup::split(int color, int key) {
  std::shared_ptr<ProcessGroup> sub;
  run({Collective::Split, DType::Float32, 0, 0}, [&] { sub = inner_->split(color, key); });
  if (!sub) return nullptr;
  return std::make_shared<GuardedGroup>(std::move(sub), options_);
}

}  // namespace syncbn::dist::detail
