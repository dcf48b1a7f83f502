// from_float / from_reference and the tree conversion built on them.
#include "syncbn/quant/convert.hpp"

#include <vector>

#include "syncbn/error.hpp"
#include "syncbn/quant/batchnorm.hpp"

namespace syncbn::quant {
namespace {

std::shared_ptr<BatchNormBase> make_quantized(nn::BatchNormVariant variant, bool relu,
                                              std::int64_t features, double eps, double momentum) {
  if (variant == nn::BatchNormVariant::TwoD) {
    if (relu) return std::make_shared<BNReLU2d>(features, eps, momentum);
    return std::make_shared<BatchNorm2d>(features, eps, momentum);
  }
  if (relu) return std::make_shared<BNReLU3d>(features, eps, momentum);
  return std::make_shared<BatchNorm3d>(features, eps, momentum);
}

// Everything but the output qparams; `what` names the caller in errors. momentum only shows
// in repr: PyTorch's from_float leaves the default 0.1, its from_reference copies bn's.
std::shared_ptr<BatchNormBase> convert_state(const nn::BatchNormBase& bn, bool relu,
                                             double momentum, const char* what) {
  const std::string name = bn.type_name();
  SYNCBN_CHECK(!bn.is_lazy(), what, ": ", name, " has not been initialised by a forward yet");
  SYNCBN_CHECK(has_quantized_form(bn), what, ": ", name,
               " has no quantized counterpart (PyTorch quantizes BatchNorm2d and BatchNorm3d)");
  const auto& o = bn.options();
  SYNCBN_CHECK(o.track_running_stats() && bn.running_mean.defined(), what, ": ", name,
               " has no running statistics (track_running_stats=False); a quantized BatchNorm "
               "normalises with running_mean and running_var");
  auto q = make_quantized(bn.variant(), relu, o.num_features(), o.eps(), momentum);
  if (o.affine()) {  // affine=False means weight 1 and bias 0: the modules' defaults
    q->weight.value = bn.weight.value;
    q->bias.value = bn.bias.value;
  }
  q->running_mean = bn.running_mean;
  q->running_var = bn.running_var;
  q->num_batches_tracked = bn.num_batches_tracked;
  return q;
}

// Every BatchNorm2d/3d strictly below `root` by dotted path; one reachable along two paths is
// listed under both, as each path has its own observer.
struct Site {
  std::string path;
  const nn::BatchNormBase* bn;
};
std::vector<Site> find_sites(const nn::Module& root) {
  std::vector<Site> out;
  for (const auto& [path, module] : root.named_modules("", /*remove_duplicate=*/false)) {
    const auto* bn = dynamic_cast<const nn::BatchNormBase*>(module.get());
    if (!path.empty() && bn != nullptr && has_quantized_form(*bn)) out.push_back({path, bn});
  }
  return out;
}

}  // namespace

bool has_quantized_form(const nn::BatchNormBase& bn) {
  return bn.variant() == nn::BatchNormVariant::TwoD || bn.variant() == nn::BatchNormVariant::ThreeD;
}

std::shared_ptr<BatchNormBase> from_float(const nn::BatchNormBase& bn,
                                          const MinMaxObserver& observer, bool fuse_relu) {
  SYNCBN_CHECK(observer.has_observed(), "from_float: the observer of ", bn.type_name(),
               " has seen no data; run calibration batches through it first");
  auto q = convert_state(bn, fuse_relu, 0.1, "from_float");
  const QParams qparams = observer.calculate_qparams();
  q->set_output_qparams(qparams.scale, qparams.zero_point);
  return q;
}

std::shared_ptr<BatchNormBase> from_reference(const nn::BatchNormBase& bn, double output_scale,
                                              std::int64_t output_zero_point, bool fuse_relu) {
  // momentum=None (cumulative average) has no double to carry: the default stands in.
  const double momentum = bn.options().momentum().value_or(0.1);
  auto q = convert_state(bn, fuse_relu, momentum, "from_reference");
  q->set_output_qparams(output_scale, output_zero_point);
  return q;
}

int convert_batchnorms(nn::Module& root, const std::map<std::string, MinMaxObserver>& observers,
                       const std::set<std::string>& fuse_relu) {
  const std::vector<Site> sites = find_sites(root);
  std::string missing;
  for (const auto& s : sites)
    if (!observers.count(s.path)) missing += (missing.empty() ? "" : ", ") + s.path;
  SYNCBN_CHECK(missing.empty(),
               "convert_batchnorms: no observer for BatchNorm layer(s): ", missing);
  for (const auto& name : fuse_relu) {
    bool found = false;
    for (const auto& s : sites) found = found || s.path == name;
    SYNCBN_CHECK(found, "convert_batchnorms: fuse_relu names ", name,
                 ", which is not a BatchNorm2d/3d below the root");
  }
  // Build all replacements first so that a rejected layer leaves the tree unchanged.
  std::vector<std::shared_ptr<nn::Module>> converted;
  for (const auto& s : sites)
    converted.push_back(from_float(*s.bn, observers.at(s.path), fuse_relu.count(s.path) > 0));
  for (std::size_t i = 0; i < sites.size(); ++i) root.set_submodule(sites[i].path, converted[i]);
  return static_cast<int>(sites.size());
}

}  // namespace syncbn::quant
