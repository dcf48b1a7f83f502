#pragma once
// Background loading, as a PyTorch DataLoader with a worker and prefetch_factor: a thread runs
// dataset.get_batch for the next `depth` batches of a fixed list while the caller trains on the
// current one. Batches come out in list order, bit for bit what get_batch returns inline, so a
// run is identical with and without prefetch. An exception get_batch throws in the thread is
// rethrown by next() for the batch it belongs to (the earlier batches come out first). depth 0
// loads inline in next(). The destructor stops the thread after the batch it is loading, so
// drop the loader before changing the data set (set_epoch) or stopping early.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "syncbn/data/dataset.hpp"

namespace syncbn::data {

class PrefetchLoader {
 public:
  // `dataset` must outlive the loader and must not change (set_epoch) while it exists. Throws
  // ConfigError for depth < 0.
  PrefetchLoader(const Dataset& dataset, std::vector<std::vector<std::int64_t>> batches,
                 std::int64_t depth);
  ~PrefetchLoader();
  PrefetchLoader(const PrefetchLoader&) = delete;
  PrefetchLoader& operator=(const PrefetchLoader&) = delete;

  bool has_next() const { return next_ < batches_.size(); }
  // The next batch, waiting for the thread if it is not ready; ValueError when none is left.
  Batch next();
  // How long the last next() waited for data (inline: the whole get_batch), in milliseconds.
  double last_wait_ms() const { return last_wait_ms_; }

 private:
  struct Loaded {
    Batch batch;
    std::exception_ptr error;
  };
  void work();

  const Dataset& dataset_;
  const std::vector<std::vector<std::int64_t>> batches_;
  const std::size_t depth_;
  std::size_t next_ = 0;  // the caller's position; only the caller's thread touches it
  double last_wait_ms_ = 0;
  std::exception_ptr failed_;  // what get_batch threw; next() rethrows it from then on
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Loaded> ready_;  // guarded by mutex_, in list order
  bool stop_ = false;         // guarded by mutex_
  std::thread worker_;
};

}  // namespace syncbn::data
