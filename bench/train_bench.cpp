// Training throughput of a config's model at a fixed thread count, timed as bench/peer_train.py
// times PyTorch, so bench/run_train.sh and bench/run_train_resnet18.sh can put the two side by
// side.
//   syncbn_bench_train --config configs/fashion_resnet.yaml [--batch-size N] [--input C,H,W]
//                      [--num-classes K] [--set key=value]... [--warmup S] [--steps S] [--reps R]
//                      [--threads T]
//                      [--data fashion_mnist|random] [--per-layer]
// Under mpirun (world size W > 1) every rank trains its own slice, BatchNorm converted as the
// config's norm_conversion says (SyncBatchNorm by default) and gradients averaged by
// DistributedDataParallel, as syncbn-train does; rank 0 prints the report and images/s count all
// W ranks' images.
// Prints one JSON object: batch_size (per rank), world_size, parameters, steps,
// images_per_second (median over the repetitions), reps_images_per_second, ms_per_step (median),
// reps_ms_per_step, faults_per_step (minor page faults of the process per timed step, from
// getrusage), cpu_ms_per_step (this thread's CPU time per timed step, which other processes on
// the cores do not inflate), blas_core, and with --per-layer a "layers" list.
//
// One step is the work of one syncbn-train step: gather the shuffled batch from the data set
// held in memory as one float tensor (as the peer holds it), zero_grad, forward,
// CrossEntropyLoss, backward, SGD step.
//
// --per-layer reports the forward and backward CPU milliseconds per step of each layer type
// (layer_timer.hpp); "other" is the rest of the step (residual adds, loss, optimiser, data).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "layer_timer.hpp"
#include "syncbn/builders/model.hpp"
#include "syncbn/config/config.hpp"
#include "syncbn/data/dataset.hpp"
#include "syncbn/dist/environment.hpp"
#include "syncbn/nn/layers/threads.hpp"
#include "syncbn/parallel/data_parallel.hpp"
#include "syncbn/train/loss.hpp"
#include "syncbn/train/norm_conversion.hpp"
#include "syncbn/train/sgd.hpp"

namespace {
using Clock = std::chrono::steady_clock;
using syncbn::Tensor;

struct Args {
  std::string config = "configs/fashion_resnet.yaml", data = "fashion_mnist";
  syncbn::config::Overrides overrides;
  long warmup = 30, steps = 100, reps = 5, threads = 1;
  bool per_layer = false;
};

// "3,32,32" -> "model.input=[3, 32, 32]".
std::string input_override(const std::string& dims) {
  std::string list;
  for (char ch : dims) list += ch == ',' ? std::string(", ") : std::string(1, ch);
  return "model.input=[" + list + "]";
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + k);
      return argv[++i];
    };
    if (k == "--config")
      a.config = next();
    else if (k == "--data")
      a.data = next();
    else if (k == "--batch-size")
      a.overrides.push_back("train.batch_size=" + next());
    else if (k == "--input")
      a.overrides.push_back(input_override(next()));
    else if (k == "--num-classes")
      a.overrides.push_back("model.num_classes=" + next());
    else if (k == "--set")
      a.overrides.push_back(next());
    else if (k == "--warmup")
      a.warmup = std::stol(next());
    else if (k == "--steps")
      a.steps = std::stol(next());
    else if (k == "--reps")
      a.reps = std::stol(next());
    else if (k == "--threads")
      a.threads = std::stol(next());
    else if (k == "--per-layer")
      a.per_layer = true;
    else
      throw std::runtime_error("unknown argument " + k);
  }
  return a;
}

std::unique_ptr<syncbn::data::Dataset> make_data(const Args& a, const syncbn::config::Config& c) {
  if (a.data == "random")
    return std::make_unique<syncbn::data::SyntheticDataset>(syncbn::data::SyntheticDatasetOptions()
                                                                .size(4096)
                                                                .num_classes(c.model.num_classes)
                                                                .sample_shape(c.model.input));
  if (a.data != "fashion_mnist") throw std::runtime_error("unknown --data " + a.data);
  return std::make_unique<syncbn::data::FashionMnist>(
      syncbn::data::FashionMnistOptions().root(c.data.dir));
}

