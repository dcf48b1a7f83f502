#pragma once
// Training configuration: what configs/*.yaml hold. Every key has a default, so a config file
// names only what it changes. Parsing is strict: an unknown or repeated key, a wrong type, a
// non-finite number or an out-of-range value is a ConfigError naming the file, line, dotted key
// and what was expected (with the nearest valid key for a typo). Keys that must agree are
// checked together here too (model.norm group:G must divide every channel count), so a config
// that parses builds. Keys that choose a kind (model.norm, data.dataset, schedule.name) are
// parsed here, once, into the enums of kinds.hpp.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "syncbn/config/kinds.hpp"
#include "syncbn/config/model_spec.hpp"

namespace syncbn::config {

// Upper bounds that keep sizes far from overflow in what is computed from them.
inline constexpr std::int64_t kMaxThreads = 1024;
inline constexpr std::int64_t kMaxBatchSize = std::int64_t{1} << 24;
inline constexpr std::int64_t kMaxSyntheticSize = 100'000'000;  // the sampler holds N indices
inline constexpr double kMaxBucketMb = 1024;
inline constexpr double kMaxWarmupEpochs = 1e6;
inline constexpr std::int64_t kMaxImageSide = 1 << 14;
inline constexpr std::int64_t kMaxCropPadding = 64;
inline constexpr std::int64_t kMaxPrefetch = 64;  // batches held in memory ahead

// One ResNet stage: `blocks` BasicBlocks of `channels`, the first with `stride`.
struct StageConfig {
  std::int64_t channels = 32;
  std::int64_t blocks = 1;
  std::int64_t stride = 1;
};

// The model: written out in the model language (`layers`, configs/README.md), or the template
// (a CIFAR-style ResNet v1 from stem_channels, stages, norm, ...) when `layers` is empty.
struct ModelConfig {
  std::string name = "resnet";
  // One sample's shape: [C], [C, L], [C, H, W] or [C, D, H, W] ([C, H, W] for the template).
  std::vector<std::int64_t> input = {1, 28, 28};
  std::int64_t num_classes = 10;
  // The template's normalisation layers. With `layers`, only sync_batch (norm_conversion:
  // sync_batch) or batch (norm_conversion: none): whether BatchNorm becomes SyncBatchNorm.
  Norm norm;                      // default sync_batch
  std::vector<LayerSpec> layers;  // the model language's top-level layers, expanded
  InitKind init = InitKind::Resnet;
  std::int64_t sync_group_size = 0;  // ranks per SyncBatchNorm group (0 = all)
  // The template (ignored when `layers` is set):
  std::int64_t stem_channels = 32;
  std::vector<StageConfig> stages = {{32, 1, 1}, {64, 1, 2}, {128, 1, 2}};  // at least one
  double dropout = 0.0;
  double bn_momentum = 0.1;  // <= 1; negative = cumulative average (PyTorch's momentum=None)
  double bn_eps = 1e-5;
};

struct DataConfig {
  DatasetKind dataset = DatasetKind::FashionMnist;
  std::string dir = "/usr/share/datasets/fashion-mnist";
  bool augment = false;
  std::int64_t synthetic_train_size = 1024;  // each at most kMaxSyntheticSize
  std::int64_t synthetic_test_size = 256;
  std::int64_t limit_train = 0;  // use only the first N training samples (0 = all)
  std::int64_t limit_test = 0;
  // image_folder: the shorter side is resized to this (bilinear) before the center crop to
  // model.input's H, W; 0 = the larger of H and W.
  std::int64_t resize = 0;  // at most kMaxImageSide
  // Per-channel normalisation after ToTensor scaling; empty = the data set's own default.
  std::vector<double> mean, std;
  std::int64_t crop_padding = 4;  // augment's random-crop padding, at most kMaxCropPadding
  std::int64_t prefetch = 2;  // training batches loaded ahead in a background thread; 0 = inline
};

struct OptimizerConfig {
  std::string name = "sgd";  // sgd | adamw
  // The learning rate as given, whatever the world size (times it with train.scale_lr).
  double lr = 0.1;
  double momentum = 0.9;                     // sgd only
  bool nesterov = true;                      // sgd only
  double weight_decay = 5e-4;                // when the file omits it: 5e-4 for sgd, 0.01 for adamw
  std::vector<double> betas = {0.9, 0.999};  // adamw only, each in [0, 1)
  double eps = 1e-8;                         // adamw only
  double clip_grad_norm = 0;  // max 2-norm of all gradients after the allreduce (0 = off)
};

struct ScheduleConfig {
  ScheduleKind name = ScheduleKind::Cosine;
  double warmup_epochs = 0;
  std::int64_t step_size = 1;  // step: epochs between decays
  double gamma = 0.1;
};

struct TrainConfig {
  std::int64_t batch_size = 64;  // per rank, at most kMaxBatchSize
  std::int64_t epochs = 10;
  std::int64_t max_steps = 0;  // stop after this many steps in total (0 = no limit)
  std::uint64_t seed = 0;
  std::int64_t threads = 1;  // per rank, at most kMaxThreads
  double bucket_mb = 4;      // gradient allreduce bucket size, at most kMaxBucketMb
  std::string checkpoint_dir = "runs/default";  // not empty
  std::int64_t checkpoint_every = 0;  // steps between checkpoints (0 = end of each epoch only)
  std::string metrics = "";           // JSON-lines file ("" = <checkpoint_dir>/metrics.jsonl)
  bool skip_nonfinite = false;        // skip a step with a NaN/Inf loss instead of stopping
  std::int64_t accumulate = 1;  // micro-batches of batch_size per optimizer step, at most 1024
  bool scale_lr = false;        // linear rule: the optimizer runs at lr * world size
  double label_smoothing = 0;   // CrossEntropyLoss's, in [0, 1]
  std::int64_t log_every = 0;   // steps between progress lines (0 = every log_seconds)
  double log_seconds = 10;      // wall time between progress lines when log_every is 0
};

struct Config {
  ModelConfig model;
  DataConfig data;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  TrainConfig train;
  std::string source = "<defaults>";  // file the config came from, for messages
};

// One override: "key=value" with a dotted key as in the file (train.epochs=3, model.norm=batch);
// the value is a YAML scalar or flow sequence ("[1, 28, 28]"). An error in a value an override
// set cites `origin`, how the user wrote it ("--epochs 0"), instead of a line of the file; it
// defaults to "--set <assignment>".
struct Override {
  Override(std::string assignment_text, std::string origin_text = "");
  Override(const char* assignment_text) : Override(std::string(assignment_text)) {}
  std::string assignment, origin;
};
using Overrides = std::vector<Override>;

// Parses YAML text; `origin` names it in errors. Overrides apply in order, after the text.
// Throws ConfigError.
Config parse_config(const std::string& yaml, const std::string& origin,
                    const Overrides& overrides = {});
// Reads and parses a file. Throws ConfigError (including when the path is not a regular file
// or cannot be read; a directory or FIFO is refused before it is opened).
Config load_config(const std::string& path, const Overrides& overrides = {});
// The effective configuration as YAML (logged at start and stored in checkpoints);
// parse_config(to_yaml(c)) gives c back (a model language config with its layers expanded).
std::string to_yaml(const Config& config);

// The module tree `model` describes: its `layers`, or the template's expansion into the same
// language (conv1, bn1, relu, layer1..K of residual blocks, avgpool, flatten, [dropout], fc).
// Throws ConfigError for a template no reader would accept (no stages, group:G not dividing).
std::vector<LayerSpec> model_layers(const ModelConfig& model);

}  // namespace syncbn::config
