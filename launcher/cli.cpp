#include "cli.hpp"

#include <iostream>

#include "syncbn/dist/environment.hpp"
#include "syncbn/error.hpp"

namespace syncbn::launcher {

bool prints_for_the_job() {
  return dist::launcher_rank(dist::launch_environment()) == 0;
}

int parse_command_line(int argc, char** argv, const Program& program,
                       const po::options_description& options,
                       const std::function<void(const po::variables_map&)>& check) {
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, options), vm);
    if (vm.count("help")) {
      std::cout << options << program.help_after;
      return 0;
    }
    po::notify(vm);
    if (check) check(vm);
  } catch (const po::error& e) {
    if (prints_for_the_job()) std::cerr << program.name << ": " << e.what() << " (see --help)\n";
    return 2;
  }
  return -1;
}

int load_config_before_launch(const Program& program, const std::string& path,
                              const config::Overrides& overrides, config::Config& config,
                              const std::function<void()>& check) {
  try {
    config = config::load_config(path, overrides);
    if (check) check();
  } catch (const ConfigError& e) {
    if (prints_for_the_job()) std::cerr << program.name << ": config error: " << e.what() << "\n";
    return 2;
  }
  return -1;
}

}  // namespace syncbn::launcher
