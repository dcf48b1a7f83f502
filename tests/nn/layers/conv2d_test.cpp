// Conv2d against a direct loop convolution (forward and all three gradients), hand-computed
// values, finite differences, and its errors.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/nn/layers/conv2d.hpp"

namespace syncbn::nn {
namespace {
using testing::all_close;
using testing::random_tensor;

struct Reference {
  Tensor y, dx, dw, db;
};

// The textbook six-loop convolution and its gradients, in double.
Reference direct_conv(const Conv2d& conv, const Tensor& x, const Tensor& dy) {
  const auto& o = conv.options();
  const Shape out = conv.output_shape(x.shape());
  Reference r{Tensor(out), Tensor(x.shape()), Tensor(conv.weight.value.shape()),
              Tensor({o.out_channels()})};
  const std::int64_t C = x.size(1), H = x.size(2), W = x.size(3), kh = o.kernel_size().h,
                     kw = o.kernel_size().w;
  auto at = [](const Tensor& t, std::int64_t a, std::int64_t b, std::int64_t c, std::int64_t d) {
    return ((a * t.size(1) + b) * t.size(2) + c) * t.size(3) + d;
  };
  for (std::int64_t n = 0; n < out[0]; ++n)
    for (std::int64_t m = 0; m < out[1]; ++m)
      for (std::int64_t i = 0; i < out[2]; ++i)
        for (std::int64_t j = 0; j < out[3]; ++j) {
          const std::int64_t yi = at(r.y, n, m, i, j);
          double acc = o.bias() ? conv.bias.value.item(m) : 0.0;
          const double g = dy.item(yi);
          r.db.data<float>()[m] += static_cast<float>(g);
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t u = 0; u < kh; ++u)
              for (std::int64_t v = 0; v < kw; ++v) {
                const std::int64_t h = i * o.stride().h - o.padding().h + u,
                                   w = j * o.stride().w - o.padding().w + v;
                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                const std::int64_t xi = at(x, n, c, h, w), wi = at(conv.weight.value, m, c, u, v);
                acc += x.item(xi) * conv.weight.value.item(wi);
                r.dx.data<float>()[xi] += static_cast<float>(g * conv.weight.value.item(wi));
                r.dw.data<float>()[wi] += static_cast<float>(g * x.item(xi));
              }
          r.y.data<float>()[yi] = static_cast<float>(acc);
        }
  return r;
}

struct Case {
  Conv2dOptions options;
  Shape input;
};

// Shapes chosen to cover one image per GEMM (40x40 planes), several per GEMM with a
// one-image remainder (8x8: 16 per GEMM, 17 images), stride 2, asymmetric kernels and padding,
// padding wider than the kernel reach, and 1x1 projections.
std::vector<Case> cases() {
  return {
      {Conv2dOptions(3, 4, 3).padding(1), {2, 3, 9, 9}},
      {Conv2dOptions(2, 5, 3).stride(2).padding(1).bias(false), {3, 2, 8, 7}},
      {Conv2dOptions(2, 3, {3, 1}).stride({1, 2}).padding({0, 1}), {2, 2, 6, 5}},
      {Conv2dOptions(2, 3, 3).padding(1), {3, 2, 40, 40}},
      {Conv2dOptions(3, 4, 3).padding(1), {17, 3, 8, 8}},
      {Conv2dOptions(1, 2, 5).stride(3).padding(2), {2, 1, 70, 70}},
      {Conv2dOptions(4, 6, 1).stride(2).bias(false), {5, 4, 7, 7}},
      {Conv2dOptions(2, 2, 2).padding(3), {2, 2, 3, 3}},
  };
}

TEST(Conv2d, ForwardAndBackwardMatchDirectConvolution) {
  int index = 0;
  for (const auto& c : cases()) {
    SCOPED_TRACE("case " + std::to_string(index++));
    Conv2d conv(c.options, 7);
    const Tensor x = random_tensor(c.input, 1);
    const Tensor dy = random_tensor(conv.output_shape(c.input), 2);
    const Reference ref = direct_conv(conv, x, dy);
    EXPECT_TRUE(all_close(conv.forward(x), ref.y, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(conv.backward(dy), ref.dx, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(conv.weight.grad, ref.dw, 1e-4, 1e-3));
    if (c.options.bias()) {
      EXPECT_TRUE(all_close(conv.bias.grad, ref.db, 1e-4, 1e-3));
    }
  }
}

TEST(Conv2d, HandComputedValues) {
  // 3x3 image 1..9, 2x2 kernel of ones, bias 0.5: each output sums a 2x2 window.
  Conv2d conv(Conv2dOptions(1, 1, 2));
  conv.weight.value.fill_(1.0);
  conv.bias.value.fill_(0.5);
  const Tensor y = conv.forward(Tensor::from({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_TRUE(all_close(y, Tensor::from({1, 1, 2, 2}, {12.5f, 16.5f, 24.5f, 28.5f}), 0, 0));
  // Padding 1, stride 2 on the same image: windows at rows/cols -1 and 1.
  Conv2d padded(Conv2dOptions(1, 1, 2).stride(2).padding(1).bias(false));
  padded.weight.value.fill_(1.0);
  const Tensor z = padded.forward(Tensor::from({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_TRUE(all_close(z, Tensor::from({1, 1, 2, 2}, {1, 2 + 3, 4 + 7, 5 + 6 + 8 + 9}), 0, 0));
  // dx of a ones dy counts how many windows cover each pixel.
  Tensor dx = conv.backward(Tensor::ones({1, 1, 2, 2}));
  EXPECT_TRUE(all_close(dx, Tensor::from({1, 1, 3, 3}, {1, 2, 1, 2, 4, 2, 1, 2, 1}), 0, 0));
  EXPECT_FLOAT_EQ(conv.bias.grad.item(0), 4.f);
}

TEST(Conv2d, GradientsMatchFiniteDifferences) {
  for (const auto& options :
       {Conv2dOptions(2, 3, 3).padding(1), Conv2dOptions(2, 2, 3).stride(2).bias(false),
        Conv2dOptions(3, 2, {2, 3}).stride({2, 1}).padding({1, 0})}) {
    Conv2d conv(options, 3);
    testing::expect_gradients_match(conv, random_tensor({2, options.in_channels(), 5, 6}, 4));
  }
}

TEST(Conv2d, ParameterGradientsAccumulate) {
  Conv2d conv(Conv2dOptions(2, 3, 3).padding(1), 1);
  const Tensor x = random_tensor({2, 2, 5, 5}, 2), dy = random_tensor({2, 3, 5, 5}, 3);
  conv.forward(x);
  conv.backward(dy);
  const Tensor once_w = conv.weight.grad, once_b = conv.bias.grad;
  conv.forward(x);
  conv.backward(dy);
  for (std::int64_t i = 0; i < once_w.numel(); ++i)
    EXPECT_FLOAT_EQ(conv.weight.grad.item(i), 2 * once_w.item(i));
  for (std::int64_t i = 0; i < once_b.numel(); ++i)
    EXPECT_FLOAT_EQ(conv.bias.grad.item(i), 2 * once_b.item(i));
}

TEST(Conv2d, EmptyBatchGivesEmptyOutputAndNoGradient) {
  Conv2d conv(Conv2dOptions(2, 3, 3).padding(1), 1);
  const Tensor y = conv.forward(Tensor({0, 2, 4, 4}));
  EXPECT_EQ(y.shape(), (Shape{0, 3, 4, 4}));
  EXPECT_EQ(conv.backward(y).shape(), (Shape{0, 2, 4, 4}));
  EXPECT_EQ(testing::sum(conv.weight.grad), 0.0);
}

TEST(Conv2d, NamesReprAndStateDictKeysFollowPyTorch) {
  Conv2d conv(Conv2dOptions(3, 16, 3).padding(1).bias(false));
  EXPECT_EQ(conv.repr(),
            "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)");
  EXPECT_EQ(conv.state_dict().size(), 1u);
  EXPECT_EQ(conv.state_dict().count("weight"), 1u);
  EXPECT_EQ(Conv2d(Conv2dOptions(1, 2, {3, 1}).stride(2)).repr(),
            "Conv2d(1, 2, kernel_size=(3, 1), stride=(2, 2))");
}

TEST(Conv2d, ShapeErrorsNameTheLayerAndShapes) {
  Conv2d conv(Conv2dOptions(3, 4, 3));
  testing::expect_error_mentions<ShapeError>(
      [&] {
        conv.forward(Tensor({2, 5, 8, 8}));
      },
      {"Conv2d(3, 4, kernel_size=(3, 3)", "3 channels", "[2, 5, 8, 8]"});
  testing::expect_error_mentions<ShapeError>(
      [&] {
        conv.forward(Tensor({3, 8, 8}));
      },
      {"Conv2d(3, 4", "3D", "[3, 8, 8]"});
  testing::expect_error_mentions<ShapeError>(
      [&] {
        conv.forward(Tensor({1, 3, 2, 8}));
      },
      {"[1, 3, 2, 8]", "smaller than the kernel"});
  conv.forward(Tensor({1, 3, 5, 5}));
  testing::expect_error_mentions<ShapeError>(
      [&] {
        conv.backward(Tensor({1, 4, 2, 3}));
      },
      {"[1, 4, 2, 3]", "[1, 4, 3, 3]"});
  EXPECT_THROW(Conv2d(Conv2dOptions(3, 4, 3)).backward(Tensor({1, 4, 1, 1})), ValueError);
  EXPECT_THROW(Conv2d(Conv2dOptions(0, 4, 3)), ValueError);
  EXPECT_THROW(Conv2d(Conv2dOptions(1, 4, 3).stride(0)), ValueError);
  EXPECT_THROW(Conv2d(Conv2dOptions(1, 4, 3).padding(-1)), ValueError);
}

TEST(Conv2d, DefaultInitIsSeededKaimingUniform) {
  Generator a(42), b(42), c(43);
  Conv2d x(Conv2dOptions(8, 16, 3), a), y(Conv2dOptions(8, 16, 3), b),
      z(Conv2dOptions(8, 16, 3), c);
  EXPECT_EQ(max_abs_diff(x.weight.value, y.weight.value), 0.0);
  EXPECT_EQ(max_abs_diff(x.bias.value, y.bias.value), 0.0);
  EXPECT_GT(max_abs_diff(x.weight.value, z.weight.value), 0.0);
  // fan_in = 8*3*3 = 72: weight and bias ~ U(-1/sqrt(72), 1/sqrt(72)), variance bound^2/3.
  const double bound = 1.0 / std::sqrt(72.0);
  double sq = 0;
  for (std::int64_t i = 0; i < x.weight.value.numel(); ++i) {
    EXPECT_LE(std::abs(x.weight.value.item(i)), bound);
    sq += x.weight.value.item(i) * x.weight.value.item(i);
  }
  EXPECT_NEAR(sq / x.weight.value.numel(), bound * bound / 3, 0.1 * bound * bound / 3);
  for (std::int64_t i = 0; i < x.bias.value.numel(); ++i)
    EXPECT_LE(std::abs(x.bias.value.item(i)), bound);
}

}  // namespace
}  // namespace syncbn::nn
