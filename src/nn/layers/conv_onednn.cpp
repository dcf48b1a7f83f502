// Conv1d/2d/3d on oneDNN (Debian's libdnnl 2.6, OpenMP runtime): the only file that includes
// its header. Contract in conv_kernels.hpp; why oneDNN in conv.hpp. The notes below were
// measured on Conv2d; the other ranks use the same primitives with ncw/ncdhw layouts, dilation
// and groups (a grouped weight [O, C/G, *k] is the same memory as oneDNN's [G, O/G, C/G, *k]).
//
// Layouts. The layer's tensors are plain NC* / OI* (Conv2d: NCHW / OIHW). oneDNN's fast kernels
// (jit:avx512_core, jit_1x1) want blocked layouts (nChw16c, OIhw16i16o), so each primitive is
// created with format "any" and reorders convert at the edges. Per step and layer that is: input ->
// blocked (which doubles as the input backward keeps), blocked output -> NCHW, dy -> blocked once
// (both backward primitives read the same layout), blocked dx -> NCHW, plus weight-sized reorders.
// Measured on the target EPYC at one thread, batch 64, for the 16-channel 28x28 3x3 layer: forward
// + both backward passes take 3.05 ms on blocked layouts, of which 0.25 ms are these reorders,
// against 14.0 ms when the primitives read and write plain NCHW (oneDNN then falls back to its
// im2col + GEMM path, no faster than OpenBLAS). Over the whole model the reorders are about 15% of
// Conv2d's time.
//
// Exception: with <= kPlainDataGradChannels input channels (a grayscale/RGB stem) backward-data
// writes plain NCHW: oneDNN pads the channels to 16 in the blocked layout and does 16x the work
// (1 channel: 0.30 ms plain vs 0.87 ms blocked; 3: 0.85 vs 0.87; 8: 2.26 vs 0.88).
//
// Gradients accumulate: the weight gradient is computed into a scratch buffer and added into
// weight.grad by the reorder back to OIHW with a sum post-op (one pass, no extra add).
//
// Threads: oneDNN runs on the calling thread's OpenMP team, so syncbn::set_num_threads
// (omp_set_num_threads) controls it. Streams are per thread; primitives are per layer.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "conv_kernels.hpp"
#include "syncbn/error.hpp"

