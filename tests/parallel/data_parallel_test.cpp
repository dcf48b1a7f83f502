// DistributedDataParallel on the threaded group. The defining property: W ranks training a
// SyncBatchNorm model on slices of a batch end where one rank ends on the whole batch, with
// parameters identical on every rank; plus what each collective is for (rank 0's state at start,
// rank 0's buffers before a training forward, one allreduce per gradient bucket).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "support/counting_group.hpp"
#include "support/test_util.hpp"
#include "syncbn/dist/local.hpp"
#include "syncbn/nn/batchnorm.hpp"
#include "syncbn/nn/layers/layers.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"
#include "syncbn/parallel/data_parallel.hpp"
#include "syncbn/train/loss.hpp"
#include "syncbn/train/sgd.hpp"

namespace syncbn::nn {
namespace {
using testing::all_close;
using testing::CountingGroup;
using testing::error_of;
using testing::random_tensor;

constexpr std::int64_t kPerRank = 4;  // samples per rank and step
constexpr int kSteps = 3;

// Conv -> BatchNorm -> ReLU -> Linear; `seed` draws the weights, so ranks can start apart.
std::shared_ptr<Sequential> small_model(std::uint64_t seed) {
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Conv2d>(Conv2dOptions(2, 4, 3).padding(1), seed));
  m->push_back(std::make_shared<BatchNorm2d>(4));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<Flatten>());
  m->push_back(std::make_shared<Linear>(LinearOptions(4 * 4 * 4, 3), seed + 1));
  return m;
}

// The global batch of a step, the same on every rank; each rank trains on its rows.
Tensor global_images(int step, int world) {
  return random_tensor({kPerRank * world, 2, 4, 4}, 1000 + static_cast<std::uint32_t>(step));
}
std::vector<std::int64_t> labels(std::int64_t begin, std::int64_t end) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = begin; i < end; ++i) out.push_back((i * 7) % 3);
  return out;
}

train::SGD make_sgd(Module& m) {
  return train::SGD(m.named_parameters(), train::SGDOptions(0.1).momentum(0.9));
}

// One rank, plain BatchNorm, the whole batch of `world` ranks: what DDP must reproduce.
StateDict train_alone(int world) {
  auto model = small_model(100);
  train::SGD sgd = make_sgd(*model);
  train::CrossEntropyLoss loss;
  for (int step = 0; step < kSteps; ++step) {
    sgd.zero_grad();
    loss.forward(model->forward(global_images(step, world)), labels(0, kPerRank * world));
    model->backward(loss.backward());
    sgd.step();
  }
  return model->state_dict();
}

// Each rank starts from its own weights (seed 100 + rank); DDP must start them all at rank 0's.
StateDict train_data_parallel(std::shared_ptr<dist::ProcessGroup> group, double bucket_mb) {
  const int rank = group->rank(), world = group->size();
  auto model =
      convert_sync_batchnorm(small_model(100 + 10 * static_cast<std::uint64_t>(rank)), group);
  DistributedDataParallel ddp(model, group, DataParallelOptions().bucket_mb(bucket_mb));
  train::SGD sgd = make_sgd(*model);
  train::CrossEntropyLoss loss;
  for (int step = 0; step < kSteps; ++step) {
    const Tensor x = global_images(step, world).narrow(0, rank * kPerRank, kPerRank);
    sgd.zero_grad();
    loss.forward(ddp.forward(x), labels(rank * kPerRank, (rank + 1) * kPerRank));
    ddp.backward(loss.backward());
    sgd.step();
  }
  return model->state_dict();
}

TEST(DistributedDataParallel, RanksOnSlicesMatchOneRankOnTheWholeBatch) {
  for (int world = 1; world <= 4; ++world) {
    SCOPED_TRACE("world " + std::to_string(world));
    const StateDict alone = train_alone(world);
    std::vector<StateDict> ranks(static_cast<std::size_t>(world));
    // 1 KiB buckets: several per backward, so bucket boundaries are exercised too.
    dist::spawn_ranks(world, [&](std::shared_ptr<dist::ProcessGroup> group) {
      ranks[static_cast<std::size_t>(group->rank())] = train_data_parallel(group, 1.0 / 1024);
    });
    ASSERT_EQ(ranks[0].size(), alone.size());
    for (const auto& [key, value] : alone) {
      EXPECT_TRUE(all_close(ranks[0].at(key), value, 1e-4, 1e-5)) << key;
      for (int r = 1; r < world; ++r)  // replicas agree exactly, not just closely
        EXPECT_TRUE(all_close(ranks[static_cast<std::size_t>(r)].at(key), ranks[0].at(key), 0, 0))
            << key << " on rank " << r;
    }
  }
}

