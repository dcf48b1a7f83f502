#include "syncbn/nn/layers/size.hpp"

#include <algorithm>

#include "syncbn/error.hpp"

namespace syncbn::nn {

template <std::size_t D>
SizeN<D>::SizeN(const std::vector<std::int64_t>& values) {
  SYNCBN_CHECK(values.size() == D, "expected ", D, " sizes (one per spatial dimension), got ",
               values.size());
  std::copy(values.begin(), values.end(), v_.begin());
}

template <std::size_t D>
std::int64_t SizeN<D>::product() const {
  std::int64_t p = 1;
  for (const auto x : v_) p *= x;
  return p;
}

template <std::size_t D>
bool SizeN<D>::all_positive() const {
  return std::all_of(v_.begin(), v_.end(), [](std::int64_t x) { return x > 0; });
}

template <std::size_t D>
bool SizeN<D>::all_non_negative() const {
  return std::all_of(v_.begin(), v_.end(), [](std::int64_t x) { return x >= 0; });
}

template <std::size_t D>
std::string SizeN<D>::str() const {
  std::string s = "(";
  for (std::size_t i = 0; i < D; ++i) s += (i ? ", " : "") + std::to_string(v_[i]);
  return s + (D == 1 ? ",)" : ")");
}

template <std::size_t D>
std::string SizeN<D>::given_str() const {
  return scalar_ ? std::to_string(v_[0]) : str();
}

template class SizeN<1>;
template class SizeN<2>;
template class SizeN<3>;

}  // namespace syncbn::nn
