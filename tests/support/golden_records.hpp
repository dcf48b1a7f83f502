#pragma once
// Reads the plain-text goldens the Python generators write: one record per line,
// "<name> <count> <value> <value> ...", values as Python's repr of a float.
#include <cstddef>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace syncbn::testing {

inline std::map<std::string, std::vector<double>> read_golden_records(const std::string& path) {
  std::map<std::string, std::vector<double>> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    std::size_t n = 0;
    fields >> name >> n;
    auto& values = out[name];
    values.resize(n);
    for (double& v : values) fields >> v;
  }
  return out;
}

}  // namespace syncbn::testing
