// MaxPool2d and AdaptiveAvgPool2d: hand-computed windows, PyTorch's output-size rules, finite
// differences, errors.
#include <gtest/gtest.h>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/nn/layers/pooling.hpp"

namespace syncbn::nn {
namespace {
using testing::all_close;

const Tensor kFourByFour = Tensor::from({1, 1, 4, 4}, {1, 5, 2, 0,  //
                                                       3, 4, 8, 6,  //
                                                       0, 9, 1, 1,  //
                                                       7, 2, 3, 4});

TEST(MaxPool2d, HandComputedWindowsAndGradientRouting) {
  MaxPool2d pool(MaxPool2dOptions(2));
  EXPECT_TRUE(all_close(pool.forward(kFourByFour), Tensor::from({1, 1, 2, 2}, {5, 8, 9, 4}), 0, 0));
  const Tensor dx = pool.backward(Tensor::from({1, 1, 2, 2}, {1, 2, 3, 4}));
  EXPECT_TRUE(all_close(
      dx, Tensor::from({1, 1, 4, 4}, {0, 1, 0, 0, 0, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 4}), 0, 0));
}

TEST(MaxPool2d, OverlappingWindowsSumTheirGradients) {
  // 3x3 windows, stride 1, padding 1 on the 4x4 image: 9 is the max of every window around it.
  MaxPool2d pool(MaxPool2dOptions(3).stride(1).padding(1));
  const Tensor y = pool.forward(kFourByFour);
  EXPECT_TRUE(all_close(
      y, Tensor::from({1, 1, 4, 4}, {5, 8, 8, 8, 9, 9, 9, 8, 9, 9, 9, 8, 9, 9, 9, 4}), 0, 0));
  const Tensor dx = pool.backward(Tensor::ones({1, 1, 4, 4}));
  EXPECT_EQ(dx.item(9), 9.f);  // the 9
  EXPECT_EQ(dx.item(6), 5.f);  // the 8
  EXPECT_EQ(testing::sum(dx), 16.0);
}

TEST(MaxPool2d, OutputSizesFollowPyTorch) {
  auto size = [](MaxPool2dOptions o, std::int64_t h) {
    return MaxPool2d(o).output_shape({1, 1, h, h})[2];
  };
  EXPECT_EQ(size(MaxPool2dOptions(3).stride(2).padding(1), 28), 14);
  EXPECT_EQ(size(MaxPool2dOptions(3).stride(2).padding(1), 7), 4);
  EXPECT_EQ(size(MaxPool2dOptions(3).stride(2), 6), 2);
  EXPECT_EQ(size(MaxPool2dOptions(3).stride(2).ceil_mode(true), 6), 3);
  // ceil_mode drops a last window that would start in the padding: (5+2*1-2)/2 -> 3, not 4.
  EXPECT_EQ(size(MaxPool2dOptions(2).padding(1).ceil_mode(true), 5), 3);
  EXPECT_EQ(size(MaxPool2dOptions(2), 5), 2);
  EXPECT_EQ(MaxPool2d(MaxPool2dOptions({2, 1})).output_shape({3, 4, 5}), (Shape{3, 2, 5}));
}

TEST(MaxPool2d, GradientsMatchFiniteDifferences) {
  for (const auto& o :
       {MaxPool2dOptions(2), MaxPool2dOptions(3).stride(2).padding(1),
        MaxPool2dOptions(3).stride(2).ceil_mode(true), MaxPool2dOptions({2, 3}).stride({1, 2})}) {
    MaxPool2d pool(o);
    testing::expect_gradients_match(pool, testing::distinct_tensor({2, 3, 6, 7}, 3));
  }
}

TEST(MaxPool2d, NaNWinsAndTiesPickTheFirst) {
  MaxPool2d pool(MaxPool2dOptions(2));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(pool.forward(Tensor::from({1, 2, 2}, {1, nan, 3, 2})).item(0)));
  pool.forward(Tensor::from({1, 2, 2}, {4, 1, 4, 4}));
  EXPECT_TRUE(all_close(pool.backward(Tensor::ones({1, 1, 1})),
                        Tensor::from({1, 2, 2}, {1, 0, 0, 0}), 0, 0));
}

TEST(MaxPool2d, ErrorsNameTheLayerAndShapes) {
  EXPECT_THROW(MaxPool2d(MaxPool2dOptions(2).padding(2)), ValueError);
  EXPECT_THROW(MaxPool2d(MaxPool2dOptions(0)), ValueError);
  MaxPool2d pool(MaxPool2dOptions(3).stride(2).padding(1));
  EXPECT_EQ(pool.repr(),
            "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)");
  testing::expect_error_mentions<ShapeError>(
      [&] {
        pool.forward(Tensor({5, 5}));
      },
      {"MaxPool2d(kernel_size=3", "[5, 5]"});
  testing::expect_error_mentions<ShapeError>(
      [&] {
        MaxPool2d(MaxPool2dOptions(3)).forward(Tensor({1, 1, 2, 2}));
      },
      {"[1, 1, 2, 2]", "too small"});
  pool.forward(Tensor({1, 2, 6, 6}));
  testing::expect_error_mentions<ShapeError>(
      [&] {
        pool.backward(Tensor({1, 2, 6, 6}));
      },
      {"[1, 2, 6, 6]", "[1, 2, 3, 3]"});
}

TEST(AdaptiveAvgPool2d, GlobalAverage) {
  AdaptiveAvgPool2d pool(1);
  const Tensor x = testing::random_tensor({2, 3, 5, 4}, 1);
  const Tensor y = pool.forward(x);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 1, 1}));
  for (std::int64_t p = 0; p < 6; ++p) {
    double s = 0;
    for (std::int64_t i = 0; i < 20; ++i) s += x.item(p * 20 + i);
    EXPECT_NEAR(y.item(p), s / 20, 1e-6);
  }
  const Tensor dx = pool.backward(Tensor::full({2, 3, 1, 1}, 2.0));
  EXPECT_TRUE(all_close(dx, Tensor::full({2, 3, 5, 4}, 0.1), 1e-6, 0));
}

