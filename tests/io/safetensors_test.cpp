#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <limits>

#include "support/file_test_util.hpp"
#include "syncbn/error.hpp"
#include "syncbn/io/safetensors.hpp"
#include "syncbn/nn/batchnorm.hpp"

namespace syncbn {
namespace {

using io::load_safetensors;
using io::save_safetensors;
using testing::throws_with;

Tensor iota(Shape shape, DType dtype, double start = 0) {
  Tensor t(std::move(shape), DType::Float64);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = start + i;
  return t.to(dtype);
}

// Every dtype, scalars, empty tensors, non-finite floats, awkward names.
io::TensorMap sample_tensors() {
  io::TensorMap m;
  m["conv.weight"] = iota({2, 3, 1, 1}, DType::Float32, -2.5);
  m["conv.weight"].data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
  m["conv.weight"].data<float>()[2] = -std::numeric_limits<float>::infinity();
  m["bn.running_var"] = iota({4}, DType::Float64, 0.125);
  m["bn.num_batches_tracked"] = Tensor::scalar_int64(-7);
  m["pixels"] = iota({3}, DType::UInt8, 253);
  m["empty.u8"] = Tensor({0, 5}, DType::UInt8);
  m["empty.f32"] = Tensor({0}, DType::Float32);
  m["scalar.f64"] = Tensor(Shape{}, DType::Float64);
  m["scalar.f64"].data<double>()[0] = 1e300;
  m["naïve \"quoted\"\n\\name"] = iota({1}, DType::Int64, 1LL << 40);
  return m;
}

void expect_identical(const io::TensorMap& a, const io::TensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    EXPECT_EQ(ia->first, ib->first);
    EXPECT_EQ(ia->second.dtype(), ib->second.dtype()) << ia->first;
    EXPECT_EQ(ia->second.shape(), ib->second.shape()) << ia->first;
    ASSERT_EQ(ia->second.nbytes(), ib->second.nbytes()) << ia->first;
    if (ia->second.nbytes() > 0) {  // bitwise, so NaN payloads count too
      EXPECT_EQ(std::memcmp(ia->second.raw(), ib->second.raw(), ia->second.nbytes()), 0)
          << ia->first;
    }
  }
}

TEST(Safetensors, RoundTripsEveryDtypeScalarsAndEmptyTensors) {
  testing::TempDir dir;
  const io::Metadata meta = {{"epoch", "3"}, {"note", "line\nbreak \"q\" ✓"}};
  save_safetensors(dir.file("ckpt.safetensors"), sample_tensors(), meta);
  const io::SafetensorsContents back = load_safetensors(dir.file("ckpt.safetensors"));
  expect_identical(back.tensors, sample_tensors());
  EXPECT_EQ(back.metadata.at("epoch"), "3");
  EXPECT_EQ(back.metadata.at("note"), meta.at("note"));
  EXPECT_EQ(back.metadata.at(io::kFormatVersionKey), "2");
  EXPECT_EQ(back.metadata.at(io::kChecksumKey).size(), 8u);
  EXPECT_EQ(back.metadata.size(), 4u);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"ckpt.safetensors"}) << "temporary file left";
  save_safetensors(dir.file("none"), {});
  EXPECT_TRUE(load_safetensors(dir.file("none")).tensors.empty());
}

TEST(Safetensors, LayoutFollowsTheSpec) {
  const std::string bytes = io::serialize_safetensors(sample_tensors());
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<unsigned char>(bytes[i]);
  ASSERT_LE(8 + n, bytes.size());
  EXPECT_EQ((8 + n) % 8, 0u) << "data must start 8-byte aligned";
  EXPECT_EQ(bytes[8], '{');
  const std::string header = bytes.substr(8, n);
  EXPECT_NE(
      header.find(R"("bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]})"),
      std::string::npos)
      << header;
  EXPECT_NE(header.find(R"("empty.u8":{"dtype":"U8","shape":[0,5],)"), std::string::npos);
  // Everything after the header is tensor data: 24 + 32 + 8 + 8 + 0 + 0 + 3 + 8 bytes.
  EXPECT_EQ(bytes.size() - 8 - n, 83u);
  testing::TempDir dir;
  save_safetensors(dir.file("f"), sample_tensors());
  EXPECT_EQ(testing::read_bytes(dir.file("f")), bytes) << "save must write exactly serialize()";
}

