// See batch_norm_kernel.hpp for the arithmetic and why it is spelled exactly this way.
#include "batch_norm_kernel.hpp"

#include <cmath>

#include "byte_lookup.hpp"
#include "core/channel_loop.hpp"
#include "round.hpp"
#include "syncbn/error.hpp"

namespace syncbn::quant::detail {
namespace {

// Per-plane constants. lo/hi bound nearbyint's argument: [qmin - out_zp, qmax - out_zp], with
// lo = 0 under ReLU (max(y, out_zp) is y - out_zp >= 0). Integer bounds, so clamping before
// rounding equals PyTorch's clamp after rounding.
struct Plane {
  float alpha, beta, lo, hi;
  std::int32_t in_zp, out_zp;
};

// One contiguous plane: branch-free, and compiled to 64-byte vectors (zero-extend, subtract,
// convert, fma, max, min, round, narrow) under -march=native.
template <typename Code>
void plane_run(const Code* x, Code* y, std::int64_t len, Plane p) {
#pragma omp simd
  for (std::int64_t i = 0; i < len; ++i) {
    const auto centred = static_cast<float>(static_cast<std::int32_t>(x[i]) - p.in_zp);
    const float v = std::fma(p.alpha, centred, p.beta);
    y[i] = static_cast<Code>(round_clamped(v, p.lo, p.hi) + p.out_zp);
  }
}

Plane channel_plane(Plane base, const FusedParams& params, std::int64_t c) {
  base.alpha = params.alpha[c];
  base.beta = params.beta[c];
  return base;
}

// Arithmetic path: every code through plane_run.
template <typename Code>
void compute_all(const Code* x, Code* y, const nn::detail::NCS& d, const FusedParams& params,
                 Plane base) {
  nn::detail::for_channel_ranges(d, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t n = 0; n < d.n; ++n)
      for (std::int64_t c = c0; c < c1; ++c) {
        const std::int64_t at = (n * d.c + c) * d.s;
        plane_run(x + at, y + at, d.s, channel_plane(base, params, c));
      }
  });
}

// Table path: a code has only 256 possible values, so plane_run maps all of them once per
// channel and the planes become byte lookups (byte_lookup.hpp). The tables are plane_run's own
// outputs, so both paths give identical codes; tables pay off once a channel has a few hundred
// codes, and cost 256 evaluations per channel.
constexpr std::int64_t kTableMinCodesPerChannel = 256;

template <typename Code>
void lookup_all(const Code* x, Code* y, const nn::detail::NCS& d, const FusedParams& params,
                Plane base) {
  std::vector<std::uint8_t> tables(static_cast<std::size_t>(d.c) * 256);
  alignas(64) std::uint8_t every_byte[256];
  for (int b = 0; b < 256; ++b) every_byte[b] = static_cast<std::uint8_t>(b);
  for (std::int64_t c = 0; c < d.c; ++c)
    plane_run(reinterpret_cast<const Code*>(every_byte), reinterpret_cast<Code*>(&tables[c * 256]),
              256, channel_plane(base, params, c));
  const auto* in = reinterpret_cast<const std::uint8_t*>(x);
  auto* out = reinterpret_cast<std::uint8_t*>(y);
  nn::detail::for_channel_ranges(d, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t n = 0; n < d.n; ++n)
      for (std::int64_t c = c0; c < c1; ++c) {
        const std::int64_t at = (n * d.c + c) * d.s;
        byte_lookup(in + at, out + at, d.s, &tables[c * 256]);
      }
  });
}

template <typename Code>
void run_all(const Code* x, Code* y, const nn::detail::NCS& d, const FusedParams& params,
             Plane base) {
  if (kHasByteLookup && d.n * d.s >= kTableMinCodesPerChannel)
    lookup_all(x, y, d, params, base);
  else
    compute_all(x, y, d, params, base);
}

}  // namespace

FusedParams fused_params(const Tensor& weight, const Tensor& bias, const Tensor& mean,
                         const Tensor& var, double eps, double in_scale, double out_scale) {
  const std::int64_t channels = mean.numel();
  FusedParams p{std::vector<float>(channels), std::vector<float>(channels)};
  const float* w = weight.data<float>();
  const float* b = bias.data<float>();
  const float* m = mean.data<float>();
  const float* v = var.data<float>();
  const double scale_ratio = in_scale / out_scale;
  for (std::int64_t c = 0; c < channels; ++c) {
    const float root = std::sqrt(v[c] + static_cast<float>(eps));  // float32 sqrt
    const auto inv_sigma = static_cast<float>(1.0 / static_cast<double>(root));
    const float scaled_weight = inv_sigma * w[c];
    const float shift = b[c] - m[c] * inv_sigma * w[c];
    p.alpha[c] = static_cast<float>(static_cast<double>(scaled_weight) * scale_ratio);
    p.beta[c] = static_cast<float>(static_cast<double>(shift) / out_scale);
  }
  return p;
}

void batch_norm_codes(const QTensor& input, const FusedParams& params, std::int64_t out_zero_point,
                      bool relu, QTensor& out) {
  SYNCBN_ASSERT(out.shape() == input.shape() && out.dtype() == input.dtype(),
                "output buffer does not match the input");
  const nn::detail::NCS d = nn::detail::ncs_of(input.bytes());
  SYNCBN_ASSERT(static_cast<std::int64_t>(params.alpha.size()) == d.c, "alpha has ",
                params.alpha.size(), " entries for ", d.c, " channels");
  if (input.numel() == 0) return;
  const QDType dtype = input.dtype();
  Plane base{0.f,
             0.f,
             static_cast<float>(qdtype_min(dtype) - out_zero_point),
             static_cast<float>(qdtype_max(dtype) - out_zero_point),
             static_cast<std::int32_t>(input.q_zero_point()),
             static_cast<std::int32_t>(out_zero_point)};
  if (relu) base.lo = 0.f;
  if (dtype == QDType::QUInt8) {
    run_all(input.data(), out.data(), d, params, base);
  } else {
    run_all(reinterpret_cast<const std::int8_t*>(input.data()),
            reinterpret_cast<std::int8_t*>(out.data()), d, params, base);
  }
}

}  // namespace syncbn::quant::detail
