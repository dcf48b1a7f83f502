#include <gtest/gtest.h>

#include <random>

#include "support/file_test_util.hpp"
#include "syncbn/error.hpp"
#include "syncbn/io/safetensors.hpp"

namespace syncbn {
namespace {

using testing::throws_with;

std::string le64(std::uint64_t n) {
  std::string s;
  for (int i = 0; i < 8; ++i) s += static_cast<char>(n >> (8 * i) & 0xff);
  return s;
}

std::string file_with(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

// parse_safetensors(bytes) must throw CheckpointError naming the origin and the fragment.
::testing::AssertionResult rejects(const std::string& bytes, const std::string& fragment) {
  return throws_with<CheckpointError>([&] { io::parse_safetensors(bytes, "evil.st"); },
                                      {"evil.st: ", fragment});
}

std::string one_tensor(const std::string& body) {
  return R"({"t":)" + body + "}";
}

TEST(SafetensorsCorrupt, TruncatedOrOversizedHeaders) {
  EXPECT_TRUE(rejects("", "truncated: 0 bytes"));
  EXPECT_TRUE(rejects(std::string("\x10\0\0", 3), "truncated: 3 bytes"));
  EXPECT_TRUE(rejects(le64(100) + "{}", "header length 100 runs past the end of the file"));
  EXPECT_TRUE(rejects(le64(100'000'001) + "{}", "exceeds the limit of 100000000"));
  EXPECT_TRUE(rejects(le64(~0ull) + "{}", "exceeds the limit"));
  const std::string good = io::serialize_safetensors({{"w", Tensor::ones({4})}});
  EXPECT_TRUE(rejects(good.substr(0, good.size() - 1), "run past the 15-byte data section"));
  EXPECT_TRUE(rejects(good + "x", "1 trailing bytes after the last tensor"));
}

TEST(SafetensorsCorrupt, MalformedJson) {
  for (const std::string& bad : {std::string("{"),
                                 std::string(R"({"a":})"),
                                 std::string(R"({"a" 1})"),
                                 std::string("{,}"),
                                 std::string(R"({"__metadata__":{},})"),
                                 std::string(R"({"__metadata__":{"a":"b",}})"),
                                 std::string(R"({"__metadata__":{"a":"\q"}})"),
                                 std::string("{\"__metadata__\":{\"a\":\"\x01\"}}"),
                                 std::string("{\"__metadata__\":{\"a\":\"\xc0\xaf\"}}"),
                                 std::string(R"({"__metadata__":{"a":"\ud800"}})"),
                                 std::string(R"({"__metadata__":{"a":"\udc00x"}})"),
                                 std::string(R"({"__metadata__":{"a":"\u12G4"}})"),
                                 std::string(R"({"__metadata__":{"a":"open)"),
                                 std::string("{} {}"),
                                 std::string(R"({"x":NaN})"),
                                 std::string(R"({"x":tru})"),
                                 std::string(R"({"x":01})"),
                                 std::string(R"({"x":-})"),
                                 std::string(R"({"x":1.})"),
                                 std::string(R"({"x":1e})"),
                                 std::string("{\"x\":\0}", 7),
                                 "{\"x\":" + std::string(5000, '['),
                                 std::string(R"({"a":{},"a":{}})")})
    EXPECT_TRUE(rejects(file_with(bad), "malformed header JSON")) << bad.substr(0, 60);
  EXPECT_TRUE(rejects(file_with(R"({"a":{},"a":{}})"), "duplicate key \"a\""));
  EXPECT_TRUE(rejects(file_with("{\"x\":" + std::string(40, '[')), "nesting deeper than 32"));
  EXPECT_TRUE(rejects(file_with("[]"), "header must start with '{'"));
  EXPECT_TRUE(rejects(file_with(" {}"), "header must start with '{'"));
  EXPECT_TRUE(rejects(file_with(""), "header must start with '{'"));
  // Well-formed JSON with escapes, surrogate pairs and padding is accepted.
  const auto ok =
      io::parse_safetensors(file_with(R"({ "__metadata__" : {"k\u00e9\ud83d\ude00\/\n" : "v"}} )"
                                      "\t\r\n  "),
                            "fine");
  EXPECT_EQ(ok.metadata.count("k\xc3\xa9\xf0\x9f\x98\x80/\n"), 1u);
}

TEST(SafetensorsCorrupt, BadTensorEntries) {
  const std::string d4(4, '\0');
  EXPECT_TRUE(
      rejects(file_with(one_tensor(R"({"dtype":"BF16","shape":[2],"data_offsets":[0,4]})"), d4),
              "tensor \"t\" has unsupported dtype \"BF16\""));
  EXPECT_TRUE(rejects(file_with(one_tensor(R"({"dtype":7,"shape":[1],"data_offsets":[0,4]})"), d4),
                      "unsupported dtype 7"));
  EXPECT_TRUE(rejects(file_with(one_tensor(R"({"shape":[1],"data_offsets":[0,4]})"), d4),
                      "tensor \"t\" has no \"dtype\" field"));
  EXPECT_TRUE(
      rejects(file_with(one_tensor(R"({"dtype":"F32","shape":[1]})"), d4), "no \"data_offsets\""));
  EXPECT_TRUE(rejects(
      file_with(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1})"), d4),
      "unexpected field \"x\""));
  EXPECT_TRUE(rejects(file_with(one_tensor("[1]"), d4), "tensor \"t\" must be an object"));
  EXPECT_TRUE(
      rejects(file_with(one_tensor(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})"), d4),
              "shape dimension must be a non-negative integer, got -1"));
  EXPECT_TRUE(
      rejects(file_with(one_tensor(R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})"), d4),
              "got 1.0"));
  EXPECT_TRUE(
      rejects(file_with(one_tensor(R"({"dtype":"F32","shape":1,"data_offsets":[0,4]})"), d4),
              "shape must be an array"));
  EXPECT_TRUE(
      rejects(file_with(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})"), d4),
              "data_offsets must be an array [begin, end]"));
  EXPECT_TRUE(
      rejects(file_with(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,"4"]})"), d4),
              "data_offsets end must be a non-negative integer, got \"4\""));
  EXPECT_TRUE(
      rejects(file_with(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,1e1]})"), d4),
              "got 1e1"));
  EXPECT_TRUE(rejects(
      file_with(
          one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]})"), d4),
      "got 99999999999999999999"));
}

