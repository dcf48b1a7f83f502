// Training throughput of a config's model at a fixed thread count, timed as bench/peer_train.py
// times PyTorch, so bench/run_train.sh can put the two side by side.
//   syncbn_bench_train --config configs/fashion_resnet.yaml [--batch-size N] [--warmup S]
//                      [--steps S] [--reps R] [--threads T] [--data fashion_mnist|random]
//                      [--per-layer]
// Prints one JSON object: batch_size, parameters, steps, images_per_second (median over the
// repetitions), reps_images_per_second, cpu_ms_per_step (this thread's CPU time per timed step,
// which other processes on the cores do not inflate), blas_core, conv_backend, and with
// --per-layer a "layers" list.
//
// One step is the work of one syncbn-train step at world size 1: gather the shuffled batch from
// the in-memory data set, zero_grad, forward, CrossEntropyLoss, backward, SGD step. (The trainer's
// gradient averaging over a world of one and its progress report are left out, as the peer has
// neither; bench/run_train.sh also runs syncbn-train itself for the end-to-end number.)
//
// --per-layer wraps every leaf module in a timer and reports the forward and backward
// milliseconds per step of each layer type; "other" is the rest of the step (BasicBlock's
// residual adds and inner ReLUs, loss, optimiser, data). These use the thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID, one system call per read), so time spent descheduled while other
// processes share the cores is left out (with threads > 1 the other threads' time is missed).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "syncbn/builders/model.hpp"
#include "syncbn/config/config.hpp"
#include "syncbn/data/dataset.hpp"
#include "syncbn/nn/layers/conv2d.hpp"
#include "syncbn/nn/layers/threads.hpp"
#include "syncbn/train/loss.hpp"
#include "syncbn/train/sgd.hpp"

namespace {
using Clock = std::chrono::steady_clock;

// CPU seconds this thread has run.
double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
using syncbn::Tensor;

struct Args {
  std::string config = "configs/fashion_resnet.yaml", data = "fashion_mnist";
  long batch = 0, warmup = 30, steps = 100, reps = 5, threads = 1;
  bool per_layer = false;
};

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
      a.batch = std::stol(next());
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

// Forward and backward seconds of every wrapped layer, by layer type.
struct LayerTimes {
  std::map<std::string, double> forward, backward;
  std::map<std::string, long> calls;
};

// Times one module's forward and backward into `times` under its type name.
class Timed : public syncbn::nn::Module {
 public:
  Timed(std::shared_ptr<Module> inner, LayerTimes* times)
      : inner_(register_module("inner", std::move(inner))), times_(times) {}
  std::string type_name() const override { return inner_->type_name(); }
  Tensor forward(const Tensor& x) override {
    return time(times_->forward, [&] { return inner_->forward(x); });
  }
  Tensor backward(const Tensor& g) override {
    return time(times_->backward, [&] { return inner_->backward(g); });
  }

 private:
  template <typename Fn>
  Tensor time(std::map<std::string, double>& into, Fn&& fn) {
    const double t0 = thread_seconds();
    Tensor y = fn();
    into[inner_->type_name()] += thread_seconds() - t0;
    ++times_->calls[inner_->type_name()];
    return y;
  }
  std::shared_ptr<Module> inner_;
  LayerTimes* times_;
};

// Wraps every leaf (a module without children) below `m`.
void wrap_leaves(syncbn::nn::Module& m, LayerTimes* times) {
  const auto children = m.named_children();  // a copy: replace_child edits the list
  for (const auto& [name, child] : children) {
    if (child->named_children().empty())
      m.replace_child(name, std::make_shared<Timed>(child, times));
    else
      wrap_leaves(*child, times);
  }
}

std::unique_ptr<syncbn::data::Dataset> make_data(const Args& a, const syncbn::config::Config& c) {
  if (a.data == "random") {
    const auto& in = c.model.input;
    return std::make_unique<syncbn::data::SyntheticDataset>(
        syncbn::data::SyntheticDatasetOptions()
            .size(4096)
            .num_classes(c.model.num_classes)
            .sample_shape({in[0], in[1], in[2]}));
  }
  return std::make_unique<syncbn::data::FashionMnist>(
      syncbn::data::FashionMnistOptions().root(c.data.dir));
}

struct Bench {
  Bench(const Args& a, const syncbn::config::Config& c)
      : model(syncbn::builders::build_model(c.model, c.train.seed)),
        data(make_data(a, c)),
        batch(c.train.batch_size) {
    if (a.per_layer) wrap_leaves(*model, &times);
    optimizer = std::make_unique<syncbn::train::SGD>(
        model->named_parameters(), syncbn::train::SGDOptions(c.optimizer.lr)
                                       .momentum(c.optimizer.momentum)
                                       .nesterov(c.optimizer.nesterov && c.optimizer.momentum > 0)
                                       .weight_decay(c.optimizer.weight_decay));
    order.resize(static_cast<std::size_t>(data->size()));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(c.train.seed));
    model->train();
  }

