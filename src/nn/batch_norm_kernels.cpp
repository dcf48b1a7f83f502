// Batch-norm kernels over an (N, C, S) float32 tensor, S = prod(spatial): two per-channel
// reductions (statistics; backward sums) and two element-wise passes (normalise; input gradient).
//
// Memory-traffic strategy. At training shapes every pass is bound by memory bandwidth, so the
// kernels move only compulsory bytes and keep the memory streams busy:
//  - Each pass reads its operands once, in memory order (sample by sample, channel by channel;
//    see channel_loop.hpp), one sequential stream per operand. Train forward is 2 reads + 1
//    write of the tensor, backward 4 reads + 1 write, eval forward 1 read + 1 write.
//  - Outputs are allocated uninitialised (Tensor::empty): a zero-fill would be one more write.
//  - The module keeps its input for backward by sharing its storage (copy-on-write Tensor), so
//    saving it moves no bytes.
//  - Outputs larger than half the L3 go with non-temporal stores too (computed into an L1
//    scratch span, then streamed): such an output cannot stay cached next to its input anyway,
//    and a normal store would first read every line for ownership.
//  - Short runs (7x7 = 49 values) must not starve the stream. Reductions sum a run in registers
//    (two sets of 8 double lanes, an overlapping masked last vector instead of a scalar tail)
//    and prefetch 8 KiB ahead, which the hardware prefetcher alone does not keep up with when
//    per-run work dilutes the stream. Element-wise passes cover a run with 16-float vectors, the
//    last one overlapping its predecessor (outputs never alias inputs).
// Accuracy: statistics accumulate in double around a per-channel shift (one value of the
// channel), so sum((x-shift)^2) - sum(x-shift)^2/n does not cancel when |mean| >> std. normalize,
// in float, subtracts a hi/lo split of the mean, so x - hi is exact near the mean, which a
// folded x*scale + shift would not be. The input gradient is computed per value in double
// (InputGradTerms): its terms can cancel to a small fraction of each, where the rounding of
// float terms cost more than PyTorch's float formula does (tests/nn/batchnorm_accuracy_test).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "core/channel_loop.hpp"
#include "syncbn/nn/functional.hpp"

// The vector helpers below are internal and inlined, so GCC's note that passing 32/64-byte
// vectors changes the ABI on targets without AVX/AVX-512 does not apply.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunknown-warning-option"
#endif
#pragma GCC diagnostic ignored "-Wpsabi"

