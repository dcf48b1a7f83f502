#include "syncbn/builders/model.hpp"

#include <algorithm>
#include <string>

#include "syncbn/error.hpp"
#include "syncbn/nn/batchnorm.hpp"
#include "syncbn/nn/groupnorm.hpp"
#include "syncbn/nn/layers/layers.hpp"
#include "syncbn/nn/layers/residual.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"

namespace syncbn::builders {
namespace {
using config::LayerSpec;
using config::LayerType;

struct Built {
  std::shared_ptr<nn::Module> module;
  Shape shape;  // one sample's output shape
};

[[noreturn]] void fail(const LayerSpec& s, const std::string& what) {
  throw ConfigError(s.where + ": " + what);
}

Shape batched(const Shape& sample) {
  Shape s{1};
  s.insert(s.end(), sample.begin(), sample.end());
  return s;
}
Shape unbatched(const Shape& s) {
  return Shape(s.begin() + 1, s.end());
}

// "[C, H, W]" for 2 spatial dims: what a layer of that rank expects per sample.
std::string expected_rank(int dims) {
  const char* names[] = {"[C]", "[C, L]", "[C, H, W]", "[C, D, H, W]"};
  return names[dims];
}

void check_rank(const LayerSpec& s, const Shape& in, int dims, bool or_one_less = false) {
  const bool ok = in.size() == static_cast<std::size_t>(dims) + 1 ||
                  (or_one_less && in.size() == static_cast<std::size_t>(dims));
  if (!ok)
    fail(s, std::string(config::to_string(s.type)) + " expects " +
                (or_one_less ? expected_rank(dims - 1) + " or " : std::string()) +
                expected_rank(dims) + " per sample, got " + shape_str(in));
}

// A written size (in_channels, num_features, ...) must be the one coming in.
std::int64_t inferred(const LayerSpec& s, const char* key, std::int64_t coming,
                      const char* unit = "channels") {
  if (s.has(key) && s.integer(key, 0) != coming)
    fail(s, std::string(key) + " " + std::to_string(s.integer(key, 0)) + " does not match the " +
                std::to_string(coming) + " " + unit + " coming in");
  return coming;
}

template <std::size_t D>
nn::SizeN<D> size_arg(const LayerSpec& s, const std::string& key, std::int64_t fallback) {
  if (!s.has(key)) return nn::SizeN<D>(fallback);
  const auto& v = s.args.at(key).sizes;
  return v.size() == 1 ? nn::SizeN<D>(v[0]) : nn::SizeN<D>(v);
}

// Runs a constructor or output_shape, turning its ValueError/ShapeError into this layer's
// ConfigError.
template <typename F>
auto located(const LayerSpec& s, F&& f) {
  try {
    return f();
  } catch (const ValueError& e) {
    fail(s, e.what());
  } catch (const ShapeError& e) {
    fail(s, e.what());
  }
}

template <typename M>
Built with_shape(const LayerSpec& s, std::shared_ptr<M> m, const Shape& in) {
  const Shape out = unbatched(located(s, [&] { return m->output_shape(batched(in)); }));
  for (auto d : out)
    if (d < 1)
      fail(s, "the output " + shape_str(out) + " is smaller than 1 (input " + shape_str(in) + ")");
  return {m, out};
}

class Builder {
 public:
  explicit Builder(std::uint64_t seed) : gen_(seed), seed_(seed) {}
  nn::Generator& generator() { return gen_; }

  Built build(const LayerSpec& s, const Shape& in) {
    switch (s.type) {
      case LayerType::Sequential:
        return sequential(s, in);
      case LayerType::Residual:
        return residual(s, in);
      case LayerType::Conv1d:
        return conv<1>(s, in);
      case LayerType::Conv2d:
        return conv<2>(s, in);
      case LayerType::Conv3d:
        return conv<3>(s, in);
      case LayerType::BatchNorm1d:
      case LayerType::BatchNorm2d:
      case LayerType::BatchNorm3d:
      case LayerType::LazyBatchNorm1d:
      case LayerType::LazyBatchNorm2d:
      case LayerType::LazyBatchNorm3d:
      case LayerType::SyncBatchNorm:
        return batch_norm(s, in);
      case LayerType::GroupNorm:
        return group_norm(s, in);
      case LayerType::ReLU:
        return {std::make_shared<nn::ReLU>(), in};
      case LayerType::Identity:
        return {std::make_shared<nn::Identity>(), in};
      case LayerType::Dropout:
        return {std::make_shared<nn::Dropout>(s.number("p", 0.5), seed_ + 1 + dropouts_++), in};
      case LayerType::MaxPool1d:
        return max_pool<1>(s, in);
      case LayerType::MaxPool2d:
        return max_pool<2>(s, in);
      case LayerType::MaxPool3d:
        return max_pool<3>(s, in);
      case LayerType::AvgPool1d:
        return avg_pool<1>(s, in);
      case LayerType::AvgPool2d:
        return avg_pool<2>(s, in);
      case LayerType::AvgPool3d:
        return avg_pool<3>(s, in);
      case LayerType::AdaptiveAvgPool1d:
        return adaptive<1>(s, in);
      case LayerType::AdaptiveAvgPool2d:
        return adaptive<2>(s, in);
      case LayerType::AdaptiveAvgPool3d:
        return adaptive<3>(s, in);
      case LayerType::Flatten:
        return flatten(s, in);
      case LayerType::Linear:
        return linear(s, in);
    }
    fail(s, "internal: no builder for this layer type");
  }

