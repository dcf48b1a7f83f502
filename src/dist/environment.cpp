// Backend selection. The launcher checks are deliberately conservative: a false "mpi" only costs
// an MPI_Init that yields a world of one, but a false "local" under mpirun -np 4 would silently
// train four independent models, so any launcher evidence picks mpi.
#include "syncbn/dist/environment.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "backends.hpp"
#include "syncbn/dist/local.hpp"
#include "syncbn/error.hpp"

namespace syncbn::dist {
namespace {

const char* const kBackends = "auto, mpi, nccl, local";

// Set for every process by the launchers we know; each implies an MPI-capable launch.
const char* const kLauncherRankVars[] = {
    "OMPI_COMM_WORLD_SIZE",  // Open MPI mpirun/mpiexec (also for -np 1)
    "PMI_SIZE",              // MPICH / Intel MPI hydra, srun --mpi=pmi2
    "PMIX_RANK",             // PMIx launchers: srun --mpi=pmix, prterun, Open MPI 5
    "MV2_COMM_WORLD_SIZE",   // MVAPICH2
};

std::string lookup(const EnvMap& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? "" : it->second;
}

bool parse_bool(const std::string& name, const std::string& value) {
  if (value == "1" || value == "true" || value == "on" || value == "yes") return true;
  if (value == "0" || value == "false" || value == "off" || value == "no") return false;
  throw ConfigError(name + ": expected 0/1/false/true/off/on, got '" + value + "'");
}

// Shorter limits abort healthy jobs (one allreduce of a large bucket, or a rank that starts a
// moment late, can take that long), so they are refused rather than obeyed.
constexpr double kMinTimeoutSeconds = 1;

double parse_seconds(const std::string& name, const std::string& value) {
  char* end = nullptr;
  const double seconds = std::strtod(value.c_str(), &end);
  SYNCBN_CHECK_AS(ConfigError, !value.empty() && end && *end == '\0' && std::isfinite(seconds),
                  name, ": expected a number of seconds (<= 0 disables), got '", value, "'");
  SYNCBN_CHECK_AS(ConfigError, seconds <= 0 || seconds >= kMinTimeoutSeconds, name,
                  ": expected at least ", kMinTimeoutSeconds,
                  " second (or <= 0 to disable the watchdog), got '", value, "'");
  return seconds;
}

class LocalBackend : public detail::Backend {
 public:
  std::shared_ptr<ProcessGroup> world() const override { return world_; }
  std::string describe() const override { return "rank 0 of 1 (single process)"; }

 private:
  std::shared_ptr<ProcessGroup> world_ = make_local_group();
};

}  // namespace

EnvMap launch_environment() {
  EnvMap env;
  for (const char* key : kLauncherRankVars)
    if (const char* v = std::getenv(key)) env[key] = v;
  for (const char* key : {"SLURM_NTASKS", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK",
                          "SYNCBN_COLLECTIVE_TIMEOUT", "SYNCBN_CHECK_COLLECTIVES"})
    if (const char* v = std::getenv(key)) env[key] = v;
  return env;
}

EnvironmentOptions apply_env_overrides(EnvironmentOptions options, const EnvMap& env) {
  const std::string timeout = lookup(env, "SYNCBN_COLLECTIVE_TIMEOUT");
  if (!timeout.empty())
    options.collective_timeout_s = parse_seconds("SYNCBN_COLLECTIVE_TIMEOUT", timeout);
  const std::string check = lookup(env, "SYNCBN_CHECK_COLLECTIVES");
  if (!check.empty()) options.check_collectives = parse_bool("SYNCBN_CHECK_COLLECTIVES", check);
  return options;
}

std::string detect_launcher(const EnvMap& env) {
  for (const char* key : kLauncherRankVars) {
    const std::string value = lookup(env, key);
    if (!value.empty()) return std::string(key) + "=" + value;
  }
  // srun exports SLURM_NTASKS to a batch script too; with one task there is nothing to join.
  const std::string ntasks = lookup(env, "SLURM_NTASKS");
  if (!lookup(env, "SLURM_PROCID").empty() && std::atoi(ntasks.c_str()) > 1)
    return "SLURM_NTASKS=" + ntasks;
  return "";
}

int launcher_rank(const EnvMap& env) {
  for (const char* key : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    const std::string value = lookup(env, key);
    if (!value.empty()) return std::atoi(value.c_str());
  }
  return 0;
}

std::string resolve_backend(const std::string& requested, const EnvMap& env) {
  if (requested == "auto") return detect_launcher(env).empty() ? "local" : "mpi";
  if (requested == "mpi" || requested == "nccl" || requested == "local") return requested;
  throw ConfigError("unknown process-group backend '" + requested +
                    "'; valid backends: " + kBackends);
}

Environment::Environment(int& argc, char**& argv, EnvironmentOptions options) {
  const EnvMap env = launch_environment();
  options_ = apply_env_overrides(std::move(options), env);
  backend_ = resolve_backend(options_.backend, env);
  if (backend_ == "mpi") impl_ = detail::make_mpi_backend(argc, argv, options_);
  if (backend_ == "nccl") impl_ = detail::make_nccl_backend(argc, argv, options_);
  if (backend_ == "local") impl_ = std::make_unique<LocalBackend>();
}

// Destroyed during unwinding with other ranks alive: finalizing would wait for ranks that are
// waiting for this one, so end the job instead (run() normally got there first, with the message).
Environment::~Environment() {
  if (std::uncaught_exceptions() > 0 && impl_ && impl_->world()->size() > 1)
    abort("syncbn: rank " + std::to_string(impl_->world()->rank()) +
              ": an exception is unwinding past the Environment; ending the job",
          1);
}

int Environment::run(const std::string& program, const std::function<int()>& body) {
  std::string message;
  int code = 1;
  try {
    return body();
  } catch (const ConfigError& e) {
    message = "config error: " + std::string(e.what()), code = 2;
  } catch (const std::exception& e) {
    message = "error: " + std::string(e.what());
  } catch (...) {
    message = "error: unknown exception";
  }
  const auto world = impl_->world();
  const std::string text = program + ": rank " + std::to_string(world->rank()) + ": " + message;
  if (world->size() > 1) abort(text, code);
  std::cerr << text << "\n";
  return code;
}

void Environment::abort(const std::string& message, int exit_code) const {
  std::cout.flush();
  if (!message.empty()) std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(nullptr);
  impl_->abort_communicators();
  detail::abort_job(exit_code);
}

std::shared_ptr<ProcessGroup> Environment::world() const {
  return impl_->world();
}

std::string Environment::describe() const {
  return "backend " + backend_ + ": " + impl_->describe();
}

}  // namespace syncbn::dist
