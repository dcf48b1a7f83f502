#include "syncbn/tensor.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <limits>
#include <sstream>
#include <type_traits>

#include "core/block_cache.hpp"
#include "syncbn/error.hpp"

namespace syncbn {
namespace {
constexpr std::size_t kAlignment = 64;

template <typename Fn>
void dispatch(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::Float32:
      return fn(float{});
    case DType::Float64:
      return fn(double{});
    case DType::Int64:
      return fn(std::int64_t{});
    case DType::UInt8:
      return fn(std::uint8_t{});
  }
}

// static_cast, except from floating point to an integer type: C++ leaves an out-of-range value
// undefined there (UBSan caught to(UInt8) of -1.5 in Npy.RoundTripsEveryDtype). Like PyTorch,
// convert through int64 so that uint8 wraps (-1.5 -> 255); NaN and values beyond int64 give
// INT64_MIN, what the x86 conversion instruction returns for them.
template <typename Dst, typename Src>
Dst convert(Src v) {
  if constexpr (std::is_floating_point_v<Src> && std::is_integral_v<Dst>) {
    constexpr Src kTwoTo63 = 9223372036854775808.0;
    const std::int64_t i = v >= -kTwoTo63 && v < kTwoTo63
                               ? static_cast<std::int64_t>(v)
                               : std::numeric_limits<std::int64_t>::min();
    return static_cast<Dst>(i);
  } else {
    return static_cast<Dst>(v);
  }
}
}  // namespace

std::size_t dtype_size(DType dtype) {
  std::size_t size = 0;
  dispatch(dtype, [&](auto v) { size = sizeof(v); });
  return size;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
    case DType::Int64:
      return "int64";
    case DType::UInt8:
      return "uint8";
  }
  return "?";
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) {
    SYNCBN_CHECK_AS(ShapeError, d >= 0, "negative dimension ", d, " in shape ", shape_str(shape));
    SYNCBN_CHECK_AS(ShapeError, !__builtin_mul_overflow(n, d, &n), "shape ", shape_str(shape),
                    " has more than 2^63 - 1 elements");
  }
  return n;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

void Tensor::AlignedFree::operator()(std::byte* p) const {
  std::free(p);
}

Tensor::Tensor(Shape shape, DType dtype)
    : shape_(std::move(shape)), dtype_(dtype), defined_(true), numel_(shape_numel(shape_)) {
  allocate();
  if (numel_ > 0) std::memset(data_.get(), 0, nbytes());
}

Tensor Tensor::empty(Shape shape, DType dtype) {
  Tensor t;
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.defined_ = true;
  t.allocate();
  return t;
}

namespace {
// Out of line, so the message is built only when an allocation fails. A bare std::bad_alloc did
// not say which tensor (so which model or data setting) was too large.
[[noreturn]] void throw_allocation_failure(const Shape& shape, DType dtype, double bytes) {
  std::ostringstream out;
  out << "out of memory: cannot allocate " << std::fixed << std::setprecision(1)
      << bytes / (1 << 30) << " GiB for a " << dtype_name(dtype) << " tensor of shape "
      << shape_str(shape);
  throw Error(out.str());
}
}  // namespace

void Tensor::allocate() {
  // numel * element size, rounded up, must fit in size_t: refuse before computing it.
  const std::size_t element = dtype_size(dtype_);
  if (static_cast<std::uint64_t>(numel_) >
      (std::numeric_limits<std::size_t>::max() - kAlignment) / element)
    throw_allocation_failure(shape_, dtype_, static_cast<double>(numel_) * element);
  std::size_t bytes = (nbytes() + kAlignment - 1) / kAlignment * kAlignment;
  if (bytes == 0) return;
  std::byte* p = detail::allocate_block(bytes, kAlignment);
  if (p == nullptr) throw_allocation_failure(shape_, dtype_, static_cast<double>(bytes));
  data_.reset(p, [bytes](std::byte* block) { detail::free_block(block, bytes); });
}