namespace syncbn::nn::functional {
namespace {
using detail::NCS;

// GCC/Clang vector extensions: fixed widths the compiler lowers to the target's registers (one
// zmm with AVX-512, two ymm with AVX2, four xmm with SSE2).
constexpr std::int64_t kLanes = 16;  // floats per element-wise step
using Floats16 = float __attribute__((vector_size(64)));
using Floats8 = float __attribute__((vector_size(32)));
using Doubles8 = double __attribute__((vector_size(64)));
using Doubles4 = double __attribute__((vector_size(32)));
using Doubles2 = double __attribute__((vector_size(16)));

// Names the value type a step works on (a vector or a scalar) without passing one by value.
template <typename V>
struct As {
  using type = V;
};

// Unaligned load/store of a vector or a scalar (runs start anywhere).
template <typename V>
inline V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename V>
inline void store(float* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}

// Eight floats widened to doubles, or one.
template <typename D>
inline D widen(const float* p) {
  if constexpr (std::is_same_v<D, double>) {
    return *p;
  } else {
#if defined(__AVX512F__)
    // One vcvtps2pd: GCC 12 splits __builtin_convertvector into 128-bit pieces when tuning for
    // 256-bit cores, which made the reductions compute bound. (The maskz form because GCC 12's
    // _mm512_cvtps_pd trips -Wmaybe-uninitialized.)
    return _mm512_maskz_cvtps_pd(static_cast<__mmask8>(0xFF), _mm256_loadu_ps(p));
#else
    return __builtin_convertvector(load<Floats8>(p), Doubles8);
#endif
  }
}

// Eight doubles rounded to floats.
inline Floats8 narrow(const Doubles8& v) {
#if defined(__AVX512F__)
  // One vcvtpd2ps, as in widen (and the maskz form for the same GCC 12 warning).
  return _mm512_maskz_cvtpd_ps(static_cast<__mmask8>(0xFF), v);
#else
  return __builtin_convertvector(v, Floats8);
#endif
}

// Calls step(i, As<V>{}) so that the steps cover [0, len): V is Floats16 for a vector at i, or
// float for one value when the run is shorter than a vector. The last vector may overlap the
// one before it, so step must write only outputs that do not alias its inputs.
template <typename Step>
inline void cover_run(std::int64_t len, Step&& step) {
  if (len < kLanes) {
    for (std::int64_t i = 0; i < len; ++i) step(i, As<float>{});
    return;
  }
  for (std::int64_t i = 0; i + kLanes < len; i += kLanes) step(i, As<Floats16>{});
  step(len - kLanes, As<Floats16>{});
}

template <typename D>
struct Terms {
  D u, v;
};

// Keeps lanes [8 - keep, 8) of t: the values of an overlapping last vector not yet counted.
inline Terms<Doubles8> last_lanes(const Terms<Doubles8>& t, std::int64_t keep) {
  constexpr Doubles8 kIota = {0, 1, 2, 3, 4, 5, 6, 7};
  const auto fresh = kIota >= static_cast<double>(8 - keep);
  return {fresh ? t.u : Doubles8{}, fresh ? t.v : Doubles8{}};
}

// (sum of u's lanes, sum of v's lanes) as a tree of shuffles and adds over both at once: a
// lane-by-lane scalar sum is a chain of 8 dependent adds per value, which a short run (7x7)
// pays twice per 49 values.
inline Terms<double> fold_lanes(const Doubles8& u, const Doubles8& v) {
  const Doubles8 halves = __builtin_shufflevector(u, v, 0, 1, 2, 3, 8, 9, 10, 11) +
                          __builtin_shufflevector(u, v, 4, 5, 6, 7, 12, 13, 14, 15);
  const Doubles4 quarters = __builtin_shufflevector(halves, halves, 0, 1, 4, 5) +
                            __builtin_shufflevector(halves, halves, 2, 3, 6, 7);
  const Doubles2 sums = __builtin_shufflevector(quarters, quarters, 0, 2) +
                        __builtin_shufflevector(quarters, quarters, 1, 3);
  return {sums[0], sums[1]};
}

// How far ahead the reductions prefetch. The hardware prefetcher alone falls behind on short
// runs (7x7 = 196 bytes), where the per-run work dilutes the stream: measured on a cold
// (128, 512, 7, 7) tensor, the statistics pass went from about 0.45 to 0.37 ms with this.
constexpr std::uintptr_t kPrefetchBytes = 8192;

inline void prefetch_ahead(const float* p) {
  // Integer arithmetic: the address may lie past the tensor, where a prefetch is harmless.
  __builtin_prefetch(
      reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(p) + kPrefetchBytes));
}

// Sums the terms of one run: terms(i, As<D>{}) returns the (u, v) terms of the 8 values at i
// (D = Doubles8) or of value i (D = double); `streams` are the run's inputs, prefetched ahead.
// Two lane sets hide the add latency; the last partial vector is an overlapping load with the
// already counted lanes zeroed, so no scalar tail (runs of 8 or more). The lanes fold in
// registers at the end of the run: a per-channel lane table in memory instead measured slower,
// its loads and stores competing with the stream for L1 fill buffers.
template <typename TermsAt, typename... Streams>
inline Terms<double> sum_run(std::int64_t len, TermsAt&& terms, const Streams*... streams) {
  Terms<double> sum{0, 0};
  if (len < 8) {
    (prefetch_ahead(streams), ...);
    for (std::int64_t i = 0; i < len; ++i) {
      const Terms<double> t = terms(i, As<double>{});
      sum.u += t.u, sum.v += t.v;
    }
    return sum;
  }
  Doubles8 u0 = {}, u1 = {}, v0 = {}, v1 = {};
  std::int64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    (prefetch_ahead(streams + i), ...);
    const Terms<Doubles8> t0 = terms(i, As<Doubles8>{}), t1 = terms(i + 8, As<Doubles8>{});
    u0 += t0.u, v0 += t0.v, u1 += t1.u, v1 += t1.v;
  }
  (prefetch_ahead(streams + i), ...);
  if (i + 8 <= len) {
    const Terms<Doubles8> t = terms(i, As<Doubles8>{});
    u0 += t.u, v0 += t.v, i += 8;
  }
  if (i < len) {
    const Terms<Doubles8> t = last_lanes(terms(len - 8, As<Doubles8>{}), len - i);
    u1 += t.u, v1 += t.v;
  }
  return fold_lanes(u0 + u1, v0 + v1);
}

