// The MPI backend's lifetime: MPI_Init_thread/MPI_Finalize as RAII and the world group (guarded:
// fingerprint checks and the watchdog), torn down in the order MPI needs (communicators and
// datatypes before finalize).
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "../backends.hpp"
#include "../guarded_group.hpp"
#include "custom_op.hpp"
#include "mpi_group.hpp"
#include "mpi_util.hpp"
#include "syncbn/error.hpp"

namespace syncbn::dist::detail {
namespace {

// The thread level MPI granted, for abort_job (which may run on the watchdog thread).
std::atomic<int> g_thread_level{MPI_THREAD_SINGLE};

// Owns MPI unless the process initialised it before us, in which case whoever did finalizes.
class MpiRuntime {
 public:
  MpiRuntime(int& argc, char**& argv) {
    int initialized = 0, finalized = 0;
    check_mpi(MPI_Initialized(&initialized), "MPI_Initialized", -1, 0);
    check_mpi(MPI_Finalized(&finalized), "MPI_Finalized", -1, 0);
    SYNCBN_CHECK_AS(CommError, !finalized,
                    "MPI backend: MPI was already finalized in this process and cannot restart");
    int provided = MPI_THREAD_SINGLE;
    if (initialized) {
      check_mpi(MPI_Query_thread(&provided), "MPI_Query_thread", -1, 0);
    } else {
      // MULTIPLE so the watchdog may call MPI_Abort from its own thread; measured no slower
      // than FUNNELED for small allreduces with Open MPI 4.1 over shared memory.
      check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread",
                -1, 0);
      owns_ = true;
      // Errors not tied to one of our communicators (datatype and op creation) are raised on
      // MPI_COMM_WORLD; we own MPI, so make those return codes too instead of aborting.
      check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN),
                "MPI_Comm_set_errhandler", -1, 0);
    }
    g_thread_level = provided;
  }
  ~MpiRuntime() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!owns_ || finalized) return;
    // A destructor cannot throw, and the process is ending anyway: say so and carry on.
    if (const int rc = MPI_Finalize(); rc != MPI_SUCCESS)
      std::fprintf(stderr, "syncbn: MPI_Finalize failed: %s\n", mpi_error_string(rc).c_str());
  }
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

 private:
  bool owns_ = false;
};

// "Open MPI v4.1.4" from "Open MPI v4.1.4, package: Debian OpenMPI, ident: ...".
std::string library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) return "unknown MPI";
  std::string version(text, static_cast<std::size_t>(length));
  version = version.substr(0, version.find_first_of(",\n"));
  return version;
}

class MpiBackend : public Backend {
 public:
  MpiBackend(int& argc, char**& argv, const EnvironmentOptions& options) : runtime_(argc, argv) {
    int world_rank = 0;
    check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank), "MPI_Comm_rank", -1, 0);
    timeout_s_ = options.collective_timeout_s;
    checks_ = options.check_collectives;
    world_ = std::make_shared<GuardedGroup>(MpiGroup::duplicate(MPI_COMM_WORLD),
                                            guard_options(options, world_rank, "mpi", abort_job));
  }

  ~MpiBackend() override {
    world_.reset();
    CustomOps::instance().release();
  }  // runtime_ finalizes last: it is the first member

  std::shared_ptr<ProcessGroup> world() const override { return world_; }

  std::string describe() const override {
    std::string text = "rank " + std::to_string(world_->rank()) + " of " +
                       std::to_string(world_->size()) + " (" + library_version() +
                       "; collective checks " + (checks_ ? "on" : "off") + ", ";
    if (timeout_s_ > 0) {
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%g", timeout_s_);
      return text + "timeout " + seconds + " s)";
    }
    return text + "no timeout)";
  }

 private:
  MpiRuntime runtime_;
  double timeout_s_ = 0;
  bool checks_ = true;
  std::shared_ptr<GuardedGroup> world_;
};

}  // namespace

std::unique_ptr<Backend> make_mpi_backend(int& argc, char**& argv,
                                          const EnvironmentOptions& options) {
  return std::make_unique<MpiBackend>(argc, argv, options);
}

void abort_job(int exit_code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized && g_thread_level.load() == MPI_THREAD_MULTIPLE)
    MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // mpirun tears the job down when a rank exits without MPI_Finalize
}

}  // namespace syncbn::dist::detail
