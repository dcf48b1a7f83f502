// The user's own files: .npy pairs, CIFAR binaries and image folders. Every input is made here,
// and the expected values come from what was written (bytes / 255), not from the readers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "image_files.hpp"
#include "syncbn/data/file_datasets.hpp"
#include "syncbn/error.hpp"
#include "syncbn/io/npy.hpp"

namespace syncbn::data {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("syncbn_files_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Expects `body` to throw IoError whose message holds every one of `parts`.
template <typename F>
void expect_io_error(F body, std::initializer_list<std::string> parts) {
  try {
    body();
    FAIL() << "no IoError";
  } catch (const IoError& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "'" << p << "' not in: " << e.what();
  }
}

Tensor labels_of(std::vector<std::int64_t> v) {
  Tensor t({static_cast<std::int64_t>(v.size())}, DType::Int64);
  std::copy(v.begin(), v.end(), t.data<std::int64_t>());
  return t;
}

// ---- npy ----

TEST(NpyDataset, Float32SamplesAndLabels) {
  TempDir dir;
  Tensor x({3, 2, 4});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.25f * i - 1;
  io::save_npy(dir / "x.npy", x);
  io::save_npy(dir / "y.npy", labels_of({2, 0, 1}));
  NpyDataset d(dir / "x.npy", dir / "y.npy", 3);
  EXPECT_EQ(d.size(), 3);
  EXPECT_EQ(d.sample_shape(), (Shape{2, 4}));
  const Batch b = d.get_batch({2, 0});
  EXPECT_EQ(b.labels, (std::vector<std::int64_t>{1, 2}));
  for (std::int64_t k = 0; k < 8; ++k) {
    EXPECT_EQ(b.images.data<float>()[k], 0.25f * (16 + k) - 1);
    EXPECT_EQ(b.images.data<float>()[8 + k], 0.25f * k - 1);
  }
}

TEST(NpyDataset, Uint8SamplesOfRankFiveAreDividedBy255) {
  TempDir dir;
  Tensor x({2, 1, 2, 2, 3}, DType::UInt8);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<std::uint8_t>()[i] = (i * 37) % 256;
  io::save_npy(dir / "x.npy", x);
  io::save_npy(dir / "y.npy", labels_of({0, 1}));
  NpyDataset d(dir / "x.npy", dir / "y.npy", 2);
  EXPECT_EQ(d.sample_shape(), (Shape{1, 2, 2, 3}));
  const Batch b = d.get_batch({1});
  for (std::int64_t k = 0; k < 12; ++k)
    EXPECT_FLOAT_EQ(b.images.data<float>()[k], static_cast<float>((12 + k) * 37 % 256) / 255.f);
}

TEST(NpyDataset, BadFilesNameTheFileAndTheProblem) {
  TempDir dir;
  io::save_npy(dir / "x.npy", Tensor({4, 3}));
  io::save_npy(dir / "y.npy", labels_of({0, 1, 2, 3}));
  expect_io_error([&] { NpyDataset(dir / "x.npy", dir / "y.npy", 3); },
                  {dir / "y.npy", "label 3 at index 3", "outside [0, 3)"});
  io::save_npy(dir / "short.npy", labels_of({0, 1}));
  expect_io_error([&] { NpyDataset(dir / "x.npy", dir / "short.npy", 4); },
                  {dir / "short.npy", "2 labels for 4 samples"});
  io::save_npy(dir / "f64.npy", Tensor({4, 3}, DType::Float64));
  expect_io_error([&] { NpyDataset(dir / "f64.npy", dir / "y.npy", 4); },
                  {dir / "f64.npy", "float32", "uint8"});
  io::save_npy(dir / "flat.npy", Tensor({4}));
  expect_io_error([&] { NpyDataset(dir / "flat.npy", dir / "y.npy", 4); },
                  {dir / "flat.npy", "shape [4]"});
  const std::string full = read_bytes(dir / "x.npy");
  write_bytes(dir / "cut.npy", full.substr(0, full.size() - 4));
  expect_io_error([&] { NpyDataset(dir / "cut.npy", dir / "y.npy", 4); },
                  {dir / "cut.npy", "bytes"});
  write_bytes(dir / "magic.npy", "PK" + full.substr(2));
  expect_io_error([&] { NpyDataset(dir / "magic.npy", dir / "y.npy", 4); },
                  {dir / "magic.npy", "bad magic"});
  expect_io_error([&] { NpyDataset(dir / "none.npy", dir / "y.npy", 4); }, {dir / "none.npy"});
  io::save_npy(dir / "yf.npy", Tensor({4}));
  expect_io_error([&] { NpyDataset(dir / "x.npy", dir / "yf.npy", 4); }, {dir / "yf.npy", "int64"});
}

// ---- CIFAR ----

// `count` records: label bytes then 3072 pixels whose value is (record * 7 + k) % 256.
std::string cifar_records(int first, int count, std::vector<int> label_bytes) {
  std::string out;
  for (int r = first; r < first + count; ++r) {
    for (int b : label_bytes) out += static_cast<char>((b + r) % 10 + (b >= 10 ? 90 : 0));
    for (int k = 0; k < 3072; ++k) out += static_cast<char>((r * 7 + k) % 256);
  }
  return out;
}

TEST(CifarDataset, Cifar10ReadsTheFiveBatchesInOrder) {
  TempDir dir;
  for (int i = 1; i <= 5; ++i)
    write_bytes(dir / ("data_batch_" + std::to_string(i) + ".bin"),
                cifar_records(2 * (i - 1), 2, {0}));
  write_bytes(dir / "test_batch.bin", cifar_records(100, 3, {0}));
  CifarDataset train(dir / "", CifarKind::Cifar10, Split::Train);
  ASSERT_EQ(train.size(), 10);
  EXPECT_EQ(train.num_classes(), 10);
  EXPECT_EQ(train.sample_shape(), (Shape{3, 32, 32}));
  const Batch b = train.get_batch({7});
  EXPECT_EQ(b.labels[0], 7);
  for (int k : {0, 1, 1024, 3071})
    EXPECT_FLOAT_EQ(b.images.data<float>()[k], static_cast<float>((7 * 7 + k) % 256) / 255.f);
  CifarDataset test(dir / "", CifarKind::Cifar10, Split::Test);
  EXPECT_EQ(test.size(), 3);
  EXPECT_EQ(test.get_batch({2}).labels[0], 2);  // (0 + 102) % 10
}

TEST(CifarDataset, Cifar100UsesTheFineLabel) {
  TempDir dir;
  // Coarse byte (r % 10), fine byte 90 + r % 10.
  write_bytes(dir / "train.bin", cifar_records(0, 4, {0, 10}));
  write_bytes(dir / "test.bin", cifar_records(0, 1, {0, 10}));
  CifarDataset d(dir / "", CifarKind::Cifar100, Split::Train);
  EXPECT_EQ(d.num_classes(), 100);
  EXPECT_EQ(d.get_batch({3}).labels[0], 93);
  EXPECT_FLOAT_EQ(d.get_batch({3}).images.data<float>()[5], (3 * 7 + 5) / 255.f);
}

TEST(CifarDataset, BadFilesNameTheFileAndTheProblem) {
  TempDir dir;
  write_bytes(dir / "test_batch.bin", cifar_records(0, 2, {0}).substr(0, 3073 + 100));
  expect_io_error([&] { CifarDataset(dir / "", CifarKind::Cifar10, Split::Test); },
                  {dir / "test_batch.bin", "3173 bytes", "3073-byte"});
  write_bytes(dir / "test.bin", cifar_records(0, 2, {0, 10}));     // fine labels 90, 91: fine
  write_bytes(dir / "test_batch.bin", cifar_records(0, 2, {10}));  // label 90 >= 10
  expect_io_error([&] { CifarDataset(dir / "", CifarKind::Cifar10, Split::Test); },
                  {dir / "test_batch.bin", "record 0 has label 90", "[0, 10)"});
  write_bytes(dir / "test_batch.bin", "");
  expect_io_error([&] { CifarDataset(dir / "", CifarKind::Cifar10, Split::Test); },
                  {dir / "test_batch.bin", "0 bytes"});
  expect_io_error([&] { CifarDataset(dir / "", CifarKind::Cifar10, Split::Train); },
                  {dir / "data_batch_1.bin"});
}

// ---- image folders ----

std::uint8_t pixel(int c, int y, int x) {
  return static_cast<std::uint8_t>(40 * c + 9 * y + 3 * x);
}

TEST(ImageFolder, ClassesAndFilesSortedAsTorchvision) {
  TempDir dir;
  test::write_png(dir / "zebra/b.png", 3, 4, 4, pixel);
  test::write_png(dir / "zebra/a.PNG", 3, 4, 4, pixel);
  test::write_png(dir / "ant/x.png", 3, 4, 4, pixel);
  write_bytes(dir / "ant/notes.txt", "not an image");
  fs::create_directories(dir / "Bee");  // upper case sorts first
  test::write_jpeg(dir / "Bee/1.jpeg", 3, 4, 4, 90, pixel);
  ImageFolder d(ImageFolderOptions().root(dir / "").height(4).width(4));
  EXPECT_EQ(d.classes(), (std::vector<std::string>{"Bee", "ant", "zebra"}));
  ASSERT_EQ(d.size(), 4);
  EXPECT_EQ(fs::path(d.file(2)).filename(), "a.PNG");
  EXPECT_EQ(d.get_batch({0, 1, 2, 3}).labels, (std::vector<std::int64_t>{0, 1, 2, 2}));
}

TEST(ImageFolder, PngPixelsExactlyAndGreyReplicated) {
  TempDir dir;
  test::write_png(dir / "a/rgb.png", 3, 5, 6, pixel);
  test::write_png(dir / "b/grey.png", 1, 5, 6, pixel);
  ImageFolder d(ImageFolderOptions().root(dir / "").channels(3).height(5).width(6).resize(5));
  const Batch b = d.get_batch({0, 1});
  const float* v = b.images.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 6; ++x) {
        EXPECT_EQ(v[(c * 5 + y) * 6 + x], pixel(c, y, x) / 255.f);
        EXPECT_EQ(v[90 + (c * 5 + y) * 6 + x], pixel(0, y, x) / 255.f);
      }
}

// Alpha is dropped and the colour kept (PIL's convert("RGB")), even where alpha is 0.
TEST(ImageFolder, AlphaIsDropped) {
  TempDir dir;
  const auto rgba = [](int c, int y, int x) {
    return static_cast<std::uint8_t>(c == 3 ? 255 * (x % 2) : pixel(c, y, x));
  };
  test::write_png(dir / "a/rgba.png", 4, 3, 4, rgba);
  test::write_png(dir / "b/ga.png", 2, 3, 4, rgba);
  ImageFolder d(ImageFolderOptions().root(dir / "").channels(3).height(3).width(4).resize(3));
  const Batch b = d.get_batch({0, 1});
  const float* v = b.images.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) {
        EXPECT_EQ(v[(c * 3 + y) * 4 + x], pixel(c, y, x) / 255.f);
        EXPECT_EQ(v[36 + (c * 3 + y) * 4 + x], pixel(0, y, x) / 255.f);
      }
}