TEST(Safetensors, RejectsBadArgumentsWithoutTouchingTheFile) {
  testing::TempDir dir;
  const std::string p = dir.file("keep");
  save_safetensors(p, {{"a", Tensor::ones({2})}});
  const std::string before = testing::read_bytes(p);
  EXPECT_THROW(save_safetensors(p, {{"a", Tensor()}}), ValueError);
  EXPECT_THROW(save_safetensors(p, {{"__metadata__", Tensor::ones({1})}}), ValueError);
  EXPECT_THROW(save_safetensors(p, {{"bad\xff", Tensor::ones({1})}}), ValueError);
  EXPECT_THROW(save_safetensors(p, {}, {{"syncbn.crc32", "0"}}), ValueError);
  EXPECT_THROW(save_safetensors(p, {}, {{"k", "\xc3"}}), ValueError);
  EXPECT_EQ(testing::read_bytes(p), before);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"keep"});
  EXPECT_TRUE(throws_with<CheckpointError>([&] { save_safetensors(dir.file("no/such/dir/x"), {}); },
                                           {dir.file("no/such/dir/x")}));
}

TEST(Safetensors, OverwriteReplacesTheWholeFile) {
  testing::TempDir dir;
  const std::string p = dir.file("c");
  save_safetensors(p, {{"big", Tensor::ones({1000})}});
  save_safetensors(p, {{"small", Tensor::full({2}, 3.0)}});
  const auto back = load_safetensors(p);
  ASSERT_EQ(back.tensors.size(), 1u);
  EXPECT_EQ(back.tensors.at("small").item(1), 3.0);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"c"});
}

// A write that fails half-way (file size limit hit while writing the data) must leave the old
// checkpoint intact and no temporary behind. Runs in a child so the limit stays contained.
TEST(Safetensors, FailedWriteLeavesTheOldFileIntact) {
  testing::TempDir dir;
  const std::string p = dir.file("model.safetensors");
  save_safetensors(p, {{"w", Tensor::full({16}, 1.5)}});
  const std::string before = testing::read_bytes(p);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);  // get EFBIG from write() instead of being killed
    const rlimit limit{1 << 16, 1 << 16};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      save_safetensors(p, {{"w", Tensor::full({1 << 20}, 2.0)}});  // 4 MiB > 64 KiB limit
      ::_exit(1);
    } catch (const CheckpointError& e) {
      ::_exit(std::strstr(e.what(), p.c_str()) != nullptr ? 0 : 2);
    } catch (...) {
      ::_exit(3);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: write succeeded, 2: message lacks path, 3: wrong type";
  EXPECT_EQ(testing::read_bytes(p), before);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(load_safetensors(p).tensors.at("w").item(15), 1.5);
}

TEST(Safetensors, StateDictMismatchesListsEveryDifference) {
  nn::BatchNorm2d bn(3);
  EXPECT_TRUE(io::state_dict_mismatches(bn.state_dict(), bn.state_dict()).empty());
  nn::StateDict loaded = bn.state_dict();
  loaded.erase("running_var");
  loaded["weight"] = Tensor::ones({4});
  loaded["num_batches_tracked"] = Tensor({}, DType::Float32);
  loaded["extra"] = Tensor::ones({1});
  const std::vector<std::string> expected = {
      "unexpected key 'extra' ([1] float32)",
      "'num_batches_tracked': checkpoint has [] float32, module expects [] int64",
      "missing key 'running_var' (expected [3] float32)",
      "'weight': checkpoint has [4] float32, module expects [3] float32"};
  EXPECT_EQ(io::state_dict_mismatches(loaded, bn.state_dict()), expected);
}

TEST(Safetensors, ModuleStateRoundTripsThroughAFile) {
  testing::TempDir dir;
  nn::BatchNorm2d bn(3);
  bn.forward(Tensor::full({2, 3, 2, 2}, 0.5));
  save_safetensors(dir.file("bn"), bn.state_dict());
  nn::BatchNorm2d fresh(3);
  const auto loaded = load_safetensors(dir.file("bn")).tensors;
  EXPECT_TRUE(io::state_dict_mismatches(loaded, fresh.state_dict()).empty());
  fresh.load_state_dict(loaded);
  EXPECT_EQ(fresh.num_batches_tracked.item(), 1);
  EXPECT_EQ(fresh.running_mean.item(2), bn.running_mean.item(2));
}

}  // namespace
}  // namespace syncbn
