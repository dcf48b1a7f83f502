#include "syncbn/nn/layers/threads.hpp"

#include <cblas.h>
#include <omp.h>

#include "syncbn/error.hpp"

namespace syncbn {

void set_num_threads(int n) {
  SYNCBN_CHECK(n >= 1, "set_num_threads: expected a positive thread count, got ", n);
  openblas_set_num_threads(n);
  omp_set_num_threads(n);
}

int get_num_threads() {
  return openblas_get_num_threads();
}

std::string blas_core() {
  return openblas_get_corename();
}

}  // namespace syncbn
