#pragma once
// SYNCBN_ARG(type, name) declares a chained option, as LibTorch's TORCH_ARG does:
//   auto o = BatchNormOptions(64).eps(1e-3).affine(false);  o.eps() == 1e-3
#include <utility>

#define SYNCBN_ARG(T, name)        \
 public:                           \
  auto& name(const T& value) {     \
    name##_ = value;               \
    return *this;                  \
  }                                \
  const T& name() const noexcept { \
    return name##_;                \
  }                                \
                                   \
 private:                          \
  T name##_
