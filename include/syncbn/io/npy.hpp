#pragma once
// NumPy .npy files (format versions 1.0-3.0, C order, little-endian <f4 <f8 <i8 |u1), so tensors
// move between this project and NumPy/PyTorch with np.load / np.save.
#include <cstddef>
#include <string>
#include <string_view>

#include "syncbn/tensor.hpp"

namespace syncbn::io {

// Writes `tensor` to `path` (format 1.0). Throws IoError when the file cannot be written.
void save_npy(const std::string& path, const Tensor& tensor);

// Reads a tensor. Throws IoError naming the file and the defect for anything malformed:
// bad magic, unsupported dtype or Fortran order, a header that does not parse, or a data
// section shorter or longer than the shape says. Never allocates more than the file holds.
Tensor load_npy(const std::string& path);

// What an .npy header says, checked against the whole file's `bytes` (which must hold exactly
// the data the shape needs, after data_offset): for readers that map the file instead of
// copying it. Throws IoError like load_npy.
struct NpyHeader {
  DType dtype;
  Shape shape;
  std::size_t data_offset;
};
NpyHeader parse_npy_header(std::string_view bytes, const std::string& origin);

// The same parser over bytes already in memory; `origin` names them in error messages.
Tensor parse_npy(const std::string& bytes, const std::string& origin);

}  // namespace syncbn::io