struct SplitMean {
  float hi, lo;
};
SplitMean split(double mean) {
  const float hi = static_cast<float>(mean);
  return {hi, static_cast<float>(mean - hi)};
}

double weight_at(const Tensor& weight, std::int64_t c) {
  return weight.defined() ? weight.data<float>()[c] : 1.0;
}

// Per-channel constants of y = (x - hi) * scale + offset.
struct Affine {
  std::vector<float> hi, scale, offset;
};
Affine affine_of(const std::vector<double>& mean, const std::vector<double>& invstd,
                 const Tensor& weight, const Tensor& bias, std::int64_t channels) {
  Affine a{std::vector<float>(channels), std::vector<float>(channels),
           std::vector<float>(channels)};
  for (std::int64_t c = 0; c < channels; ++c) {
    const SplitMean m = split(mean[c]);
    const double w = weight_at(weight, c);
    const double b = bias.defined() ? bias.data<float>()[c] : 0.0;
    a.hi[c] = m.hi;
    a.scale[c] = static_cast<float>(invstd[c] * w);
    a.offset[c] = static_cast<float>(b - m.lo * invstd[c] * w);
  }
  return a;
}

// Non-temporal stores: a line written this way skips the read-for-ownership and does not
// displace cached data. For outputs nobody will read while they could still be cached.
#if defined(__AVX512F__)
constexpr std::int64_t kStreamFloats = 16;
inline void stream_store(float* dst, const float* src) {
  _mm512_stream_ps(dst, _mm512_loadu_ps(src));
}
#elif defined(__SSE2__)
constexpr std::int64_t kStreamFloats = 4;
inline void stream_store(float* dst, const float* src) {
  _mm_stream_ps(dst, _mm_loadu_ps(src));
}
#else
constexpr std::int64_t kStreamFloats = 0;
inline void stream_store(float*, const float*) {}
#endif

// Copies len floats, the aligned body with non-temporal stores.
void stream_copy(const float* src, float* dst, std::int64_t len) {
  if constexpr (kStreamFloats == 0) {
    std::memcpy(dst, src, len * sizeof(float));
  } else {
    constexpr std::uintptr_t kAlign = kStreamFloats * sizeof(float);
    const std::uintptr_t misalign = reinterpret_cast<std::uintptr_t>(dst) % kAlign;
    const std::int64_t head =
        std::min<std::int64_t>(len, (kAlign - misalign) % kAlign / sizeof(float));
    std::memcpy(dst, src, head * sizeof(float));
    std::int64_t i = head;
    for (; i + kStreamFloats <= len; i += kStreamFloats) stream_store(dst + i, src + i);
    std::memcpy(dst + i, src + i, (len - i) * sizeof(float));
  }
}

// Orders this thread's non-temporal stores before whatever follows (the parallel region's
// barrier, or the caller reading the output).
void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// Whether an output of `bytes` should be written with streaming stores: when it exceeds half
// the L3, it and the same-size input it is computed from cannot both stay cached, so caching it
// would only add a read-for-ownership per line (glibc's memcpy switches at 3/4 of the L3).
bool stream_output(std::size_t bytes) {
  static const std::size_t threshold = [] {
    long l3 = 0;
#if defined(_SC_LEVEL3_CACHE_SIZE)
    l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    return static_cast<std::size_t>(l3 > 0 ? l3 : 32L << 20) / 2;
  }();
  return kStreamFloats > 0 && bytes > threshold;
}

// Values per span (16 KiB): a span stays in L1 between being read or computed and streamed out.
constexpr std::int64_t kSpanValues = 4096;

// Produces out[begin, end) piece by piece: write(dst, c, at, len) computes channel c's values
// [at, at + len) into dst[0, len). When streaming, the pieces go to an L1 scratch buffer with
// the alignment of out + begin (Tensor storage is 64-byte aligned), then out with stream_copy.
template <typename Write>
void produce_span(const NCS& d, std::int64_t begin, std::int64_t end, float* out, bool stream,
                  Write&& write) {
  if (!stream) {
    detail::for_each_piece(d, begin, end, [&](std::int64_t c, std::int64_t at, std::int64_t len) {
      write(out + at, c, at, len);
    });
    return;
  }
  alignas(64) float scratch[kSpanValues + 16];
  float* base = scratch + begin % 16;
  detail::for_each_piece(d, begin, end, [&](std::int64_t c, std::int64_t at, std::int64_t len) {
    write(base + (at - begin), c, at, len);
  });
  stream_copy(base, out + begin, end - begin);
}