namespace syncbn::nn::detail {
namespace {
using dnnl::memory;
using Desc = memory::desc;
using Tag = memory::format_tag;
using Args = std::unordered_map<int, memory>;
constexpr auto kF32 = memory::data_type::f32;
constexpr auto kDirect = dnnl::algorithm::convolution_direct;
constexpr std::int64_t kPlainDataGradChannels = 3;
// Input shapes whose primitives a layer keeps: the training batch, an epoch's last smaller one
// and the eval batch, with room to spare; the oldest is dropped beyond that.
constexpr std::size_t kMaxPlans = 4;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

memory view(const Desc& d, const void* data) {
  return memory(d, engine(), const_cast<void*>(data));
}

std::int64_t floats_in(const Desc& d) {
  return static_cast<std::int64_t>((d.get_size() + sizeof(float) - 1) / sizeof(float));
}

// `buffer` grown (never shrunk) to hold d; Tensor storage is 64-byte aligned, as oneDNN likes.
void* room(Tensor& buffer, const Desc& d) {
  if (!buffer.defined() || buffer.numel() < floats_in(d)) buffer = Tensor::empty({floats_in(d)});
  return buffer.raw();
}

// `buffer` holding exactly d: a layer's saved input does not keep an eval batch's size.
void* exactly(Tensor& buffer, const Desc& d) {
  if (!buffer.defined() || buffer.numel() != floats_in(d)) buffer = Tensor::empty({floats_in(d)});
  return buffer.raw();
}

// Blocked buffers that live only inside one call, shared by the thread's layers.
thread_local Tensor t_dst, t_diff_dst, t_diff_dst_data, t_diff_src;

// A reorder from `from` to `to`, or an empty handle when the layouts are the same (no pass).
dnnl::reorder reorder_or_none(const Desc& from, const Desc& to) {
  if (from == to) return {};
  return dnnl::reorder(dnnl::reorder::primitive_desc(engine(), from, engine(), to));
}

void run(const dnnl::reorder& r, const Desc& from, const void* in, const Desc& to, void* out) {
  r.execute(stream(), {{DNNL_ARG_FROM, view(from, in)}, {DNNL_ARG_TO, view(to, out)}});
}

// `plain` in layout `to`: used in place when `r` is empty, else reordered into `buffer`.
void* convert(const dnnl::reorder& r, const Desc& from, const void* plain, const Desc& to,
              Tensor& buffer) {
  if (!r) return const_cast<void*>(plain);
  void* out = room(buffer, to);
  run(r, from, plain, to, out);
  return out;
}

Desc any(const memory::dims& dims) {
  return Desc(dims, kF32, Tag::any);
}

// Plain layouts by spatial rank (1, 2, 3): data, weights, grouped weights.
Tag data_tag(std::size_t rank) {
  static const Tag tags[] = {Tag::ncw, Tag::nchw, Tag::ncdhw};
  return tags[rank - 1];
}
Tag weights_tag(std::size_t rank, bool grouped) {
  static const Tag plain[] = {Tag::oiw, Tag::oihw, Tag::oidhw};
  static const Tag groups[] = {Tag::goiw, Tag::goihw, Tag::goidhw};
  return grouped ? groups[rank - 1] : plain[rank - 1];
}

// The weight's dims as oneDNN sees them: [O, C/G, *k], or [G, O/G, C/G, *k] with groups.
memory::dims weights_dims(const ConvSpec& s) {
  const std::int64_t g = s.groups, per_group_in = s.in_channels / g;
  memory::dims d = g > 1 ? memory::dims{g, s.out_channels / g, per_group_in}
                         : memory::dims{s.out_channels, per_group_in};
  d.insert(d.end(), s.kernel.begin(), s.kernel.end());
  return d;
}

// oneDNN counts dilation from 0 (no gap), PyTorch from 1.
memory::dims onednn_dilation(const ConvSpec& s) {
  memory::dims d;
  for (const auto x : s.dilation) d.push_back(x - 1);
  return d;
}

// The primitives for one input shape; the backward ones are made on the first backward.
struct Plan {
  Shape input;
  Desc x, y, w, b;  // the layer's own layouts: NC*, NC*, OI*, [O] (b empty without bias)
  memory::dims strides, dilates, padding;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  dnnl::reorder x_in, w_in, y_out;
  bool has_backward = false;
  dnnl::convolution_backward_data::primitive_desc data_pd;
  dnnl::convolution_backward_data data;
  dnnl::convolution_backward_weights::primitive_desc weights_pd;
  dnnl::convolution_backward_weights weights;
  dnnl::reorder dy_in, dy_in_data, w_in_data, dx_out, dw_add;
};

class OnednnKernels : public ConvKernels {
 public:
  explicit OnednnKernels(ConvSpec spec) : spec_(std::move(spec)) {}
  void forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) override;
  void backward(const Tensor& dy, const Tensor& w, float* dw, float* db, Tensor& dx) override;

 private:
  Plan& plan_for(const Shape& in, const Shape& out);
  std::unique_ptr<Plan> make_plan(const Shape& in, const Shape& out) const;
  void make_backward(Plan& p) const;
  const void* diff_dst_for_data(Plan& p, const Tensor& dy, const void* for_weights);

