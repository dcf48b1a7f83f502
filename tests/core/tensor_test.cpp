#include <gtest/gtest.h>

#include <functional>
#include <string>
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
// float32 elements (128 TiB) exceed any address space malloc will map here. (Sanitizer builds run
// with allocator_may_return_null=1, scripts/test-sanitizers, so their malloc fails the same way.)
TEST(Tensor, FailedAllocationNamesShapeAndSize) {
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

// Element i holds the value i, so every expected value below is its flat row-major index.
Tensor iota(const Shape& shape) {
  Tensor t(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Tensor, NarrowTakesARangeOfOneDimension) {
  const Tensor t = iota({4, 3, 2});  // t[i][j][k] = 6i + 2j + k
  const Tensor rows = t.narrow(0, 1, 2);
  EXPECT_EQ(rows.shape(), (Shape{2, 3, 2}));
  for (std::int64_t i = 0; i < rows.numel(); ++i) EXPECT_EQ(rows.item(i), 6 + i);
  const Tensor middle = t.narrow(1, 1, 1);  // [i][0][k] = 6i + 2 + k
  EXPECT_EQ(middle.shape(), (Shape{4, 1, 2}));
  for (std::int64_t i = 0; i < 4; ++i)
    for (std::int64_t k = 0; k < 2; ++k) EXPECT_EQ(middle.item(2 * i + k), 6 * i + 2 + k);
  const Tensor last = t.narrow(-1, -1, 1);  // negative dim and start count from the end
  EXPECT_EQ(last.shape(), (Shape{4, 3, 1}));
  for (std::int64_t i = 0; i < last.numel(); ++i) EXPECT_EQ(last.item(i), 2 * i + 1);
  EXPECT_EQ(t.narrow(0, 4, 0).shape(), (Shape{0, 3, 2}));
  EXPECT_EQ(Tensor({0, 3}).narrow(0, 0, 0).shape(), (Shape{0, 3}));
}

TEST(Tensor, NarrowIsACopyTheSourceDoesNotSee) {
  Tensor t = iota({3, 2});
  Tensor rows = t.narrow(0, 0, 2);
  rows.data<float>()[0] = 100.f;
  EXPECT_EQ(t.item(0), 0.0);
  t.data<float>()[1] = 200.f;
  EXPECT_EQ(rows.item(1), 1.0);
  EXPECT_EQ(Tensor::scalar_int64(0).reshape({1}).narrow(0, 0, 1).dtype(), DType::Int64);
}

TEST(Tensor, NarrowOutsideTheDimensionIsAShapeError) {
  const Tensor t({6, 2});
  EXPECT_EQ(error_of([&] { t.narrow(0, 5, 3); }),
            "narrow: start (5) + length (3) exceeds dimension size (6) of dimension 0 of shape "
            "[6, 2]");
  EXPECT_EQ(error_of([&] { t.narrow(2, 0, 1); }),
            "narrow: dimension 2 out of range (expected to be in range of [-2, 1]) for shape "
            "[6, 2]");
  EXPECT_EQ(error_of([&] { t.narrow(0, 7, 0); }),
            "narrow: start 7 out of range (expected to be in range of [-6, 6]) for dimension 0 "
            "of shape [6, 2]");
  EXPECT_THROW(t.narrow(0, 0, -1), ShapeError);
  EXPECT_THROW(Tensor(Shape{}).narrow(0, 0, 1), ShapeError);
  EXPECT_THROW(Tensor().narrow(0, 0, 0), ValueError);
}

// The use it is for: a global batch cut into uneven rank slices (one empty) and put back.
TEST(Tensor, CatOfRankSlicesRestoresTheBatch) {
  const Tensor batch = iota({9, 3, 2});
  const std::vector<std::int64_t> bounds{0, 2, 2, 5, 9};
  std::vector<Tensor> slices;
  for (std::size_t r = 0; r + 1 < bounds.size(); ++r)
    slices.push_back(batch.narrow(0, bounds[r], bounds[r + 1] - bounds[r]));
  EXPECT_EQ(slices[1].shape(), (Shape{0, 3, 2}));
  const Tensor joined = cat(slices);
  EXPECT_EQ(joined.shape(), batch.shape());
  EXPECT_EQ(max_abs_diff(joined, batch), 0.0);
}

TEST(Tensor, CatAlongAnInnerDimension) {
  // a[i][j] = 2i + j (2x2), b[i][j] = 3i + j (2x3): rows of the result are a's row then b's.
  const Tensor joined = cat({iota({2, 2}), iota({2, 3})}, -1);
  EXPECT_EQ(joined.shape(), (Shape{2, 5}));
  const std::vector<double> expected{0, 1, 0, 1, 2, 2, 3, 3, 4, 5};
  for (std::int64_t i = 0; i < 10; ++i) EXPECT_EQ(joined.item(i), expected[i]) << i;
  const Tensor counts = cat({Tensor::scalar_int64(7).reshape({1}), Tensor({2}, DType::Int64)});
  EXPECT_EQ(counts.dtype(), DType::Int64);
  EXPECT_EQ(counts.shape(), (Shape{3}));
  EXPECT_EQ(counts.item(0), 7.0);
}

TEST(Tensor, CatChecksShapesAndDtypes) {
  EXPECT_EQ(error_of([] {
              cat({Tensor({2, 3}), Tensor({1, 4})});
            }),
            "cat: sizes of tensors must match except in dimension 0. Expected size 3 but got "
            "size 4 for tensor number 1 in the list (shape [1, 4], tensor 0 has [2, 3])");
  EXPECT_EQ(error_of([] {
              cat({Tensor({2, 3}), Tensor({2, 3}, DType::Float64)});
            }),
            "cat: expected all tensors to have dtype float32 (that of tensor 0), but tensor 1 "
            "has float64");
  EXPECT_THROW(cat({Tensor({2, 3}), Tensor({2, 3, 1})}), ShapeError);
  EXPECT_THROW(cat({Tensor({2, 3})}, 2), ShapeError);
  EXPECT_THROW(cat({}), ValueError);
  EXPECT_THROW(cat({Tensor({2}), Tensor()}), ValueError);
  EXPECT_THROW(cat({Tensor(Shape{}), Tensor(Shape{})}), ShapeError);
}

}  // namespace
}  // namespace syncbn
