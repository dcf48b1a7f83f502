#include <string>
#include <vector>

#include "syncbn/io/safetensors.hpp"

namespace syncbn::io {
namespace {

std::string describe(const Tensor& t) {
  return shape_str(t.shape()) + " " + dtype_name(t.dtype());
}

}  // namespace

std::vector<std::string> state_dict_mismatches(const TensorMap& loaded, const TensorMap& expected) {
  std::vector<std::string> out;
  // Both maps are sorted: walk them together so the report comes out in key order.
  auto l = loaded.begin();
  auto e = expected.begin();
  while (l != loaded.end() || e != expected.end()) {
    if (e == expected.end() || (l != loaded.end() && l->first < e->first)) {
      out.push_back("unexpected key '" + l->first + "' (" + describe(l->second) + ")");
      ++l;
    } else if (l == loaded.end() || e->first < l->first) {
      out.push_back("missing key '" + e->first + "' (expected " + describe(e->second) + ")");
      ++e;
    } else {
      const Tensor& a = l->second;
      const Tensor& b = e->second;
      if (a.shape() != b.shape() || a.dtype() != b.dtype())
        out.push_back("'" + l->first + "': checkpoint has " + describe(a) + ", module expects " +
                      describe(b));
      ++l, ++e;
    }
  }
  return out;
}

}  // namespace syncbn::io