// An element-wise pass producing `out` (streamed when `stream`), threads over channel ranges,
// each in spans in memory order.
template <typename Write>
void elementwise_pass(const NCS& d, float* out, bool stream, Write&& write) {
  detail::for_channel_ranges(d, [&](std::int64_t c0, std::int64_t c1) {
    detail::for_each_span(d, c0, c1, kSpanValues, [&](std::int64_t begin, std::int64_t end) {
      produce_span(d, begin, end, out, stream, write);
    });
    if (stream) stream_fence();
  });
}

// Per-channel constants of the train-mode input gradient,
//   dx = w * invstd * (dy - mean(dy) - (x - mean) * invstd * mean(dy * xhat))
//      = dy * scale + offset + (x - mean) * slope.
// Evaluated in double: the terms can cancel to a small fraction of each (dy nearly affine in
// x; mean(dy) set by a few large values while most dy are tiny), and float rounding of the
// terms would then swamp the result. Widening adds no memory traffic to this bandwidth-bound
// pass; folding to two FMAs per value keeps it off the compute bound on short (7x7) runs.
struct InputGradTerms {
  double scale, offset, mean, slope;
  template <typename D>
  D at(const D& dy, const D& x) const {
    return (x - mean) * slope + (dy * scale + offset);
  }
};

std::vector<InputGradTerms> input_grad_terms(const std::vector<double>& mean,
                                             const std::vector<double>& invstd,
                                             const Tensor& weight, const GradSums& sums,
                                             std::int64_t count) {
  std::vector<InputGradTerms> terms(mean.size());
  const double n = static_cast<double>(count);
  for (std::size_t c = 0; c < terms.size(); ++c) {
    const double scale = weight_at(weight, static_cast<std::int64_t>(c)) * invstd[c];
    terms[c] = {scale, -scale * sums.sum_dy[c] / n, mean[c],
                -scale * invstd[c] * sums.sum_dy_xhat[c] / n};
  }
  return terms;
}
}  // namespace

Tensor normalize(const Tensor& input, const std::vector<double>& mean,
                 const std::vector<double>& invstd, const Tensor& weight, const Tensor& bias) {
  const NCS d = detail::ncs_of(input);
  Tensor out = Tensor::empty(input.shape());
  if (out.numel() == 0) return out;
  const Affine a = affine_of(mean, invstd, weight, bias, d.c);
  const float* x = input.data<float>();
  elementwise_pass(d, out.data<float>(), stream_output(out.nbytes()),
                   [&](float* dst, std::int64_t c, std::int64_t at, std::int64_t len) {
                     const float hi = a.hi[c], scale = a.scale[c], offset = a.offset[c];
                     cover_run(len, [&](std::int64_t i, auto as) {
                       using V = typename decltype(as)::type;
                       store(dst + i, (load<V>(x + at + i) - hi) * scale + offset);
                     });
                   });
  return out;
}

ChannelMoments channel_moments(const Tensor& input) {
  const NCS d = detail::ncs_of(input);
  ChannelMoments m{d.n * d.s, std::vector<double>(d.c, 0.0), std::vector<double>(d.c, 0.0)};
  if (m.count == 0) return m;
  const float* x = input.data<float>();
  std::vector<double> shift(d.c);
  for (std::int64_t c = 0; c < d.c; ++c) shift[c] = x[c * d.s];
  std::vector<double> s(d.c, 0.0), ss(d.c, 0.0);
  detail::for_each_run(d, [&](std::int64_t c, std::int64_t at) {
    const float* p = x + at;
    const double sh = shift[c];
    const Terms<double> t = sum_run(
        d.s,
        [&](std::int64_t i, auto as) {
          using D = typename decltype(as)::type;
          const D dev = widen<D>(p + i) - sh;
          return Terms<D>{dev, dev * dev};
        },
        p);
    s[c] += t.u, ss[c] += t.v;
  });
  const double count = static_cast<double>(m.count);
  for (std::int64_t c = 0; c < d.c; ++c) {
    m.mean[c] = shift[c] + s[c] / count;
    m.m2[c] = std::max(0.0, ss[c] - s[c] * s[c] / count);
  }
  return m;
}

