// Tensor::narrow and cat: copies along one dimension of a row-major tensor, e.g. a global batch
// cut into rank slices and the ranks' outputs put back together.
#include <cstddef>
#include <cstring>

#include "syncbn/error.hpp"
#include "syncbn/tensor.hpp"

namespace syncbn {
namespace {
// `dim` in [-rank, rank) as an index; `op` names the caller in the error.
std::size_t wrap_dim(std::int64_t dim, const Shape& shape, const char* op) {
  const auto rank = static_cast<std::int64_t>(shape.size());
  SYNCBN_CHECK_AS(ShapeError, rank > 0, op, ": cannot be applied to a 0-dim tensor");
  SYNCBN_CHECK_AS(ShapeError, dim >= -rank && dim < rank, op, ": dimension ", dim,
                  " out of range (expected to be in range of [", -rank, ", ", rank - 1,
                  "]) for shape ", shape_str(shape));
  return static_cast<std::size_t>(dim < 0 ? dim + rank : dim);
}

// A row-major tensor as `outer` blocks, each holding size(dim) slices of `slice_bytes`: what a
// copy along one dimension steps over.
struct Blocks {
  std::int64_t outer = 1;
  std::size_t slice_bytes = 0;
};
Blocks blocks_around(const Shape& shape, std::size_t dim, DType dtype) {
  Blocks b;
  b.slice_bytes = dtype_size(dtype);
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d < dim) b.outer *= shape[d];
    if (d > dim) b.slice_bytes *= static_cast<std::size_t>(shape[d]);
  }
  return b;
}
}  // namespace

Tensor Tensor::narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const {
  SYNCBN_CHECK(defined_, "narrow: the tensor is undefined");
  const std::size_t d = wrap_dim(dim, shape_, "narrow");
  const std::int64_t size = shape_[d];
  SYNCBN_CHECK_AS(ShapeError, start >= -size && start <= size, "narrow: start ", start,
                  " out of range (expected to be in range of [", -size, ", ", size,
                  "]) for dimension ", dim, " of shape ", shape_str(shape_));
  if (start < 0) start += size;
  SYNCBN_CHECK_AS(ShapeError, length >= 0, "narrow: length must be non-negative, got ", length);
  SYNCBN_CHECK_AS(ShapeError, start + length <= size, "narrow: start (", start, ") + length (",
                  length, ") exceeds dimension size (", size, ") of dimension ", dim, " of shape ",
                  shape_str(shape_));
  Shape shape = shape_;
  shape[d] = length;
  Tensor out = empty(std::move(shape), dtype_);
  if (out.numel_ == 0) return out;
  const Blocks b = blocks_around(shape_, d, dtype_);
  const auto* src = static_cast<const std::byte*>(raw());
  auto* dst = static_cast<std::byte*>(out.raw());
  const std::size_t taken = static_cast<std::size_t>(length) * b.slice_bytes;
  const std::size_t stride = static_cast<std::size_t>(size) * b.slice_bytes;
  for (std::int64_t o = 0; o < b.outer; ++o)
    std::memcpy(dst + o * taken, src + o * stride + start * b.slice_bytes, taken);
  return out;
}

namespace {
// cat's checks: every tensor defined and like the first except along dimension d.
void check_cat_inputs(const std::vector<Tensor>& tensors, std::size_t d) {
  const Tensor& first = tensors[0];
  for (std::size_t i = 1; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    SYNCBN_CHECK(t.defined(), "cat: tensor ", i, " of the list is undefined");
    SYNCBN_CHECK(t.dtype() == first.dtype(), "cat: expected all tensors to have dtype ",
                 dtype_name(first.dtype()), " (that of tensor 0), but tensor ", i, " has ",
                 dtype_name(t.dtype()));
    SYNCBN_CHECK_AS(ShapeError, t.dim() == first.dim(), "cat: tensor ", i, " has shape ",
                    shape_str(t.shape()), " but tensor 0 has shape ", shape_str(first.shape()),
                    ": all must have the same number of dimensions");
    for (std::size_t k = 0; k < first.shape().size(); ++k)
      SYNCBN_CHECK_AS(ShapeError, k == d || t.shape()[k] == first.shape()[k],
                      "cat: sizes of tensors must match except in dimension ", d,
                      ". Expected size ", first.shape()[k], " but got size ", t.shape()[k],
                      " for tensor number ", i, " in the list (shape ", shape_str(t.shape()),
                      ", tensor 0 has ", shape_str(first.shape()), ")");
  }
}
}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim) {
  SYNCBN_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  SYNCBN_CHECK(tensors[0].defined(), "cat: tensor 0 of the list is undefined");
  const std::size_t d = wrap_dim(dim, tensors[0].shape(), "cat");
  check_cat_inputs(tensors, d);
  Shape shape = tensors[0].shape();
  shape[d] = 0;
  for (const Tensor& t : tensors) shape[d] += t.shape()[d];
  Tensor out = Tensor::empty(shape, tensors[0].dtype());
  if (out.numel() == 0) return out;
  const Blocks b = blocks_around(shape, d, out.dtype());
  auto* dst = static_cast<std::byte*>(out.raw());
  for (std::int64_t o = 0; o < b.outer; ++o) {
    for (const Tensor& t : tensors) {
      const std::size_t bytes = static_cast<std::size_t>(t.shape()[d]) * b.slice_bytes;
      if (bytes == 0) continue;  // an empty part may have no storage at all
      std::memcpy(dst, static_cast<const std::byte*>(t.raw()) + o * bytes, bytes);
      dst += bytes;
    }
  }
  return out;
}

}  // namespace syncbn
