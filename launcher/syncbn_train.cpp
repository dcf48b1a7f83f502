// syncbn-train: trains the model a config describes, data-parallel over however many ranks it
// was launched with (mpirun, srun, or a single process). See --help.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>

#include "cli.hpp"
#include "print_model.hpp"
#include "syncbn/config/config.hpp"
#include "syncbn/dist/default_group.hpp"
#include "syncbn/dist/environment.hpp"
#include "syncbn/error.hpp"
#include "syncbn/train/model_files.hpp"
#include "syncbn/train/trainer.hpp"

namespace po = boost::program_options;

namespace {

// Preemption (SLURM sends SIGTERM before killing a job; users press Ctrl-C; launch.sh turns a
// signal to itself into SIGUSR1, which mpirun forwards): the first signal asks every rank to stop
// at the next step boundary and checkpoint. The same request often arrives more than once (from
// slurmd and again through srun, or to every process of a terminal's process group), so further
// signals within kSameRequestSeconds count as the same request; a later one exits at once.
constexpr long kSameRequestSeconds = 3;
std::atomic<bool> g_stop_requested{false};
std::atomic<long> g_first_signal_s{0};
char g_rank_prefix[64] = "syncbn-train: ";

long monotonic_seconds() {  // clock_gettime is async-signal-safe
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<long>(now.tv_sec);
}

void say(const char* text) {
  (void)!write(STDERR_FILENO, g_rank_prefix, std::strlen(g_rank_prefix));
  (void)!write(STDERR_FILENO, text, std::strlen(text));
}

extern "C" void on_stop_signal(int sig) {
  const long now = monotonic_seconds();  // > 0: seconds since boot
  long first = 0;
  if (g_first_signal_s.compare_exchange_strong(first, now)) {
    // Nothing printed yet: if another rank died, mpirun is signalling us on its way to killing
    // the job, and no checkpoint will come. The trainer reports the stop once all ranks agreed.
    g_stop_requested = true;
    return;
  }
  if (now - first < kSameRequestSeconds) return;
  say("second stop signal, exiting at once without a checkpoint\n");
  _exit(128 + sig);
}

void install_stop_handlers(int rank) {
  std::snprintf(g_rank_prefix, sizeof g_rank_prefix, "syncbn-train: rank %d: ", rank);
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) sigaction(sig, &action, nullptr);
}

const char* const kSignalsAndErrorsHelp = R"(
Stopping: SIGTERM, SIGINT or SIGUSR1 to any rank (or SIGTERM/SIGINT to launcher/launch.sh) stops
every rank at the next step boundary; the job writes a checkpoint and exits 0. Signals within 3 s
of the first are the same request; a later one exits at once, without a checkpoint. mpirun itself
kills the ranks shortly after a SIGTERM/SIGINT and exits 1: signal launch.sh, or send mpirun
SIGUSR1, which it forwards.
Errors: an error on any rank prints "syncbn-train: rank R: error: ..." and ends every rank within
seconds. Exit status: 0 done or stopped on request, 1 error, 2 bad config or command line (found
before MPI starts, printed once).
)";

struct Cli {
  std::string config_path, backend = "auto", resume, progress = "auto";
  std::string init_from, export_path;
  syncbn::config::Overrides overrides;
  bool print_config = false, print_model = false, eval_only = false;
};