TEST(ImageFolder, JpegDecodesCloseToWhatWasWritten) {
  TempDir dir;
  const auto flat = [](int c, int, int) { return static_cast<std::uint8_t>(60 + 70 * c); };
  test::write_jpeg(dir / "a/c.jpg", 3, 16, 16, 100, flat);
  test::write_jpeg(dir / "b/g.jpg", 1, 16, 16, 100, flat);
  ImageFolder d(ImageFolderOptions().root(dir / "").channels(3).height(16).width(16));
  const Batch b = d.get_batch({0, 1});
  const float* v = b.images.data<float>();
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(v[c * 256 + 17], (60 + 70 * c) / 255.f, 2.5 / 255);
    EXPECT_NEAR(v[768 + c * 256 + 17], 60 / 255.f, 2.5 / 255);
  }
}

// F.interpolate(align_corners=False): halving averages 2x2 blocks; doubling 2 -> 4 gives
// p0, (3 p0 + p1) / 4, (p0 + 3 p1) / 4, p1 (derived by hand from the half-pixel formula).
TEST(ImageFolder, ResizeIsBilinearWithHalfPixelCentres) {
  std::vector<float> in(64);
  for (int i = 0; i < 64; ++i) in[i] = static_cast<float>(i * i % 17);
  const std::vector<float> half = resize_bilinear(in, 1, 8, 8, 4, 4);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      const int a = 2 * y * 8 + 2 * x;
      EXPECT_FLOAT_EQ(half[y * 4 + x], (in[a] + in[a + 1] + in[a + 8] + in[a + 9]) / 4);
    }
  const std::vector<float> twice = resize_bilinear({1, 5}, 1, 1, 2, 1, 4);
  EXPECT_EQ(twice, (std::vector<float>{1, 2, 4, 5}));
}

