// The JSON strictness safetensors headers need, pinned at the file level: duplicate keys at any
// level (however spelled), numbers read exactly as written, where errors are, and the exact
// spelling the whole-file checksum relies on. A plain JSON library parse keeps the last duplicate,
// reads "-0" as 0 and "1e1" as 10.0; these say the reader does neither.
#include <gtest/gtest.h>

#include "support/file_test_util.hpp"
#include "syncbn/error.hpp"
#include "syncbn/io/safetensors.hpp"

namespace syncbn {
namespace {

using testing::throws_with;

std::string file_with(const std::string& header, const std::string& data = "") {
  std::string prefix;
  for (int i = 0; i < 8; ++i) prefix += static_cast<char>(header.size() >> (8 * i) & 0xff);
  return prefix + header + data;
}

::testing::AssertionResult rejects(const std::string& bytes, const std::string& fragment) {
  return throws_with<CheckpointError>([&] { io::parse_safetensors(bytes, "evil.st"); },
                                      {"evil.st: ", fragment});
}

// One U8 tensor "t" of 4 bytes whose data_offsets are [0, `end`].
std::string with_end(const std::string& end) {
  return file_with(R"({"t":{"dtype":"U8","shape":[4],"data_offsets":[0,)" + end + "]}}",
                   std::string(4, 'x'));
}

TEST(SafetensorsJson, DuplicateKeysAreRefusedAtEveryLevel) {
  EXPECT_TRUE(
      rejects(file_with(R"({"t":{"dtype":"U8","dtype":"F32","shape":[0],"data_offsets":[0,0]}})"),
              "malformed header JSON: duplicate key \"dtype\""));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{"epoch":"1","epoch":"9"}})"),
                      "duplicate key \"epoch\""));
  // Keys are compared after unescaping: \u0061 is "a".
  EXPECT_TRUE(rejects(file_with(R"({"a":{},"\u0061":{}})"), "duplicate key \"a\""));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{},"__metadata__":{}})"),
                      "duplicate key \"__metadata__\""));
}

TEST(SafetensorsJson, NumbersAreReadExactlyAsWritten) {
  ASSERT_NO_THROW(io::parse_safetensors(with_end("4"), "ok"));
  EXPECT_TRUE(rejects(with_end("-0"), "data_offsets end must be a non-negative integer, got -0"));
  EXPECT_TRUE(rejects(with_end("4.0"), "got 4.0"));
  EXPECT_TRUE(rejects(with_end("4E0"), "got 4E0"));
  EXPECT_TRUE(rejects(with_end("18446744073709551616"), "got 18446744073709551616"));
  EXPECT_TRUE(rejects(with_end("-9223372036854775809"), "got -9223372036854775809"));
  EXPECT_TRUE(rejects(with_end("1e999"), "1e999"));
  // 2^64 - 1 is still an integer, read without rounding through a double.
  EXPECT_TRUE(rejects(with_end("18446744073709551615"),
                      "data_offsets [0, 18446744073709551615] run past the 4-byte data section"));
  EXPECT_TRUE(rejects(with_end("04"), "malformed header JSON"));
  EXPECT_TRUE(rejects(with_end("+4"), "malformed header JSON"));
}

TEST(SafetensorsJson, ErrorsSayWhichByte) {
  // Offsets count from the first header byte: '{' is byte 0.
  EXPECT_TRUE(rejects(file_with(R"({"x":NaN})"), "at byte 5"));
  EXPECT_TRUE(rejects(file_with("{} {}"), "at byte 3"));
  // The root object and 31 arrays nest 32 deep; the next '[' (byte 5 + 31) is one too many.
  EXPECT_TRUE(
      rejects(file_with("{\"x\":" + std::string(40, '[')), "nesting deeper than 32 at byte 36"));
  EXPECT_TRUE(rejects(file_with("{\"\x01\":{}}"), "control character"));
  EXPECT_TRUE(rejects(file_with("{\"\xff\":{}}"), "malformed header JSON"));
  EXPECT_TRUE(rejects(file_with("\xef\xbb\xbf{}"), "header must start with '{'"));
}

// The whole-file checksum finds its own digits by their exact spelling in the header; a header
// that holds the key in another spelling cannot be verified and must not load.
TEST(SafetensorsJson, ChecksumEntryMustBeSpelledExactly) {
  const std::string version = R"("syncbn.format_version":"2")";
  for (const std::string& crc :
       {std::string(R"("syncbn.crc32" :"00000000")"), std::string(R"("syncbn.crc32": "00000000")"),
        std::string(R"("syncbn\u002ecrc32":"00000000")"),
        std::string(R"("syncbn.crc32":"\u00300000000")")})
    EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{)" + crc + "," + version + "}}"),
                        "cannot verify the checksum: the header must spell it"))
        << crc;
  // Spelled exactly, the same entry is found and checked (and the zeros are wrong).
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{"syncbn.crc32":"00000000",)" + version + "}}"),
                      "checksum mismatch"));
}

}  // namespace
}  // namespace syncbn
