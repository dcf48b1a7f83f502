// Conv1d/2d/3d against a direct loop convolution (forward and all three gradients, with
// stride, padding, dilation and groups), hand-computed values, finite differences, reprs and
// errors. The PyTorch goldens are in layer_goldens_test.cpp.
#include <gtest/gtest.h>

#include <array>
#include <cmath>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/nn/layers/conv.hpp"

namespace syncbn::nn {
namespace {
using testing::all_close;
using testing::random_tensor;

struct Reference {
  Tensor y, dx, dw, db;
};

// A D-dim size padded to 3 dims with `fill` in front (Conv1d's L becomes (fill, fill, L)).
template <std::size_t D>
std::array<std::int64_t, 3> as3(const SizeN<D>& s, std::int64_t fill) {
  std::array<std::int64_t, 3> r{fill, fill, fill};
  for (std::size_t i = 0; i < D; ++i) r[3 - D + i] = s[i];
  return r;
}
std::array<std::int64_t, 3> spatial3(const Shape& s) {
  std::array<std::int64_t, 3> r{1, 1, 1};
  for (std::size_t i = 2; i < s.size(); ++i) r[3 - (s.size() - 2) + i - 2] = s[i];
  return r;
}

// The textbook loop convolution and its gradients, in double, straight from the formula in
// conv.hpp: every output position, every channel of its group, every kernel tap.
template <std::size_t D>
Reference direct_conv(const ConvNd<D>& conv, const Tensor& x, const Tensor& dy) {
  const auto& o = conv.options();
  const Shape out = conv.output_shape(x.shape());
  const Tensor& w = conv.weight.value;
  Reference r{Tensor(out), Tensor(x.shape()), Tensor(w.shape()), Tensor({o.out_channels()})};
  const auto in = spatial3(x.shape()), os = spatial3(out), k = as3(o.kernel_size(), 1),
             s = as3(o.stride(), 1), p = as3(o.padding(), 0), dl = as3(o.dilation(), 1);
  const std::int64_t cg = o.in_channels() / o.groups(), og = o.out_channels() / o.groups();
  auto flat = [](std::int64_t a, std::int64_t b, std::int64_t nb,
                 const std::array<std::int64_t, 3>& sp, std::int64_t d0, std::int64_t d1,
                 std::int64_t d2) {
    return (((a * nb + b) * sp[0] + d0) * sp[1] + d1) * sp[2] + d2;
  };
  std::vector<double> y(static_cast<std::size_t>(r.y.numel()));
  for (std::int64_t n = 0; n < out[0]; ++n)
    for (std::int64_t m = 0; m < out[1]; ++m)
      for (std::int64_t a = 0; a < os[0]; ++a)
        for (std::int64_t i = 0; i < os[1]; ++i)
          for (std::int64_t j = 0; j < os[2]; ++j) {
            const std::int64_t yi = flat(n, m, out[1], os, a, i, j);
            double acc = o.bias() ? conv.bias.value.item(m) : 0.0;
            const double g = dy.item(yi);
            r.db.data<float>()[m] += static_cast<float>(g);
            for (std::int64_t c = 0; c < cg; ++c)
              for (std::int64_t t = 0; t < k[0]; ++t)
                for (std::int64_t u = 0; u < k[1]; ++u)
                  for (std::int64_t v = 0; v < k[2]; ++v) {
                    const std::int64_t zd = a * s[0] - p[0] + t * dl[0],
                                       zh = i * s[1] - p[1] + u * dl[1],
                                       zw = j * s[2] - p[2] + v * dl[2];
                    if (zd < 0 || zd >= in[0] || zh < 0 || zh >= in[1] || zw < 0 || zw >= in[2])
                      continue;
                    const std::int64_t xi =
                        flat(n, (m / og) * cg + c, o.in_channels(), in, zd, zh, zw);
                    const std::int64_t wi = flat(m, c, cg, k, t, u, v);
                    acc += x.item(xi) * w.item(wi);
                    r.dx.data<float>()[xi] += static_cast<float>(g * w.item(wi));
                    r.dw.data<float>()[wi] += static_cast<float>(g * x.item(xi));
                  }
            r.y.data<float>()[yi] = static_cast<float>(acc);
          }
  return r;
}

template <std::size_t D>
void expect_matches_direct(const ConvOptions<D>& options, const Shape& input) {
  ConvNd<D> conv(options, 7);
  SCOPED_TRACE(conv.repr() + " on " + shape_str(input));
  const Tensor x = random_tensor(input, 1);
  const Tensor dy = random_tensor(conv.output_shape(input), 2);
  const Reference ref = direct_conv(conv, x, dy);
  EXPECT_TRUE(all_close(conv.forward(x), ref.y, 1e-4, 1e-4));
  EXPECT_TRUE(all_close(conv.backward(dy), ref.dx, 1e-4, 1e-4));
  EXPECT_TRUE(all_close(conv.weight.grad, ref.dw, 1e-4, 1e-3));
  if (options.bias()) {
    EXPECT_TRUE(all_close(conv.bias.grad, ref.db, 1e-4, 1e-3));
  }
}

// 2-D shapes chosen to cover one image per GEMM (40x40 planes), several per GEMM with a
// one-image remainder (8x8: 16 per GEMM, 17 images), stride 2, asymmetric kernels and padding,
// padding wider than the kernel reach, and 1x1 projections; then dilation and groups.
TEST(Conv2d, ForwardAndBackwardMatchDirectConvolution) {
  expect_matches_direct(Conv2dOptions(3, 4, 3).padding(1), {2, 3, 9, 9});
  expect_matches_direct(Conv2dOptions(2, 5, 3).stride(2).padding(1).bias(false), {3, 2, 8, 7});
  expect_matches_direct(Conv2dOptions(2, 3, {3, 1}).stride({1, 2}).padding({0, 1}), {2, 2, 6, 5});
  expect_matches_direct(Conv2dOptions(2, 3, 3).padding(1), {3, 2, 40, 40});
  expect_matches_direct(Conv2dOptions(3, 4, 3).padding(1), {17, 3, 8, 8});
  expect_matches_direct(Conv2dOptions(1, 2, 5).stride(3).padding(2), {2, 1, 70, 70});
  expect_matches_direct(Conv2dOptions(4, 6, 1).stride(2).bias(false), {5, 4, 7, 7});
  expect_matches_direct(Conv2dOptions(2, 2, 2).padding(3), {2, 2, 3, 3});
  expect_matches_direct(Conv2dOptions(2, 3, 3).dilation(2).padding(2), {2, 2, 9, 8});
  expect_matches_direct(Conv2dOptions(2, 3, 3).dilation({1, 3}).stride({2, 1}), {2, 2, 7, 9});
  expect_matches_direct(Conv2dOptions(4, 6, 3).groups(2).padding(1), {3, 4, 6, 6});
  expect_matches_direct(Conv2dOptions(6, 6, 3).groups(6).stride(2).padding(1), {2, 6, 7, 7});
  expect_matches_direct(Conv2dOptions(6, 3, {2, 3}).groups(3).dilation({2, 1}).bias(false),
                        {17, 6, 8, 8});
}

TEST(Conv1d, ForwardAndBackwardMatchDirectConvolution) {
  expect_matches_direct(Conv1dOptions(3, 4, 3).padding(1), {2, 3, 11});
  expect_matches_direct(Conv1dOptions(2, 5, 4).stride(3).padding(2).bias(false), {3, 2, 17});
  expect_matches_direct(Conv1dOptions(4, 8, 3).padding(1).dilation(2).groups(2), {2, 4, 9});
  expect_matches_direct(Conv1dOptions(3, 3, 5).dilation(3).groups(3), {1, 3, 40});
  expect_matches_direct(Conv1dOptions(2, 2, 1), {40, 2, 5});
}

TEST(Conv3d, ForwardAndBackwardMatchDirectConvolution) {
  expect_matches_direct(Conv3dOptions(2, 3, 3).padding(1), {2, 2, 4, 5, 6});
  expect_matches_direct(Conv3dOptions(2, 4, {3, 1, 2}).stride({2, 1, 2}).padding({1, 0, 1}),
                        {2, 2, 5, 4, 6});
  expect_matches_direct(Conv3dOptions(4, 4, 2).dilation({2, 1, 2}).groups(2).bias(false),
                        {2, 4, 5, 3, 5});
  expect_matches_direct(Conv3dOptions(3, 6, 1).stride(2).groups(3), {3, 3, 3, 3, 3});
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

TEST(Conv1d, HandComputedDilatedAndGroupedValues) {
  // Kernel (1, 10) with dilation 2 reads x[i] + 10*x[i+2]; group 2 reads only channel 1.
  Conv1d conv(Conv1dOptions(2, 2, 2).dilation(2).groups(2).bias(false));
  conv.weight.value = Tensor::from({2, 1, 2}, {1, 10, 2, 0});
  const Tensor y = conv.forward(Tensor::from({1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_TRUE(all_close(y, Tensor::from({1, 2, 2}, {31, 42, 10, 12}), 0, 0));
}

TEST(ConvNd, GradientsMatchFiniteDifferences) {
  for (const auto& options :
       {Conv2dOptions(2, 3, 3).padding(1), Conv2dOptions(2, 2, 3).stride(2).bias(false),
        Conv2dOptions(3, 2, {2, 3}).stride({2, 1}).padding({1, 0}),
        Conv2dOptions(4, 2, 2).dilation(2).groups(2).padding(1)}) {
    Conv2d conv(options, 3);
    testing::expect_gradients_match(conv, random_tensor({2, options.in_channels(), 5, 6}, 4));
  }
  for (const auto& options : {Conv1dOptions(2, 4, 3).padding(2).dilation(2).groups(2),
                              Conv1dOptions(3, 2, 2).stride(2)}) {
    Conv1d conv(options, 3);
    testing::expect_gradients_match(conv, random_tensor({2, options.in_channels(), 9}, 4));
  }
  for (const auto& options : {Conv3dOptions(2, 2, 2).padding(1).groups(2),
                              Conv3dOptions(2, 3, {2, 1, 2}).dilation({1, 1, 2}).bias(false)}) {
    Conv3d conv(options, 3);
    testing::expect_gradients_match(conv, random_tensor({2, 2, 3, 4, 5}, 4));
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

TEST(ConvNd, EmptyBatchGivesEmptyOutputAndNoGradient) {
  Conv2d conv(Conv2dOptions(2, 3, 3).padding(1), 1);
  const Tensor y = conv.forward(Tensor({0, 2, 4, 4}));
  EXPECT_EQ(y.shape(), (Shape{0, 3, 4, 4}));
  EXPECT_EQ(conv.backward(y).shape(), (Shape{0, 2, 4, 4}));
  EXPECT_EQ(testing::sum(conv.weight.grad), 0.0);
  Conv3d conv3(Conv3dOptions(2, 4, 3).padding(1).groups(2), 1);
  EXPECT_EQ(conv3.forward(Tensor({0, 2, 2, 3, 4})).shape(), (Shape{0, 4, 2, 3, 4}));
  // A zero-length input with padding still has windows: they see only zeros, so y = bias.
  Conv1d pad_only(Conv1dOptions(1, 2, 1).padding(1), 1);
  const Tensor b = pad_only.forward(Tensor({1, 1, 0}));
  EXPECT_EQ(b.shape(), (Shape{1, 2, 2}));
  EXPECT_EQ(b.item(2), pad_only.bias.value.item(1));
}

TEST(ConvNd, NamesReprAndStateDictKeysFollowPyTorch) {
  Conv2d conv(Conv2dOptions(3, 16, 3).padding(1).bias(false));
  EXPECT_EQ(conv.repr(),
            "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)");
  EXPECT_EQ(conv.state_dict().size(), 1u);
  EXPECT_EQ(conv.state_dict().count("weight"), 1u);
  EXPECT_EQ(Conv2d(Conv2dOptions(1, 2, {3, 1}).stride(2)).repr(),
            "Conv2d(1, 2, kernel_size=(3, 1), stride=(2, 2))");
  // The reprs PyTorch 1.13 prints for the same modules (dilation/groups/bias only when set).
  EXPECT_EQ(Conv1d(Conv1dOptions(4, 8, 3).padding(1).dilation(2).groups(2).bias(false)).repr(),
            "Conv1d(4, 8, kernel_size=(3,), stride=(1,), padding=(1,), dilation=(2,), groups=2, "
            "bias=False)");
  EXPECT_EQ(Conv1d(Conv1dOptions(4, 8, 3)).repr(), "Conv1d(4, 8, kernel_size=(3,), stride=(1,))");
  EXPECT_EQ(Conv3d(Conv3dOptions(2, 4, 3).stride(2).groups(2)).repr(),
            "Conv3d(2, 4, kernel_size=(3, 3, 3), stride=(2, 2, 2), groups=2)");
  EXPECT_EQ(Conv2d(Conv2dOptions(4, 4, 3).dilation({1, 2})).repr(),
            "Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), dilation=(1, 2))");
  Conv3d grouped(Conv3dOptions(4, 6, {1, 2, 3}).groups(2));
  EXPECT_EQ(grouped.weight.value.shape(), (Shape{6, 2, 1, 2, 3}));
  EXPECT_EQ(grouped.bias.value.shape(), (Shape{6}));
}

TEST(ConvNd, ShapeErrorsNameTheLayerAndShapes) {
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
      {"[1, 3, 2, 8]", "smaller than the"});
  conv.forward(Tensor({1, 3, 5, 5}));
  testing::expect_error_mentions<ShapeError>(
      [&] {
        conv.backward(Tensor({1, 4, 2, 3}));
      },
      {"[1, 4, 2, 3]", "[1, 4, 3, 3]"});
  Conv1d dilated(Conv1dOptions(1, 1, 3).dilation(3));  // reach 7
  testing::expect_error_mentions<ShapeError>(
      [&] {
        dilated.forward(Tensor({1, 1, 6}));
      },
      {"Conv1d(1, 1", "dilation=(3,)", "[1, 1, 6]"});
  EXPECT_EQ(dilated.output_shape({2, 1, 7}), (Shape{2, 1, 1}));
  Conv3d conv3(Conv3dOptions(2, 2, 1));
  testing::expect_error_mentions<ShapeError>(
      [&] {
        conv3.forward(Tensor({2, 2, 3}));
      },
      {"Conv3d(2, 2", "5D", "[N, C, D, H, W]"});
  EXPECT_THROW(Conv2d(Conv2dOptions(3, 4, 3)).backward(Tensor({1, 4, 1, 1})), ValueError);
}

TEST(ConvNd, InvalidOptionsAreValueErrorsNamingTheLayer) {
  EXPECT_THROW(Conv2d(Conv2dOptions(0, 4, 3)), ValueError);
  EXPECT_THROW(Conv2d(Conv2dOptions(1, 4, 3).stride(0)), ValueError);
  EXPECT_THROW(Conv2d(Conv2dOptions(1, 4, 3).padding(-1)), ValueError);
  EXPECT_THROW(Conv3d(Conv3dOptions(1, 4, {3, 0, 3})), ValueError);
  testing::expect_error_mentions<ValueError>([] { Conv1d(Conv1dOptions(3, 4, 3).groups(2)); },
                                             {"Conv1d(3, 4", "divisible by groups (2)"});
  testing::expect_error_mentions<ValueError>([] { Conv2d(Conv2dOptions(4, 3, 3).groups(2)); },
                                             {"Conv2d(4, 3", "divisible by groups"});
  testing::expect_error_mentions<ValueError>([] { Conv2d(Conv2dOptions(4, 4, 3).groups(0)); },
                                             {"Conv2d(4, 4", "groups"});
  testing::expect_error_mentions<ValueError>([] { Conv1d(Conv1dOptions(4, 4, 3).dilation(0)); },
                                             {"Conv1d(4, 4", "dilation (0,)"});
}

TEST(ConvNd, DefaultInitIsSeededKaimingUniform) {
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
  // Grouped: fan_in counts one group's channels, 16/4 * 3 = 12.
  Conv1d g(Conv1dOptions(16, 8, 3).groups(4), a);
  for (std::int64_t i = 0; i < g.bias.value.numel(); ++i)
    EXPECT_LE(std::abs(g.bias.value.item(i)), 1.0 / std::sqrt(12.0));
}

TEST(SizeN, ReprAndConstruction) {
  EXPECT_EQ(Size1(3).str(), "(3,)");
  EXPECT_EQ(Size2(3).str(), "(3, 3)");
  EXPECT_EQ(Size3(3).str(), "(3, 3, 3)");
  EXPECT_EQ(Size2(3).given_str(), "3");
  EXPECT_EQ(Size2(3, 1).given_str(), "(3, 1)");
  const Size3 s{1, 2, 3};
  EXPECT_EQ(s[2], 3);
  EXPECT_EQ(s.product(), 6);
  EXPECT_EQ(Size2(std::vector<std::int64_t>{4, 5}), Size2(4, 5));
  EXPECT_EQ(Size2(3), Size2(3, 3));  // equal values, however given
  testing::expect_error_mentions<ValueError>(
      [] {
        Size3(std::vector<std::int64_t>{1, 2});
      },
      {"expected 3 sizes", "got 2"});
}

}  // namespace
}  // namespace syncbn::nn
