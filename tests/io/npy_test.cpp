#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "support/test_util.hpp"
#include "syncbn/error.hpp"
#include "syncbn/io/npy.hpp"

namespace syncbn {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + name;
}

TEST(Npy, RoundTripsEveryDtype) {
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64, DType::UInt8}) {
    Tensor t = testing::random_tensor({2, 3, 5}, 1, 10.f, 5.f).to(dtype);
    io::save_npy(temp_path("rt.npy"), t);
    Tensor back = io::load_npy(temp_path("rt.npy"));
    EXPECT_EQ(back.dtype(), dtype);
    EXPECT_EQ(back.shape(), t.shape());
    EXPECT_EQ(max_abs_diff(back, t), 0.0);
  }
}

TEST(Npy, ScalarAndEmptyShapes) {
  io::save_npy(temp_path("s.npy"), Tensor::scalar_int64(42));
  EXPECT_EQ(io::load_npy(temp_path("s.npy")).item(), 42);
  io::save_npy(temp_path("e.npy"), Tensor({0, 3}));
  EXPECT_EQ(io::load_npy(temp_path("e.npy")).shape(), (Shape{0, 3}));
}

TEST(Npy, MalformedInputIsAClearError) {
  EXPECT_THROW(io::parse_npy("hello", "x"), IoError);
  io::save_npy(temp_path("t.npy"), Tensor({4, 4}));
  std::ifstream in(temp_path("t.npy"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    io::parse_npy(bytes.substr(0, bytes.size() - 4), "cut.npy");
    FAIL() << "truncated data accepted";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.npy"), std::string::npos) << e.what();
  }
  std::string grown = bytes;  // same header length, shape larger than the data
  grown.replace(grown.find("(4, 4)"), 6, "(9, 9)");
  EXPECT_THROW(io::parse_npy(grown, "grown.npy"), IoError);
  EXPECT_THROW(io::load_npy(temp_path("does-not-exist.npy")), IoError);
}

}  // namespace
}  // namespace syncbn
