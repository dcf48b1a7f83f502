// PNG (libpng's simplified API) and JPEG (libjpeg) decoding to 8-bit grey or RGB.
// jpeglib.h needs size_t and FILE declared first.
// clang-format off
#include <cstddef>
#include <cstdio>
#include <jpeglib.h>
// clang-format on
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <fstream>
#include <iterator>

#include "syncbn/data/file_datasets.hpp"
#include "syncbn/error.hpp"

namespace syncbn::data {
namespace {

constexpr std::int64_t kMaxSide = 1 << 14;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open image '" + path + "' for reading");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void check_size(const std::string& path, std::int64_t height, std::int64_t width) {
  if (height < 1 || width < 1 || height > kMaxSide || width > kMaxSide)
    throw IoError(path + ": image size " + std::to_string(width) + "x" + std::to_string(height) +
                  " is outside 1.." + std::to_string(kMaxSide));
}

Image decode_png(const std::string& bytes, const std::string& path) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()))
    throw IoError(path + ": unreadable PNG: " + png.message);
  const bool colour = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
  // Alpha is read and then dropped, as PIL's convert("RGB") does; without it libpng would
  // composite onto the (black) buffer instead.
  const bool alpha = (png.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  png.format = (colour ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY) | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0);
  Image image{colour ? 3 : 1, png.height, png.width, {}};
  try {
    check_size(path, image.height, image.width);
  } catch (...) {
    png_image_free(&png);
    throw;
  }
  std::vector<std::uint8_t> interleaved(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, interleaved.data(), 0, nullptr)) {
    const std::string message = png.message;
    png_image_free(&png);
    throw IoError(path + ": unreadable PNG: " + message);
  }
  const auto channels = static_cast<std::size_t>(image.channels);
  const std::size_t stride = channels + (alpha ? 1 : 0);
  const auto count = static_cast<std::size_t>(image.height * image.width);
  image.pixels.resize(count * channels);
  for (std::size_t p = 0; p < count; ++p)
    for (std::size_t c = 0; c < channels; ++c)
      image.pixels[p * channels + c] = interleaved[p * stride + c];
  return image;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_jpeg_error(j_common_ptr info) {
  auto* err = reinterpret_cast<JpegError*>(info->err);
  info->err->format_message(info, err->message);
  std::longjmp(err->jump, 1);
}

// libjpeg's warnings (level -1) are corrupt or truncated data it would paper over with grey:
// an error here. Trace messages (level >= 0) are ignored rather than printed.
void on_jpeg_message(j_common_ptr info, int level) {
  if (level < 0) on_jpeg_error(info);
}

// Plain C state only between setjmp and longjmp: no destructors are skipped.
bool jpeg_decode(const std::string& bytes, Image& image, std::vector<std::uint8_t>& out,
                 JpegError& err) {
  jpeg_decompress_struct info;
  info.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_jpeg_error;
  err.mgr.emit_message = on_jpeg_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  jpeg_read_header(&info, TRUE);
  const bool grey = info.num_components == 1;
  info.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  image.channels = grey ? 1 : 3;
  image.height = info.output_height;
  image.width = info.output_width;
  if (image.height > kMaxSide || image.width > kMaxSide) {
    jpeg_destroy_decompress(&info);
    return true;  // check_size reports it
  }
  out.resize(static_cast<std::size_t>(image.channels * image.height * image.width));
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = out.data() + info.output_scanline * image.width * image.channels;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return true;
}

Image decode_jpeg(const std::string& bytes, const std::string& path) {
  Image image;
  std::vector<std::uint8_t> interleaved;
  JpegError err{};
  if (!jpeg_decode(bytes, image, interleaved, err))
    throw IoError(path + ": unreadable JPEG: " + err.message);
  check_size(path, image.height, image.width);
  image.pixels = std::move(interleaved);
  return image;
}

// Interleaved [H, W, C] to planar [C, H, W].
void to_planar(Image& image) {
  if (image.channels == 1) return;
  std::vector<std::uint8_t> planar(image.pixels.size());
  const std::int64_t hw = image.height * image.width;
  for (std::int64_t p = 0; p < hw; ++p)
    for (std::int64_t c = 0; c < image.channels; ++c)
      planar[static_cast<std::size_t>(c * hw + p)] =
          image.pixels[static_cast<std::size_t>(p * image.channels + c)];
  image.pixels = std::move(planar);
}

}  // namespace

Image decode_image(const std::string& path) {
  const std::string bytes = read_all(path);
  const auto byte = [&](std::size_t i) {
    return i < bytes.size() ? static_cast<unsigned char>(bytes[i]) : 0;
  };
  Image image;
  if (bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0)
    image = decode_png(bytes, path);
  else if (byte(0) == 0xff && byte(1) == 0xd8 && byte(2) == 0xff)
    image = decode_jpeg(bytes, path);
  else
    throw IoError(path + ": unreadable image: neither PNG nor JPEG (by its first bytes)");
  to_planar(image);
  return image;
}

}  // namespace syncbn::data
