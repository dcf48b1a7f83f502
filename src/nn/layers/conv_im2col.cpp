// Conv1d/2d/3d on im2col + OpenBLAS sgemm: the fallback when oneDNN is not found (see
// conv_kernels.hpp for the contract, conv.hpp for the choice).
//
// With cols[K = C*prod(k), L = prod(OS)] the unfolded patches of one image (im2col, dilation
// applied there), every image is one GEMM y_n[O, L] = W[O, K] * cols_n. Backward:
// dW += dY_n * cols_n^T, dcols_n = W^T * dY_n, dx_n = col2im(dcols_n). With G groups the rows
// of cols, W and y split into G contiguous blocks (cols' rows are channel-major), and each
// group is its own GEMM on its block: y_g[O/G, L] = W_g[O/G, K/G] * cols_g.
//
// Small images give skinny GEMMs (L = 49 at 7x7), so the columns of several images are laid
// side by side and multiplied at once (about a thousand columns, a bounded buffer): BLAS runs
// well below peak on narrow matrices. The unfolded patches are not kept between forward and
// backward (they are K times the input); backward unfolds the saved input again, which costs
// much less than the GEMMs. Scratch buffers are per thread and reused, so steady-state steps
// allocate only the output tensors.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "conv_kernels.hpp"
#include "gemm.hpp"
#include "im2col.hpp"

namespace syncbn::nn::detail {
namespace {
// A 7x7 plane is a 49-column GEMM, far too narrow for BLAS to run near peak, so the columns of
// several images go into one GEMM, about kTargetColumns wide (measured with OpenBLAS 0.3.21 on
// the target EPYC: 10-20% faster at 7x7 with 64-128 channels; at 28x28 one image per GEMM is
// best, which the floor division gives). The unfolded patches stay under kScratchFloats.
constexpr std::int64_t kTargetColumns = 1024;
constexpr std::int64_t kScratchFloats = std::int64_t{1} << 21;  // 8 MiB of patches

std::int64_t images_per_gemm(const ConvGeometry& g, std::int64_t n) {
  const std::int64_t by_width = kTargetColumns / std::max<std::int64_t>(g.l(), 1);
  const std::int64_t by_memory = kScratchFloats / std::max<std::int64_t>(g.k() * g.l(), 1);
  return std::max<std::int64_t>(1, std::min({by_width, by_memory, n}));
}

// Per-thread scratch, grown on demand and reused by every Conv2d on the thread (ranks run as
// threads in the in-process tests, so it must not be shared). Growth zero-fills once only.
float* scratch(std::vector<float>& buffer, std::int64_t floats) {
  if (static_cast<std::int64_t>(buffer.size()) < floats)
    buffer.resize(static_cast<std::size_t>(floats));
  return buffer.data();
}
thread_local std::vector<float> t_cols, t_rows;

// [O, b*L] (image-major columns) <-> [b, O, L] (NCHW) for a run of b images.
void columns_to_images(const float* m, std::int64_t b, std::int64_t o, std::int64_t l, float* out) {
  for (std::int64_t i = 0; i < b; ++i)
    for (std::int64_t c = 0; c < o; ++c) std::copy_n(m + (c * b + i) * l, l, out + (i * o + c) * l);
}
// The spec and shapes as a 3-D geometry: leading spatial dims of size 1 for Conv1d/2d.
ConvGeometry geometry(const ConvSpec& o, const Shape& in, const Shape& out) {
  const std::size_t r = o.rank(), pad = 3 - r;
  auto pick = [&](const std::vector<std::int64_t>& v, std::size_t i, std::int64_t fill) {
    return i < pad ? fill : v[i - pad];
  };
  auto dim = [&](const Shape& s, std::size_t i) { return i < pad ? 1 : s[2 + i - pad]; };
  return {in[1],
          dim(in, 0),
          dim(in, 1),
          dim(in, 2),
          pick(o.kernel, 0, 1),
          pick(o.kernel, 1, 1),
          pick(o.kernel, 2, 1),
          pick(o.stride, 0, 1),
          pick(o.stride, 1, 1),
          pick(o.stride, 2, 1),
          pick(o.padding, 0, 0),
          pick(o.padding, 1, 0),
          pick(o.padding, 2, 0),
          pick(o.dilation, 0, 1),
          pick(o.dilation, 1, 1),
          pick(o.dilation, 2, 1),
          dim(out, 0),
          dim(out, 1),
          dim(out, 2)};
}

void add_bias(const float* bias, std::int64_t n, std::int64_t channels, std::int64_t plane,
              float* y) {
  for (std::int64_t i = 0; i < n * channels; ++i)
    for (std::int64_t j = 0; j < plane; ++j) y[i * plane + j] += bias[i % channels];
}

void images_to_columns(const float* in, std::int64_t b, std::int64_t o, std::int64_t l, float* m) {
  for (std::int64_t i = 0; i < b; ++i)
    for (std::int64_t c = 0; c < o; ++c) std::copy_n(in + (i * o + c) * l, l, m + (c * b + i) * l);
}

class Im2colKernels : public ConvKernels {
 public:
  explicit Im2colKernels(ConvSpec spec) : spec_(std::move(spec)) {}
  void forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) override;
  void backward(const Tensor& dy, const Tensor& w, float* dw, float* db, Tensor& dx) override;