 private:
  Built sequential(const LayerSpec& s, const Shape& in) {
    auto seq = std::make_shared<nn::Sequential>();
    Shape shape = in;
    for (const auto& child : s.layers) {
      Built b = build(child, shape);
      seq->push_back(child.name, b.module);
      shape = b.shape;
    }
    return {seq, shape};
  }

  // torchvision's rule for shortcut_when: shape_changes: a downsample where the main path
  // changes the shape or strides (a stride of 2 on a 1x1 map keeps the shape but still strides).
  static bool strides(const LayerSpec& s) {
    if (!s.has("stride")) return false;
    const auto& v = s.args.at("stride").sizes;
    return std::any_of(v.begin(), v.end(), [](std::int64_t x) { return x != 1; });
  }

  Built residual(const LayerSpec& s, const Shape& in) {
    auto block =
        std::make_shared<nn::Residual>(s.activation == config::Activation::ReLU, s.shortcut_name);
    Shape out = in;
    bool strided = false;
    for (const auto& child : s.layers) {
      Built b = build(child, out);
      block->add_main(child.name, b.module);
      out = b.shape;
      strided = strided || strides(child);
    }
    const bool wanted =
        s.shortcut && (s.shortcut_when == config::ShortcutWhen::Always || out != in || strided);
    Shape side = in;
    if (wanted) {
      LayerSpec seq = s;
      seq.type = LayerType::Sequential;
      seq.layers = *s.shortcut;
      Built b = sequential(seq, in);
      block->set_shortcut(b.module);
      side = b.shape;
    }
    if (out != side)
      fail(s, "the main path gives " + shape_str(out) + " but the " +
                  (wanted ? "shortcut gives " : "identity shortcut passes ") + shape_str(side) +
                  (wanted ? "" : "; add a shortcut that matches the main path"));
    return {block, out};
  }

  template <std::size_t D>
  Built conv(const LayerSpec& s, const Shape& in) {
    check_rank(s, in, D);
    const std::int64_t c = inferred(s, "in_channels", in[0]);
    const std::int64_t out = s.integer("out_channels", 0), groups = s.integer("groups", 1);
    if (c % groups != 0 || out % groups != 0)
      fail(s, "groups " + std::to_string(groups) + " must divide in_channels " + std::to_string(c) +
                  " and out_channels " + std::to_string(out));
    auto o = nn::ConvOptions<D>(c, out, size_arg<D>(s, "kernel_size", 1))
                 .stride(size_arg<D>(s, "stride", 1))
                 .padding(size_arg<D>(s, "padding", 0))
                 .dilation(size_arg<D>(s, "dilation", 1))
                 .groups(groups)
                 .bias(s.boolean("bias", true));
    return with_shape(s, located(s, [&] { return std::make_shared<nn::ConvNd<D>>(o, gen_); }), in);
  }

  Built batch_norm(const LayerSpec& s, const Shape& in) {
    const int dims = config::spatial_dims(s.type);
    if (s.type == LayerType::SyncBatchNorm) {
      if (in.empty()) fail(s, "sync_batch_norm expects [C, *] per sample, got []");
    } else {
      check_rank(s, in, dims, /*or_one_less=*/dims == 1);
    }
    const auto o = nn::BatchNormOptions(inferred(s, "num_features", in[0]))
                       .eps(s.number("eps", 1e-5))
                       .momentum(s.momentum())
                       .affine(s.boolean("affine", true))
                       .track_running_stats(s.boolean("track_running_stats", true));
    return {located(s,
                    [&]() -> std::shared_ptr<nn::Module> {
                      switch (s.type) {
                        case LayerType::BatchNorm1d:
                          return std::make_shared<nn::BatchNorm1d>(o);
                        case LayerType::BatchNorm2d:
                          return std::make_shared<nn::BatchNorm2d>(o);
                        case LayerType::BatchNorm3d:
                          return std::make_shared<nn::BatchNorm3d>(o);
                        case LayerType::LazyBatchNorm1d:
                          return std::make_shared<nn::LazyBatchNorm1d>(o);
                        case LayerType::LazyBatchNorm2d:
                          return std::make_shared<nn::LazyBatchNorm2d>(o);
                        case LayerType::LazyBatchNorm3d:
                          return std::make_shared<nn::LazyBatchNorm3d>(o);
                        default:
                          return std::make_shared<nn::SyncBatchNorm>(o);
                      }
                    }),
            in};
  }