po::options_description describe_options(Cli& cli) {
  po::options_description o("syncbn-train --config FILE [options]\n\nOptions");
  // Each option becomes an override of its config key; errors in its value cite the option as
  // the user wrote it ("--epochs 0"), not the config file.
  auto set = [&cli](const char* option, const char* key) {
    return [&cli, option, key](const std::string& v) {
      cli.overrides.emplace_back(std::string(key) + "=" + v, std::string("--") + option + " " + v);
    };
  };
  o.add_options()("help,h", "show this help and exit")(
      "config,c", po::value(&cli.config_path)->required()->value_name("FILE"),
      "model + training config (YAML), e.g. configs/fashion_resnet.yaml")(
      "set",
      po::value<std::vector<std::string>>()
          ->composing()
          ->value_name("KEY=VALUE")
          ->notifier([&cli](const std::vector<std::string>& v) {
            for (const auto& assignment : v) cli.overrides.emplace_back(assignment);
          }),
      "override any config key (repeatable), e.g. --set model.norm=batch; errors in a value "
      "given on the command line name the option instead of the config file")(
      "epochs", po::value<std::string>()->value_name("N")->notifier(set("epochs", "train.epochs")),
      "number of epochs (train.epochs)")(
      "batch-size",
      po::value<std::string>()->value_name("N")->notifier(set("batch-size", "train.batch_size")),
      "batch size PER RANK (train.batch_size)")(
      "max-steps",
      po::value<std::string>()->value_name("N")->notifier(set("max-steps", "train.max_steps")),
      "stop after N optimizer steps in total (train.max_steps)")(
      "lr", po::value<std::string>()->value_name("X")->notifier(set("lr", "optimizer.lr")),
      "learning rate (optimizer.lr)")(
      "norm", po::value<std::string>()->value_name("KIND")->notifier(set("norm", "model.norm")),
      "sync_batch (BatchNorm becomes SyncBatchNorm across ranks) | batch (kept per rank); for a "
      "template config also group:G | batch_no_running_stats | none")(
      "seed", po::value<std::string>()->value_name("N")->notifier(set("seed", "train.seed")),
      "seed for init, shuffling and augmentation (train.seed)")(
      "threads",
      po::value<std::string>()->value_name("N")->notifier(set("threads", "train.threads")),
      "threads per rank, 1 to 1024 (train.threads)")(
      "data-dir",
      po::value<std::string>()->value_name("DIR")->notifier(set("data-dir", "data.dir")),
      "directory with the Fashion-MNIST *.gz files (data.dir)")(
      "checkpoint-dir",
      po::value<std::string>()->value_name("DIR")->notifier(
          set("checkpoint-dir", "train.checkpoint_dir")),
      "where checkpoints and metrics.jsonl go (train.checkpoint_dir)")(
      "resume", po::value(&cli.resume)->implicit_value("latest")->value_name("PATH"),
      "continue from PATH, or from the newest checkpoint in the checkpoint dir; if there is none, "
      "warn and start from scratch (--resume=required: fail instead)")(
      "init-from", po::value(&cli.init_from)->value_name("PATH"),
      "start from these weights: a model-only state_dict as safetensors with PyTorch's key names "
      "(e.g. safetensors.torch.save_file(model.state_dict(), PATH)), loaded strictly; "
      "\"optimizer.\" keys are ignored, so a syncbn checkpoint works too. Not with --resume")(
      "eval-only", po::bool_switch(&cli.eval_only),
      "with --init-from or --resume: evaluate on the test set (data.limit_test), print and "
      "append to metrics.jsonl the test loss and accuracy, and exit; no training, no checkpoint")(
      "export", po::value(&cli.export_path)->value_name("PATH"),
      "when the run ends (after the last epoch or max_steps, or after --eval-only's evaluation; "
      "not when stopped on request), write the model-only state_dict as safetensors, "
      "SyncBatchNorm as BatchNorm, for PyTorch's load_state_dict(strict=True)")(
      "backend", po::value(&cli.backend)->value_name("NAME"),
      "auto | mpi | nccl | local (auto: mpi under mpirun/srun, else local)")(
      "progress", po::value(&cli.progress)->value_name("MODE"),
      "auto | bar | lines: a live progress bar, or progress lines (see --log-every) and one line "
      "per epoch (auto: a bar on a terminal, but not under mpirun/srun, which give ranks a "
      "terminal even when output goes to a file)")(
      "log-every",
      po::value<std::string>()->value_name("N")->notifier(set("log-every", "train.log_every")),
      "a progress line every N optimizer steps (train.log_every; with --progress auto, lines "
      "even on a terminal; default 0: without a bar, one every train.log_seconds, 10 s)")(
      "print-config", po::bool_switch(&cli.print_config),
      "print the effective config (after overrides) and exit")(
      "print-model", po::bool_switch(&cli.print_model),
      "build the config's model in this process and print it, then exit: PyTorch's repr (the "
      "BatchNorm layers as written), which of them a launched job converts to SyncBatchNorm, "
      "the parameter count and the state_dict keys with their shapes");
  return o;
}

const syncbn::launcher::Program kProgram{
    "syncbn-train",
    std::string("\nExamples:\n"
                "  syncbn-train --config configs/fashion_resnet.yaml\n"
                "  syncbn-train -c configs/zoo/resnet18.yaml --print-model\n"
                "  mpirun -np 2 syncbn-train -c configs/tiny.yaml --epochs 1\n"
                "  launcher/launch.sh -n 4 configs/fashion_resnet.yaml --norm batch\n") +
        kSignalsAndErrorsHelp};

// Returns the exit code when the command line ends the program (help, usage error), else -1.
int parse_cli(int argc, char** argv, Cli& cli) {
  return syncbn::launcher::parse_command_line(argc, argv, kProgram, describe_options(cli));
}

