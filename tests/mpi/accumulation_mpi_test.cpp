// Gradient accumulation (train.accumulate) with SyncBatchNorm under DDP equals PyTorch running
// ONE process over each micro-batch's whole slice with plain BatchNorm, accumulating loss / k
// (goldens/accumulation.txt from generate_accumulation_goldens.py). Each of W ranks holds rows
// [r * 12 / W, (r + 1) * 12 / W) of every micro-batch; runs at every np of the suite (12 divides
// among 1..4 ranks; at np 1 the model keeps plain BatchNorm).
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <fstream>

#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include "mpi_world.hpp"
#include "support/golden_records.hpp"
#include "syncbn/builders/model.hpp"
#include "syncbn/config/config.hpp"
#include "syncbn/parallel/data_parallel.hpp"
#include "syncbn/train/accumulation.hpp"
#include "syncbn/train/norm_conversion.hpp"
#include "syncbn/train/trainer.hpp"

namespace syncbn::train {
namespace {
constexpr std::int64_t kMicro = 3, kSamples = 12, kFeatures = 5;
constexpr double kTol = 1e-5;

std::map<std::string, std::vector<double>> read_goldens() {
  return testing::read_golden_records(SYNCBN_ACCUMULATION_GOLDENS);
}

void expect_close(const Tensor& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.numel(), static_cast<std::int64_t>(want.size())) << what;
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got.data<float>()[i], want[i], kTol + kTol * std::abs(want[i]))
        << what << "[" << i << "]";
}

const char* const kModel = R"(
model:
  input: [5]
  num_classes: 3
  layers:
    fc1: {type: linear, out_features: 4}
    bn1: {type: batch_norm1d}
    relu1: relu
    fc2: {type: linear, out_features: $num_classes}
)";

TEST(AccumulationMpi, SyncBatchNormMicroBatchesEqualPyTorchOnTheWholeSlices) {
  const auto goldens = read_goldens();
  ASSERT_FALSE(goldens.empty()) << "missing " << SYNCBN_ACCUMULATION_GOLDENS;
  auto world = testing::mpi_world_ptr();
  const std::int64_t w = world->size(), r = world->rank(), rows = kSamples / w;
  const config::Config c = config::parse_config(kModel, "accumulation");
  auto model = builders::build_model(c.model, 0);
  nn::StateDict state = model->state_dict();
  for (auto& [key, value] : state) {
    if (value.dtype() != DType::Float32) continue;
    const auto& v = goldens.at("init." + key);
    value = Tensor::from(value.shape(), std::vector<float>(v.begin(), v.end()));
  }
  model->load_state_dict(state);
  model = convert_norms(model, plan_sync_groups(c, static_cast<int>(w)), world);
  nn::DistributedDataParallel ddp(model, world, nn::DataParallelOptions().broadcast_buffers(false));
  model->train();
  model->zero_grad();
  CrossEntropyLoss loss;
  std::int64_t next = 0;
  const auto this_ranks_slice = [&] {
    const auto& x = goldens.at("micro" + std::to_string(next) + ".x");
    const auto& y = goldens.at("micro" + std::to_string(next) + ".y");
    ++next;
    std::vector<float> images(x.begin() + r * rows * kFeatures,
                              x.begin() + (r + 1) * rows * kFeatures);
    std::vector<std::int64_t> labels(y.begin() + r * rows, y.begin() + (r + 1) * rows);
    return data::Batch{Tensor::from({rows, kFeatures}, images), labels};
  };
  std::vector<float> extra{0.f};
  const AccumulatedStep done = accumulate_gradients(ddp, loss, kMicro, this_ranks_slice, extra);
  EXPECT_EQ(next, kMicro);
  EXPECT_EQ(done.samples, kMicro * rows);
  const double want_loss = goldens.at("loss")[0];
  EXPECT_NEAR(extra[0] / static_cast<double>(w), want_loss, kTol * want_loss);
  for (const auto& [name, p] : model->named_parameters())
    expect_close(p->grad, goldens.at("grad." + name), "grad of " + name);
  for (const auto& [key, value] : model->state_dict())
    if (goldens.count("after." + key)) expect_close(value, goldens.at("after." + key), key);
}

// train.scale_lr: the optimizer runs at optimizer.lr x world size (the metrics record it), and
// the start line says so.
TEST(ScaleLrMpi, OptimizerRunsAtLrTimesWorldSize) {
  auto world = testing::mpi_world_ptr();
  std::int64_t root_pid = world->rank() == 0 ? ::getpid() : 0;
  world->allreduce(&root_pid, 1);
  const std::string dir = ::testing::TempDir() + "syncbn_scale_lr_" + std::to_string(root_pid);
  const config::Config c = config::parse_config(R"(
model: {input: [1, 8, 8], num_classes: 4, stem_channels: 8, stages: [{channels: 8, blocks: 1, stride: 1}]}
data: {dataset: synthetic, synthetic_train_size: 48, synthetic_test_size: 8}
optimizer: {lr: 0.01}
schedule: {name: constant}
train: {batch_size: 8, epochs: 1, scale_lr: true}
)",
                                                "scale_lr", {"train.checkpoint_dir=" + dir});
  std::ostringstream report;
  RunOptions options;
  if (world->rank() == 0) options.log = &report;
  run_training(c, world, options);
  if (world->rank() != 0) return;
  EXPECT_NE(report.str().find("x world size, train.scale_lr"), std::string::npos) << report.str();
  std::ifstream in(dir + "/metrics.jsonl");
  const std::string line((std::istreambuf_iterator<char>(in)), {});
  std::smatch lr;
  ASSERT_TRUE(std::regex_search(line, lr, std::regex("\"lr\": ([0-9.e+-]+)"))) << line;
  EXPECT_NEAR(std::stod(lr[1]), 0.01 * static_cast<double>(world->size()), 1e-9) << line;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace syncbn::train
