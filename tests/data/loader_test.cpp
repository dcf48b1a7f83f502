// PrefetchLoader: the same batches as inline get_batch at every depth, errors at their batch,
// and clean shutdown part-way. Written to run under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "syncbn/data/dataset.hpp"
#include "syncbn/data/loader.hpp"
#include "syncbn/error.hpp"

namespace syncbn::data {
namespace {

std::vector<std::vector<std::int64_t>> batches_of(std::int64_t n, std::int64_t size) {
  std::vector<std::vector<std::int64_t>> out;
  for (std::int64_t s = 0; s < n; s += size) {
    out.emplace_back();
    for (std::int64_t i = s; i < std::min(n, s + size); ++i) out.back().push_back((i * 7) % n);
  }
  return out;
}

bool same(const Batch& a, const Batch& b) {
  if (a.images.shape() != b.images.shape() || a.labels != b.labels) return false;
  for (std::int64_t i = 0; i < a.images.numel(); ++i)
    if (a.images.data<float>()[i] != b.images.data<float>()[i]) return false;
  return true;
}

// Fails on batches holding index `bad`; counts get_batch calls (from any thread).
class FailingData : public Dataset {
 public:
  explicit FailingData(std::int64_t bad) : inner_(SyntheticDatasetOptions().size(64)), bad_(bad) {}
  std::int64_t size() const override { return inner_.size(); }
  std::int64_t num_classes() const override { return inner_.num_classes(); }
  Shape sample_shape() const override { return inner_.sample_shape(); }
  Batch get_batch(const std::vector<std::int64_t>& indices) const override {
    ++calls;
    for (std::int64_t i : indices)
      SYNCBN_CHECK_AS(IoError, i != bad_, "corrupt sample ", i, " in the test data");
    return inner_.get_batch(indices);
  }
  mutable std::atomic<int> calls{0};

 private:
  SyntheticDataset inner_;
  std::int64_t bad_;
};

TEST(PrefetchLoader, SameBatchesAsInlineAtEveryDepth) {
  const SyntheticDataset d(SyntheticDatasetOptions().size(100).sample_shape({2, 4, 4}));
  const auto batches = batches_of(100, 8);
  for (std::int64_t depth : {0, 1, 2, 5, 50}) {
    PrefetchLoader loader(d, batches, depth);
    for (const auto& indices : batches) {
      ASSERT_TRUE(loader.has_next());
      EXPECT_TRUE(same(loader.next(), d.get_batch(indices))) << "depth " << depth;
      EXPECT_GE(loader.last_wait_ms(), 0);
    }
    EXPECT_FALSE(loader.has_next());
    EXPECT_THROW(loader.next(), ValueError);
  }
}

TEST(PrefetchLoader, ErrorSurfacesAtItsBatchWithItsMessage) {
  for (std::int64_t depth : {0, 2}) {
    FailingData d(/*bad=*/5);  // only batch 2 of batches_of(64, 8) holds 5 (= 19 * 7 mod 64)
    PrefetchLoader loader(d, batches_of(64, 8), depth);
    EXPECT_NO_THROW(loader.next());
    EXPECT_NO_THROW(loader.next());
    try {
      loader.next();
      ADD_FAILURE() << "batch 2 did not throw (depth " << depth << ")";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("corrupt sample 5 "), std::string::npos) << e.what();
    }
    EXPECT_THROW(loader.next(), IoError);  // and stays failed instead of waiting forever
  }
}

TEST(PrefetchLoader, StopsPartWayWithoutLoadingEverything) {
  FailingData d(/*bad=*/-1);
  {
    PrefetchLoader loader(d, batches_of(64, 1), 2);
    loader.next();
  }  // the destructor joins the thread
  // One taken, at most 2 ready and 1 in flight when it stopped.
  EXPECT_LE(d.calls.load(), 4);
  { PrefetchLoader unused(d, batches_of(64, 1), 3); }
  { PrefetchLoader empty(d, {}, 2); }
}

TEST(PrefetchLoader, NegativeDepthIsAConfigError) {
  const SyntheticDataset d;
  EXPECT_THROW(PrefetchLoader(d, {}, -1), ConfigError);
}

}  // namespace
}  // namespace syncbn::data