// The whole data set as one float tensor, so a step's batch is a row gather (PyTorch's peer
// does an index_select) rather than the data set's per-sample decoding or pattern synthesis.
struct HeldData {
  explicit HeldData(const syncbn::data::Dataset& d) {
    std::vector<std::int64_t> all(static_cast<std::size_t>(d.size()));
    std::iota(all.begin(), all.end(), 0);
    syncbn::data::Batch b = d.get_batch(all);
    images = std::move(b.images);
    labels = std::move(b.labels);
  }
  syncbn::data::Batch gather(const std::vector<std::int64_t>& idx) const {
    syncbn::Shape shape = images.shape();
    shape[0] = static_cast<std::int64_t>(idx.size());
    syncbn::data::Batch b{Tensor::empty(shape), {}};
    const std::size_t row = images.nbytes() / static_cast<std::size_t>(images.size(0));
    auto* out = static_cast<std::byte*>(b.images.raw());
    const auto* in = static_cast<const std::byte*>(images.raw());
    for (std::size_t i = 0; i < idx.size(); ++i) {
      std::memcpy(out + i * row, in + static_cast<std::size_t>(idx[i]) * row, row);
      b.labels.push_back(labels[static_cast<std::size_t>(idx[i])]);
    }
    return b;
  }
  std::int64_t size() const { return images.size(0); }
  Tensor images;
  std::vector<std::int64_t> labels;
};

struct Bench {
  Bench(const Args& a, const syncbn::config::Config& c,
        std::shared_ptr<syncbn::dist::ProcessGroup> world)
      : model(syncbn::builders::build_model(c.model, c.train.seed)),
        data(*make_data(a, c)),
        batch(c.train.batch_size),
        world_size(world->size()),
        rank(world->rank()) {
    if (world_size > 1) {
      model = syncbn::train::convert_norms(
          model, syncbn::train::plan_sync_groups(c, static_cast<int>(world_size)), world);
      ddp = std::make_unique<syncbn::nn::DistributedDataParallel>(model, world);
    }
    if (a.per_layer) bench::wrap_leaves(*model, &times);
    optimizer = std::make_unique<syncbn::train::SGD>(
        model->named_parameters(), syncbn::train::SGDOptions(c.optimizer.lr)
                                       .momentum(c.optimizer.momentum)
                                       .nesterov(c.optimizer.nesterov && c.optimizer.momentum > 0)
                                       .weight_decay(c.optimizer.weight_decay));
    order.resize(static_cast<std::size_t>(data.size()));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(c.train.seed));
    model->train();
  }

  // This rank's slice of the next global batch of world_size * batch samples.
  std::vector<std::int64_t> next_indices() {
    const long global = batch * world_size;
    if (cursor + global > static_cast<long>(order.size())) cursor = 0;
    const auto first = order.begin() + cursor + rank * batch;
    cursor += global;
    return {first, first + batch};
  }

  double step() {
    const syncbn::data::Batch b = data.gather(next_indices());
    optimizer->zero_grad();
    if (ddp) {
      const double loss = loss_fn.forward(ddp->forward(b.images), b.labels);
      ddp->backward(loss_fn.backward());
      optimizer->step();
      return loss;
    }
    const double loss = loss_fn.forward(model->forward(b.images), b.labels);
    model->backward(loss_fn.backward());
    optimizer->step();
    return loss;
  }

  std::shared_ptr<syncbn::nn::Module> model;
  std::unique_ptr<syncbn::nn::DistributedDataParallel> ddp;
  HeldData data;
  std::unique_ptr<syncbn::train::SGD> optimizer;
  syncbn::train::CrossEntropyLoss loss_fn;
  std::vector<std::int64_t> order;
  long batch, world_size, rank, cursor = 0;
  bench::LayerTimes times;
};