TEST(SafetensorsCorrupt, ShapesThatOverflow) {
  const std::string big = "4294967296";
  EXPECT_TRUE(rejects(file_with(one_tensor(R"({"dtype":"U8","shape":[)" + big + "," + big +
                                           R"(],"data_offsets":[0,0]})")),
                      "overflows the element count"));
  EXPECT_TRUE(rejects(file_with(one_tensor(R"({"dtype":"U8","shape":[)" + big + "," + big +
                                           R"(,0],"data_offsets":[0,0]})")),
                      "overflows"));
  EXPECT_TRUE(rejects(
      file_with(one_tensor(R"({"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]})")),
      "is too large"));
  // Declares 2^40 floats over 4 bytes: refused before any allocation.
  EXPECT_TRUE(rejects(
      file_with(one_tensor(R"({"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4]})"),
                std::string(4, '\0')),
      "hold 4 bytes but shape [1099511627776] of F32 needs 1099511627776 x 4"));
  const auto zero = io::parse_safetensors(
      file_with(one_tensor(R"({"dtype":"F64","shape":[0,)" + big + R"(],"data_offsets":[0,0]})")),
      "z");
  EXPECT_EQ(zero.tensors.at("t").numel(), 0);
}

TEST(SafetensorsCorrupt, OffsetsMustTileTheData) {
  auto entry = [](const char* name, int b, int e) {
    return "\"" + std::string(name) + R"(":{"dtype":"U8","shape":[)" + std::to_string(e - b) +
           R"(],"data_offsets":[)" + std::to_string(b) + "," + std::to_string(e) + "]}";
  };
  const std::string d8(8, 'x');
  EXPECT_TRUE(rejects(file_with("{" + entry("a", 0, 6) + "," + entry("b", 4, 8) + "}", d8),
                      "tensors \"a\" [0, 6) and \"b\" [4, 8) overlap"));
  EXPECT_TRUE(rejects(file_with("{" + entry("a", 0, 3) + "," + entry("b", 5, 8) + "}", d8),
                      "data bytes [3, 5) before tensor \"b\" belong to no tensor"));
  EXPECT_TRUE(
      rejects(file_with("{" + entry("a", 0, 8) + "," + entry("b", 0, 8) + "}", d8), "overlap"));
  EXPECT_TRUE(rejects(file_with("{" + entry("a", 2, 8) + "}", d8), "data bytes [0, 2)"));
  EXPECT_TRUE(
      rejects(file_with("{" + entry("a", 0, 9) + "}", d8), "run past the 8-byte data section"));
  EXPECT_TRUE(
      rejects(file_with(one_tensor(R"({"dtype":"U8","shape":[0],"data_offsets":[5,3]})"), d8),
              "data_offsets [5, 3] are reversed"));
  EXPECT_TRUE(
      rejects(file_with(one_tensor(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), d8),
              "hold 8 bytes but shape [3] of F32 needs 3 x 4"));
  EXPECT_TRUE(rejects(file_with("{" + entry("a", 0, 8) + "}", d8 + "tail"), "4 trailing bytes"));
  // Out of order in the header but tiling the data is fine, as are empty tensors between.
  const auto ok = io::parse_safetensors(
      file_with("{" + entry("b", 3, 8) + "," + entry("e", 3, 3) + "," + entry("a", 0, 3) + "}",
                "abcdefgh"),
      "ok");
  EXPECT_EQ(ok.tensors.at("b").item(0), 'd');
}

TEST(SafetensorsCorrupt, MetadataChecksumAndVersion) {
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":[]})"), "__metadata__ must be an object"));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{"a":1}})"),
                      "__metadata__ value for \"a\" must be a string, got a number"));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{"syncbn.format_version":"3"}})"),
                      "written by a newer syncbn (format version 3, this build reads up to 2)"));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{"syncbn.format_version":"2"}})"),
                      "format version 2 but no syncbn.crc32 entry"));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{"syncbn.format_version":"one"}})"),
                      "malformed syncbn.format_version 'one'"));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{"syncbn.crc32":"xyz"}})"),
                      "malformed syncbn.crc32 'xyz'"));
  std::string good = io::serialize_safetensors({{"w", Tensor::full({4}, 2.0)}});
  good[good.size() - 3] ^= 1;  // one bit of tensor data
  EXPECT_TRUE(rejects(good, "checksum mismatch"));
  // A file from another writer (no syncbn entries) loads without the checksum check.
  const auto foreign = io::parse_safetensors(
      file_with(
          R"({"__metadata__":{"format":"pt"},"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
          "hi"),
      "f");
  EXPECT_EQ(foreign.tensors.at("w").item(1), 'i');
}

