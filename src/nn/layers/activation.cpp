#include "syncbn/nn/layers/activation.hpp"

#include <algorithm>

#include "relu.hpp"
#include "syncbn/error.hpp"

namespace syncbn::nn {

// Backward needs only the sign of each output, so forward keeps one byte per element: backward
// reads a quarter of what re-reading the float output would cost.
Tensor ReLU::forward(const Tensor& input) {
  Tensor out = Tensor::empty(input.shape());
  mask_.resize(static_cast<std::size_t>(input.numel()));
  detail::relu_forward(input.data<float>(), input.numel(), out.data<float>(), mask_.data());
  saved_shape_ = input.shape();
  has_saved_ = true;
  return out;
}

Tensor ReLU::backward(const Tensor& grad_output) {
  SYNCBN_CHECK(has_saved_, "ReLU: backward called before forward");
  SYNCBN_CHECK_AS(ShapeError, grad_output.shape() == saved_shape_, "ReLU: grad_output shape ",
                  shape_str(grad_output.shape()), " does not match the output shape ",
                  shape_str(saved_shape_));
  Tensor dx = Tensor::empty(grad_output.shape());
  detail::relu_backward(grad_output.data<float>(), mask_.data(), dx.numel(), dx.data<float>());
  return dx;
}

namespace detail {
// x > 0 ? x : 0 rather than std::max, so NaN maps to 0 the same way every time (no branch).
void relu_forward(const float* x, std::int64_t n, float* y, std::uint8_t* positive) {
  for (std::int64_t i = 0; i < n; ++i) {
    const bool p = x[i] > 0.f;
    y[i] = p ? x[i] : 0.f;
    positive[i] = p;
  }
}

// Both operands are loaded unconditionally, so the compiler can use vector selects.
void relu_backward(const float* dy, const std::uint8_t* positive, std::int64_t n, float* dx) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = dy[i];
    dx[i] = positive[i] ? g : 0.f;
  }
}
}  // namespace detail

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_dim_) + ", end_dim=" + std::to_string(end_dim_);
}

Tensor Flatten::forward(const Tensor& input) {
  const std::int64_t rank = std::max<std::int64_t>(input.dim(), 1);  // a scalar flattens as [1]
  const std::int64_t start = start_dim_ < 0 ? start_dim_ + rank : start_dim_;
  const std::int64_t end = end_dim_ < 0 ? end_dim_ + rank : end_dim_;
  SYNCBN_CHECK_AS(ShapeError, 0 <= start && start <= end && end < rank, "Flatten(", extra_repr(),
                  "): dims out of range (or start after end) for input of shape ",
                  shape_str(input.shape()));
  Shape shape(input.shape().begin(), input.shape().begin() + std::min(start, input.dim()));
  std::int64_t merged = 1;
  for (std::int64_t d = start; d <= end && d < input.dim(); ++d) merged *= input.size(d);
  shape.push_back(merged);
  for (std::int64_t d = end + 1; d < input.dim(); ++d) shape.push_back(input.size(d));
  saved_shape_ = input.shape();
  saved_output_shape_ = shape;
  has_saved_ = true;
  return input.reshape(std::move(shape));
}

Tensor Flatten::backward(const Tensor& grad_output) {
  SYNCBN_CHECK(has_saved_, "Flatten: backward called before forward");
  SYNCBN_CHECK_AS(ShapeError, grad_output.shape() == saved_output_shape_, "Flatten(", extra_repr(),
                  "): grad_output shape ", shape_str(grad_output.shape()),
                  " does not match the output shape ", shape_str(saved_output_shape_));
  return grad_output.reshape(saved_shape_);
}

}  // namespace syncbn::nn
