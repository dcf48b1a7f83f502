// The data-parallel loop. Per step, every rank issues the same collectives in the same order:
// the SyncBatchNorm layers' own (one per layer per forward and per backward), then one
// allreduce per gradient bucket, whose last bucket also carries the loss so every rank makes
// the same decision about a non-finite step.
#include "syncbn/train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <ostream>

#include "checkpoint.hpp"
#include "reporter.hpp"
#include "syncbn/builders/data.hpp"
#include "syncbn/builders/model.hpp"
#include "syncbn/data/dataset.hpp"
#include "syncbn/data/loader.hpp"
#include "syncbn/data/sampler.hpp"
#include "syncbn/error.hpp"
#include "syncbn/io/safetensors.hpp"
#include "syncbn/nn/layers/threads.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"
#include "syncbn/parallel/data_parallel.hpp"
#include "syncbn/train/accumulation.hpp"
#include "syncbn/train/adamw.hpp"
#include "syncbn/train/loss.hpp"
#include "syncbn/train/model_files.hpp"
#include "syncbn/train/norm_conversion.hpp"
#include "syncbn/train/schedule.hpp"
#include "syncbn/train/sgd.hpp"

namespace syncbn::train {
namespace {
using Clock = std::chrono::steady_clock;
constexpr std::int64_t kEvalBatch = 500;

// The shortest text that reads back as `v` (0.1, not 0.100000).
std::string detail_number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.10g", v);
  return text;
}

LrSchedule make_schedule(const config::Config& c) {
  auto o = ScheduleOptions(c.optimizer.lr, schedule_kind(c.schedule.name))
               .step_size(c.schedule.step_size)
               .gamma(c.schedule.gamma)
               .t_max(static_cast<double>(c.train.epochs))
               .warmup_epochs(c.schedule.warmup_epochs);
  return LrSchedule(o);
}

std::unique_ptr<Optimizer> make_optimizer(const config::Config& c, NamedParameters parameters) {
  const auto& o = c.optimizer;
  if (o.name == "adamw")
    return std::make_unique<AdamW>(std::move(parameters), AdamWOptions(o.lr)
                                                              .beta1(o.betas[0])
                                                              .beta2(o.betas[1])
                                                              .eps(o.eps)
                                                              .weight_decay(o.weight_decay));
  return std::make_unique<SGD>(std::move(parameters), SGDOptions(o.lr)
                                                          .momentum(o.momentum)
                                                          .nesterov(o.nesterov && o.momentum > 0)
                                                          .weight_decay(o.weight_decay));
}

class TrainingRun {
 public:
  TrainingRun(const config::Config& c, std::shared_ptr<dist::ProcessGroup> world,
              const RunOptions& options);
  Summary run();

 private:
  void train_epoch(std::int64_t epoch);
  void start_loader();
  data::Batch next_batch();
  bool train_step(std::int64_t epoch, std::int64_t step);
  void evaluate(double& loss, double& accuracy);
  void checkpoint();
  Summary evaluate_only();
  void export_model_if_asked();
  std::string checkpoint_path() const { return detail::checkpoint_file(c_.train.checkpoint_dir); }
  // What the position counts in; see detail::PositionBasis.
  detail::PositionBasis basis() const {
    return {world_->size(), c_.train.batch_size, c_.train.seed, sampler_->dataset_size()};
  }
  // Unsynchronised BatchNorm keeps per-rank running statistics. PyTorch DDP broadcasts rank 0's
  // buffers before every forward; in training mode they do not affect the output and rank 0's
  // never change by it, so broadcasting before each evaluation and checkpoint gives the same
  // evaluated and saved model (rank 0's) with fewer collectives.
  void share_buffers() {
    if (world_->size() > 1 && summary_.sync_layers == 0) ddp_->sync_buffers();
  }
  bool out_of_steps() const {
    return summary_.preempted ||
           (c_.train.max_steps > 0 && position_.global_step >= c_.train.max_steps);
  }
  // Optimizer steps in `micro_batches` (train.accumulate of them per step, the last one short).
  std::int64_t optimizer_steps(std::int64_t micro_batches) const {
    return (micro_batches + c_.train.accumulate - 1) / c_.train.accumulate;
  }
  // Optimizer steps the whole run takes (for the progress lines' ETA).
  std::int64_t total_steps() const {
    const std::int64_t all = c_.train.epochs * optimizer_steps(sampler_->steps_per_epoch());
    return c_.train.max_steps > 0 ? std::min(all, c_.train.max_steps) : all;
  }
  bool stop_requested() const { return options_.stop_requested && options_.stop_requested->load(); }