 private:
  ConvSpec spec_;
  Tensor saved_input_;
};

void Im2colKernels::forward(const Tensor& input, const Tensor& w, const Tensor* bias, Tensor& out) {
  const ConvGeometry g = geometry(spec_, input.shape(), out.shape());
  const std::int64_t n = input.size(0), oc = spec_.out_channels, groups = spec_.groups, L = g.l();
  const std::int64_t chunk = images_per_gemm(g, n);
  float* y = out.data<float>();
  float* cols = scratch(t_cols, g.k() * chunk * L);
  float* rows = chunk > 1 ? scratch(t_rows, oc * chunk * L) : nullptr;
  for (std::int64_t n0 = 0; n0 < n; n0 += chunk) {
    const std::int64_t b = std::min(chunk, n - n0);
    im2col(input.data<float>() + n0 * g.image(), g, b, cols);
    // One image: the GEMM writes the NCHW output directly; several: via [O, b*L] and a copy.
    float* dst = b == 1 ? y + n0 * oc * L : rows;
    const std::int64_t og = oc / groups, kg = g.k() / groups, cols_l = b * L;
    for (std::int64_t gi = 0; gi < groups; ++gi)
      gemm(Trans::No, Trans::No, og, cols_l, kg, 1.f, w.data<float>() + gi * og * kg, kg,
           cols + gi * kg * cols_l, cols_l, 0.f, dst + gi * og * cols_l, cols_l);
    if (b > 1) columns_to_images(rows, b, oc, L, y + n0 * oc * L);
  }
  if (bias != nullptr) add_bias(bias->data<float>(), n, oc, L, y);
  saved_input_ = input;
}

void Im2colKernels::backward(const Tensor& grad_output, const Tensor& w, float* dw, float* db,
                             Tensor& dx) {
  const Shape& out_shape = grad_output.shape();
  const ConvGeometry g = geometry(spec_, saved_input_.shape(), out_shape);
  const std::int64_t n = out_shape[0], oc = spec_.out_channels, groups = spec_.groups, L = g.l();
  const std::int64_t chunk = images_per_gemm(g, n);
  std::fill_n(dx.data<float>(), dx.numel(), 0.f);  // col2im accumulates into it
  float* cols = scratch(t_cols, g.k() * chunk * L);
  float* rows = chunk > 1 ? scratch(t_rows, oc * chunk * L) : nullptr;
  for (std::int64_t n0 = 0; n0 < n; n0 += chunk) {
    const std::int64_t b = std::min(chunk, n - n0);
    const float* dyc = grad_output.data<float>() + n0 * oc * L;
    if (b > 1) images_to_columns(dyc, b, oc, L, rows);
    const float* dym = b > 1 ? rows : dyc;  // dY as [O, b*L]
    im2col(std::as_const(saved_input_).data<float>() + n0 * g.image(), g, b, cols);
    const std::int64_t og = oc / groups, kg = g.k() / groups, cols_l = b * L;
    for (std::int64_t gi = 0; gi < groups; ++gi) {
      const float* dy_g = dym + gi * og * cols_l;
      float* cols_g = cols + gi * kg * cols_l;
      gemm(Trans::No, Trans::Yes, og, kg, cols_l, 1.f, dy_g, cols_l, cols_g, cols_l, 1.f,
           dw + gi * og * kg, kg);
      // The group's patches are no longer needed, so their rows take dcols_g = W_g^T * dY_g.
      gemm(Trans::Yes, Trans::No, kg, cols_l, og, 1.f, w.data<float>() + gi * og * kg, kg, dy_g,
           cols_l, 0.f, cols_g, cols_l);
    }
    col2im_add(cols, g, b, dx.data<float>() + n0 * g.image());
  }
  if (db != nullptr) add_channel_sums(grad_output, db);
}

}  // namespace

std::unique_ptr<ConvKernels> make_conv_kernels(const ConvSpec& spec) {
  return std::make_unique<Im2colKernels>(spec);
}

std::string conv_kernels_name() {
  return "im2col+OpenBLAS";
}

}  // namespace syncbn::nn::detail
