#pragma once
// Watchdog: ends the job when this process has waited too long in one collective, which is what
// a rank that skipped, crashed before or never reached a collective looks like from the others.
// The fingerprint check cannot catch that case: there is nothing to compare with.
//
// Cost when idle: one thread asleep on a condition variable, waking a few times per timeout (at
// most once a second) to read two atomics. Cost per collective: a steady_clock read and a few
// relaxed atomic stores in arm()/disarm(). Backend-neutral (no mpi.h).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "fingerprint.hpp"

namespace syncbn::dist::detail {

class Watchdog {
 public:
  // Called from the watchdog thread once the message is printed. In a job it ends the process
  // (detail::abort_job); a test's hook may return, which only stops the watchdog thread.
  using AbortFn = std::function<void(int exit_code)>;
  static constexpr int kExitCode = 124;  // what timeout(1) uses for "timed out"

  // timeout_s <= 0 disables it: no thread, arm/disarm do nothing. `rank` is this process's
  // world rank and `backend` the backend name, both for the message.
  Watchdog(double timeout_s, int rank, std::string backend, AbortFn abort);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // The calling thread starts / stops waiting in collective `what` on a group of `group_size`.
  // One collective at a time per process (the ProcessGroup contract: one issuing thread).
  void arm(const Fingerprint& what, int group_size);
  void disarm() { started_ns_.store(0, std::memory_order_relaxed); }
  double timeout_s() const { return timeout_s_; }

 private:
  void run();
  // Returns true when the armed collective is over the limit (and prints the message).
  bool check_expired(std::int64_t now_ns);

  double timeout_s_;
  int rank_;
  std::string backend_;
  AbortFn abort_;
  // 0 when idle; else the steady_clock time in ns at which the current collective started.
  std::atomic<std::int64_t> started_ns_{0};
  std::atomic<std::int64_t> op_{0}, dtype_{0}, count_{0}, group_size_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// Arms `dog` (may be null) for the lifetime of the scope, so exceptions disarm it too.
class WatchdogScope {
 public:
  WatchdogScope(Watchdog* dog, const Fingerprint& what, int group_size) : dog_(dog) {
    if (dog_) dog_->arm(what, group_size);
  }
  ~WatchdogScope() {
    if (dog_) dog_->disarm();
  }
  WatchdogScope(const WatchdogScope&) = delete;
  WatchdogScope& operator=(const WatchdogScope&) = delete;

 private:
  Watchdog* dog_;
};

}  // namespace syncbn::dist::detail