  const config::Config& c_;
  std::shared_ptr<dist::ProcessGroup> world_;
  RunOptions options_;
  std::unique_ptr<data::Dataset> train_data_, test_data_;
  std::shared_ptr<nn::Module> model_;
  std::unique_ptr<Optimizer> optimizer_;
  LrSchedule schedule_;
  std::unique_ptr<data::DistributedSampler> sampler_;
  // This epoch's batches, loaded ahead (data.prefetch); dropped before set_epoch changes the data.
  std::unique_ptr<data::PrefetchLoader> loader_;
  double wait_ms_sum_ = 0, wait_ms_max_ = 0;  // this epoch's data waits
  std::int64_t waits_ = 0;
  std::unique_ptr<nn::DistributedDataParallel> ddp_;
  CrossEntropyLoss loss_;
  double lr_scale_ = 1;  // train.scale_lr: the world size
  detail::Reporter reporter_;
  detail::Position position_;
  detail::Resumed resumed_;
  Summary summary_;
  SyncGroups sync_groups_;
  double epoch_loss_ = 0, train_seconds_ = 0;
  std::int64_t epoch_steps_ = 0, images_ = 0;
  Clock::time_point epoch_start_;
};

std::string metrics_path(const config::Config& c) {
  if (!c.train.metrics.empty()) return c.train.metrics;
  std::filesystem::create_directories(c.train.checkpoint_dir);
  return (std::filesystem::path(c.train.checkpoint_dir) / "metrics.jsonl").string();
}

TrainingRun::TrainingRun(const config::Config& c, std::shared_ptr<dist::ProcessGroup> world,
                         const RunOptions& options)
    : c_(c),
      world_(std::move(world)),
      options_(options),
      schedule_(make_schedule(c)),
      loss_(CrossEntropyLossOptions().label_smoothing(c.train.label_smoothing)),
      reporter_(options.log, options.progress_bar, options.log ? metrics_path(c) : "",
                !options.resume_from.empty() || options.eval_only,
                {c.train.log_every, c.train.log_seconds}) {
  set_num_threads(static_cast<int>(c.train.threads));
  train_data_ = builders::make_dataset(c, data::Split::Train);
  test_data_ = builders::make_dataset(c, data::Split::Test);
  builders::check_fits(c, *train_data_);
  model_ = builders::build_model(c.model, c.train.seed);
  sync_groups_ = plan_sync_groups(c, world_->size());
  model_ = convert_norms(model_, sync_groups_, world_);
  summary_.sync_layers = nn::count_sync_batchnorm(*model_);
  summary_.world_size = world_->size();
  lr_scale_ = c.train.scale_lr ? static_cast<double>(world_->size()) : 1.0;
  // Every rank reads the same file (checked before launch), so the weights agree already.
  if (!options.init_from.empty()) load_model_state(options.init_from, *model_);
  // Rank 0's parameters and buffers to every rank now; buffers again only before evaluation
  // and checkpoint (share_buffers), not before every forward.
  ddp_ = std::make_unique<nn::DistributedDataParallel>(
      model_, world_,
      nn::DataParallelOptions().bucket_mb(c.train.bucket_mb).broadcast_buffers(false));
  optimizer_ = make_optimizer(c, model_->named_parameters());
  const std::int64_t train_size = c.data.limit_train > 0
                                      ? std::min(c.data.limit_train, train_data_->size())
                                      : train_data_->size();
  sampler_ = std::make_unique<data::DistributedSampler>(
      train_size, data::DistributedSamplerOptions(world_->size(), world_->rank())
                      .seed(c.train.seed)
                      .batch_size(c.train.batch_size));
  // An empty training set would "train" 0 steps per epoch, report done and exit 0.
  SYNCBN_CHECK_AS(
      ConfigError, sampler_->steps_per_epoch() > 0, c.source,
      ": the training split of data.dataset '", config::to_string(c.data.dataset), "'",
      c.data.dataset == config::DatasetKind::Synthetic ? "" : " in data.dir '" + c.data.dir + "'",
      " has ", train_size, " samples (data.limit_train ", c.data.limit_train,
      "): nothing to train on");
  if (world_->rank() == 0)  // only rank 0 writes checkpoints, and it has not started yet
    for (const auto& stale : io::remove_stale_temporaries(checkpoint_path()))
      reporter_.line("removed " + stale + ", left by a checkpoint write that was killed");
  if (!options.resume_from.empty()) {
    resumed_ = detail::load_checkpoint(options.resume_from, *model_, *optimizer_, basis());
    position_ = resumed_.position;
  }
}

Summary TrainingRun::run() {
  reporter_.line("model: " + c_.model.name + ", norm " + config::to_string(c_.model.norm) + ", " +
                 std::to_string(summary_.sync_layers) + " SyncBatchNorm layers (" +
                 sync_groups_.describe() + "), world size " + std::to_string(world_->size()) +
                 ", " + std::to_string(sampler_->steps_per_epoch()) + " steps per epoch of " +
                 std::to_string(c_.train.batch_size) + " per rank");
  if (c_.train.scale_lr || c_.train.accumulate > 1)
    reporter_.line(
        "optimizer: " + c_.optimizer.name + ", lr " + detail_number(lr_scale_ * c_.optimizer.lr) +
        (c_.train.scale_lr
             ? " (optimizer.lr " + detail_number(c_.optimizer.lr) + " x world size, train.scale_lr)"
             : "") +
        ", " + std::to_string(c_.train.accumulate) + " micro-batches per step (" +
        std::to_string(c_.train.accumulate * c_.train.batch_size * world_->size()) +
        " samples per step)");
  if (!options_.resume_from.empty()) {
    std::string changes;
    for (const auto& change : resumed_.changes) changes += "; " + change;
    reporter_.line("resumed from " + options_.resume_from + " at " +
                   detail::describe_position(position_) + changes +
                   (changes.empty() ? "" : " (allowed at an epoch boundary)"));
  }
  summary_.start_step = position_.global_step;
  if (options_.eval_only) return evaluate_only();
  const auto start = Clock::now();
  for (std::int64_t epoch = position_.epoch; epoch < c_.train.epochs && !out_of_steps(); ++epoch)
    train_epoch(epoch);
  summary_.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  summary_.steps = position_.global_step;
  summary_.images_per_second =
      train_seconds_ > 0 ? static_cast<double>(images_) / train_seconds_ : 0;
  summary_.stopped_early = position_.epoch < c_.train.epochs;
  if (summary_.preempted) return summary_;
  reporter_.line("done: test accuracy " + std::to_string(100 * summary_.test_accuracy) +
                 "%, test loss " + std::to_string(summary_.test_loss) + ", " +
                 std::to_string(static_cast<long long>(summary_.images_per_second)) +
                 " images/s, " + std::to_string(summary_.steps) + " steps in " +
                 std::to_string(summary_.seconds) + " s, world size " +
                 std::to_string(summary_.world_size) + ", " + std::to_string(summary_.sync_layers) +
                 " SyncBatchNorm layers");
  export_model_if_asked();
  return summary_;
}

void TrainingRun::train_epoch(std::int64_t epoch) {
  loader_.reset();
  sampler_->set_epoch(epoch);
  train_data_->set_epoch(epoch);
  if (epoch == position_.epoch) sampler_->load_state({epoch, position_.step});
  start_loader();
  epoch_loss_ = 0;
  epoch_steps_ = 0;
  const auto start = epoch_start_ = Clock::now();
  reporter_.begin_epoch();
  while (sampler_->has_next() && !out_of_steps()) {
    const bool stepped = train_step(epoch, sampler_->state().step);
    position_.epoch = epoch;
    position_.step = sampler_->state().step;
    if (stepped && c_.train.checkpoint_every > 0 &&
        position_.global_step % c_.train.checkpoint_every == 0)
      checkpoint();
  }
  loader_.reset();  // stops loading ahead when the run stops mid-epoch
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  train_seconds_ += seconds;
  if (summary_.preempted) {
    checkpoint();
    reporter_.line("stop requested: checkpoint written at " + detail::describe_position(position_) +
                   "; resume with --resume");
    return;
  }
  position_ = {sampler_->has_next() ? epoch : epoch + 1,
               sampler_->has_next() ? sampler_->state().step : 0, position_.global_step};
  detail::EpochMetrics m;
  m.epoch = epoch + 1;
  m.steps = epoch_steps_;
  m.global_step = position_.global_step;
  m.train_loss = summary_.train_loss =
      epoch_steps_ ? epoch_loss_ / static_cast<double>(epoch_steps_) : 0;
  evaluate(m.test_loss, m.test_accuracy);
  summary_.test_loss = m.test_loss;
  summary_.test_accuracy = m.test_accuracy;
  m.lr = optimizer_->lr();
  m.images_per_second = seconds > 0 ? static_cast<double>(epoch_steps_ * c_.train.accumulate *
                                                          c_.train.batch_size * world_->size()) /
                                          seconds
                                    : 0;
  m.seconds = seconds;
  m.data_wait_ms_mean = waits_ ? wait_ms_sum_ / static_cast<double>(waits_) : 0;
  m.data_wait_ms_max = wait_ms_max_;
  summary_.epochs = epoch + 1;
  checkpoint();
  reporter_.epoch(m);
}

// The rest of the epoch's batches, from the sampler's current step on.
void TrainingRun::start_loader() {
  std::vector<std::vector<std::int64_t>> batches;
  for (std::int64_t s = sampler_->state().step; s < sampler_->steps_per_epoch(); ++s)
    batches.push_back(sampler_->batch(s));
  loader_ =
      std::make_unique<data::PrefetchLoader>(*train_data_, std::move(batches), c_.data.prefetch);
  wait_ms_sum_ = wait_ms_max_ = 0;
  waits_ = 0;
}

// The sampler's next batch, as the loader has it ready (or loads it now).
data::Batch TrainingRun::next_batch() {
  sampler_->next_batch();  // advances the position the checkpoint records
  data::Batch batch = loader_->next();
  wait_ms_sum_ += loader_->last_wait_ms();
  ++waits_;
  wait_ms_max_ = std::max(wait_ms_max_, loader_->last_wait_ms());
  return batch;
}

// Returns whether the optimizer stepped: one step over train.accumulate micro-batches (fewer at
// the end of an epoch), see accumulation.hpp.
bool TrainingRun::train_step(std::int64_t epoch, std::int64_t step) {
  optimizer_->set_lr(lr_scale_ * schedule_.lr_at(epoch, step, sampler_->steps_per_epoch()));
  const std::int64_t micro = std::min(c_.train.accumulate, sampler_->steps_per_epoch() - step);
  model_->train();
  optimizer_->zero_grad();
  // The loss and the stop flag ride along in the last gradient bucket and come back summed.
  std::vector<float> extra{0.0f, stop_requested() ? 1.0f : 0.0f};
  const AccumulatedStep done = accumulate_gradients(
      *ddp_, loss_, micro, [this] { return next_batch(); }, extra);
  const double global_loss = extra[0] / world_->size();
  summary_.preempted = extra[1] > 0;  // every rank sees the same sum, so all stop together
  const std::int64_t step_images = done.samples * world_->size();
  images_ += step_images;
  if (!std::isfinite(global_loss)) {
    const std::string where =
        "non-finite loss at step " + std::to_string(position_.global_step + 1) + " (epoch " +
        std::to_string(epoch + 1) + ", step " + std::to_string(step + 1) + ")";
    if (!c_.train.skip_nonfinite)
      throw Error(where +
                  "; stopping (the last checkpoint is intact; set train.skip_nonfinite to skip "
                  "such steps)");
    reporter_.line(where + ": step skipped");
    return false;
  }
  if (c_.optimizer.clip_grad_norm > 0)
    clip_grad_norm(optimizer_->parameters(), c_.optimizer.clip_grad_norm);
  optimizer_->step();
  ++position_.global_step;
  epoch_loss_ += global_loss;
  ++epoch_steps_;
  const double elapsed = std::chrono::duration<double>(Clock::now() - epoch_start_).count();
  detail::StepMetrics m;
  m.epoch = epoch + 1;
  m.step = optimizer_steps(step);
  m.steps_per_epoch = optimizer_steps(sampler_->steps_per_epoch());
  m.global_step = position_.global_step;
  m.total_steps = total_steps();
  m.images = step_images;
  m.loss = global_loss;
  m.epoch_loss = epoch_loss_ / static_cast<double>(epoch_steps_);
  m.epoch_images_per_second = static_cast<double>(epoch_steps_ * c_.train.accumulate *
                                                  c_.train.batch_size * world_->size()) /
                              std::max(elapsed, 1e-9);
  reporter_.step(m);
  return true;
}

void TrainingRun::evaluate(double& loss, double& accuracy) {
  share_buffers();
  const Evaluation e = train::evaluate(*model_, *test_data_, *world_, c_.data.limit_test);
  loss = e.loss;
  accuracy = e.accuracy;
}

void TrainingRun::checkpoint() {
  share_buffers();
  if (world_->rank() != 0) return;
  detail::save_checkpoint(checkpoint_path(), *model_, *optimizer_, position_, basis(),
                          config::to_yaml(c_));
}

// --eval-only: the loaded weights scored on the test set; no step taken, no checkpoint written.
Summary TrainingRun::evaluate_only() {
  share_buffers();
  const Evaluation e = train::evaluate(*model_, *test_data_, *world_, c_.data.limit_test);
  summary_.test_loss = e.loss;
  summary_.test_accuracy = e.accuracy;
  summary_.steps = position_.global_step;
  reporter_.line("eval only: test accuracy " + std::to_string(100 * e.accuracy) + "%, test loss " +
                 std::to_string(e.loss) + ", " + std::to_string(e.samples) + " test images");
  if (options_.log) {
    const std::string path = metrics_path(c_);
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "a"),
                                                         &std::fclose);
    const std::string record = eval_only_record(e.loss, e.accuracy, e.samples) + "\n";
    SYNCBN_CHECK_AS(
        IoError,
        file && std::fputs(record.c_str(), file.get()) != EOF && std::fflush(file.get()) == 0,
        "cannot write metrics file '", path, "'");
  }
  export_model_if_asked();
  return summary_;
}

