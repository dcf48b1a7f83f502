// The defining property: SyncBatchNorm over W ranks holding slices of a batch equals BatchNorm
// over the whole batch (outputs, dx, summed dweight/dbias, running stats), on the threaded group.
#include <gtest/gtest.h>

#include <array>

#include "support/batch_slices.hpp"
#include "support/counting_group.hpp"
#include "support/test_util.hpp"
#include "syncbn/dist/local.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"

namespace syncbn::nn {
namespace {
using testing::all_close;
using testing::random_tensor;

constexpr int kSteps = 3;

std::shared_ptr<BatchNormBase> plain_for(std::int64_t dims, BatchNormOptions o) {
  if (dims <= 3) return std::make_shared<BatchNorm1d>(o);
  if (dims == 4) return std::make_shared<BatchNorm2d>(o);
  return std::make_shared<BatchNorm3d>(o);
}

void init_affine(BatchNormBase& bn) {
  if (!bn.options().affine()) return;
  const std::int64_t c = bn.options().num_features();
  bn.weight.value = random_tensor({c}, 5, 1.f, 0.5f);
  bn.bias.value = random_tensor({c}, 6);
}

struct StepResult {
  Tensor y, dx, dweight, dbias, running_mean, running_var;
  std::int64_t tracked = 0;
};

StepResult step(BatchNormBase& bn, const Tensor& x, const Tensor& dy) {
  bn.zero_grad();
  StepResult r;
  r.y = bn.forward(x);
  r.dx = bn.backward(dy);
  if (bn.options().affine()) r.dweight = bn.weight.grad, r.dbias = bn.bias.grad;
  if (bn.options().track_running_stats())
    r.running_mean = bn.running_mean, r.running_var = bn.running_var,
    r.tracked = static_cast<std::int64_t>(bn.num_batches_tracked.item());
  return r;
}

Tensor sum(const std::vector<Tensor>& parts) {
  Tensor out = parts.at(0);
  for (std::size_t i = 1; i < parts.size(); ++i)
    for (std::int64_t j = 0; j < out.numel(); ++j)
      out.data<float>()[j] += parts[i].data<float>()[j];
  return out;
}

void expect_equivalent(int world, const Shape& shape, BatchNormOptions options) {
  SCOPED_TRACE("world " + std::to_string(world) + " shape " + shape_str(shape));
  std::vector<Tensor> xs, dys;
  for (int s = 0; s < kSteps; ++s)
    xs.push_back(random_tensor(shape, 10 + s, 0.5f * s, 1.f + s)),
        dys.push_back(random_tensor(shape, 20 + s));
  auto reference = plain_for(static_cast<std::int64_t>(shape.size()), options);
  init_affine(*reference);
  std::vector<StepResult> expected;
  for (int s = 0; s < kSteps; ++s) expected.push_back(step(*reference, xs[s], dys[s]));

  const auto bounds = testing::uneven_split(shape[0], world);
  std::vector<std::array<StepResult, kSteps>> got(world);
  dist::spawn_ranks(world, [&](std::shared_ptr<dist::ProcessGroup> group) {
    const int r = group->rank();
    SyncBatchNorm bn(options, group);
    init_affine(bn);
    const std::int64_t begin = bounds[r], rows = bounds[r + 1] - bounds[r];
    for (int s = 0; s < kSteps; ++s)
      got[r][s] = step(bn, xs[s].narrow(0, begin, rows), dys[s].narrow(0, begin, rows));
  });
  for (int s = 0; s < kSteps; ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    std::vector<Tensor> ys, dxs, dws, dbs;
    for (auto& rank : got)
      ys.push_back(rank[s].y), dxs.push_back(rank[s].dx), dws.push_back(rank[s].dweight),
          dbs.push_back(rank[s].dbias);
    EXPECT_TRUE(all_close(cat(ys), expected[s].y));
    EXPECT_TRUE(all_close(cat(dxs), expected[s].dx));
    if (options.affine()) {
      EXPECT_TRUE(all_close(sum(dws), expected[s].dweight, 1e-5, 1e-4));
      EXPECT_TRUE(all_close(sum(dbs), expected[s].dbias, 1e-5, 1e-4));
    }
    for (auto& rank : got) {
      if (!options.track_running_stats()) break;
      EXPECT_TRUE(all_close(rank[s].running_mean, expected[s].running_mean));
      EXPECT_TRUE(all_close(rank[s].running_var, expected[s].running_var));
      EXPECT_EQ(rank[s].tracked, expected[s].tracked);
    }
  }
}

TEST(SyncBatchNorm, EqualsBatchNormOverTheWholeBatch) {
  const std::vector<Shape> shapes = {{9, 3}, {10, 4, 5}, {11, 3, 5, 7}, {9, 2, 3, 2, 4}};
  for (int world = 1; world <= 4; ++world)
    for (const auto& shape : shapes)
      for (auto momentum : {std::optional<double>(0.1), std::optional<double>()})
        expect_equivalent(world, shape, BatchNormOptions(shape[1]).momentum(momentum));
}

TEST(SyncBatchNorm, EqualsBatchNormWithoutAffineOrRunningStats) {
  expect_equivalent(3, {8, 3, 4, 4}, BatchNormOptions(3).affine(false));
  expect_equivalent(3, {8, 3, 4, 4}, BatchNormOptions(3).track_running_stats(false));
}

TEST(SyncBatchNorm, OneCollectivePerForwardAndPerBackward) {
  for (int world : {2, 4, 8}) {
    dist::spawn_ranks(world, [&](std::shared_ptr<dist::ProcessGroup> group) {
      auto counting = std::make_shared<testing::CountingGroup>(*group);
      SyncBatchNorm bn(BatchNormOptions(64), counting);
      Tensor x = random_tensor({2, 64, 3, 3}, group->rank());
      bn.forward(x);
      EXPECT_EQ(counting->collectives, 1);
      EXPECT_EQ(counting->values, 3u * 64u);  // independent of world size
      bn.backward(x);
      EXPECT_EQ(counting->collectives, 2);
      EXPECT_EQ(counting->values, 5u * 64u);
      bn.eval();
      bn.forward(x);
      EXPECT_EQ(counting->collectives, 2);  // eval is local
    });
  }
}

TEST(SyncBatchNorm, LargeMeanVarianceMatchesFloat64Reference) {
  Tensor x = random_tensor({12, 4, 8, 8}, 7, 1e4f, 1.f);
  std::vector<double> var(4, 0.0), mean(4, 0.0);
  const std::int64_t per = 12 * 64;
  for (int pass = 0; pass < 2; ++pass)
    for (std::int64_t n = 0; n < 12; ++n)
      for (int c = 0; c < 4; ++c)
        for (int i = 0; i < 64; ++i) {
          const double v = x.data<float>()[(n * 4 + c) * 64 + i];
          if (pass == 0)
            mean[c] += v / per;
          else
            var[c] += (v - mean[c]) * (v - mean[c]) / (per - 1);
        }
  const auto bounds = testing::uneven_split(12, 3);
  dist::spawn_ranks(3, [&](std::shared_ptr<dist::ProcessGroup> group) {
    const int r = group->rank();
    SyncBatchNorm bn(BatchNormOptions(4).momentum(1.0), group);
    bn.forward(x.narrow(0, bounds[r], bounds[r + 1] - bounds[r]));
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(bn.running_var.data<float>()[c], var[c], 1e-4 * var[c]);
  });
}

TEST(SyncBatchNorm, EveryRankEmptyBehavesLikeAnEmptyBatch) {
  dist::spawn_ranks(3, [&](std::shared_ptr<dist::ProcessGroup> group) {
    SyncBatchNorm bn(BatchNormOptions(3), group);
    Tensor y = bn.forward(Tensor({0, 3, 2, 2}));
    EXPECT_EQ(y.numel(), 0);
    bn.backward(Tensor({0, 3, 2, 2}));
    EXPECT_EQ(bn.num_batches_tracked.item(), 1);
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(bn.running_mean.data<float>()[c], 0.f);
      EXPECT_EQ(bn.running_var.data<float>()[c], 1.f);
      EXPECT_EQ(bn.weight.grad.data<float>()[c], 0.f);
    }
  });
}

TEST(SyncBatchNorm, GlobalCountOfOneFailsOnEveryRank) {
  std::atomic<int> errors{0};
  dist::spawn_ranks(3, [&](std::shared_ptr<dist::ProcessGroup> group) {
    SyncBatchNorm bn(BatchNormOptions(2), group);
    try {
      bn.forward(Tensor({group->rank() == 2 ? 1 : 0, 2}));
    } catch (const ValueError& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find("Expected more than 1 value per channel"),
                std::string::npos);
    }
  });
  EXPECT_EQ(errors.load(), 3);
}

