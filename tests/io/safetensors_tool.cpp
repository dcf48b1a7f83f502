// Test helper for the Python interoperability check (safetensors_interop.py):
//   syncbn_safetensors_tool write PATH   saves the reference tensors below
//   syncbn_safetensors_tool dump PATH    loads PATH and prints one line per tensor:
//                                        <name as hex> <dtype> <d0,d1,..> <values, %.17g>
// Exit status 1 with the error on stderr when loading fails.
#include <cstdio>
#include <exception>
#include <string>

#include "syncbn/io/safetensors.hpp"

namespace {

using syncbn::DType;
using syncbn::Tensor;

Tensor filled(syncbn::Shape shape, DType dtype, double start, double step) {
  Tensor t(std::move(shape), DType::Float64);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = start + step * i;
  return t.to(dtype);
}

// Keep in sync with expected_tensors() in safetensors_interop.py.
void write(const std::string& path) {
  syncbn::io::TensorMap m;
  m["f32"] = filled({2, 3}, DType::Float32, -1.0, 0.5);
  m["f64"] = filled({4}, DType::Float64, 0.25, 1.0);
  m["i64"] = Tensor::scalar_int64(-123456789012);
  m["u8"] = filled({3}, DType::UInt8, 0, 127.5);
  m["empty"] = Tensor({0, 2}, DType::Float32);
  m["na\xc3\xafve \"q\""] = filled({1}, DType::Float32, 7.5, 0);
  syncbn::io::save_safetensors(path, m, {{"note", "hello \"world\"\n\xe2\x9c\x93"}});
}

void dump(const std::string& path) {
  for (const auto& [name, t] : syncbn::io::load_safetensors(path).tensors) {
    for (unsigned char c : name) std::printf("%02x", c);
    std::printf(" %s ", syncbn::dtype_name(t.dtype()));
    for (std::size_t i = 0; i < t.shape().size(); ++i)
      std::printf("%s%lld", i ? "," : "", static_cast<long long>(t.shape()[i]));
    std::printf(" ");
    for (std::int64_t i = 0; i < t.numel(); ++i) std::printf("%s%.17g", i ? "," : "", t.item(i));
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s write|dump PATH\n", argv[0]);
    return 2;
  }
  try {
    const std::string mode = argv[1];
    if (mode == "write")
      write(argv[2]);
    else if (mode == "dump")
      dump(argv[2]);
    else
      return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