TEST(DistributedDataParallel, ConstructorCopiesRankZerosParametersAndBuffers) {
  for (int world = 1; world <= 3; ++world) {
    dist::spawn_ranks(world, [&](std::shared_ptr<dist::ProcessGroup> group) {
      const int rank = group->rank();
      auto model = small_model(static_cast<std::uint64_t>(7 + rank));
      auto bn = std::static_pointer_cast<BatchNorm2d>(model->child("1"));
      bn->running_mean.fill_(rank + 1.0);
      auto counting = std::make_shared<CountingGroup>(*group);
      DistributedDataParallel ddp(model, counting);
      // Rank 0's model, built here independently: the same seed and buffers.
      auto expected = small_model(7);
      std::static_pointer_cast<BatchNorm2d>(expected->child("1"))->running_mean.fill_(1.0);
      for (const auto& [key, value] : expected->state_dict())
        EXPECT_TRUE(all_close(model->state_dict().at(key), value, 0, 0)) << key << " rank " << rank;
      const auto tensors = model->named_parameters().size() + model->named_buffers().size();
      EXPECT_EQ(counting->collectives, world > 1 ? static_cast<int>(tensors) : 0);
    });
  }
}

// Plain BatchNorm keeps per-rank running statistics. With broadcast_buffers, the training
// forward starts from rank 0's: after a step on rank-specific data and a step on common data,
// every rank holds what rank 0 alone would hold. Without it, each keeps its own.
TEST(DistributedDataParallel, TrainingForwardStartsFromRankZerosBuffers) {
  constexpr int kWorld = 3;
  const Tensor common = random_tensor({5, 4}, 77);
  auto own = [](int rank) { return random_tensor({5, 4}, 50 + static_cast<std::uint32_t>(rank)); };
  for (bool broadcast : {true, false}) {
    SCOPED_TRACE(broadcast ? "broadcast_buffers on" : "broadcast_buffers off");
    dist::spawn_ranks(kWorld, [&](std::shared_ptr<dist::ProcessGroup> group) {
      const int rank = group->rank();
      auto bn = std::make_shared<BatchNorm1d>(4);
      auto counting = std::make_shared<CountingGroup>(*group);
      DistributedDataParallel ddp(bn, counting, DataParallelOptions().broadcast_buffers(broadcast));
      counting->collectives = 0;
      ddp.forward(own(rank));
      ddp.forward(common);
      EXPECT_EQ(counting->collectives, broadcast ? 2 : 0);
      ddp.eval();
      ddp.forward(common);  // eval: no collective, so ranks may run different eval batches
      EXPECT_EQ(counting->collectives, broadcast ? 2 : 0);
      // The oracle: one BatchNorm1d that saw rank 0's data (or, without broadcast, this rank's).
      BatchNorm1d alone(4);
      alone.forward(own(broadcast ? 0 : rank));
      alone.forward(common);
      EXPECT_TRUE(all_close(bn->running_mean, alone.running_mean, 0, 0)) << "rank " << rank;
      EXPECT_TRUE(all_close(bn->running_var, alone.running_var, 0, 0)) << "rank " << rank;
    });
  }
}

TEST(DistributedDataParallel, NoBufferBroadcastWithoutBuffersOrWithOneRank) {
  for (int world : {1, 2}) {
    dist::spawn_ranks(world, [&](std::shared_ptr<dist::ProcessGroup> group) {
      auto counting = std::make_shared<CountingGroup>(*group);
      auto linear = std::make_shared<Linear>(LinearOptions(3, 2));
      DistributedDataParallel plain(linear, counting);
      auto bn = std::make_shared<BatchNorm1d>(3);
      DistributedDataParallel with_buffers(bn, counting);
      counting->collectives = 0;
      plain.forward(random_tensor({4, 3}, 1));
      EXPECT_EQ(counting->collectives, 0);
      with_buffers.forward(random_tensor({4, 3}, 1));
      EXPECT_EQ(counting->collectives, world > 1 ? 1 : 0);
    });
  }
}

