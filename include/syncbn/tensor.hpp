#pragma once
// Tensor: a dense, contiguous, row-major (NCHW) array with value semantics. Copies share their
// storage until one of them is written (copy-on-write): copying and reshape are O(1), and the
// first mutable access (mutable data<T>(), raw(), fill_) of a shared tensor takes a private copy.
// So a module can keep its input for backward without a pass over it. The one caveat: a pointer
// from a mutable access writes to every copy made after it was taken: take it after copying, or
// make the copy with clone().
// Threads: as for any value type, one Tensor object must not be written while another thread uses
// it; distinct copies sharing storage may be used and written from different threads.
// Storage is 64-byte aligned so kernels can use full vectors.
// float32 is the compute type; int64 holds counters such as num_batches_tracked; uint8 holds
// quantized values; float64 exists for exchanging exact references.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace syncbn {

enum class DType { Float32, Float64, Int64, UInt8 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

using Shape = std::vector<std::int64_t>;

std::int64_t shape_numel(const Shape& shape);
// "[2, 3, 4]", as used in every shape error message.
std::string shape_str(const Shape& shape);

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::Float32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::Float64;
}
template <>
constexpr DType dtype_of<std::int64_t>() {
  return DType::Int64;
}
template <>
constexpr DType dtype_of<std::uint8_t>() {
  return DType::UInt8;
}

class Tensor {
 public:
  // An undefined tensor (no storage), like torch.Tensor() used as "absent".
  Tensor() = default;
  // Zero-filled. Throws ShapeError on a negative dimension.
  explicit Tensor(Shape shape, DType dtype = DType::Float32);

  static Tensor zeros(Shape shape, DType dtype = DType::Float32) {
    return Tensor(std::move(shape), dtype);
  }
  // Uninitialised storage, for outputs a kernel overwrites completely: skips the zero-fill,
  // which would cost a whole extra write pass over the buffer.
  static Tensor empty(Shape shape, DType dtype = DType::Float32);
  static Tensor ones(Shape shape) { return full(std::move(shape), 1.0); }
  static Tensor full(Shape shape, double value, DType dtype = DType::Float32);
  // Copies `values`; their count must equal the shape's element count.
  static Tensor from(Shape shape, const std::vector<float>& values);
  static Tensor scalar_int64(std::int64_t value);

  Tensor(const Tensor&) = default;
  Tensor& operator=(const Tensor&) = default;
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  bool defined() const { return defined_; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  std::int64_t dim() const { return static_cast<std::int64_t>(shape_.size()); }
  // Size of dimension d; negative d counts from the end, as in PyTorch.
  std::int64_t size(std::int64_t d) const;
  std::int64_t numel() const { return numel_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }

  // Typed access; throws ValueError when T does not match dtype(). The mutable forms make the
  // storage private first (copy-on-write).
  template <typename T>
  T* data() {
    check_dtype(dtype_of<T>());
    make_unique();
    return reinterpret_cast<T*>(data_.get());
  }
  template <typename T>
  const T* data() const {
    check_dtype(dtype_of<T>());
    return reinterpret_cast<const T*>(data_.get());
  }
  void* raw() {
    make_unique();
    return data_.get();
  }
  const void* raw() const { return data_.get(); }

  // A copy with storage of its own (torch.Tensor.clone): for handing a buffer to code that keeps
  // writing through its pointer. A plain copy would share storage until first written.
  Tensor clone() const;
  // Same data, new shape with the same element count (one dimension may be -1). Shares storage.
  Tensor reshape(Shape shape) const;
  // Elements [start, start + length) of dimension `dim` (negative counts from the end), as
  // torch.Tensor.narrow, e.g. rank r's rows of a global batch: x.narrow(0, begin_r, rows_r).
  // A copy with storage of its own (a view at an offset would break the 64-byte alignment of
  // storage). Throws ShapeError when the range does not lie within the dimension.
  Tensor narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const;
  // Element-wise conversion to another dtype (float<->double<->int64 by static_cast).
  Tensor to(DType dtype) const;
  void fill_(double value);
  // Value of element i converted to double, whatever the dtype (for tests and printing).
  double item(std::int64_t i = 0) const;

 private:
  struct AlignedFree {
    void operator()(std::byte* p) const;
  };
  void check_dtype(DType expected) const;
  void allocate();
  // Copies shared storage so this tensor owns it alone.
  void make_unique();

  Shape shape_;
  DType dtype_ = DType::Float32;
  bool defined_ = false;
  std::int64_t numel_ = 0;
  std::shared_ptr<std::byte> data_;
};

// Joins tensors along dimension `dim` (negative counts from the end), as torch.cat: e.g. the
// ranks' output slices back into one batch. All must be defined, share a dtype and rank, and
// match in every other dimension; parts with 0 entries along `dim` are allowed. Throws
// ShapeError (ValueError for an empty list, an undefined tensor or mixed dtypes) naming the
// offending tensor's index in the list.
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim = 0);

// Largest |a - b| over all elements (shapes must match). For tests and diagnostics.
double max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace syncbn
