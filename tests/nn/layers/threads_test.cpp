// The thread setting, and GEMM-backed layers called from several threads at once (the
// in-process multi-rank tests run one rank per thread).
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/nn/layers/conv2d.hpp"
#include "syncbn/nn/layers/linear.hpp"
#include "syncbn/nn/layers/threads.hpp"

namespace syncbn {
namespace {

TEST(Threads, SetAndGet) {
  const int before = get_num_threads();
  set_num_threads(1);
  EXPECT_EQ(get_num_threads(), 1);
  set_num_threads(before);
  EXPECT_EQ(get_num_threads(), before);
  EXPECT_THROW(set_num_threads(0), ValueError);
  EXPECT_FALSE(blas_core().empty());
}

// Each thread runs its own layers; results must equal a serial run bit for bit.
TEST(Threads, LayersOnSeveralThreadsMatchASerialRun) {
  constexpr int kThreads = 4;
  auto run = [](int t) {
    nn::Conv2d conv(nn::Conv2dOptions(3, 8, 3).padding(1), 1);
    nn::Linear fc(nn::LinearOptions(8 * 6 * 6, 5), 2);
    const Tensor x = testing::random_tensor({4, 3, 6, 6}, 10 + t);
    const Tensor y = fc.forward(conv.forward(x).reshape({4, -1}));
    const Tensor dx = conv.backward(fc.backward(y).reshape({4, 8, 6, 6}));
    return std::vector<Tensor>{y, dx, conv.weight.grad, fc.weight.grad};
  };
  std::vector<std::vector<Tensor>> serial, parallel(kThreads);
  for (int t = 0; t < kThreads; ++t) serial.push_back(run(t));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int repeat = 0; repeat < 20; ++repeat) parallel[t] = run(t);
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t)
    for (std::size_t i = 0; i < serial[t].size(); ++i)
      EXPECT_EQ(max_abs_diff(serial[t][i], parallel[t][i]), 0.0)
          << "thread " << t << " tensor " << i;
}

}  // namespace
}  // namespace syncbn
