// The threaded in-process group. Each collective is two rendezvous: ranks publish a private copy
// of their input, meet, compute their own result from everyone's copies, and meet again so no
// copy is overwritten while another rank still reads it. A plain transport: spawn_ranks wraps
// each rank's group in the collective guard (GuardedGroup), which reports mismatches by name.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "../guarded_group.hpp"
#include "syncbn/dist/local.hpp"
#include "syncbn/error.hpp"
#include "threaded_group.hpp"

namespace syncbn::dist {
namespace {

// Shared by the ranks of one threaded group.
class Rendezvous {
 public:
  explicit Rendezvous(int size) : staged_(size), shared_(size), size_(size) {}

  // Blocks until all ranks arrive; throws CommError if the world was aborted.
  void meet() {
    std::unique_lock<std::mutex> lock(mutex_);
    check_aborted();
    const std::uint64_t gen = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return generation_ != gen || aborted_; });
    check_aborted();
  }

  // Releases every waiter here and in sub-groups split from this group.
  void abort(const std::string& why) {
    std::vector<std::shared_ptr<Rendezvous>> children;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!aborted_) reason_ = why;
      aborted_ = true;
      cv_.notify_all();
      children = children_;
    }
    for (auto& child : children) child->abort(why);
  }

  void adopt(std::shared_ptr<Rendezvous> child) {
    std::lock_guard<std::mutex> lock(mutex_);
    children_.push_back(std::move(child));
  }

  int size() const { return size_; }
  std::vector<std::vector<std::byte>> staged_;
  std::vector<std::shared_ptr<void>> shared_;

 private:
  void check_aborted() const {
    if (aborted_) throw CommError("threaded group aborted: " + reason_);
  }
  int size_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0;
  std::uint64_t generation_ = 0;
  bool aborted_ = false;
  std::string reason_;
  std::vector<std::shared_ptr<Rendezvous>> children_;
};

template <typename T>
void reduce_into(T* acc, const T* in, std::size_t n, ReduceOp op) {
  for (std::size_t i = 0; i < n; ++i) {
    switch (op) {
      case ReduceOp::Sum:
        acc[i] += in[i];
        break;
      case ReduceOp::Min:
        acc[i] = std::min(acc[i], in[i]);
        break;
      case ReduceOp::Max:
        acc[i] = std::max(acc[i], in[i]);
        break;
    }
  }
}

class ThreadedGroup : public ProcessGroup {
 public:
  ThreadedGroup(std::shared_ptr<Rendezvous> rv, int rank) : rv_(std::move(rv)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return rv_->size(); }
  std::string backend() const override { return "threaded"; }

  void allreduce(void* data, std::size_t count, DType dtype, ReduceOp op) override {
    SYNCBN_CHECK_AS(CommError, dtype != DType::UInt8, "allreduce does not support uint8");
    exchange(data, count * dtype_size(dtype), [&] {
      const std::size_t bytes = count * dtype_size(dtype);
      if (bytes) std::memcpy(data, rv_->staged_[0].data(), bytes);  // data() may be null when empty
      for (int r = 1; r < size(); ++r) {
        const void* in = rv_->staged_[r].data();
        if (dtype == DType::Float32)
          reduce_into(static_cast<float*>(data), static_cast<const float*>(in), count, op);
        if (dtype == DType::Float64)
          reduce_into(static_cast<double*>(data), static_cast<const double*>(in), count, op);
        if (dtype == DType::Int64)
          reduce_into(static_cast<std::int64_t*>(data), static_cast<const std::int64_t*>(in), count,
                      op);
      }
    });
  }

  void allreduce_custom(double* data, std::size_t records, std::size_t record_len,
                        Combine combine) override {
    const std::size_t count = records * record_len;
    exchange(data, count * sizeof(double), [&] {
      if (count) std::memcpy(data, rv_->staged_[0].data(), count * sizeof(double));
      for (int r = 1; r < size(); ++r)
        combine(reinterpret_cast<const double*>(rv_->staged_[r].data()), data, records, record_len);
    });
  }

  void allgather(const void* send, void* recv, std::size_t count, DType dtype) override {
    exchange(send, count * dtype_size(dtype), [&] {
      const std::size_t bytes = count * dtype_size(dtype);
      for (int r = 0; r < size(); ++r)
        if (bytes)
          std::memcpy(static_cast<std::byte*>(recv) + r * bytes, rv_->staged_[r].data(), bytes);
    });
  }

  void broadcast(void* data, std::size_t count, DType dtype, int root) override {
    SYNCBN_CHECK_AS(CommError, root >= 0 && root < size(), "broadcast root ", root,
                    " out of range for a group of size ", size());
    exchange(data, count * dtype_size(dtype), [&] {
      if (count) std::memcpy(data, rv_->staged_[root].data(), count * dtype_size(dtype));
    });
  }

