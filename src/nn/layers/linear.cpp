#include "syncbn/nn/layers/linear.hpp"

#include <memory>
#include <utility>
#include <vector>

#include "gemm.hpp"
#include "grad.hpp"
#include "syncbn/error.hpp"

namespace syncbn::nn {
using detail::gemm;
using detail::Trans;

Linear::Linear(LinearOptions options, Generator& gen) : options_(options) {
  SYNCBN_CHECK(options_.in_features() > 0 && options_.out_features() > 0, "Linear: in_features (",
               options_.in_features(), ") and out_features (", options_.out_features(),
               ") must be positive");
  const Shape shape{options_.out_features(), options_.in_features()};
  weight = {Tensor::zeros(shape), Tensor::zeros(shape)};
  register_parameter("weight", &weight);
  if (options_.bias()) {
    bias = {Tensor::zeros({options_.out_features()}), Tensor::zeros({options_.out_features()})};
    register_parameter("bias", &bias);
  }
  init::default_reset_(weight.value, &bias.value, gen);
}

Linear::Linear(LinearOptions options, std::uint64_t seed)
    : Linear(options, *std::make_unique<Generator>(seed)) {}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(options_.in_features()) +
         ", out_features=" + std::to_string(options_.out_features()) +
         ", bias=" + (options_.bias() ? "True" : "False");
}

void Linear::check_input(const Tensor& input) const {
  SYNCBN_CHECK_AS(ShapeError, input.dim() >= 1 && input.size(-1) == options_.in_features(),
                  "Linear(", extra_repr(), "): expected input of shape [*, ",
                  options_.in_features(), "], got ", shape_str(input.shape()));
}

Tensor Linear::forward(const Tensor& input) {
  check_input(input);
  const std::int64_t in = options_.in_features(), out = options_.out_features();
  const std::int64_t m = input.numel() / in;
  Shape out_shape = input.shape();
  out_shape.back() = out;
  Tensor y = Tensor::empty(out_shape);  // the GEMM overwrites it (beta = 0)
  float* yp = y.data<float>();
  gemm(Trans::No, Trans::Yes, m, out, in, 1.f, input.data<float>(), in, weight.value.data<float>(),
       in, 0.f, yp, out);
  if (options_.bias()) {
    const float* b = bias.value.data<float>();
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < out; ++j) yp[i * out + j] += b[j];
  }
  saved_input_ = input;
  return y;
}

Tensor Linear::backward(const Tensor& grad_output) {
  SYNCBN_CHECK(saved_input_.defined(), "Linear(", extra_repr(),
               "): backward called before forward");
  const std::int64_t in = options_.in_features(), out = options_.out_features();
  Shape expected = saved_input_.shape();
  expected.back() = out;
  SYNCBN_CHECK_AS(ShapeError, grad_output.shape() == expected, "Linear(", extra_repr(),
                  "): grad_output shape ", shape_str(grad_output.shape()),
                  " does not match the output shape ", shape_str(expected));
  const std::int64_t m = saved_input_.numel() / in;
  const float* dy = grad_output.data<float>();
  Tensor dx = Tensor::empty(saved_input_.shape());
  gemm(Trans::No, Trans::No, m, in, out, 1.f, dy, out, weight.value.data<float>(), in, 0.f,
       dx.data<float>(), in);
  gemm(Trans::Yes, Trans::No, out, in, m, 1.f, dy, out, std::as_const(saved_input_).data<float>(),
       in, 1.f, detail::grad_for_accumulation(weight), in);
  if (options_.bias()) {
    std::vector<double> sums(static_cast<std::size_t>(out), 0.0);
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < out; ++j) sums[j] += dy[i * out + j];
    float* db = detail::grad_for_accumulation(bias);
    for (std::int64_t j = 0; j < out; ++j) db[j] += static_cast<float>(sums[j]);
  }
  return dx;
}

}  // namespace syncbn::nn