void Tensor::make_unique() {
  if (data_ == nullptr) return;
  if (data_.use_count() == 1) {
    // Another thread's last reads of this storage (before it dropped its copy) happen before
    // our writes: use_count() is a relaxed load, so pair it with an acquire fence.
    std::atomic_thread_fence(std::memory_order_acquire);
    return;
  }
  const std::shared_ptr<std::byte> shared = data_;
  allocate();  // replaces data_ only once the new block exists: a failure changes nothing
  std::memcpy(data_.get(), shared.get(), nbytes());
}

Tensor Tensor::full(Shape shape, double value, DType dtype) {
  Tensor t(std::move(shape), dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::from(Shape shape, const std::vector<float>& values) {
  Tensor t(std::move(shape));
  SYNCBN_CHECK_AS(ShapeError, static_cast<std::int64_t>(values.size()) == t.numel(), "shape ",
                  shape_str(t.shape()), " holds ", t.numel(), " values, got ", values.size());
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

Tensor Tensor::scalar_int64(std::int64_t value) {
  Tensor t(Shape{}, DType::Int64);
  *t.data<std::int64_t>() = value;
  return t;
}

std::int64_t Tensor::size(std::int64_t d) const {
  std::int64_t rank = dim();
  SYNCBN_CHECK_AS(ShapeError, d >= -rank && d < rank, "dimension ", d,
                  " out of range for a tensor of shape ", shape_str(shape_));
  return shape_[static_cast<std::size_t>(d < 0 ? d + rank : d)];
}

void Tensor::check_dtype(DType expected) const {
  SYNCBN_CHECK(defined_, "access to an undefined tensor");
  SYNCBN_CHECK(dtype_ == expected, "tensor has dtype ", dtype_name(dtype_), ", accessed as ",
               dtype_name(expected));
}

Tensor Tensor::clone() const {
  Tensor out(*this);
  out.make_unique();
  return out;
}

Tensor Tensor::reshape(Shape shape) const {
  std::int64_t known = 1;
  int inferred = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      SYNCBN_CHECK_AS(ShapeError, inferred < 0, "only one dimension can be -1 in reshape");
      inferred = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (inferred >= 0 && known > 0) shape[static_cast<std::size_t>(inferred)] = numel_ / known;
  SYNCBN_CHECK_AS(ShapeError, shape_numel(shape) == numel_, "cannot reshape ", shape_str(shape_),
                  " to ", shape_str(shape));
  Tensor out(*this);  // shares the storage
  out.shape_ = std::move(shape);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  Tensor out(shape_, dtype);
  dispatch(dtype_, [&](auto src_tag) {
    using Src = decltype(src_tag);
    const Src* src = data<Src>();
    dispatch(dtype, [&](auto dst_tag) {
      using Dst = decltype(dst_tag);
      Dst* dst = out.data<Dst>();
      for (std::int64_t i = 0; i < numel_; ++i) dst[i] = convert<Dst>(src[i]);
    });
  });
  return out;
}

void Tensor::fill_(double value) {
  dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    std::fill_n(data<T>(), numel_, static_cast<T>(value));
  });
}

double Tensor::item(std::int64_t i) const {
  SYNCBN_CHECK(i >= 0 && i < numel_, "element ", i, " out of range for ", numel_, " elements");
  double v = 0;
  dispatch(dtype_, [&](auto tag) { v = static_cast<double>(data<decltype(tag)>()[i]); });
  return v;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  SYNCBN_CHECK_AS(ShapeError, a.shape() == b.shape(), "shape mismatch ", shape_str(a.shape()),
                  " vs ", shape_str(b.shape()));
  double worst = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    double d = std::abs(a.item(i) - b.item(i));
    if (std::isnan(d)) return d;
    worst = std::max(worst, d);
  }
  return worst;
}

}  // namespace syncbn
