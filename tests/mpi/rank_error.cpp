// A library program where the last rank fails while the others wait in a collective. Run under
// mpirun with a long collective timeout: the job must end at once with the failing rank's message
// (ctest mpi_rank_error_*), never wait for the watchdog.
//   rank_error run      the body runs inside Environment::run
//   rank_error unwind   the exception unwinds past the Environment (caught in main after it is
//                       destroyed): the destructor must end the job instead of MPI_Finalize
#include <cstdio>
#include <cstring>

#include "syncbn/dist/environment.hpp"
#include "syncbn/error.hpp"

namespace {
int body(syncbn::dist::ProcessGroup& world) {
  if (world.rank() == world.size() - 1) throw syncbn::IoError("disk full, on purpose");
  double x = 1;
  world.allreduce(&x, 1);
  std::printf("rank %d: allreduce returned without the failed rank\n", world.rank());
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  const bool unwind = argc > 1 && std::strcmp(argv[1], "unwind") == 0;
  if (!unwind) {
    syncbn::dist::Environment env(argc, argv);
    return env.run("rank_error", [&] { return body(*env.world()); });
  }
  try {
    syncbn::dist::Environment env(argc, argv);
    return body(*env.world());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank_error: caught after the Environment: %s\n", e.what());
    return 1;
  }
}