long parameter_count(syncbn::nn::Module& m) {
  long n = 0;
  for (const auto& [name, p] : m.named_parameters()) n += static_cast<long>(p->value.numel());
  return n;
}

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

void print_layers(const bench::LayerTimes& t, double cpu_seconds, long timed_steps) {
  const double steps = static_cast<double>(timed_steps);
  std::printf(", \"layers\": [");
  double covered = 0;
  for (const auto& [type, fwd] : t.forward) {
    const double bwd = t.backward.count(type) ? t.backward.at(type) : 0.0;
    covered += fwd + bwd;
    std::printf(
        "{\"type\": \"%s\", \"calls_per_step\": %.1f, \"forward_ms\": %.3f, \"backward_ms\": "
        "%.3f}, ",
        type.c_str(), static_cast<double>(t.calls.at(type)) / 2.0 / steps, 1e3 * fwd / steps,
        1e3 * bwd / steps);
  }
  std::printf("{\"type\": \"other\", \"forward_ms\": %.3f, \"backward_ms\": 0}]",
              1e3 * (cpu_seconds - covered) / steps);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t mid = v.size() / 2;
  return v.size() % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

void print_list(const char* key, const std::vector<double>& v) {
  std::printf(", \"%s\": [", key);
  for (std::size_t i = 0; i < v.size(); ++i) std::printf("%s%.3f", i ? ", " : "", v[i]);
  std::printf("]");
}

struct Measured {
  std::vector<double> seconds;  // per repetition
  double cpu_seconds = 0;
  long faults = 0;
};

Measured run(const Args& a, Bench& bench) {
  for (long i = 0; i < a.warmup; ++i) bench.step();
  bench.times = bench::LayerTimes();
  Measured m;
  const long faults0 = minor_faults();
  const double cpu0 = bench::thread_seconds();
  for (long r = 0; r < a.reps; ++r) {
    const auto t0 = Clock::now();
    for (long i = 0; i < a.steps; ++i) bench.step();
    m.seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  m.cpu_seconds = bench::thread_seconds() - cpu0;
  m.faults = minor_faults() - faults0;
  return m;
}

void print_report(const Args& a, Bench& bench, const Measured& m) {
  const long timed = a.steps * a.reps;
  const double images = static_cast<double>(a.steps * bench.batch * bench.world_size);
  std::vector<double> rates, ms;
  for (double s : m.seconds) {
    rates.push_back(images / s);
    ms.push_back(1e3 * s / static_cast<double>(a.steps));
  }
  std::printf(
      "{\"batch_size\": %ld, \"world_size\": %ld, \"parameters\": %ld, \"steps\": %ld, "
      "\"threads\": %d, \"data\": \"%s\", \"blas_core\": \"%s\", \"cpu_ms_per_step\": %.3f, "
      "\"faults_per_step\": %.1f, \"ms_per_step\": %.3f, \"images_per_second\": %.2f",
      bench.batch, bench.world_size, parameter_count(*bench.model), a.steps,
      syncbn::get_num_threads(), a.data.c_str(), syncbn::blas_core().c_str(),
      1e3 * m.cpu_seconds / static_cast<double>(timed),
      static_cast<double>(m.faults) / static_cast<double>(timed), median(ms), median(rates));
  print_list("reps_images_per_second", rates);
  print_list("reps_ms_per_step", ms);
  if (a.per_layer) print_layers(bench.times, m.cpu_seconds, timed);
  std::printf("}\n");
}
}  // namespace

int main(int argc, char** argv) {
  syncbn::dist::Environment env(argc, argv);  // MPI under mpirun, else a world of one
  return env.run("syncbn_bench_train", [&] {
    const Args a = parse(argc, argv);
    const auto config = syncbn::config::load_config(a.config, a.overrides);
    syncbn::set_num_threads(static_cast<int>(a.threads));
    Bench bench(a, config, env.world());
    const Measured m = run(a, bench);
    if (bench.rank == 0) print_report(a, bench, m);
    return 0;
  });
}
