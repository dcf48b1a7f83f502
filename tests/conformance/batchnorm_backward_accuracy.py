#!/usr/bin/python3
"""Measures PyTorch's float32 BatchNorm2d input gradient against a float64 reference on inputs
whose dy spans four orders of magnitude, the figures that bound syncbn's error in
tests/nn/batchnorm_accuracy_test.cpp.

    /usr/bin/python3 tests/conformance/batchnorm_backward_accuracy.py

The inputs are a pure function of the element index (a murmur3 finaliser of the index, bits
scaled by powers of two, one float64 add, one rounding to float32), so the C++ test builds the
very same float32 tensors without PyTorch. The reference is the textbook formula in float64 on
those float32 values:
    dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)),  xhat = (x - mean(x)) * invstd.
Cases (dy per channel; "_offset_mean" adds 300 to x, whose spread is ~0.75):
    spread    |dy| ~ 1.2e-4 with random signs, one in 101 ~ 3
    flat      dy = 1e-4, one in 1009 positive ~ 1.5
    balanced  flat, but the large ones come in opposite pairs at equal x: they add nothing to
              sum(dy) or sum(dy * xhat), so the small dx cancel to ~2e-7 * w * invstd
    affine    dy = (x - 300 or 0) + noise ~ 1.2e-4: dx is about the noise alone
Measures per case, worst over channels:
    rel_to_max   max |dx - ref| / max |ref|
    small_p50    median of |dx - ref| / |ref| over the elements whose dy is small
    small_p90    90th percentile of the same (the upper tail is where the cancellation bites;
                 the maximum itself is set by the few elements where ref crosses zero)
"""
import numpy as np
import torch

EPS = 1e-5
SHAPE = (16, 3, 32, 32)  # 16384 values per channel
WEIGHT = np.array([1.0, 0.5, 3.0], dtype=np.float32)


def fmix32(z):
    """murmur3's 32-bit finaliser, on a uint32 array."""
    z = z ^ (z >> np.uint32(16))
    z = z * np.uint32(0x85EBCA6B)
    z = z ^ (z >> np.uint32(13))
    z = z * np.uint32(0xC2B2AE35)
    return z ^ (z >> np.uint32(16))


def bits(salt, at):
    """Hash bits for each index in `at` (an index array, or a count for 0..count-1)."""
    i = np.arange(at, dtype=np.uint32) if np.isscalar(at) else at
    with np.errstate(over="ignore"):
        return fmix32(i * np.uint32(0x9E3779B1) + np.uint32(salt))


def signed_mantissa(r, exponent):
    """(1 + m / 2^23) * 2^exponent, m the low 23 bits of r, negative when r's top bit is set."""
    m = (r & np.uint32(0x7FFFFF)).astype(np.float64)
    sign = np.where(r >> np.uint32(31) != 0, -1.0, 1.0)
    return sign * np.ldexp(2.0**23 + m, exponent - 23)


def make_inputs(case):
    """(x, dy, small) for a case; small marks the elements with a small dy."""
    count = int(np.prod(SHAPE))
    # "balanced" works on pairs of neighbours (2j, 2j+1) that share x and, when large, carry
    # opposite dy: the large values then add nothing to sum(dy) or sum(dy * xhat), so the small
    # dx = w * invstd * (1e-4 - mean(dy) - ...) cancel to ~1e-4 * 2 / large_every.
    pairs = case["dy"] == "balanced"
    at = np.arange(count, dtype=np.uint32) >> np.uint32(1) if pairs else count
    large = bits(case["salt"] + 2, at) % np.uint32(case["large_every"]) == 0
    if case["dy"] == "spread":  # |dy| in [2^-13, 2^-12) ~ 1.2e-4, a few in [2, 4)
        dy = np.where(large, signed_mantissa(bits(case["salt"] + 1, at), 1),
                      signed_mantissa(bits(case["salt"] + 1, at), -13))
    elif case["dy"] == "affine":  # dy = (x - x_mean) + noise ~ 1.2e-4: dx is ~ the noise alone
        dy = (signed_mantissa(bits(case["salt"], at), -1) +
              signed_mantissa(bits(case["salt"] + 1, at), -13))
        large[:] = False
    else:  # dy = 1e-4 everywhere except a few values in [1, 2), positive unless balanced
        r = bits(case["salt"] + 1, at) & np.uint32(0x7FFFFFFF)
        if pairs:
            r = r | (np.arange(count, dtype=np.uint32) << np.uint32(31))  # odd one negative
        dy = np.where(large, signed_mantissa(r, 0), np.float64(np.float32(1e-4)))
    x = case["x_mean"] + signed_mantissa(bits(case["salt"], at), -1)  # spread ~ +-[0.5, 1)
    small = ~large
    return (x.astype(np.float32).reshape(SHAPE), dy.astype(np.float32).reshape(SHAPE),
            small.reshape(SHAPE))