// Two Linear(10, 10): parameters of 100, 10, 100 and 10 floats. Buckets of 120 floats hold
// [weight, bias] of one layer each: 2 buckets, so 2 allreduces per backward. The second layer is
// the identity, so the first one's gradients are closed-form: dW0[o][i] = x[i] = rank + 1.
TEST(DistributedDataParallel, BackwardAveragesGradientsWithOneAllreducePerBucket) {
  for (int world = 1; world <= 4; ++world) {
    dist::spawn_ranks(world, [&](std::shared_ptr<dist::ProcessGroup> group) {
      auto model = std::make_shared<Sequential>();
      auto first = model->push_back(std::make_shared<Linear>(LinearOptions(10, 10), 3));
      auto second = std::static_pointer_cast<Linear>(
          model->push_back(std::make_shared<Linear>(LinearOptions(10, 10), 4)));
      second->weight.value.fill_(0);
      for (int i = 0; i < 10; ++i) second->weight.value.data<float>()[i * 10 + i] = 1;
      auto counting = std::make_shared<CountingGroup>(*group);
      DistributedDataParallel ddp(model, counting,
                                  DataParallelOptions().bucket_mb(120.0 * 4 / (1 << 20)));
      EXPECT_EQ(ddp.bucket_count(), 2u);
      EXPECT_EQ(DistributedDataParallel(model, group).bucket_count(), 1u);  // 25 MiB default
      ddp.zero_grad();
      ddp.forward(Tensor::full({1, 10}, group->rank() + 1.0));
      counting->collectives = 0;
      std::vector<float> extra{static_cast<float>(group->rank())};
      ddp.backward(Tensor::ones({1, 10}), extra);
      EXPECT_EQ(counting->collectives, world > 1 ? 2 : 0);
      EXPECT_EQ(extra[0], world * (world - 1) / 2.0f);  // summed, not averaged
      const float mean_x = (world + 1) / 2.0f;
      const auto& dw0 = std::static_pointer_cast<Linear>(first)->weight.grad;
      for (std::int64_t k = 0; k < dw0.numel(); ++k) ASSERT_EQ(dw0.item(k), mean_x) << k;
      EXPECT_EQ(second->bias.grad.item(0), 1.0f);
    });
  }
}

TEST(DistributedDataParallel, OptionsAndErrors) {
  const auto o = DataParallelOptions();
  EXPECT_EQ(o.bucket_mb(), 25);
  EXPECT_TRUE(o.broadcast_buffers());
  auto group = dist::make_local_group();
  EXPECT_NE(error_of([&] { DistributedDataParallel(nullptr, group); }).find("module is null"),
            std::string::npos);
  auto linear = std::make_shared<Linear>(LinearOptions(3, 2));
  for (double mb : {0.0, -1.0})
    EXPECT_NE(error_of([&] {
                DistributedDataParallel(linear, group, DataParallelOptions().bucket_mb(mb));
              }).find("bucket_mb must be > 0"),
              std::string::npos);
  // No group: the default one (a world of one here), as PyTorch's process_group=None.
  DistributedDataParallel ddp(linear);
  EXPECT_EQ(ddp.process_group()->size(), 1);
  EXPECT_EQ(ddp.module(), linear);
}

// Buckets are packed by each parameter's size: a gradient that is missing (no zero_grad, no
// backward) would silently shift every later gradient in its bucket.
TEST(GradientSync, RejectsAMissingGradientBeforeAnyCollective) {
  Linear linear(LinearOptions(3, 2));
  auto params = linear.named_parameters();
  linear.weight.grad = Tensor();  // undefined, as if never zeroed nor accumulated
  GradientSync sync(params, 1 << 20);
  std::vector<float> extra;
  auto group = dist::make_local_group();
  const std::string message = error_of([&] { sync.average(*group, extra); });
  EXPECT_NE(message.find("parameter 'weight' has no gradient, expected float32 of shape [2, 3]"),
            std::string::npos)
      << message;
  linear.weight.grad = Tensor::zeros({4});
  EXPECT_NE(error_of([&] { sync.average(*group, extra); }).find("a gradient of shape [4]"),
            std::string::npos);
}

}  // namespace
}  // namespace syncbn::nn