TEST(AdaptiveAvgPool2d, OverlappingBinsAsPyTorch) {
  // 5 -> 3 bins: rows [0, 2), [1, 4), [3, 5); 4 -> 2 bins: cols [0, 2), [2, 4).
  Tensor x({1, 5, 4});
  for (std::int64_t i = 0; i < 20; ++i) x.data<float>()[i] = static_cast<float>(i);
  AdaptiveAvgPool2d pool({3, 2});
  const Tensor y = pool.forward(x);
  // Bin (r0, r1, c0, c1) of a row-major 5x4 ramp averages to 4*(r0+r1-1)/2 + (c0+c1-1)/2.
  EXPECT_TRUE(
      all_close(y, Tensor::from({1, 3, 2}, {2.5f, 4.5f, 8.5f, 10.5f, 14.5f, 16.5f}), 1e-6, 0));
  testing::expect_gradients_match(pool, testing::random_tensor({2, 2, 5, 4}, 2));
  AdaptiveAvgPool2d up({4, 3});  // more bins than rows: windows overlap or repeat
  testing::expect_gradients_match(up, testing::random_tensor({1, 2, 3, 2}, 3));
}

TEST(AdaptiveAvgPool2d, Errors) {
  EXPECT_THROW(AdaptiveAvgPool2d(0), ValueError);
  AdaptiveAvgPool2d pool(1);
  EXPECT_EQ(pool.repr(), "AdaptiveAvgPool2d(output_size=1)");
  EXPECT_EQ(AdaptiveAvgPool2d({1, 1}).repr(), "AdaptiveAvgPool2d(output_size=(1, 1))");
  testing::expect_error_mentions<ShapeError>(
      [&] {
        pool.forward(Tensor({2, 3}));
      },
      {"AdaptiveAvgPool2d(output_size=1)", "[2, 3]"});
  pool.forward(Tensor({2, 3, 4, 4}));
  testing::expect_error_mentions<ShapeError>(
      [&] {
        pool.backward(Tensor({2, 3}));
      },
      {"[2, 3]", "[2, 3, 1, 1]"});
}

}  // namespace
}  // namespace syncbn::nn

