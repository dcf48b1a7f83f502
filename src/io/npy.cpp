#include "syncbn/io/npy.hpp"

#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>

#include "syncbn/error.hpp"

namespace syncbn::io {
namespace {
constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;

const char* descr_of(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return "<f4";
    case DType::Float64:
      return "<f8";
    case DType::Int64:
      return "<i8";
    case DType::UInt8:
      return "|u1";
  }
  return "";
}

DType dtype_from_descr(const std::string& descr, const std::string& origin) {
  for (DType d : {DType::Float32, DType::Float64, DType::Int64, DType::UInt8})
    if (descr == descr_of(d)) return d;
  if (descr == "<u1") return DType::UInt8;
  throw IoError(origin + ": unsupported npy dtype '" + descr + "' (expected <f4, <f8, <i8 or |u1)");
}

enum class ValueKind { Quoted, Boolean, Tuple };

std::size_t skip_space(const std::string& text, std::size_t i) {
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  return i;
}

// The value after the first "'key' :" in the header dict that is followed by a `kind` value:
// 'quoted', True/False or (tuple). A linear scan: this used std::regex, whose libstdc++ matcher
// recurses once per character, so a header of some 30 KB (format 2.0 allows 4 GB) overflowed the
// stack (ASan, running fuzz_npy on such a header).
std::string field(const std::string& header, const std::string& key, ValueKind kind,
                  const std::string& origin) {
  const std::string name = "'" + key + "'";
  for (std::size_t at = header.find(name); at != std::string::npos;
       at = header.find(name, at + 1)) {
    std::size_t i = skip_space(header, at + name.size());
    if (i == header.size() || header[i] != ':') continue;
    i = skip_space(header, i + 1);
    if (i == header.size()) break;
    if (kind == ValueKind::Boolean) {
      for (const std::string word : {"True", "False"})
        if (header.compare(i, word.size(), word) == 0) return word;
      continue;
    }
    const char open = kind == ValueKind::Quoted ? '\'' : '(';
    const char close = kind == ValueKind::Quoted ? '\'' : ')';
    if (header[i] != open) continue;
    const std::size_t end = header.find(close, i + 1);
    if (end == std::string::npos) break;  // no later entry can be closed either
    return header.substr(i, end - i + 1);
  }
  throw IoError(origin + ": npy header has no valid '" + key + "' entry: " + header);
}

Shape parse_shape(const std::string& text, const std::string& origin) {
  Shape shape;
  std::int64_t nonzero_product = 1;
  std::stringstream in(text.substr(1, text.size() - 2));
  std::string item;
  while (std::getline(in, item, ',')) {
    auto first = item.find_first_not_of(" ");
    if (first == std::string::npos) continue;
    std::int64_t d = 0;
    try {
      std::size_t used = 0;
      d = std::stoll(item.substr(first), &used);
    } catch (const std::exception&) {
      throw IoError(origin + ": bad dimension '" + item + "' in npy shape " + text);
    }
    if (d < 0) throw IoError(origin + ": negative dimension in npy shape " + text);
    shape.push_back(d);
    // Tensor multiplies every dimension in int64, so the product of the non-zero ones must fit
    // even when another one is zero: (2^62, 4, 0) matches an empty data section, and was signed
    // overflow in shape_numel (UBSan, running fuzz_npy).
    if (d != 0 && __builtin_mul_overflow(nonzero_product, d, &nonzero_product))
      throw IoError(origin + ": npy shape " + text + " overflows the element count");
  }
  return shape;
}
}  // namespace

void save_npy(const std::string& path, const Tensor& tensor) {
  std::ostringstream dict;
  dict << "{'descr': '" << descr_of(tensor.dtype()) << "', 'fortran_order': False, 'shape': (";
  const Shape& shape = tensor.shape();
  for (std::size_t i = 0; i < shape.size(); ++i) dict << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) dict << ",";
  dict << "), }";
  std::string header = dict.str();
  // Pad so the data starts on a 64-byte boundary, newline-terminated, as NumPy does.
  std::size_t total = kMagicLen + 4 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  if (!out) throw IoError("cannot open '" + path + "' for writing");
  out.write(kMagic, kMagicLen);
  const char version[2] = {1, 0};
  out.write(version, 2);
  const std::uint16_t len = static_cast<std::uint16_t>(header.size());
  const char len_le[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  out.write(len_le, 2);
  out << header;
  out.write(static_cast<const char*>(tensor.raw()), static_cast<std::streamsize>(tensor.nbytes()));
  if (!out) throw IoError("failed writing '" + path + "'");
}

NpyHeader parse_npy_header(std::string_view bytes, const std::string& origin) {
  if (bytes.size() < kMagicLen + 4 || bytes.compare(0, kMagicLen, kMagic) != 0)
    throw IoError(origin + ": not an npy file (bad magic)");
  const auto major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0, offset = 0;
  auto byte = [&](std::size_t i) {
    return static_cast<std::size_t>(static_cast<unsigned char>(bytes[i]));
  };
  if (major == 1) {
    header_len = byte(8) | byte(9) << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw IoError(origin + ": truncated npy header");
    header_len = byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24;
    offset = 12;
  } else {
    throw IoError(origin + ": unsupported npy format version " + std::to_string(major));
  }
  if (header_len > bytes.size() - offset) throw IoError(origin + ": truncated npy header");
  const std::string header(bytes.substr(offset, header_len));
  // The whole quoted descr: '<f4x' is not '<f4'.
  const std::string descr = field(header, "descr", ValueKind::Quoted, origin);
  const DType dtype = dtype_from_descr(descr.substr(1, descr.size() - 2), origin);
  if (field(header, "fortran_order", ValueKind::Boolean, origin) == "True")
    throw IoError(origin + ": Fortran-order npy arrays are not supported");
  const Shape shape = parse_shape(field(header, "shape", ValueKind::Tuple, origin), origin);
  const std::size_t data_len = bytes.size() - offset - header_len;
  // Check the element count against the bytes present before allocating anything. The count
  // fits int64 (parse_shape); its size in bytes may not, and converting such a size from the
  // long double used here before was undefined behaviour (UBSan, running fuzz_npy).
  const auto numel = static_cast<std::uint64_t>(shape_numel(shape));
  std::uint64_t needed = 0;
  const bool overflows = __builtin_mul_overflow(numel, std::uint64_t{dtype_size(dtype)}, &needed);
  if (overflows || needed != data_len)
    throw IoError(origin + ": npy data holds " + std::to_string(data_len) + " bytes, shape " +
                  shape_str(shape) + " of " + dtype_name(dtype) + " needs " +
                  (overflows ? "more than 2^64" : std::to_string(needed)));
  return NpyHeader{dtype, shape, offset + header_len};
}

Tensor parse_npy(const std::string& bytes, const std::string& origin) {
  const NpyHeader h = parse_npy_header(bytes, origin);
  Tensor t(h.shape, h.dtype);
  if (t.nbytes() > 0) std::memcpy(t.raw(), bytes.data() + h.data_offset, t.nbytes());
  return t;
}

Tensor load_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open '" + path + "' for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_npy(bytes, path);
}

}  // namespace syncbn::io
