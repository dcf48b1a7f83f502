// model.sync_group_size under mpirun: with k = 2 on 4 ranks, each SyncBatchNorm combines only
// its group's statistics while the gradients still average over all ranks. The oracle, on rank
// 0 alone, is that definition written out with plain BatchNorm: one replica per group (same
// parameters, own running statistics) fed the concatenated batches of the group's ranks, the
// gradient the mean of the replicas' gradients (DDP's average over equal local batches), one
// SGD step, parameters copied back to every replica. The checkpoint holds rank 0's state, so
// group 0's running statistics.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "mpi_world.hpp"
#include "support/test_util.hpp"
#include "syncbn/builders/data.hpp"
#include "syncbn/builders/model.hpp"
#include "syncbn/config/config.hpp"
#include "syncbn/data/sampler.hpp"
#include "syncbn/io/safetensors.hpp"
#include "syncbn/train/loss.hpp"
#include "syncbn/train/sgd.hpp"
#include "syncbn/train/trainer.hpp"

namespace syncbn::train {
namespace {

constexpr std::int64_t kSteps = 4, kBatch = 8;

config::Config grouped_job(const std::string& dir, int group_size) {
  return config::parse_config(
      R"(
model: {input: [1, 8, 8], num_classes: 4, norm: sync_batch, stem_channels: 8,
        stages: [{channels: 8, blocks: 1, stride: 1}, {channels: 16, blocks: 1, stride: 2}]}
data: {dataset: synthetic, synthetic_train_size: 256, synthetic_test_size: 32}
optimizer: {lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.0001}
schedule: {name: constant}
train: {epochs: 1, seed: 4}
)",
      "sync_groups",
      {"train.batch_size=" + std::to_string(kBatch), "train.checkpoint_dir=" + dir,
       "train.max_steps=" + std::to_string(kSteps),
       "model.sync_group_size=" + std::to_string(group_size)});
}

// Every replica's gradients averaged into replica 0's.
void average_gradients(const std::vector<std::shared_ptr<nn::Module>>& replicas) {
  auto first = replicas[0]->named_parameters();
  for (std::size_t r = 1; r < replicas.size(); ++r) {
    auto other = replicas[r]->named_parameters();
    for (std::size_t i = 0; i < first.size(); ++i) {
      float* sum = first[i].second->grad.data<float>();
      const float* add = other[i].second->grad.data<float>();
      for (std::int64_t j = 0; j < first[i].second->grad.numel(); ++j) sum[j] += add[j];
    }
  }
  for (auto& [name, p] : first) {
    float* g = p->grad.data<float>();
    for (std::int64_t j = 0; j < p->grad.numel(); ++j) g[j] /= static_cast<float>(replicas.size());
  }
}

// Group-wise BatchNorm training as defined above, for `world` ranks in groups of `k`.
nn::StateDict grouped_reference(const config::Config& c, int world, int k) {
  std::vector<std::shared_ptr<nn::Module>> replicas;
  for (int g = 0; g < world / k; ++g)
    replicas.push_back(builders::build_model(c.model, c.train.seed));
  const auto train_data = builders::make_dataset(c, data::Split::Train);
  std::vector<data::DistributedSampler> samplers;
  for (int r = 0; r < world; ++r) {
    samplers.emplace_back(train_data->size(), data::DistributedSamplerOptions(world, r)
                                                  .seed(c.train.seed)
                                                  .batch_size(c.train.batch_size));
    samplers.back().set_epoch(0);
  }
  SGD sgd(replicas[0]->named_parameters(), SGDOptions(c.optimizer.lr)
                                               .momentum(c.optimizer.momentum)
                                               .nesterov(c.optimizer.nesterov)
                                               .weight_decay(c.optimizer.weight_decay));
  CrossEntropyLoss loss;
  for (std::int64_t step = 0; step < kSteps; ++step) {
    std::vector<std::vector<std::int64_t>> group_indices(replicas.size());
    for (int r = 0; r < world; ++r) {
      const auto batch = samplers[static_cast<std::size_t>(r)].next_batch();
      auto& into = group_indices[static_cast<std::size_t>(r / k)];
      into.insert(into.end(), batch.begin(), batch.end());
    }
    for (std::size_t g = 0; g < replicas.size(); ++g) {
      const data::Batch batch = train_data->get_batch(group_indices[g]);
      replicas[g]->train();
      replicas[g]->zero_grad();
      loss.forward(replicas[g]->forward(batch.images), batch.labels);
      replicas[g]->backward(loss.backward());
    }
    average_gradients(replicas);
    sgd.step();
    auto trained = replicas[0]->named_parameters();
    for (std::size_t g = 1; g < replicas.size(); ++g) {
      auto copy = replicas[g]->named_parameters();
      for (std::size_t i = 0; i < trained.size(); ++i)
        copy[i].second->value = trained[i].second->value.clone();
    }
  }
  return replicas[0]->state_dict();
}

TEST(SyncGroupsMpi, GroupsOfTwoOnFourRanksNormaliseWithinTheirGroup) {
  auto world = testing::mpi_world_ptr();
  if (world->size() != 4) GTEST_SKIP() << "needs 4 ranks (mpi_np4)";
  std::int64_t root_pid = world->rank() == 0 ? ::getpid() : 0;
  world->allreduce(&root_pid, 1);
  const std::string dir = ::testing::TempDir() + "syncbn_groups_" + std::to_string(root_pid);
  const config::Config c = grouped_job(dir, 2);
  const Summary run = run_training(c, world, {});
  EXPECT_EQ(run.steps, kSteps);
  EXPECT_EQ(run.sync_layers, 6);
  if (world->rank() != 0) return;
  const auto saved = io::load_safetensors(dir + "/last.safetensors").tensors;
  const nn::StateDict expected = grouped_reference(c, 4, 2);
  const nn::StateDict all_ranks = grouped_reference(c, 4, 4);
  double group_effect = 0;
  for (const auto& [key, value] : expected) {
    ASSERT_TRUE(saved.count(key)) << key;
    if (value.dtype() == DType::Int64) {
      EXPECT_EQ(value.item(), saved.at(key).item()) << key;
      continue;
    }
    EXPECT_TRUE(testing::all_close(saved.at(key), value, 1e-4, 1e-6)) << key;
    group_effect = std::max(group_effect, max_abs_diff(value, all_ranks.at(key)));
  }
  // The oracle can tell the groups apart: all four ranks in one group train another model.
  EXPECT_GT(group_effect, 1e-3);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace syncbn::train