// Shorter side to `resize`, the longer one int(resize * long / short), then the centre crop at
// int(round((size - crop) / 2)) with Python's round-half-to-even.
TEST(ImageFolder, ShorterSideResizedThenCentreCropped) {
  TempDir dir;
  // 4 high, 8 wide -> resize 2 -> 2 x 4 (2x2 block averages) -> crop 2x2 at left 1.
  test::write_png(dir / "a/wide.png", 1, 4, 8,
                  [](int, int y, int x) { return static_cast<std::uint8_t>(10 * y + 20 * x); });
  ImageFolder d(ImageFolderOptions().root(dir / "").channels(1).height(2).width(2).resize(2));
  const Batch b = d.get_batch({0});
  const float* v = b.images.data<float>();
  const auto block = [](int by, int bx) {  // mean of rows 2by, 2by+1 and columns 2bx, 2bx+1
    return (10 * (2 * by + 0.5f) + 20 * (2 * bx + 0.5f)) / 255.f;
  };
  EXPECT_NEAR(v[0], block(0, 1), 1e-6);
  EXPECT_NEAR(v[1], block(0, 2), 1e-6);
  EXPECT_NEAR(v[2], block(1, 1), 1e-6);
  EXPECT_NEAR(v[3], block(1, 2), 1e-6);
  // 3 wide, crop 2: offset round(0.5) = 0 (half to even), as torchvision's CenterCrop.
  TempDir odd;
  test::write_png(odd / "a/odd.png", 1, 2, 3,
                  [](int, int, int x) { return static_cast<std::uint8_t>(100 * x); });
  ImageFolder o(ImageFolderOptions().root(odd / "").channels(1).height(2).width(2).resize(2));
  EXPECT_EQ(o.get_batch({0}).images.data<float>()[0], 0.f);
}

