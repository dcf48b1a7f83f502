#include <chrono>
#include <utility>

#include "syncbn/data/loader.hpp"
#include "syncbn/error.hpp"

namespace syncbn::data {
namespace {
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}
}  // namespace

PrefetchLoader::PrefetchLoader(const Dataset& dataset,
                               std::vector<std::vector<std::int64_t>> batches, std::int64_t depth)
    : dataset_(dataset), batches_(std::move(batches)), depth_(static_cast<std::size_t>(depth)) {
  SYNCBN_CHECK_AS(ConfigError, depth >= 0, "PrefetchLoader: depth must be >= 0, got ", depth);
  if (depth_ > 0 && !batches_.empty()) worker_ = std::thread([this] { work(); });
}

PrefetchLoader::~PrefetchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void PrefetchLoader::work() {
  for (const auto& indices : batches_) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] { return stop_ || ready_.size() < depth_; });
      if (stop_) return;
    }
    Loaded loaded;
    try {
      loaded.batch = dataset_.get_batch(indices);
    } catch (...) {
      loaded.error = std::current_exception();
    }
    const bool failed = loaded.error != nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.push_back(std::move(loaded));
    }
    changed_.notify_all();
    if (failed) return;  // the caller stops at this batch; load nothing after it
  }
}

Batch PrefetchLoader::next() {
  SYNCBN_CHECK(has_next(), "PrefetchLoader: all ", batches_.size(), " batches were taken");
  if (failed_) std::rethrow_exception(failed_);  // the thread stopped at that batch
  const auto start = Clock::now();
  const std::size_t position = next_++;
  if (depth_ == 0) {
    try {
      Batch batch = dataset_.get_batch(batches_[position]);
      last_wait_ms_ = ms_since(start);
      return batch;
    } catch (...) {
      failed_ = std::current_exception();
      throw;
    }
  }
  Loaded loaded;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return !ready_.empty(); });
    loaded = std::move(ready_.front());
    ready_.pop_front();
  }
  last_wait_ms_ = ms_since(start);  // before waking the thread, which may take this core
  changed_.notify_all();
  if (loaded.error) std::rethrow_exception(failed_ = loaded.error);
  return std::move(loaded.batch);
}

}  // namespace syncbn::data
