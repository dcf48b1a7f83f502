#include <gtest/gtest.h>

#include <random>

#include "data/gzip.hpp"
#include "support/file_test_util.hpp"
#include "syncbn/data/idx.hpp"
#include "syncbn/error.hpp"

namespace syncbn {
namespace {

using data::load_idx_images;
using data::load_idx_labels;
using testing::throws_with;

Tensor random_bytes(const Shape& shape, std::uint32_t seed, int max_value = 255) {
  std::mt19937 gen(seed);
  Tensor t(shape, DType::UInt8);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(gen() % (max_value + 1));
  return t;
}

// An IDX header for uint8 data with the given dimensions, built by hand so tests can lie.
std::string idx_header(std::initializer_list<std::uint32_t> dims, unsigned char type = 0x08) {
  std::string h = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) h += static_cast<char>(d >> shift & 0xff);
  return h;
}

class Idx : public ::testing::Test {
 protected:
  testing::TempDir dir;
};

TEST_F(Idx, RoundTripsRawAndGzip) {
  const Tensor images = random_bytes({5, 3, 4}, 1);
  const Tensor labels = random_bytes({5}, 2, 9);
  for (bool gz : {false, true}) {
    const std::string ip = dir.file(gz ? "i.gz" : "i.raw"), lp = dir.file(gz ? "l.gz" : "l.raw");
    data::save_idx(ip, images, gz);
    data::save_idx(lp, labels, gz);
    EXPECT_EQ(data::detail::is_gzip(testing::read_bytes(ip)), gz);
    const Tensor back = load_idx_images(ip);
    EXPECT_EQ(back.shape(), images.shape());
    EXPECT_EQ(max_abs_diff(back, images), 0.0);
    const data::LabelledImages pair = data::load_labelled_images(ip, lp, 10);
    ASSERT_EQ(pair.labels.size(), 5u);
    for (std::int64_t i = 0; i < 5; ++i) EXPECT_EQ(pair.labels[i], labels.item(i));
  }
}

TEST_F(Idx, EmptyAndMultiMemberGzip) {
  data::save_idx(dir.file("e"), Tensor({0, 28, 28}, DType::UInt8), true);
  EXPECT_EQ(load_idx_images(dir.file("e")).shape(), (Shape{0, 28, 28}));
  // gzip allows concatenated members; `gzip -c a b` produces them.
  const std::string raw = idx_header({2, 2, 2}) + std::string("\1\2\3\4\5\6\7\10", 8);
  const std::string two = data::detail::gzip(raw.substr(0, 7)) + data::detail::gzip(raw.substr(7));
  const Tensor t = data::parse_idx(two, "two-members");
  EXPECT_EQ(t.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(t.item(7), 8);
}

TEST_F(Idx, HeaderDefectsNameTheFileAndTheProblem) {
  const std::string p = dir.file("bad.idx");
  auto load_raw = [&](const std::string& bytes) {
    testing::write_bytes(p, bytes);
    return [p] { load_idx_images(p); };
  };
  EXPECT_TRUE(throws_with<IoError>(load_raw(""), {p, "truncated IDX file"}));
  EXPECT_TRUE(throws_with<IoError>(load_raw(std::string("\1\0\x08\x03", 4)),
                                   {p, "wrong IDX magic 0x01000803"}));
  EXPECT_TRUE(throws_with<IoError>(load_raw(idx_header({1, 1, 1}, 0x0D) + "abcd"),
                                   {p, "unsupported IDX element type 0x0d"}));
  EXPECT_TRUE(throws_with<IoError>(load_raw(idx_header({}) + "x"), {p, "zero dimensions"}));
  EXPECT_TRUE(throws_with<IoError>(load_raw(idx_header({2, 3, 4}).substr(0, 10)),
                                   {p, "truncated IDX header"}));
  EXPECT_TRUE(throws_with<IoError>(load_raw(idx_header({2, 3, 4}) + std::string(10, 'x')),
                                   {p, "truncated IDX data", "need 24 bytes, file holds 10"}));
  EXPECT_TRUE(throws_with<IoError>(load_raw(idx_header({1, 2, 2}) + std::string(6, 'x')),
                                   {p, "2 unexpected trailing bytes"}));
  EXPECT_TRUE(throws_with<IoError>(load_raw(idx_header({5}) + "abcde"),
                                   {p, "wrong magic 0x00000801, expected 0x00000803"}));
  testing::write_bytes(p, idx_header({1, 1, 1}) + "a");
  EXPECT_TRUE(throws_with<IoError>([&] { load_idx_labels(p); },
                                   {p, "wrong magic 0x00000803, expected 0x00000801"}));
}

TEST_F(Idx, HugeDimensionsFailWithoutAllocating) {
  const std::uint32_t big = 0xFFFFFFFFu;
  EXPECT_TRUE(throws_with<IoError>(
      [&] {
        data::parse_idx(idx_header({big, big, big}), "o");
      },
      {"o: ", "overflow"}));
  // A zero dimension does not excuse the others overflowing (Tensor multiplies them all).
  EXPECT_TRUE(throws_with<IoError>(
      [&] {
        data::parse_idx(idx_header({big, big, big, 0}), "o");
      },
      {"overflow"}));
  // 2.8e14 bytes declared, a few present: must be "truncated", not an allocation attempt.
  EXPECT_TRUE(throws_with<IoError>(
      [&] {
        data::parse_idx(idx_header({65535, 65535, 65535}) + "xyz", "o");
      },
      {"truncated IDX data"}));
  EXPECT_THROW(data::parse_idx(idx_header({0, big, big}), "o"), IoError);
  const Tensor zero = data::parse_idx(idx_header({0, 65535, 65535}), "o");
  EXPECT_EQ(zero.shape(), (Shape{0, 65535, 65535}));
}

TEST_F(Idx, CountAndLabelDefects) {
  data::save_idx(dir.file("i"), random_bytes({5, 2, 2}, 3), true);
  data::save_idx(dir.file("l4"), random_bytes({4}, 4, 9), true);
  EXPECT_TRUE(
      throws_with<IoError>([&] { data::load_labelled_images(dir.file("i"), dir.file("l4"), 10); },
                           {dir.file("i"), "5 images", dir.file("l4"), "4 labels"}));
  Tensor labels = random_bytes({5}, 5, 9);
  labels.data<std::uint8_t>()[2] = 10;
  data::save_idx(dir.file("l5"), labels, false);
  EXPECT_TRUE(
      throws_with<IoError>([&] { data::load_labelled_images(dir.file("i"), dir.file("l5"), 10); },
                           {dir.file("l5"), "label 10 at index 2 is outside [0, 10)"}));
  EXPECT_NO_THROW(data::load_labelled_images(dir.file("i"), dir.file("l5"), 11));
}

TEST_F(Idx, GzipDefects) {
  const std::string raw = idx_header({4, 8, 8}) + std::string(256, '\7');
  const std::string gz = data::detail::gzip(raw);
  EXPECT_TRUE(throws_with<IoError>([&] { data::parse_idx(gz.substr(0, gz.size() - 6), "cut.gz"); },
                                   {"cut.gz", "truncated gzip stream"}));
  EXPECT_TRUE(throws_with<IoError>([&] { data::parse_idx(gz.substr(0, 2), "stub.gz"); },
                                   {"stub.gz", "truncated gzip"}));
  EXPECT_TRUE(throws_with<IoError>([&] { data::parse_idx(gz + "junk", "tail.gz"); },
                                   {"tail.gz", "4 bytes of trailing garbage"}));
  std::string flipped = gz;
  flipped[gz.size() - 5] ^= 0x55;  // inside the CRC/length trailer
  EXPECT_TRUE(throws_with<IoError>([&] { data::parse_idx(flipped, "crc.gz"); },
                                   {"crc.gz", "corrupt gzip data"}));
  // A bomb: 4 MiB of zeros compress to a few KiB; the limit stops it during inflation.
  const std::string bomb =
      data::detail::gzip(idx_header({4096, 1024}) + std::string(4 << 20, '\0'));
  EXPECT_LT(bomb.size(), 64u << 10);
  EXPECT_TRUE(throws_with<IoError>([&] { data::parse_idx(bomb, "bomb.gz", 1 << 20); },
                                   {"bomb.gz", "exceeds the limit of 1048576"}));
  EXPECT_EQ(data::parse_idx(bomb, "bomb.gz", 8 << 20).numel(), 4 << 20);
  EXPECT_TRUE(throws_with<IoError>([&] { data::parse_idx(raw, "big.raw", 100); },
                                   {"big.raw", "exceed the limit of 100"}));
}

TEST_F(Idx, UnreadablePaths) {
  EXPECT_TRUE(throws_with<IoError>([&] { load_idx_images(dir.file("missing")); },
                                   {dir.file("missing"), "cannot open"}));
  EXPECT_TRUE(throws_with<IoError>([&] { load_idx_images(dir.path()); }, {"not a regular file"}));
}

// Hostile input in bulk: random corruptions of valid files must parse or throw IoError.
TEST_F(Idx, MutatedFilesNeverCrash) {
  const std::string raw = idx_header({3, 5, 5}) + std::string(75, '\x42');
  std::mt19937 gen(7);
  int parsed = 0, rejected = 0;
  for (const std::string& base : {raw, data::detail::gzip(raw)}) {
    for (int iter = 0; iter < 3000; ++iter) {
      std::string bytes = base;
      const int edits = 1 + static_cast<int>(gen() % 4);
      for (int e = 0; e < edits; ++e) {
        const std::size_t at = gen() % bytes.size();
        switch (gen() % 3) {
          case 0:
            bytes[at] = static_cast<char>(gen());
            break;
          case 1:
            bytes.resize(at);
            break;
          default:
            bytes.insert(at, 1, static_cast<char>(gen()));
        }
        if (bytes.empty()) break;
      }
      try {
        data::parse_idx(bytes, "mutant", 1 << 20);
        ++parsed;
      } catch (const IoError&) {
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_EQ(parsed + rejected, 6000);
}

}  // namespace
}  // namespace syncbn