  ConvSpec spec_;
  std::vector<std::unique_ptr<Plan>> plans_;
  Plan* last_ = nullptr;           // the plan of the last forward
  Tensor saved_, w_fwd_, w_data_;  // input in the forward's layout; weights reordered
  Tensor dw_, db_;                 // this step's parameter gradients, before accumulation
};

std::unique_ptr<Plan> OnednnKernels::make_plan(const Shape& in, const Shape& out) const {
  const ConvSpec& o = spec_;
  auto p = std::make_unique<Plan>();
  p->input = in;
  const memory::dims src(in.begin(), in.end()), dst(out.begin(), out.end());
  const memory::dims wei = weights_dims(o);
  p->x = Desc(src, kF32, data_tag(o.rank()));
  p->y = Desc(dst, kF32, data_tag(o.rank()));
  p->w = Desc(wei, kF32, weights_tag(o.rank(), o.groups > 1));
  if (o.bias) p->b = Desc({o.out_channels}, kF32, Tag::a);
  p->strides = o.stride;
  p->dilates = onednn_dilation(o);
  p->padding = o.padding;  // the right/bottom side too: floor division
  p->fwd_pd = dnnl::convolution_forward::primitive_desc(
      {dnnl::prop_kind::forward_training, kDirect, any(src), any(wei), p->b, any(dst), p->strides,
       p->dilates, p->padding, p->padding},
      engine());
  p->fwd = dnnl::convolution_forward(p->fwd_pd);
  p->x_in = reorder_or_none(p->x, p->fwd_pd.src_desc());
  p->w_in = reorder_or_none(p->w, p->fwd_pd.weights_desc());
  p->y_out = reorder_or_none(p->fwd_pd.dst_desc(), p->y);
  return p;
}

void OnednnKernels::make_backward(Plan& p) const {
  const memory::dims wei = p.w.dims(), dst = p.y.dims();
  const bool plain_dx = spec_.in_channels <= kPlainDataGradChannels;
  p.data_pd = dnnl::convolution_backward_data::primitive_desc(
      {kDirect, plain_dx ? p.x : any(p.x.dims()), any(wei), any(dst), p.strides, p.dilates,
       p.padding, p.padding},
      engine(), p.fwd_pd);
  p.data = dnnl::convolution_backward_data(p.data_pd);
  // The saved input is in the forward's layout, so backward-weights must read that one.
  p.weights_pd = dnnl::convolution_backward_weights::primitive_desc(
      {kDirect, p.fwd_pd.src_desc(), any(wei), p.b, any(dst), p.strides, p.dilates, p.padding,
       p.padding},
      engine(), p.fwd_pd);
  p.weights = dnnl::convolution_backward_weights(p.weights_pd);
  p.dy_in = reorder_or_none(p.y, p.weights_pd.diff_dst_desc());
  p.dy_in_data = reorder_or_none(p.y, p.data_pd.diff_dst_desc());
  p.w_in_data = reorder_or_none(p.w, p.data_pd.weights_desc());
  p.dx_out = reorder_or_none(p.data_pd.diff_src_desc(), p.x);
  dnnl::post_ops accumulate;
  accumulate.append_sum(1.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(accumulate);
  p.dw_add = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), p.weights_pd.diff_weights_desc(),
                                                         engine(), p.w, attr));
  p.has_backward = true;
}

Plan& OnednnKernels::plan_for(const Shape& in, const Shape& out) {
  for (auto& p : plans_)
    if (p->input == in) return *p;
  if (plans_.size() >= kMaxPlans) plans_.erase(plans_.begin());
  plans_.push_back(make_plan(in, out));
  return *plans_.back();
}