  Built group_norm(const LayerSpec& s, const Shape& in) {
    if (in.empty()) fail(s, "group_norm expects [C, *] per sample, got []");
    const std::int64_t c = inferred(s, "num_channels", in[0]), g = s.integer("num_groups", 1);
    if (c % g != 0)
      fail(s, "num_groups " + std::to_string(g) + " does not divide the " + std::to_string(c) +
                  " channels coming in");
    const auto o =
        nn::GroupNormOptions(g, c).eps(s.number("eps", 1e-5)).affine(s.boolean("affine", true));
    return {located(s, [&] { return std::make_shared<nn::GroupNorm>(o); }), in};
  }

  template <std::size_t D>
  Built max_pool(const LayerSpec& s, const Shape& in) {
    check_rank(s, in, D);
    auto o = nn::MaxPoolOptions<D>(size_arg<D>(s, "kernel_size", 1))
                 .padding(size_arg<D>(s, "padding", 0))
                 .dilation(size_arg<D>(s, "dilation", 1))
                 .ceil_mode(s.boolean("ceil_mode", false));
    if (s.has("stride")) o.stride(size_arg<D>(s, "stride", 1));
    return with_shape(s, located(s, [&] { return std::make_shared<nn::MaxPoolNd<D>>(o); }), in);
  }

  template <std::size_t D>
  Built avg_pool(const LayerSpec& s, const Shape& in) {
    check_rank(s, in, D);
    auto o = nn::AvgPoolOptions<D>(size_arg<D>(s, "kernel_size", 1))
                 .padding(size_arg<D>(s, "padding", 0))
                 .ceil_mode(s.boolean("ceil_mode", false))
                 .count_include_pad(s.boolean("count_include_pad", true));
    if (s.has("stride")) o.stride(size_arg<D>(s, "stride", 1));
    return with_shape(s, located(s, [&] { return std::make_shared<nn::AvgPoolNd<D>>(o); }), in);
  }

  template <std::size_t D>
  Built adaptive(const LayerSpec& s, const Shape& in) {
    check_rank(s, in, D);
    const auto size = size_arg<D>(s, "output_size", 1);
    return with_shape(
        s, located(s, [&] { return std::make_shared<nn::AdaptiveAvgPoolNd<D>>(size); }), in);
  }

  // Flatten's dims count the batch dim, as PyTorch's; merging it into a sample is refused.
  Built flatten(const LayerSpec& s, const Shape& in) {
    const std::int64_t start = s.integer("start_dim", 1), end = s.integer("end_dim", -1);
    const auto rank = static_cast<std::int64_t>(in.size()) + 1;
    const std::int64_t a = start < 0 ? start + rank : start, b = end < 0 ? end + rank : end;
    if (a < 1 || b >= rank || a > b)
      fail(s, "start_dim " + std::to_string(start) + " and end_dim " + std::to_string(end) +
                  " do not select dims 1.." + std::to_string(rank - 1) + " (in order) of [N] + " +
                  shape_str(in));
    Shape out(in.begin(), in.begin() + (a - 1));
    std::int64_t merged = 1;
    for (std::int64_t d = a; d <= b; ++d) merged *= in[static_cast<std::size_t>(d - 1)];
    out.push_back(merged);
    out.insert(out.end(), in.begin() + b, in.end());
    return {std::make_shared<nn::Flatten>(start, end), out};
  }

  Built linear(const LayerSpec& s, const Shape& in) {
    if (in.empty()) fail(s, "linear expects [*, in_features] per sample, got []");
    const std::int64_t features = inferred(s, "in_features", in.back(), "features");
    const auto o =
        nn::LinearOptions(features, s.integer("out_features", 0)).bias(s.boolean("bias", true));
    Shape out = in;
    out.back() = o.out_features();
    return {located(s, [&] { return std::make_shared<nn::Linear>(o, gen_); }), out};
  }

  nn::Generator gen_;
  std::uint64_t seed_;
  std::uint64_t dropouts_ = 0;
};
}  // namespace

std::shared_ptr<nn::Module> build_model(const config::ModelConfig& m, std::uint64_t seed) {
  const std::vector<LayerSpec> layers = config::model_layers(m);
  Builder builder(seed);
  LayerSpec root;
  root.type = LayerType::Sequential;
  root.layers = layers;
  const Built net = builder.build(root, Shape(m.input.begin(), m.input.end()));
  if (net.shape != Shape{m.num_classes})
    fail(layers.back(), "the model gives " + shape_str(net.shape) +
                            " per sample, but model.num_classes " + std::to_string(m.num_classes) +
                            " asks for [" + std::to_string(m.num_classes) + "]");
  if (m.init == config::InitKind::Resnet)
    nn::kaiming_normal_conv_weights_(*net.module, builder.generator());
  return net.module;
}

}  // namespace syncbn::builders
