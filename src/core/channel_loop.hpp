#pragma once
// How the batch-norm kernels walk an (N, C, S) tensor (S = product of spatial dims).
// Walking memory in order keeps the hardware prefetcher fed; threads split the channels, so
// each thread still streams contiguous runs of (c_end - c_begin) * S values per sample.
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "syncbn/error.hpp"
#include "syncbn/tensor.hpp"

namespace syncbn::nn::detail {

struct NCS {
  std::int64_t n, c, s;
};

inline NCS ncs_of(const Tensor& t) {
  SYNCBN_CHECK_AS(ShapeError, t.dim() >= 2, "batch norm expects (N, C, *) input, got shape ",
                  shape_str(t.shape()));
  NCS d{t.size(0), t.size(1), 1};
  for (std::int64_t i = 2; i < t.dim(); ++i) d.s *= t.size(i);
  return d;
}

// Below this many elements a parallel region costs more than it saves.
constexpr std::int64_t kParallelGrain = 1 << 16;

// Calls fn(c_begin, c_end) on disjoint channel ranges, one per thread.
template <typename Fn>
void for_channel_ranges(const NCS& d, Fn&& fn) {
  const std::int64_t work = d.n * d.c * d.s;
  const int threads = work < kParallelGrain ? 1 : std::min<int>(omp_get_max_threads(), d.c);
  if (threads <= 1) {
    fn(std::int64_t{0}, d.c);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    fn(d.c * t / nt, d.c * (t + 1) / nt);
  }
}

// Calls fn(c, offset) for every (sample, channel) run of S contiguous values, each thread over
// its channel range in memory order. Runs of one channel are visited by one thread only, so fn
// may accumulate into per-channel state without synchronisation.
template <typename Fn>
void for_each_run(const NCS& d, Fn&& fn) {
  for_channel_ranges(d, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t n = 0; n < d.n; ++n)
      for (std::int64_t c = c0; c < c1; ++c) fn(c, (n * d.c + c) * d.s);
  });
}

// Calls fn(begin, end) on flat index ranges covering channels [c0, c1) of every sample, in
// memory order, each at most `values` long and, when a run fits, made of whole runs.
template <typename Fn>
void for_each_span(const NCS& d, std::int64_t c0, std::int64_t c1, std::int64_t values, Fn&& fn) {
  const std::int64_t step = d.s <= values ? values / d.s * d.s : values;
  for (std::int64_t n = 0; n < d.n; ++n) {
    const std::int64_t lo = (n * d.c + c0) * d.s, hi = (n * d.c + c1) * d.s;
    for (std::int64_t b = lo; b < hi; b += step) fn(b, std::min(hi, b + step));
  }
}

// Calls fn(c, at, len) on the pieces of [begin, end) that lie in one run: channel c's values
// [at, at + len).
template <typename Fn>
void for_each_piece(const NCS& d, std::int64_t begin, std::int64_t end, Fn&& fn) {
  for (std::int64_t at = begin; at < end;) {
    const std::int64_t run = at / d.s, stop = std::min(end, (run + 1) * d.s);
    fn(run % d.c, at, stop - at);
    at = stop;
  }
}

}  // namespace syncbn::nn::detail