  double step() {
    if (cursor + batch > static_cast<long>(order.size())) cursor = 0;
    const std::vector<std::int64_t> idx(order.begin() + cursor, order.begin() + cursor + batch);
    cursor += batch;
    const syncbn::data::Batch b = data->get_batch(idx);
    optimizer->zero_grad();
    const double loss = loss_fn.forward(model->forward(b.images), b.labels);
    model->backward(loss_fn.backward());
    optimizer->step();
    return loss;
  }

  std::shared_ptr<syncbn::nn::Module> model;
  std::unique_ptr<syncbn::data::Dataset> data;
  std::unique_ptr<syncbn::train::SGD> optimizer;
  syncbn::train::CrossEntropyLoss loss_fn;
  std::vector<std::int64_t> order;
  long batch, cursor = 0;
  LayerTimes times;
};

long parameter_count(syncbn::nn::Module& m) {
  long n = 0;
  for (const auto& [name, p] : m.named_parameters()) n += static_cast<long>(p->value.numel());
  return n;
}

void print_layers(const LayerTimes& t, double cpu_seconds, long timed_steps) {
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

void print_report(const Args& a, Bench& bench, const std::vector<double>& rates,
                  double cpu_seconds) {
  const long timed = a.steps * a.reps;
  std::printf(
      "{\"batch_size\": %ld, \"parameters\": %ld, \"steps\": %ld, \"threads\": %d, "
      "\"data\": \"%s\", \"blas_core\": \"%s\", \"conv_backend\": \"%s\", "
      "\"cpu_ms_per_step\": %.3f, \"images_per_second\": %.2f, \"reps_images_per_second\": [",
      bench.batch, parameter_count(*bench.model), a.steps, syncbn::get_num_threads(),
      a.data.c_str(), syncbn::blas_core().c_str(), syncbn::nn::Conv2d::backend().c_str(),
      1e3 * cpu_seconds / static_cast<double>(timed), median(rates));
  for (std::size_t i = 0; i < rates.size(); ++i) std::printf("%s%.2f", i ? ", " : "", rates[i]);
  std::printf("]");
  if (a.per_layer) print_layers(bench.times, cpu_seconds, timed);
  std::printf("}\n");
}
}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    syncbn::config::Overrides overrides;
    if (a.batch > 0) overrides.push_back("train.batch_size=" + std::to_string(a.batch));
    const auto config = syncbn::config::load_config(a.config, overrides);
    syncbn::set_num_threads(static_cast<int>(a.threads));
    Bench bench(a, config);
    for (long i = 0; i < a.warmup; ++i) bench.step();
    bench.times = LayerTimes();
    std::vector<double> rates;
    const double cpu0 = thread_seconds();
    for (long r = 0; r < a.reps; ++r) {
      const auto t0 = Clock::now();
      for (long i = 0; i < a.steps; ++i) bench.step();
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      rates.push_back(static_cast<double>(a.steps * bench.batch) / s);
    }
    print_report(a, bench, rates, thread_seconds() - cpu0);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "syncbn_bench_train: %s\n", e.what());
    return 1;
  }
}