bool show_progress_bar(const std::string& mode) {
  if (mode == "bar" || mode == "lines") return mode == "bar";
  if (mode != "auto")
    throw syncbn::ConfigError("--progress: expected auto, bar or lines, got '" + mode + "'");
  const bool launched = !syncbn::dist::detect_launcher(syncbn::dist::launch_environment()).empty();
  return isatty(STDOUT_FILENO) != 0 && !launched;
}

int run(const Cli& cli, const syncbn::config::Config& config, syncbn::dist::Environment& env) {
  auto world = env.world();
  syncbn::dist::set_default_group(world);
  syncbn::train::RunOptions options;
  // Evaluating fresh weights is never what --eval-only --resume meant: no checkpoint is an error.
  const std::string resume = cli.eval_only && cli.resume == "latest" ? "required" : cli.resume;
  options.resume_from = syncbn::train::resume_checkpoint(resume, config.train.checkpoint_dir,
                                                         world->rank() == 0 ? &std::cerr : nullptr);
  options.init_from = cli.init_from;
  options.eval_only = cli.eval_only;
  options.export_path = cli.export_path;
  options.log = world->rank() == 0 ? &std::cout : nullptr;
  // A step count asked for is a request for lines, even on a terminal (unless --progress bar).
  options.progress_bar =
      show_progress_bar(cli.progress) && !(cli.progress == "auto" && config.train.log_every > 0);
  options.stop_requested = &g_stop_requested;
  if (world->rank() == 0) std::cout << env.describe() << "\n";
  const syncbn::train::Summary summary = syncbn::train::run_training(config, world, options);
  syncbn::dist::set_default_group(nullptr);
  if (summary.preempted && world->rank() == 0)
    std::cout << "stopped on request after step " << summary.steps << "; resume with --resume\n";
  return 0;
}

// --print-model: a model the config describes but the builder refuses is a config error (2).
int print_model(const syncbn::config::Config& config) {
  try {
    syncbn::launcher::print_model(config, std::cout);
  } catch (const syncbn::ConfigError& e) {
    std::cerr << kProgram.name << ": config error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << kProgram.name << ": error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

// --init-from, --eval-only and --resume together, and the --init-from file against the model.
void check_start(const Cli& cli, const syncbn::config::Config& config) {
  if (!cli.init_from.empty() && !cli.resume.empty())
    throw syncbn::ConfigError(
        "--init-from and --resume exclude each other: --resume continues a run (weights, "
        "optimizer, position), --init-from starts a new one from weights");
  if (cli.eval_only && cli.init_from.empty() && cli.resume.empty())
    throw syncbn::ConfigError("--eval-only needs the weights to evaluate: --init-from or --resume");
  if (!cli.init_from.empty() && !(cli.print_config || cli.print_model))
    syncbn::train::check_init_from(config, cli.init_from);
}

// Everything that can be refused before MPI starts is checked here, where every rank of a
// launched job fails alike: so one copy of the message (the launcher's rank 0), exit 2.
int check_before_launch(const Cli& cli, syncbn::config::Config& config) {
  const int code = syncbn::launcher::load_config_before_launch(
      kProgram, cli.config_path, cli.overrides, config, [&cli, &config] {
        show_progress_bar(cli.progress);
        syncbn::dist::resolve_backend(cli.backend, syncbn::dist::launch_environment());
        check_start(cli, config);
      });
  if (code >= 0 || !(cli.print_config || cli.print_model)) return code;
  if (!syncbn::launcher::prints_for_the_job()) return 0;
  if (cli.print_config) std::cout << syncbn::config::to_yaml(config) << "\n";
  if (cli.print_model) return print_model(config);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdout (`| head -1`) must not stop training: writes to it fail quietly instead.
  std::signal(SIGPIPE, SIG_IGN);
  Cli cli;
  if (const int code = parse_cli(argc, argv, cli); code >= 0) return code;
  syncbn::config::Config config;
  if (const int code = check_before_launch(cli, config); code >= 0) return code;
  std::unique_ptr<syncbn::dist::Environment> env;
  try {
    syncbn::dist::EnvironmentOptions env_options;
    env_options.backend = cli.backend;
    env = std::make_unique<syncbn::dist::Environment>(argc, argv, env_options);
  } catch (const std::exception& e) {
    std::cerr << kProgram.name << ": cannot start the process group: " << e.what() << "\n";
    return dynamic_cast<const syncbn::ConfigError*>(&e) ? 2 : 1;
  }
  install_stop_handlers(env->world()->rank());
  // From here an error on any rank ends every rank at once, with that rank's message.
  return env->run(kProgram.name, [&] { return run(cli, config, *env); });
}
