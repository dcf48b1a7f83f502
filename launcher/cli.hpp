#pragma once
// The command-line handling syncbn-train and syncbn-quantize share: parsing with a program's
// options_description, --help, usage errors, and loading the config before anything starts.
// Every rank of a launched job (mpirun, srun) runs the same command line and fails alike, so a
// message about it is printed once per job, by the launcher's rank 0, and the exit status is 2.
#include <boost/program_options.hpp>
#include <functional>
#include <string>

#include "syncbn/config/config.hpp"

namespace syncbn::launcher {

namespace po = boost::program_options;

struct Program {
  std::string name;        // prefixes every message: "syncbn-train: ..."
  std::string help_after;  // what --help prints after the options (examples, notes)
};

// True where a message that every rank of the job would print alike is printed: the launcher's
// rank 0, or the only process when nothing launched this one.
bool prints_for_the_job();

// Parses argv against `options` and runs their notifiers, then `check` (optional), which throws
// po::error for what the options cannot check alone (ranges, combinations). Returns the exit
// code when the command line ends the program: 0 after --help (the options then help_after, on
// stdout), 2 after a usage error ("<name>: <what> (see --help)" on stderr, once per job); -1 to
// go on.
int parse_command_line(int argc, char** argv, const Program& program,
                       const po::options_description& options,
                       const std::function<void(const po::variables_map&)>& check = {});

// Loads the config at `path` with `overrides` into `config`, then runs `check` (optional) for
// what else must be refused before any process group starts. A ConfigError from either is
// printed once per job ("<name>: config error: ...") and returns 2; -1 to go on.
int load_config_before_launch(const Program& program, const std::string& path,
                              const config::Overrides& overrides, config::Config& config,
                              const std::function<void()>& check = {});

}  // namespace syncbn::launcher