def fingerprint(x, dy):
    """Sum of bits(x)*(2i+1) + bits(dy)*(2i+2) modulo 2^64, as the C++ test computes it."""
    i = np.arange(x.size, dtype=np.uint64)
    xb = x.reshape(-1).view(np.uint32).astype(np.uint64)
    gb = dy.reshape(-1).view(np.uint32).astype(np.uint64)
    return int((xb * (2 * i + 1) + gb * (2 * i + 2)).sum(dtype=np.uint64))


def reference_dx(x, dy, w):
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    axes = (0, 2, 3)
    mean = x.mean(axis=axes, keepdims=True)
    invstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + EPS)
    xhat = (x - mean) * invstd
    w = w.astype(np.float64).reshape(1, -1, 1, 1)
    return w * invstd * (dy - dy.mean(axis=axes, keepdims=True) -
                         xhat * (dy * xhat).mean(axis=axes, keepdims=True))


def torch_dx(x, dy, w):
    bn = torch.nn.BatchNorm2d(x.shape[1], eps=EPS)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(w))
    xt = torch.from_numpy(x).requires_grad_()
    bn(xt).backward(torch.from_numpy(dy))
    return xt.grad.numpy().astype(np.float64)


def measures(dx, ref, small):
    """Worst over channels of (rel_to_max, small_p50, small_p90)."""
    worst = [0.0, 0.0, 0.0]
    for c in range(ref.shape[1]):
        err, r, s = np.abs(dx[:, c] - ref[:, c]), ref[:, c], small[:, c]
        rel = err[s] / np.maximum(np.abs(r[s]), np.finfo(np.float64).tiny)
        vals = [err.max() / np.abs(r).max(), np.percentile(rel, 50), np.percentile(rel, 90)]
        worst = [max(a, b) for a, b in zip(worst, vals)]
    return worst


CASES = [
    dict(name="spread", dy="spread", large_every=101, x_mean=0.0, salt=100),
    dict(name="spread_offset_mean", dy="spread", large_every=101, x_mean=300.0, salt=200),
    dict(name="flat", dy="flat", large_every=1009, x_mean=0.0, salt=300),
    dict(name="flat_offset_mean", dy="flat", large_every=1009, x_mean=300.0, salt=400),
    dict(name="balanced", dy="balanced", large_every=1009, x_mean=0.0, salt=500),
    dict(name="balanced_offset_mean", dy="balanced", large_every=1009, x_mean=300.0, salt=600),
    dict(name="affine", dy="affine", large_every=1, x_mean=0.0, salt=700),
    dict(name="affine_offset_mean", dy="affine", large_every=1, x_mean=300.0, salt=800),
]


def main():
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, shape {SHAPE}, weight {WEIGHT.tolist()}")
    print(f"{'case':<20} {'rel_to_max':>11} {'small_p50':>11} {'small_p90':>11}  fingerprint")
    for case in CASES:
        x, dy, small = make_inputs(case)
        ref = reference_dx(x, dy, WEIGHT)
        m = measures(torch_dx(x, dy, WEIGHT), ref, small)
        print(f"{case['name']:<20} {m[0]:11.3e} {m[1]:11.3e} {m[2]:11.3e}  "
              f"0x{fingerprint(x, dy):016x}")


if __name__ == "__main__":
    main()
