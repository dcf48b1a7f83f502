#pragma once
// Writes small PNG (libpng's simplified API) and JPEG (libjpeg) files for the data set tests;
// pixel(c, y, x) gives each 8-bit value (PNG: grey, grey + alpha, RGB or RGBA). Parent directories
// are created.
// clang-format off
#include <cstddef>
#include <cstdio>
#include <jpeglib.h>
// clang-format on
#include <png.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace syncbn::test {

using PixelFn = std::function<std::uint8_t(int c, int y, int x)>;

inline std::vector<std::uint8_t> interleave(int channels, int height, int width, const PixelFn& f) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(channels * height * width));
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c) out[(y * width + x) * channels + c] = f(c, y, x);
  return out;
}

inline void write_png(const std::string& path, int channels, int height, int width,
                      const PixelFn& f) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(width);
  png.height = static_cast<png_uint_32>(height);
  const png_uint_32 formats[] = {PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  png.format = formats[channels - 1];  // 1 to 4 channels
  const auto pixels = interleave(channels, height, width, f);
  if (!png_image_write_to_file(&png, path.c_str(), 0, pixels.data(), 0, nullptr))
    throw std::runtime_error("write_png " + path + ": " + png.message);
}

inline void write_jpeg(const std::string& path, int channels, int height, int width, int quality,
                       const PixelFn& f) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) throw std::runtime_error("write_jpeg: cannot open " + path);
  jpeg_compress_struct info;
  jpeg_error_mgr err;
  info.err = jpeg_std_error(&err);
  jpeg_create_compress(&info);
  jpeg_stdio_dest(&info, file);
  info.image_width = static_cast<JDIMENSION>(width);
  info.image_height = static_cast<JDIMENSION>(height);
  info.input_components = channels;
  info.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  jpeg_start_compress(&info, TRUE);
  auto pixels = interleave(channels, height, width, f);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = pixels.data() + info.next_scanline * width * channels;
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::fclose(file);
}

}  // namespace syncbn::test