void merge_moments(std::int64_t& count_a, double& mean_a, double& m2_a, std::int64_t count_b,
                   double mean_b, double m2_b) {
  if (count_b == 0) return;
  const std::int64_t count = count_a + count_b;
  const double delta = mean_b - mean_a;
  const double wb = static_cast<double>(count_b) / static_cast<double>(count);
  mean_a += delta * wb;
  m2_a += m2_b + delta * delta * static_cast<double>(count_a) * wb;
  count_a = count;
}

std::vector<double> invstd_from_var(const std::vector<double>& var, double eps) {
  std::vector<double> out(var.size());
  for (std::size_t c = 0; c < var.size(); ++c) out[c] = 1.0 / std::sqrt(var[c] + eps);
  return out;
}

GradSums grad_sums(const Tensor& grad_output, const Tensor& input, const std::vector<double>& mean,
                   const std::vector<double>& invstd) {
  const NCS d = detail::ncs_of(input);
  SYNCBN_CHECK_AS(ShapeError, grad_output.shape() == input.shape(), "grad_output shape ",
                  shape_str(grad_output.shape()), " does not match input shape ",
                  shape_str(input.shape()));
  GradSums g{std::vector<double>(d.c, 0.0), std::vector<double>(d.c, 0.0)};
  if (input.numel() == 0) return g;
  const float* dy = grad_output.data<float>();
  const float* x = input.data<float>();
  detail::for_each_run(d, [&](std::int64_t c, std::int64_t at) {
    const float *g_run = dy + at, *x_run = x + at;
    const double mc = mean[c];
    const Terms<double> t = sum_run(
        d.s,
        [&](std::int64_t i, auto as) {
          using D = typename decltype(as)::type;
          const D gi = widen<D>(g_run + i);
          return Terms<D>{gi, gi * (widen<D>(x_run + i) - mc)};
        },
        g_run, x_run);
    g.sum_dy[c] += t.u, g.sum_dy_xhat[c] += t.v;
  });
  for (std::int64_t c = 0; c < d.c; ++c) g.sum_dy_xhat[c] *= invstd[c];
  return g;
}

Tensor grad_input_train(const Tensor& grad_output, const Tensor& input,
                        const std::vector<double>& mean, const std::vector<double>& invstd,
                        const Tensor& weight, const GradSums& sums, std::int64_t count) {
  const NCS d = detail::ncs_of(input);
  Tensor dx = Tensor::empty(input.shape());
  if (dx.numel() == 0) return dx;
  const std::vector<InputGradTerms> terms = input_grad_terms(mean, invstd, weight, sums, count);
  const float* dy = grad_output.data<float>();
  const float* x = input.data<float>();
  elementwise_pass(d, dx.data<float>(), stream_output(dx.nbytes()),
                   [&](float* dst, std::int64_t c, std::int64_t at, std::int64_t len) {
                     const InputGradTerms t = terms[c];
                     cover_run(len, [&](std::int64_t i, auto as) {
                       using V = typename decltype(as)::type;
                       if constexpr (std::is_same_v<V, float>) {
                         dst[i] = static_cast<float>(t.at<double>(dy[at + i], x[at + i]));
                       } else {  // two halves of 8 doubles
                         for (std::int64_t h = 0; h < kLanes; h += 8)
                           store(dst + i + h, narrow(t.at(widen<Doubles8>(dy + at + i + h),
                                                          widen<Doubles8>(x + at + i + h))));
                       }
                     });
                   });
  return dx;
}

Tensor grad_input_eval(const Tensor& grad_output, const std::vector<double>& invstd,
                       const Tensor& weight) {
  const NCS d = detail::ncs_of(grad_output);
  Tensor dx = Tensor::empty(grad_output.shape());
  if (dx.numel() == 0) return dx;
  std::vector<float> scale(d.c);
  for (std::int64_t c = 0; c < d.c; ++c)
    scale[c] = static_cast<float>(weight_at(weight, c) * invstd[c]);
  const float* dy = grad_output.data<float>();
  elementwise_pass(d, dx.data<float>(), stream_output(dx.nbytes()),
                   [&](float* dst, std::int64_t c, std::int64_t at, std::int64_t len) {
                     const float sc = scale[c];
                     cover_run(len, [&](std::int64_t i, auto as) {
                       using V = typename decltype(as)::type;
                       store(dst + i, load<V>(dy + at + i) * sc);
                     });
                   });
  return dx;
}

}  // namespace syncbn::nn::functional
