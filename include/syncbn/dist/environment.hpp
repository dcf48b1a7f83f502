#pragma once
// Environment: chooses the communication backend at run time and owns its lifetime. Create
// exactly one, in main(), before any collective, and keep it alive until the last collective is
// done (it calls MPI_Finalize / destroys NCCL communicators when destroyed):
//
//   int main(int argc, char** argv) {
//     syncbn::dist::Environment env(argc, argv);   // every rank, collective for mpi/nccl
//     auto world = env.world();
//     if (world->rank() == 0) std::cout << env.describe() << "\n";
//     return env.run("my-program", [&] { ...; return 0; });
//   }
//
// An error on one rank must end the whole job: the other ranks are typically waiting in a
// collective for it. Catching the exception and returning from main() is not enough, because
// destroying the Environment runs MPI_Finalize, which waits for those ranks. So run the program's
// body through run() (or call abort() yourself); as a last line of defence, an Environment
// destroyed while an exception unwinds the stack ends the job with abort() too.
//
// Backends: "local" (a world of one), "mpi" (OpenMPI/any MPI, CPU buffers), "nccl" (GPU, under
// mpirun; host buffers are staged through the device) and "auto": mpi when the process was
// started by a launcher (mpirun, mpiexec, srun with several tasks), else local.
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "syncbn/dist/process_group.hpp"

namespace syncbn::dist {

struct EnvironmentOptions {
  // "auto", "mpi", "nccl" or "local".
  std::string backend = "auto";
  // A rank that waits longer than this in one collective prints which collective and for how
  // long, then aborts the whole job (a skipped or extra collective on another rank would
  // otherwise hang forever). <= 0 disables the watchdog. Env: SYNCBN_COLLECTIVE_TIMEOUT, which
  // must be finite and, when positive, at least 1 s (a shorter limit aborts healthy jobs).
  double collective_timeout_s = 300;
  // Before each collective, ranks compare (collective, count, dtype, root) in one tiny extra
  // allreduce, so a mismatch is a CommError on every rank instead of a hang or truncation.
  // Must be the same on every rank. Env: SYNCBN_CHECK_COLLECTIVES=0/1.
  bool check_collectives = true;
};

using EnvMap = std::map<std::string, std::string>;

// The variables the functions below read, taken from this process's environment.
EnvMap launch_environment();

// Returns options with SYNCBN_COLLECTIVE_TIMEOUT (seconds) and SYNCBN_CHECK_COLLECTIVES
// (0/1/false/true/off/on) from `env` applied on top, so an operator can change them without
// rebuilding. Throws ConfigError naming the variable and the value it could not parse.
EnvironmentOptions apply_env_overrides(EnvironmentOptions options, const EnvMap& env);

// If `env` shows a parallel launcher, a short description of the evidence (e.g.
// "OMPI_COMM_WORLD_SIZE=4"), else "". Pure; exposed for tests and launch scripts.
std::string detect_launcher(const EnvMap& env);

// This process's rank as its launcher announced it (OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK,
// SLURM_PROCID), readable before MPI starts; 0 when not launched. For printing a message that
// every rank would print alike only once.
int launcher_rank(const EnvMap& env);

// Maps a requested backend name to a concrete one ("auto" -> "mpi" or "local" by
// detect_launcher). Throws ConfigError for an unknown name, listing the valid names.
std::string resolve_backend(const std::string& requested, const EnvMap& env);

namespace detail {
class Backend;
}

class Environment {
 public:
  // Collective over the launched job for mpi/nccl. May consume MPI's arguments from argv.
  // Throws ConfigError (unknown backend, bad env override, backend not built) or CommError.
  Environment(int& argc, char**& argv, EnvironmentOptions options = {});
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  // The group of all ranks. Groups must be released before the Environment is destroyed.
  std::shared_ptr<ProcessGroup> world() const;
  // The concrete backend: "mpi", "nccl" or "local".
  const std::string& backend() const { return backend_; }
  const EnvironmentOptions& options() const { return options_; }
  // One line for logs, e.g. "backend mpi: rank 0 of 4 (Open MPI v4.1.4; collective checks on,
  // timeout 300 s)".
  std::string describe() const;

  // Runs `body` and returns its exit code. If it throws, prints once, on this rank,
  // "<program>: rank R: error: <what>" ("config error" for a ConfigError) and ends the job with
  // exit code 2 for a ConfigError, else 1: with more than one rank through abort(), so every rank
  // ends within seconds; alone, by returning the code (normal clean-up).
  int run(const std::string& program, const std::function<int()>& body);

  // Ends every rank of the job now, from any thread: prints `message` (if not empty) to stderr,
  // aborts NCCL communicators, then MPI_Abort (the launcher kills the other ranks and exits with
  // `exit_code`); the local backend just exits. Never returns.
  [[noreturn]] void abort(const std::string& message, int exit_code) const;

 private:
  EnvironmentOptions options_;
  std::string backend_;
  std::unique_ptr<detail::Backend> impl_;
};

}  // namespace syncbn::dist
