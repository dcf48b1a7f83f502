#pragma once
// Internal seam between Environment and the backends. Each backend directory provides these
// factories either for real (src/dist/mpi, src/dist/nccl) or as a stub that throws, and CMake
// picks which file is compiled, so no shared file needs an #ifdef.
#include <memory>
#include <string>

#include "syncbn/dist/environment.hpp"
#include "syncbn/dist/process_group.hpp"

namespace syncbn::dist::detail {

// A running backend: owns its library's lifetime (MPI_Init/MPI_Finalize, NCCL communicators)
// and the world group. Destroying it shuts the library down, so Environment destroys it last.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::shared_ptr<ProcessGroup> world() const = 0;
  // What follows "backend <name>: " in Environment::describe(), e.g.
  // "rank 0 of 4 (Open MPI v4.1.4; collective checks on, timeout 300 s)".
  virtual std::string describe() const = 0;
  // Cancels in-flight device work before the process is torn down (NCCL: ncclCommAbort), so an
  // abort does not wait on a collective that will never complete. Default: nothing to cancel.
  virtual void abort_communicators() {}
};

// Initialises MPI (unless the process already did) and returns the MPI_COMM_WORLD group.
// Called once, by Environment or by the NCCL backend for its bootstrap. Throws CommError when
// MPI fails, ConfigError from the stub when syncbn was built without MPI.
std::unique_ptr<Backend> make_mpi_backend(int& argc, char**& argv,
                                          const EnvironmentOptions& options);

// Brings up NCCL on top of an MPI bootstrap (it runs under mpirun). Throws CommError when no CUDA
// device is usable, ConfigError from the stub when syncbn was built without NCCL.
std::unique_ptr<Backend> make_nccl_backend(int& argc, char**& argv,
                                           const EnvironmentOptions& options);

// Ends the whole job from any thread: MPI_Abort when MPI allows calls from this thread, else
// _Exit, which mpirun also answers by tearing the other ranks down. Used by the watchdog.
[[noreturn]] void abort_job(int exit_code);

}  // namespace syncbn::dist::detail