TEST(SyncBatchNorm, ChannelCountsThatDifferAcrossRanksFailEverywhere) {
  std::atomic<int> errors{0};
  EXPECT_THROW(dist::spawn_ranks(2,
                                 [&](std::shared_ptr<dist::ProcessGroup> group) {
                                   const std::int64_t c = group->rank() == 0 ? 3 : 4;
                                   SyncBatchNorm bn(BatchNormOptions(c), group);
                                   try {
                                     bn.forward(random_tensor({4, c}, 1));
                                   } catch (const CommError&) {
                                     ++errors;
                                     throw;
                                   }
                                 }),
               CommError);
  EXPECT_EQ(errors.load(), 2);
}

TEST(SyncBatchNorm, InputChecks) {
  SyncBatchNorm bn(3);
  try {
    bn.forward(Tensor({3}));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "expected at least 2D input (got 1D input)");
  }
  try {
    bn.forward(Tensor({2, 0}));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "SyncBatchNorm number of input channels should be non-zero");
  }
}

TEST(SyncBatchNorm, SubGroupsCombineOnlyTheirMembers) {
  Tensor x = random_tensor({8, 3, 2, 2}, 3, 1.f, 2.f);
  std::array<Tensor, 2> expected;
  for (int half = 0; half < 2; ++half) {
    BatchNorm2d bn(3);
    expected[half] = bn.forward(x.narrow(0, 4 * half, 4));
  }
  dist::spawn_ranks(4, [&](std::shared_ptr<dist::ProcessGroup> group) {
    const int r = group->rank();
    auto pair = group->split(r / 2, r);
    SyncBatchNorm bn(BatchNormOptions(3), pair);
    Tensor y = bn.forward(x.narrow(0, 2 * r, 2));
    const int half = r / 2, first = 2 * (r % 2);
    EXPECT_TRUE(all_close(y, expected[half].narrow(0, first, 2)));
  });
}