// ---- the other ranks, AvgPool, dilation (PyTorch's own values are in layer_goldens_test) ----
namespace syncbn::nn {
namespace {
using testing::all_close;

TEST(MaxPoolNd, HandComputed1dAnd3dAndDilation) {
  MaxPool1d pool1(MaxPool1dOptions(2));
  EXPECT_TRUE(all_close(pool1.forward(Tensor::from({1, 1, 5}, {1, 5, 2, 0, 3})),
                        Tensor::from({1, 1, 2}, {5, 2}), 0, 0));
  // Dilation 2: the one window reads positions 0, 2, 4: max(4, 1, 8).
  MaxPool1d dilated(MaxPool1dOptions(3).stride(1).dilation(2));
  EXPECT_TRUE(all_close(dilated.forward(Tensor::from({1, 5}, {4, 9, 1, 2, 8})),
                        Tensor::from({1, 1}, {8}), 0, 0));
  // 2x2x2 cube 0..7: one window covers it all; its max is the last element.
  MaxPool3d pool3(MaxPool3dOptions(2));
  Tensor cube({1, 1, 2, 2, 2});
  for (int i = 0; i < 8; ++i) cube.data<float>()[i] = static_cast<float>(i);
  EXPECT_EQ(pool3.forward(cube).item(0), 7.f);
  const Tensor dx = pool3.backward(Tensor::from({1, 1, 1, 1, 1}, {3}));
  EXPECT_EQ(dx.item(7), 3.f);
  EXPECT_EQ(testing::sum(dx), 3.0);
}

TEST(AvgPoolNd, DivisorsFollowPyTorch) {
  // 1-D [1, 2, 3, 4], kernel 3, stride 2, padding 1: windows {pad, 1, 2} and {2, 3, 4}.
  const Tensor x = Tensor::from({1, 1, 4}, {1, 2, 3, 4});
  EXPECT_TRUE(all_close(AvgPool1d(AvgPool1dOptions(3).stride(2).padding(1)).forward(x),
                        Tensor::from({1, 1, 2}, {3.f / 3, 9.f / 3}), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(
      AvgPool1d(AvgPool1dOptions(3).stride(2).padding(1).count_include_pad(false)).forward(x),
      Tensor::from({1, 1, 2}, {3.f / 2, 9.f / 3}), 1e-6, 1e-6));
  // ceil_mode adds a last window [4, 5) that hangs past the input: [5] alone, divisor 1.
  EXPECT_TRUE(all_close(
      AvgPool1d(AvgPool1dOptions(2).ceil_mode(true)).forward(Tensor::from({1, 5}, {1, 2, 3, 4, 5})),
      Tensor::from({1, 3}, {1.5f, 3.5f, 5.f}), 1e-6, 1e-6));
}

TEST(PoolingNd, GradientsMatchFiniteDifferences) {
  for (const auto& o : {MaxPool1dOptions(3).stride(2).padding(1).ceil_mode(true),
                        MaxPool1dOptions(2).dilation(2).stride(1)}) {
    MaxPool1d pool(o);
    testing::expect_gradients_match(pool, testing::distinct_tensor({2, 3, 9}, 3));
  }
  MaxPool3d max3(MaxPool3dOptions(2).padding(1).ceil_mode(true));
  testing::expect_gradients_match(max3, testing::distinct_tensor({2, 2, 3, 4, 5}, 4));
  MaxPool2d dilated(MaxPool2dOptions(3).stride(2).padding(1).dilation(2));
  testing::expect_gradients_match(dilated, testing::distinct_tensor({1, 2, 8, 9}, 5));
  for (const bool include : {true, false}) {
    AvgPool1d a1(
        AvgPool1dOptions(3).stride(2).padding(1).ceil_mode(true).count_include_pad(include));
    testing::expect_gradients_match(a1, testing::random_tensor({2, 3, 8}, 6));
    AvgPool2d a2(
        AvgPool2dOptions({3, 2}).stride({2, 3}).padding(1).ceil_mode(true).count_include_pad(
            include));
    testing::expect_gradients_match(a2, testing::random_tensor({2, 2, 6, 7}, 7));
    AvgPool3d a3(AvgPool3dOptions(2).stride(2).padding(1).count_include_pad(include));
    testing::expect_gradients_match(a3, testing::random_tensor({1, 2, 3, 4, 5}, 8));
  }
  AdaptiveAvgPool1d ad1(3);
  testing::expect_gradients_match(ad1, testing::random_tensor({2, 3, 7}, 9));
  AdaptiveAvgPool3d ad3({2, 3, 2});
  testing::expect_gradients_match(ad3, testing::random_tensor({2, 3, 5, 4}, 10));
}

TEST(PoolingNd, ReprsFollowPyTorch) {
  EXPECT_EQ(MaxPool1d(MaxPool1dOptions(3)).repr(),
            "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)");
  EXPECT_EQ(MaxPool2d(MaxPool2dOptions({3, 3}).stride({2, 2})).repr(),
            "MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=0, dilation=1, ceil_mode=False)");
  EXPECT_EQ(MaxPool3d(MaxPool3dOptions(2).ceil_mode(true)).repr(),
            "MaxPool3d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=True)");
  EXPECT_EQ(AvgPool1d(AvgPool1dOptions(3)).repr(),
            "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))");
  EXPECT_EQ(
      AvgPool2d(AvgPool2dOptions({3, 2}).stride(1).padding(1).count_include_pad(false)).repr(),
      "AvgPool2d(kernel_size=(3, 2), stride=1, padding=1)");
  EXPECT_EQ(AvgPool3d(AvgPool3dOptions(2)).repr(), "AvgPool3d(kernel_size=2, stride=2, padding=0)");
  EXPECT_EQ(AdaptiveAvgPool1d(3).repr(), "AdaptiveAvgPool1d(output_size=3)");
  EXPECT_EQ(AdaptiveAvgPool3d({2, 3, 4}).repr(), "AdaptiveAvgPool3d(output_size=(2, 3, 4))");
}

TEST(PoolingNd, ErrorsNameTheLayerAndShapes) {
  testing::expect_error_mentions<ValueError>([] { AvgPool2d(AvgPool2dOptions(2).padding(2)); },
                                             {"AvgPool2d(kernel_size=2", "half"});
  testing::expect_error_mentions<ValueError>(
      [] {
        MaxPool3d(MaxPool3dOptions({2, 0, 2}));
      },
      {"MaxPool3d(", "(2, 0, 2)", "positive"});
  testing::expect_error_mentions<ValueError>([] { MaxPool1d(MaxPool1dOptions(2).dilation(0)); },
                                             {"MaxPool1d(", "dilation"});
  testing::expect_error_mentions<ValueError>(
      [] {
        AdaptiveAvgPool3d({1, 0, 1});
      },
      {"AdaptiveAvgPool3d", "(1, 0, 1)"});
  testing::expect_error_mentions<ShapeError>(
      [] {
        MaxPool1d(MaxPool1dOptions(2)).forward(Tensor({1, 2, 3, 4}));
      },
      {"MaxPool1d(kernel_size=2", "2D or 3D", "[1, 2, 3, 4]"});
  testing::expect_error_mentions<ShapeError>(
      [] {
        AvgPool3d(AvgPool3dOptions(2)).forward(Tensor({2, 3, 4}));
      },
      {"AvgPool3d(kernel_size=2", "4D or 5D", "[2, 3, 4]"});
  testing::expect_error_mentions<ShapeError>(
      [] {
        AvgPool1d(AvgPool1dOptions(3)).forward(Tensor({1, 2, 2}));
      },
      {"AvgPool1d(kernel_size=(3,)", "[1, 2, 2]", "too small"});
  testing::expect_error_mentions<ShapeError>(
      [] {
        AdaptiveAvgPool1d(2).forward(Tensor({1, 2, 0}));
      },
      {"AdaptiveAvgPool1d", "[1, 2, 0]"});
  AvgPool1d pool(AvgPool1dOptions(2));
  pool.forward(Tensor({1, 2, 6}));
  testing::expect_error_mentions<ShapeError>(
      [&] {
        pool.backward(Tensor({1, 2, 2}));
      },
      {"AvgPool1d", "[1, 2, 2]", "[1, 2, 3]"});
  EXPECT_THROW(AvgPool1d(AvgPool1dOptions(2)).backward(Tensor({1, 2, 3})), ValueError);
}

}  // namespace
}  // namespace syncbn::nn