void TrainingRun::export_model_if_asked() {
  if (options_.export_path.empty()) return;
  share_buffers();
  if (world_->rank() != 0) return;
  export_model(options_.export_path, *model_);
  reporter_.line("exported the model's state_dict to " + options_.export_path);
}
}  // namespace

// No padding, so each sample counts once. Eval issues no collectives inside the model, so ranks
// may run different numbers of batches before the one allreduce of [loss sum, correct, count].
Evaluation evaluate(nn::Module& model, const data::Dataset& dataset, dist::ProcessGroup& group,
                    std::int64_t limit) {
  model.eval();
  const std::int64_t n = limit > 0 ? std::min(limit, dataset.size()) : dataset.size();
  CrossEntropyLoss loss;
  double totals[3] = {0, 0, 0};
  std::vector<std::int64_t> indices;
  for (std::int64_t i = group.rank(); i < n; i += group.size()) {
    indices.push_back(i);
    if (static_cast<std::int64_t>(indices.size()) < kEvalBatch && i + group.size() < n) continue;
    const data::Batch batch = dataset.get_batch(indices);
    const Tensor logits = model.forward(batch.images);
    totals[0] += loss.forward(logits, batch.labels) * static_cast<double>(indices.size());
    totals[1] += static_cast<double>(count_correct(logits, batch.labels));
    totals[2] += static_cast<double>(indices.size());
    indices.clear();
  }
  group.allreduce(totals, 3);
  return {totals[2] > 0 ? totals[0] / totals[2] : 0, totals[2] > 0 ? totals[1] / totals[2] : 0,
          static_cast<std::int64_t>(totals[2])};
}

Summary run_training(const config::Config& config, std::shared_ptr<dist::ProcessGroup> world,
                     const RunOptions& options) {
  SYNCBN_CHECK(world != nullptr, "run_training: world group is null");
  TrainingRun run(config, std::move(world), options);
  return run.run();
}

}  // namespace syncbn::train