TEST(ImageFolder, BadFoldersAndImagesNameTheFileAndTheProblem) {
  TempDir dir;
  test::write_png(dir / "a/ok.png", 3, 4, 4, pixel);
  fs::create_directories(dir / "b");
  write_bytes(dir / "b/readme.txt", "x");
  expect_io_error([&] { ImageFolder(ImageFolderOptions().root(dir / "").height(4).width(4)); },
                  {dir / "b", "no .png/.jpg/.jpeg image"});
  write_bytes(dir / "b/bad.png", "this is not a png");
  const std::string png = read_bytes(dir / "a/ok.png");
  write_bytes(dir / "b/cut.png", png.substr(0, png.size() / 2));
  write_bytes(dir / "b/cut.jpg", "\xff\xd8\xff\xe0 broken");
  test::write_jpeg(dir / "whole.jpg", 3, 16, 16, 90, pixel);  // outside the folder tree
  const std::string jpeg = read_bytes(dir / "whole.jpg");
  write_bytes(dir / "b/half.jpg", jpeg.substr(0, jpeg.size() / 2));
  ImageFolder d(ImageFolderOptions().root(dir / "").height(4).width(4));
  expect_io_error([&] { d.get_batch({1}); }, {dir / "b/bad.png", "neither PNG nor JPEG"});
  expect_io_error([&] { d.get_batch({2}); }, {dir / "b/cut.jpg", "unreadable JPEG"});
  expect_io_error([&] { d.get_batch({3}); }, {dir / "b/cut.png", "PNG"});
  expect_io_error([&] { d.get_batch({4}); }, {dir / "b/half.jpg", "unreadable JPEG"});
  ImageFolder grey(ImageFolderOptions().root(dir / "").channels(1).height(4).width(4));
  expect_io_error([&] { grey.get_batch({0}); }, {dir / "a/ok.png", "colour image", "1 channel"});
  ImageFolder big(ImageFolderOptions().root(dir / "").height(4).width(5).resize(4));
  expect_io_error([&] { big.get_batch({0}); }, {dir / "a/ok.png", "smaller than the 5x4 crop"});
  TempDir empty;
  expect_io_error([&] { ImageFolder(ImageFolderOptions().root(empty / "")); },
                  {"no class sub-folders"});
  expect_io_error([&] { ImageFolder(ImageFolderOptions().root(empty / "missing")); },
                  {"missing", "not a directory"});
}

}  // namespace
}  // namespace syncbn::data
