#pragma once
// SizeN<D>: one size per spatial dimension (kernel sizes, strides, paddings, dilations, output
// sizes), as LibTorch's ExpandingArray<D>. Built from one number (the same in every dimension,
// as PyTorch's `kernel_size=3`), from D numbers (`{3, 1}`, `SizeN<2>(3, 1)`) or from a list of
// D numbers (a config's `[3, 1]`; another length is a ValueError).
//
// It remembers whether it was given as one number, because some PyTorch modules print the
// value as given (MaxPool2d(kernel_size=3, ...), AdaptiveAvgPool2d(output_size=1)) while the
// convolutions print tuples: str() is always the tuple, given_str() the value as given.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

namespace syncbn::nn {

template <std::size_t D>
class SizeN {
  static_assert(D >= 1 && D <= 3, "SizeN: 1, 2 or 3 spatial dimensions");

 public:
  SizeN(std::int64_t all = 0) : scalar_(true) { v_.fill(all); }  // NOLINT: implicit, `.stride(2)`
  // D numbers: SizeN<2>(3, 1), or `{3, 1}` where an option is expected.
  template <typename... T, typename = std::enable_if_t<(D > 1) && sizeof...(T) == D &&
                                                       (std::is_integral_v<T> && ...)>>
  SizeN(T... values) : v_{static_cast<std::int64_t>(values)...} {}  // NOLINT: implicit
  // A list of exactly D numbers; throws ValueError naming both lengths otherwise.
  explicit SizeN(const std::vector<std::int64_t>& values);

  std::int64_t operator[](std::size_t i) const { return v_[i]; }
  std::int64_t& operator[](std::size_t i) { return v_[i]; }
  static constexpr std::size_t size() { return D; }
  const std::array<std::int64_t, D>& values() const { return v_; }
  // Product of the entries (a kernel's volume).
  std::int64_t product() const;
  bool all_positive() const;
  bool all_non_negative() const;
  // True when built from one number.
  bool given_as_scalar() const { return scalar_; }

  // Equal values compare equal however they were given.
  bool operator==(const SizeN& o) const { return v_ == o.v_; }
  bool operator!=(const SizeN& o) const { return !(*this == o); }
  // PyTorch's tuple repr: "(3,)", "(3, 3)", "(3, 3, 3)".
  std::string str() const;
  // "3" when built from one number, else str().
  std::string given_str() const;

 private:
  std::array<std::int64_t, D> v_{};
  bool scalar_ = false;
};

using Size1 = SizeN<1>;
using Size2 = SizeN<2>;
using Size3 = SizeN<3>;

extern template class SizeN<1>;
extern template class SizeN<2>;
extern template class SizeN<3>;

}  // namespace syncbn::nn
