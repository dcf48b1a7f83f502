// syncbn-quantize: post-training quantization of a trained checkpoint's BatchNorm layers.
// Evaluates the float model on the test split, calibrates min/max observers on training batches,
// swaps every BatchNorm2d/3d for a quantized one (quantize before, dequantize after) and
// evaluates again. One process: it is inference, so there is nothing to distribute.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>

#include "cli.hpp"
#include "syncbn/builders/data.hpp"
#include "syncbn/builders/model.hpp"
#include "syncbn/config/config.hpp"
#include "syncbn/data/dataset.hpp"
#include "syncbn/data/sampler.hpp"
#include "syncbn/dist/environment.hpp"
#include "syncbn/dist/local.hpp"
#include "syncbn/error.hpp"
#include "syncbn/nn/layers/threads.hpp"
#include "syncbn/quant/calibrate.hpp"
#include "syncbn/train/inference.hpp"

namespace po = boost::program_options;

namespace {
using Clock = std::chrono::steady_clock;

struct Cli {
  std::string config_path, checkpoint;
  std::int64_t calibration_batches = 32;
  std::int64_t batch_size = 0, limit_test = -1, threads = 0;  // 0 / -1: from the config
};

po::options_description describe_options(Cli& cli) {
  po::options_description o("syncbn-quantize --config FILE --checkpoint PATH [options]\n\nOptions");
  // One option per line reads best, as in syncbn_train.cpp.
  // clang-format off
  o.add_options()
    ("help,h", "show this help and exit")
    ("config,c", po::value(&cli.config_path)->required()->value_name("FILE"),
     "the config the checkpoint was trained with (model and data)")
    ("checkpoint", po::value(&cli.checkpoint)->required()->value_name("PATH"),
     "checkpoint written by syncbn-train (e.g. runs/X/last.safetensors)")
    ("calibration-batches", po::value(&cli.calibration_batches)->value_name("N"),
     "training batches the observers see (default 32; at most one epoch)")
    ("batch-size", po::value(&cli.batch_size)->value_name("B"),
     "calibration batch size, at most 16777216 (default: train.batch_size)")
    ("limit-test", po::value(&cli.limit_test)->value_name("N"),
     "evaluate on the first N test samples, 0 = all (default: data.limit_test)")
    ("threads", po::value(&cli.threads)->value_name("N"),
     "compute threads, 1 to 1024 (default: train.threads)");
  // clang-format on
  return o;
}

const syncbn::launcher::Program kProgram{
    "syncbn-quantize",
    "\nSingle process (do not start it under mpirun). Example:\n"
    "  syncbn-quantize -c configs/fashion_resnet.yaml \\\n"
    "      --checkpoint runs/fashion_resnet/last.safetensors\n"};

// The ranges the option types cannot express. Throws po::error.
void check_ranges(const po::variables_map& vm, const Cli& cli) {
  if (cli.calibration_batches < 1) throw po::error("--calibration-batches must be at least 1");
  using syncbn::config::kMaxBatchSize, syncbn::config::kMaxThreads;
  if (vm.count("batch-size") && (cli.batch_size < 1 || cli.batch_size > kMaxBatchSize))
    throw po::error("--batch-size must be in [1, " + std::to_string(kMaxBatchSize) + "], got " +
                    std::to_string(cli.batch_size));
  if (vm.count("limit-test") && cli.limit_test < 0)
    throw po::error("--limit-test must be 0 or more");
  // set_num_threads takes an int: 4294967297 would silently become 1 thread.
  if (vm.count("threads") && (cli.threads < 1 || cli.threads > kMaxThreads))
    throw po::error("--threads must be in [1, " + std::to_string(kMaxThreads) + "], got " +
                    std::to_string(cli.threads));
}

// Returns the exit code when the command line ends the program (help, usage error), else -1.
int parse_cli(int argc, char** argv, Cli& cli) {
  return syncbn::launcher::parse_command_line(
      argc, argv, kProgram, describe_options(cli),
      [&cli](const po::variables_map& vm) { check_ranges(vm, cli); });
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs the first `batches` batches of a seeded shuffle of the training split through `model`
// (a DataLoader with shuffle=True). Returns the number of images seen.
std::int64_t calibrate(syncbn::nn::Module& model, const syncbn::data::Dataset& train,
                       std::int64_t batches, std::int64_t batch_size, std::uint64_t seed) {
  using namespace syncbn::data;
  DistributedSampler sampler(train.size(),
                             DistributedSamplerOptions(1, 0).seed(seed).batch_size(batch_size));
  std::int64_t images = 0;
  for (std::int64_t b = 0; b < batches && sampler.has_next(); ++b) {
    const Batch batch = train.get_batch(sampler.next_batch());
    model.forward(batch.images);
    images += batch.images.size(0);
  }
  return images;
}

struct Results {
  syncbn::train::Evaluation fp, q;
  double fp_secs = 0, calib_secs = 0, q_secs = 0;
  std::int64_t images = 0, batch_size = 0;
  int layers = 0;
};

// Float evaluation, calibration + conversion, quantized evaluation; progress goes to stdout.
Results quantize_and_compare(syncbn::nn::Module& model, const syncbn::config::Config& c,
                             const Cli& cli) {
  Results r;
  r.batch_size = cli.batch_size > 0 ? cli.batch_size : c.train.batch_size;
  const std::int64_t limit_test = cli.limit_test >= 0 ? cli.limit_test : c.data.limit_test;
  const auto train = syncbn::builders::make_dataset(c, syncbn::data::Split::Train);
  const auto test = syncbn::builders::make_dataset(c, syncbn::data::Split::Test);
  syncbn::builders::check_fits(c, *train);
  auto group = syncbn::dist::make_local_group();
  std::cout << "evaluating the float model..." << std::endl;
  auto start = Clock::now();
  r.fp = syncbn::train::evaluate(model, *test, *group, limit_test);
  r.fp_secs = seconds_since(start);
  std::cout << "calibrating and converting..." << std::endl;
  start = Clock::now();
  r.layers = syncbn::quant::quantize_batchnorms(model, [&] {
    r.images = calibrate(model, *train, cli.calibration_batches, r.batch_size, c.train.seed);
  });
  r.calib_secs = seconds_since(start);
  std::cout << "evaluating the quantized model..." << std::endl;
  start = Clock::now();
  r.q = syncbn::train::evaluate(model, *test, *group, limit_test);
  r.q_secs = seconds_since(start);
  return r;
}

void print_row(const char* what, const syncbn::train::Evaluation& e, double secs) {
  std::printf("  %-11s %8.2f%% %10.4f %9.2f s\n", what, 100 * e.accuracy, e.loss, secs);
}

void report(const Results& r) {
  const auto batches = (r.images + r.batch_size - 1) / r.batch_size;
  std::printf(
      "\nBatchNorm layers quantized: %d (quint8 per-tensor affine, observer codes 0..127)\n",
      r.layers);
  std::printf("calibration: %lld training images (%lld batches of %lld), %.1f s\n",
              static_cast<long long>(r.images), static_cast<long long>(batches),
              static_cast<long long>(r.batch_size), r.calib_secs);
  std::printf("test samples: %lld\n\n", static_cast<long long>(r.fp.samples));
  std::printf("  %-11s %9s %10s %11s\n", "model", "accuracy", "loss", "eval time");
  print_row("float", r.fp, r.fp_secs);
  print_row("quantized", r.q, r.q_secs);
  std::printf("  %-11s %+8.2f pts %+6.4f\n", "difference", 100 * (r.q.accuracy - r.fp.accuracy),
              r.q.loss - r.fp.loss);
  std::fflush(stdout);
}

int run(const Cli& cli, const syncbn::config::Config& c) {
  syncbn::set_num_threads(static_cast<int>(cli.threads > 0 ? cli.threads : c.train.threads));
  auto model = syncbn::builders::build_model(c.model, c.train.seed);
  syncbn::train::load_model_state(cli.checkpoint, *model);
  syncbn::quant::quantizable_batchnorms(*model);  // fail before the float evaluation
  std::cout << "syncbn-quantize: " << cli.checkpoint << " (" << c.source << ", norm "
            << syncbn::config::to_string(c.model.norm) << ")" << std::endl;
  report(quantize_and_compare(*model, c, cli));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli;
  if (const int code = parse_cli(argc, argv, cli); code >= 0) return code;
  syncbn::config::Config config;
  if (const int code =
          syncbn::launcher::load_config_before_launch(kProgram, cli.config_path, {}, config);
      code >= 0)
    return code;
  const std::string launcher = syncbn::dist::detect_launcher(syncbn::dist::launch_environment());
  if (!launcher.empty())
    std::cerr << "syncbn-quantize: note: started by a parallel launcher (" << launcher
              << "); this tool does not communicate, so every process repeats the whole job\n";
  try {
    return run(cli, config);
  } catch (const syncbn::ConfigError& e) {
    std::cerr << "syncbn-quantize: config error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "syncbn-quantize: error: " << e.what() << "\n";
    return 1;
  }
}