// `bytes` with `from` replaced by `to`; a failure when `from` is not there.
std::string edited(std::string bytes, const std::string& from, const std::string& to) {
  const auto at = bytes.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? bytes : bytes.replace(at, from.size(), to);
}

// The checksum covers the header too: a training checkpoint's position lives there.
TEST(SafetensorsCorrupt, EditingTheHeaderIsDetected) {
  const std::string good =
      io::serialize_safetensors({{"w", Tensor::full({4}, 2.0)}}, {{"epoch", "2"}});
  ASSERT_NO_THROW(io::parse_safetensors(good, "good"));
  const std::string epoch_edited = edited(good, R"("epoch":"2")", R"("epoch":"1")");
  EXPECT_TRUE(rejects(epoch_edited, "checksum mismatch"));
  EXPECT_TRUE(rejects(edited(good, R"("w":)", R"("v":)"), "checksum mismatch"));
  // Declaring the file version 1 (data-only checksum) does not get an edit past the check.
  EXPECT_TRUE(rejects(
      edited(epoch_edited, R"("syncbn.format_version":"2")", R"("syncbn.format_version":"1")"),
      "checksum mismatch"));
}

// Version-1 files (checksum of the data section only) still load; 'hi' has zlib CRC-32 d8932aac.
TEST(SafetensorsCorrupt, VersionOneFilesCheckTheDataOnly) {
  const std::string entry = R"("w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]})";
  const auto v1 = [&](const std::string& crc, const std::string& data) {
    return file_with(R"({"__metadata__":{"epoch":"7","syncbn.crc32":")" + crc +
                         R"(","syncbn.format_version":"1"},)" + entry + "}",
                     data);
  };
  EXPECT_EQ(io::parse_safetensors(v1("d8932aac", "hi"), "v1").metadata.at("epoch"), "7");
  EXPECT_TRUE(rejects(v1("d8932aac", "ho"), "checksum mismatch"));
}

TEST(SafetensorsCorrupt, FileErrorsNameThePath) {
  testing::TempDir dir;
  const std::string p = dir.file("bad.safetensors");
  testing::write_bytes(p, file_with("{"));
  EXPECT_TRUE(
      throws_with<CheckpointError>([&] { io::load_safetensors(p); }, {p, "malformed header JSON"}));
  EXPECT_TRUE(throws_with<CheckpointError>([&] { io::load_safetensors(dir.file("missing")); },
                                           {dir.file("missing"), "cannot open"}));
  EXPECT_TRUE(throws_with<CheckpointError>([&] { io::load_safetensors(dir.path()); },
                                           {"not a regular file"}));
}

// Random corruption of a valid file must load or throw CheckpointError, never anything else.
TEST(SafetensorsCorrupt, MutatedFilesNeverCrash) {
  const std::string good = io::serialize_safetensors({{"a", Tensor::ones({2, 3})},
                                                      {"b", Tensor::scalar_int64(5)},
                                                      {"c", Tensor({0}, DType::UInt8)}},
                                                     {{"k", "v"}});
  std::mt19937 gen(1);
  int rejected = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    std::string bytes = good;
    for (int e = 1 + static_cast<int>(gen() % 3); e > 0 && !bytes.empty(); --e) {
      const std::size_t at = gen() % bytes.size();
      switch (gen() % 4) {
        case 0:
          bytes[at] = static_cast<char>(gen());
          break;
        case 1:
          bytes[at] = "{}[]\",:0123456789e-"[gen() % 19];
          break;
        case 2:
          bytes.resize(at);
          break;
        default:
          bytes.insert(at, 1, static_cast<char>(gen()));
      }
    }
    try {
      io::parse_safetensors(bytes, "mutant");
    } catch (const CheckpointError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 4000);
}

}  // namespace
}  // namespace syncbn
