#include "watchdog.hpp"

#include <algorithm>
#include <cstdio>

namespace syncbn::dist::detail {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Watchdog::Watchdog(double timeout_s, int rank, std::string backend, AbortFn abort)
    : timeout_s_(timeout_s), rank_(rank), backend_(std::move(backend)), abort_(std::move(abort)) {
  if (timeout_s_ > 0) thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Watchdog::arm(const Fingerprint& what, int group_size) {
  if (!thread_.joinable()) return;
  op_.store(static_cast<std::int64_t>(what.op), std::memory_order_relaxed);
  dtype_.store(static_cast<std::int64_t>(what.dtype), std::memory_order_relaxed);
  count_.store(static_cast<std::int64_t>(what.count), std::memory_order_relaxed);
  group_size_.store(group_size, std::memory_order_relaxed);
  // Release: the thread that sees this start time also sees the fields above.
  started_ns_.store(now_ns(), std::memory_order_release);
}

void Watchdog::run() {
  // Poll a tenth of the limit, between 50 ms and 1 s: the job ends at most ~10% (or 1 s) late,
  // and an idle process wakes at most once a second.
  const double period_s = std::clamp(timeout_s_ / 10, 0.05, 1.0);
  const auto period = std::chrono::duration<double>(period_s);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
    if (check_expired(now_ns())) {
      lock.unlock();
      abort_(kExitCode);
      return;  // only reached if the abort hook returns, which it must not
    }
  }
}

bool Watchdog::check_expired(std::int64_t now) {
  const std::int64_t started = started_ns_.load(std::memory_order_acquire);
  if (started == 0) return false;
  const double waited_s = static_cast<double>(now - started) * 1e-9;
  if (waited_s <= timeout_s_) return false;
  Fingerprint what;
  what.op = static_cast<Collective>(op_.load(std::memory_order_relaxed));
  what.dtype = static_cast<DType>(dtype_.load(std::memory_order_relaxed));
  what.count = static_cast<std::size_t>(count_.load(std::memory_order_relaxed));
  // The collective may have finished, or a new one started, while we read: check again (the
  // fence keeps the field loads above before this one, as in a seqlock).
  std::atomic_thread_fence(std::memory_order_acquire);
  if (started_ns_.load(std::memory_order_acquire) != started) return false;
  std::fprintf(stderr,
               "syncbn watchdog: rank %d (%s backend) has waited %.1f s in %s on a group of size "
               "%lld, longer than the collective timeout of %g s: another rank probably skipped, "
               "failed before or never reached this collective. Aborting the job "
               "(SYNCBN_COLLECTIVE_TIMEOUT sets the limit).\n",
               rank_, backend_.c_str(), waited_s, describe(what).c_str(),
               static_cast<long long>(group_size_.load(std::memory_order_relaxed)), timeout_s_);
  std::fflush(stderr);
  return true;
}

}  // namespace syncbn::dist::detail