void OnednnKernels::forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  last_ = nullptr;  // until this forward succeeds
  Plan& p = plan_for(x.shape(), y.shape());
  // The input saved for backward-weights, in the forward's layout: a reordered copy, or the
  // caller's tensor itself (shared storage, no copy) when the layouts agree.
  if (p.x_in)
    run(p.x_in, p.x, x.raw(), p.fwd_pd.src_desc(), exactly(saved_, p.fwd_pd.src_desc()));
  else
    saved_ = x;
  const void* src = std::as_const(saved_).raw();
  void* dst = p.y_out ? room(t_dst, p.fwd_pd.dst_desc()) : y.raw();
  Args args{
      {DNNL_ARG_SRC, view(p.fwd_pd.src_desc(), src)},
      {DNNL_ARG_WEIGHTS, view(p.fwd_pd.weights_desc(),
                              convert(p.w_in, p.w, w.raw(), p.fwd_pd.weights_desc(), w_fwd_))},
      {DNNL_ARG_DST, view(p.fwd_pd.dst_desc(), dst)}};
  if (b != nullptr) args.emplace(DNNL_ARG_BIAS, view(p.b, b->raw()));
  p.fwd.execute(stream(), args);
  if (p.y_out) run(p.y_out, p.fwd_pd.dst_desc(), dst, p.y, y.raw());
  last_ = &p;
}

// dy in backward-data's layout: shared with backward-weights when they agree (the usual case).
const void* OnednnKernels::diff_dst_for_data(Plan& p, const Tensor& dy, const void* for_weights) {
  if (p.data_pd.diff_dst_desc() == p.weights_pd.diff_dst_desc()) return for_weights;
  return convert(p.dy_in_data, p.y, dy.raw(), p.data_pd.diff_dst_desc(), t_diff_dst_data);
}

void OnednnKernels::backward(const Tensor& dy, const Tensor& w, float* dw, float* db, Tensor& dx) {
  SYNCBN_CHECK(last_ != nullptr, "Conv: backward after a failed forward");
  Plan& p = *last_;
  if (!p.has_backward) make_backward(p);
  const Desc& dy_w = p.weights_pd.diff_dst_desc();
  const void* diff_dst = convert(p.dy_in, p.y, dy.raw(), dy_w, t_diff_dst);
  // Weights in backward-data's layout: forward's reordered copy when the layouts agree (w has
  // not changed since forward).
  const Desc& w_data = p.data_pd.weights_desc();
  const void* weights = w_data == p.fwd_pd.weights_desc()
                            ? (p.w_in ? w_fwd_.raw() : w.raw())
                            : convert(p.w_in_data, p.w, w.raw(), w_data, w_data_);
  void* diff_src = p.dx_out ? room(t_diff_src, p.data_pd.diff_src_desc()) : dx.raw();
  p.data.execute(stream(), {{DNNL_ARG_DIFF_DST,
                             view(p.data_pd.diff_dst_desc(), diff_dst_for_data(p, dy, diff_dst))},
                            {DNNL_ARG_WEIGHTS, view(w_data, weights)},
                            {DNNL_ARG_DIFF_SRC, view(p.data_pd.diff_src_desc(), diff_src)}});
  if (p.dx_out) run(p.dx_out, p.data_pd.diff_src_desc(), diff_src, p.x, dx.raw());

  const Desc& dw_desc = p.weights_pd.diff_weights_desc();
  Args args{{DNNL_ARG_SRC, view(p.fwd_pd.src_desc(), std::as_const(saved_).raw())},
            {DNNL_ARG_DIFF_DST, view(dy_w, diff_dst)},
            {DNNL_ARG_DIFF_WEIGHTS, view(dw_desc, room(dw_, dw_desc))}};
  if (db != nullptr) args.emplace(DNNL_ARG_DIFF_BIAS, view(p.b, room(db_, p.b)));
  p.weights.execute(stream(), args);
  run(p.dw_add, dw_desc, dw_.raw(), p.w, dw);
  if (db != nullptr) {
    const float* step = db_.data<float>();
    for (std::int64_t i = 0; i < spec_.out_channels; ++i) db[i] += step[i];
  }
}
}  // namespace

std::unique_ptr<ConvKernels> make_conv_kernels(const ConvSpec& spec) {
  return std::make_unique<OnednnKernels>(spec);
}

std::string conv_kernels_name() {
  const dnnl_version_t* v = dnnl::version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch);
}

}  // namespace syncbn::nn::detail
