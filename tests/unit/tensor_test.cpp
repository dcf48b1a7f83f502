#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "syncbn/error.hpp"
#include "syncbn/tensor.hpp"

namespace syncbn {
namespace {

TEST(Tensor, ZeroFilledWithShape) {
  Tensor t({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.size(-1), 4);
  for (std::int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.data<float>()[i], 0.f);
}

const float* storage_of(const Tensor& t) {
  return t.data<float>();
}

TEST(Tensor, CopiesShareStorageUntilOneIsWritten) {
  Tensor a = Tensor::full({3}, 2.0);
  Tensor b = a;
  EXPECT_EQ(storage_of(a), storage_of(b));
  b.data<float>()[0] = 5;  // b takes a private copy first
  EXPECT_NE(storage_of(a), storage_of(b));
  EXPECT_EQ(a.item(0), 2.0);
  EXPECT_EQ(b.item(0), 5.0);
  EXPECT_EQ(b.item(1), 2.0);

  Tensor c = a;
  a.fill_(7.0);  // writing the original leaves the copy as it was
  EXPECT_EQ(c.item(2), 2.0);
  EXPECT_EQ(a.item(2), 7.0);

  const float* alone = storage_of(a);
  EXPECT_EQ(a.data<float>(), alone);  // sole owner: no copy on write
  Tensor d = std::move(a);
  EXPECT_EQ(storage_of(d), alone);
}

TEST(Tensor, CloneOwnsItsStorageAtOnce) {
  const Tensor a = Tensor::full({2, 2}, 3.0);
  Tensor b = a.clone();
  EXPECT_NE(storage_of(a), storage_of(b));
  EXPECT_EQ(b.shape(), a.shape());
  EXPECT_EQ(b.item(3), 3.0);
  float* p = b.data<float>();
  EXPECT_EQ(p, storage_of(b));  // already private: no copy on the first write
  p[0] = 1;
  EXPECT_EQ(a.item(0), 3.0);
  EXPECT_FALSE(Tensor().clone().defined());
}

TEST(Tensor, ReshapeSharesStorageAndStaysAValue) {
  Tensor t = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor r = t.reshape({3, 2});
  EXPECT_EQ(storage_of(r), storage_of(t));
  r.data<float>()[0] = 9;
  EXPECT_EQ(t.item(0), 1.0);
  EXPECT_EQ(r.item(0), 9.0);
}

TEST(Tensor, CopiesWrittenFromManyThreadsStayIndependent) {
  const Tensor original = Tensor::full({1000}, 1.0);
  std::vector<Tensor> copies(8, original);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < copies.size(); ++i)
    threads.emplace_back([&copies, i] { copies[i].fill_(static_cast<double>(i + 2)); });
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < copies.size(); ++i) {
    EXPECT_EQ(copies[i].item(999), static_cast<double>(i + 2));
    EXPECT_NE(storage_of(copies[i]), storage_of(original));
  }
  EXPECT_EQ(original.item(0), 1.0);
}

TEST(Tensor, EmptyTensorIsDefined) {
  Tensor t({0, 3, 2, 2});
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.numel(), 0);
  EXPECT_FALSE(Tensor().defined());
}

TEST(Tensor, ReshapeInfersOneDimension) {
  Tensor t = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor r = t.reshape({3, -1});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(r.data<float>()[5], 6.f);
  EXPECT_THROW(t.reshape({4, 2}), ShapeError);
}

TEST(Tensor, DtypeMismatchIsAnError) {
  Tensor t = Tensor::scalar_int64(7);
  EXPECT_EQ(*t.data<std::int64_t>(), 7);
  EXPECT_THROW(t.data<float>(), ValueError);
  EXPECT_EQ(t.to(DType::Float32).data<float>()[0], 7.f);
}

// An allocation that cannot succeed says what was asked for, not just std::bad_alloc. 2^45
// float32 elements (128 TiB) exceed any address space malloc will map here.
TEST(Tensor, FailedAllocationNamesShapeAndSize) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizer allocators abort on such a request instead of returning null";
#endif
  try {
    Tensor t({std::int64_t{1} << 25, std::int64_t{1} << 20});
    FAIL() << "allocated " << t.nbytes() << " bytes";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "out of memory: cannot allocate 131072.0 GiB for a float32 tensor of shape "
                 "[33554432, 1048576]");
  }
  EXPECT_THROW(Tensor::empty({std::int64_t{1} << 61}, DType::Float64), Error);       // > size_t
  EXPECT_THROW(Tensor({std::int64_t{1} << 40, std::int64_t{1} << 40}), ShapeError);  // > int64
}

TEST(Tensor, BadShapesAreErrors) {
  EXPECT_THROW(Tensor({2, -1}), ShapeError);
  EXPECT_THROW(Tensor::from({2, 2}, {1, 2, 3}), ShapeError);
  EXPECT_THROW(Tensor({2}).size(1), ShapeError);
}

}  // namespace
}  // namespace syncbn