// spawn_ranks hands each rank an owning pointer: a module may keep its group past fn.
TEST(SyncBatchNorm, KeepsItsRankGroupAfterSpawnRanksReturns) {
  std::vector<std::shared_ptr<SyncBatchNorm>> layers(3);
  dist::spawn_ranks(3, [&](std::shared_ptr<dist::ProcessGroup> group) {
    layers[group->rank()] = std::make_shared<SyncBatchNorm>(BatchNormOptions(2), group);
  });
  for (int r = 0; r < 3; ++r) {
    ASSERT_NE(layers[r]->process_group(), nullptr);
    EXPECT_EQ(layers[r]->process_group()->rank(), r);
    EXPECT_EQ(layers[r]->process_group()->size(), 3);
    layers[r]->eval();  // local: no collective with the finished threads
    EXPECT_EQ(layers[r]->forward(Tensor({4, 2})).shape(), (Shape{4, 2}));
  }
}

TEST(SyncBatchNorm, WithoutAGroupIsBatchNorm) {
  SyncBatchNorm sync(BatchNormOptions(3));
  BatchNorm2d plain(3);
  Tensor x = random_tensor({4, 3, 2, 2}, 1);
  EXPECT_TRUE(all_close(sync.forward(x), plain.forward(x), 0, 0));
  EXPECT_TRUE(all_close(sync.backward(x), plain.backward(x), 0, 0));
}

}  // namespace
}  // namespace syncbn::nn
