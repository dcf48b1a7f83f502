#pragma once
// Python's repr of a float, for PyTorch-style extra_repr strings ("1e-05", "0.1", "1.0").
#include <cstdio>
#include <string>

namespace syncbn::nn::detail {

inline std::string py_float(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  std::string s(buf);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

}  // namespace syncbn::nn::detail