  void barrier() override {
    exchange(nullptr, 0, [] {});
  }

  std::shared_ptr<ProcessGroup> split(int color, int key) override;

 private:
  // Publishes this rank's `bytes` of input, runs `compute` on this rank's result once every
  // rank has published, and waits until every rank is done reading.
  template <typename Compute>
  void exchange(const void* input, std::size_t bytes, Compute&& compute) {
    const auto* begin = static_cast<const std::byte*>(input);
    rv_->staged_[rank_].assign(begin, begin + (input ? bytes : 0));
    rv_->meet();
    const std::string error = size_error(input ? bytes : 0);
    if (error.empty()) compute();
    rv_->meet();
    if (!error.empty()) throw CommError(error);
  }

  // The transport's own bounds check, as MPI reports a truncated message: without the guard,
  // ranks may pass different counts, and reading a shorter copy would run off its end. Every rank
  // sees the same copies, so every rank throws.
  std::string size_error(std::size_t bytes) const {
    for (int r = 0; r < size(); ++r) {
      if (rv_->staged_[r].size() == bytes) continue;
      return "threaded group of size " + std::to_string(size()) + ": rank " +
             std::to_string(rank_) + " passed " + std::to_string(bytes) + " bytes but rank " +
             std::to_string(r) + " passed " + std::to_string(rv_->staged_[r].size());
    }
    return "";
  }

  std::shared_ptr<Rendezvous> rv_;
  int rank_;
};

std::shared_ptr<ProcessGroup> ThreadedGroup::split(int color, int key) {
  std::vector<std::int64_t> mine{color, key};
  std::vector<std::int64_t> all(2 * static_cast<std::size_t>(size()));
  allgather(mine.data(), all.data(), 2, DType::Int64);
  // Members of my color, ordered by (key, rank); the first creates the shared rendezvous.
  std::vector<std::pair<std::int64_t, int>> members;
  for (int r = 0; r < size(); ++r)
    if (all[2 * r] == color) members.emplace_back(all[2 * r + 1], r);
  std::sort(members.begin(), members.end());
  const bool leader = color >= 0 && members.front().second == rank_;
  rv_->shared_[rank_] = nullptr;
  if (leader) {
    auto child = std::make_shared<Rendezvous>(static_cast<int>(members.size()));
    rv_->adopt(child);
    rv_->shared_[rank_] = child;
  }
  rv_->meet();
  std::shared_ptr<ProcessGroup> group;
  if (color >= 0) {
    auto rv = std::static_pointer_cast<Rendezvous>(rv_->shared_[members.front().second]);
    const auto pos =
        std::find_if(members.begin(), members.end(), [&](auto& m) { return m.second == rank_; });
    group = std::make_shared<ThreadedGroup>(rv, static_cast<int>(pos - members.begin()));
  }
  rv_->meet();
  return group;
}

}  // namespace

std::vector<std::shared_ptr<ProcessGroup>> detail::make_threaded_ranks(int n) {
  SYNCBN_CHECK(n >= 1, "make_threaded_ranks: need at least one rank, got ", n);
  auto rv = std::make_shared<Rendezvous>(n);
  std::vector<std::shared_ptr<ProcessGroup>> ranks;
  for (int r = 0; r < n; ++r) ranks.push_back(std::make_shared<ThreadedGroup>(rv, r));
  return ranks;
}

void spawn_ranks(int n, const std::function<void(std::shared_ptr<ProcessGroup>)>& fn) {
  SYNCBN_CHECK(n >= 1, "spawn_ranks: need at least one rank, got ", n);
  auto rv = std::make_shared<Rendezvous>(n);
  std::vector<std::exception_ptr> errors(n);
  std::mutex first_mutex;
  std::exception_ptr first;
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      try {
        // Checks on, no watchdog: a test that hangs is ended by ctest's timeout.
        fn(std::make_shared<detail::GuardedGroup>(std::make_shared<ThreadedGroup>(rv, r),
                                                  detail::GuardOptions{}));
      } catch (const std::exception& e) {
        {
          std::lock_guard<std::mutex> lock(first_mutex);
          if (!first) first = std::current_exception();
        }
        rv->abort("rank " + std::to_string(r) + " failed: " + e.what());
      } catch (...) {
        std::lock_guard<std::mutex> lock(first_mutex);
        if (!first) first = std::current_exception();
        rv->abort("rank " + std::to_string(r) + " failed");
      }
    });
  }
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace syncbn::dist
