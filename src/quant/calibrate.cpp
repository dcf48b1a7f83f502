// Calibration wrappers, float<->quantized bridges and the two tree passes that swap them in.
#include "syncbn/quant/calibrate.hpp"

#include <sstream>
#include <vector>

#include "syncbn/error.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"
#include "syncbn/quant/convert.hpp"

namespace syncbn::quant {
namespace {

// A module at dotted path `path` below the root.
struct Site {
  std::string path;
  std::shared_ptr<nn::Module> module;
};

// Every module strictly below `root`, once per path: a layer shared by two parents is swapped
// (and observed) under each of its names.
std::vector<Site> sites_below(const nn::Module& root) {
  std::vector<Site> sites;
  for (auto& [path, module] : root.named_modules("", /*remove_duplicate=*/false))
    if (!path.empty()) sites.push_back({path, std::move(module)});
  return sites;
}

// The BatchNorm2d/3d a site computes in eval mode, or nullptr when it is no such layer. A
// SyncBatchNorm in eval mode is exactly its plain BatchNorm, so that view is what gets observed.
std::shared_ptr<nn::BatchNormBase> plain_batchnorm(const Site& site) {
  std::shared_ptr<nn::BatchNormBase> bn;
  if (auto sync = std::dynamic_pointer_cast<nn::SyncBatchNorm>(site.module)) {
    try {
      bn = sync->to_batchnorm();
    } catch (const ValueError& e) {
      throw ValueError("prepare_batchnorms: layer " + site.path + ": " + e.what());
    }
  } else {
    bn = std::dynamic_pointer_cast<nn::BatchNormBase>(site.module);
  }
  return bn != nullptr && has_quantized_form(*bn) ? bn : nullptr;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string range_str(const MinMaxObserver& o) {
  if (!o.has_observed()) return "none";
  std::ostringstream s;
  s << "[" << o.min_val() << ", " << o.max_val() << "]";
  return s.str();
}

}  // namespace

ObservedBatchNorm::ObservedBatchNorm(std::shared_ptr<nn::BatchNormBase> bn, std::string name,
                                     const MinMaxObserver& observer)
    : bn_(std::move(bn)),
      name_(std::move(name)),
      input_observer_(observer),
      output_observer_(observer) {
  SYNCBN_CHECK(bn_ != nullptr, "ObservedBatchNorm: layer ", name_, " is null");
  SYNCBN_CHECK(has_quantized_form(*bn_) && !bn_->is_lazy(), "ObservedBatchNorm: layer ", name_,
               " is a ", bn_->type_name(), "; only initialised BatchNorm2d/3d can be quantized");
  SYNCBN_CHECK(bn_->running_mean.defined(), "ObservedBatchNorm: layer ", name_,
               " has no running statistics (track_running_stats=False) and cannot be quantized");
  input_observer_.reset_min_max_vals();
  output_observer_.reset_min_max_vals();
  // The layer's own names, so the tree's state_dict keys do not change while observing.
  for (const auto& [key, p] : bn_->named_parameters()) register_parameter(key, p);
  for (const auto& [key, b] : bn_->named_buffers()) register_buffer(key, b);
  train(bn_->is_training());
}

Tensor ObservedBatchNorm::forward(const Tensor& input) {
  SYNCBN_CHECK(!is_training(), "ObservedBatchNorm ", name_,
               ": calibration must run in eval mode (call eval() on the model): the quantized "
               "layer uses running statistics, and training would update them");
  input_observer_.forward(input);
  Tensor output = bn_->forward(input);
  output_observer_.forward(output);
  return output;
}

Tensor ObservedBatchNorm::backward(const Tensor&) {
  throw ValueError("ObservedBatchNorm " + name_ + " is for calibration only: it has no backward");
}

std::string ObservedBatchNorm::extra_repr() const {
  return bn_->extra_repr() + ", input_range=" + range_str(input_observer_) +
         ", output_range=" + range_str(output_observer_);
}

QuantizedBatchNormBridge::QuantizedBatchNormBridge(std::shared_ptr<BatchNormBase> qbn,
                                                   QParams input_qparams, QDType dtype)
    : qbn_(std::move(qbn)),
      input_scale_(Tensor::full({}, input_qparams.scale)),
      input_zero_point_(Tensor::scalar_int64(input_qparams.zero_point)),
      dtype_(dtype) {
  SYNCBN_CHECK(qbn_ != nullptr, "QuantizedBatchNormBridge: quantized layer is null");
  check_qparams(input_qparams.scale, input_qparams.zero_point, dtype_,
                "QuantizedBatchNormBridge input");
  // The quantized layer's keys (weight, ..., scale, zero_point) directly under this module's
  // name, as PyTorch's converted model has them; the stub's qparams beside them.
  for (const auto& [key, p] : qbn_->named_parameters()) register_parameter(key, p);
  for (const auto& [key, b] : qbn_->named_buffers()) register_buffer(key, b);
  register_buffer("input_scale", &input_scale_);
  register_buffer("input_zero_point", &input_zero_point_);
  eval();
}

std::shared_ptr<QuantizedBatchNormBridge> QuantizedBatchNormBridge::from_observed(
    const ObservedBatchNorm& observed) {
  const MinMaxObserver& in = observed.input_observer();
  SYNCBN_CHECK(in.has_observed() && observed.output_observer().has_observed(), "layer ",
               observed.name(),
               ": its observers have seen no data; run calibration batches through the model "
               "(in eval mode) before converting");
  try {
    std::shared_ptr<BatchNormBase> qbn =
        from_float(observed.float_module(), observed.output_observer());
    return std::make_shared<QuantizedBatchNormBridge>(std::move(qbn), in.calculate_qparams(),
                                                      in.options().dtype());
  } catch (const ValueError& e) {  // e.g. NaN seen during calibration: say which layer
    throw ValueError("layer " + observed.name() + ": " + e.what());
  }
}

double QuantizedBatchNormBridge::input_scale() const {
  return input_scale_.data<float>()[0];
}
std::int64_t QuantizedBatchNormBridge::input_zero_point() const {
  return input_zero_point_.data<std::int64_t>()[0];
}

Tensor QuantizedBatchNormBridge::forward(const Tensor& input) {
  const QTensor q = quantize_per_tensor(input, input_scale(), input_zero_point(), dtype_);
  return qbn_->forward(q).dequantize();
}

Tensor QuantizedBatchNormBridge::backward(const Tensor&) {
  throw ValueError(type_name() + " is inference-only: it has no backward");
}

void QuantizedBatchNormBridge::prepare_load(nn::StateDict& dict, const std::string& prefix) {
  for (const char* key : {"scale", "zero_point", "input_scale", "input_zero_point"}) {
    auto it = dict.find(prefix + key);
    if (it != dict.end() && it->second.shape() == Shape{1}) it->second = it->second.reshape({});
  }
}

std::string QuantizedBatchNormBridge::extra_repr() const {
  std::ostringstream s;
  s << qbn_->extra_repr() << ", input_scale=" << input_scale()
    << ", input_zero_point=" << input_zero_point() << ", scale=" << qbn_->output_scale()
    << ", zero_point=" << qbn_->output_zero_point() << ", dtype=" << qdtype_name(dtype_);
  return s.str();
}

namespace {
using Found = std::vector<std::pair<Site, std::shared_ptr<nn::BatchNormBase>>>;

// Every layer prepare_batchnorms would wrap, with its plain BatchNorm; throws if any cannot be.
Found find_quantizable(nn::Module& root) {
  SYNCBN_CHECK(dynamic_cast<const nn::BatchNormBase*>(&root) == nullptr,
               "prepare_batchnorms: the root is itself a ", root.type_name(),
               " and has no parent to be swapped in; wrap it in a Sequential");
  Found found;
  std::vector<std::string> no_stats, lazy;
  for (const Site& site : sites_below(root)) {
    std::shared_ptr<nn::BatchNormBase> bn = plain_batchnorm(site);
    if (bn == nullptr) continue;
    if (bn->is_lazy())
      lazy.push_back(site.path);
    else if (!bn->running_mean.defined())
      no_stats.push_back(site.path);
    found.emplace_back(site, std::move(bn));
  }
  SYNCBN_CHECK(!found.empty(),
               "prepare_batchnorms: the model has no BatchNorm2d/BatchNorm3d layer to quantize "
               "(BatchNorm1d, GroupNorm and other norms have no quantized counterpart)");
  SYNCBN_CHECK(no_stats.empty(), "prepare_batchnorms: cannot quantize BatchNorm layer(s) ",
               join(no_stats),
               ": no running statistics (track_running_stats=False, e.g. model.norm "
               "batch_no_running_stats); a quantized BatchNorm normalises with running_mean and "
               "running_var, so train with running stats");
  SYNCBN_CHECK(lazy.empty(), "prepare_batchnorms: lazy BatchNorm layer(s) ", join(lazy),
               " have not seen input yet; run one forward first");
  return found;
}
}  // namespace

int quantizable_batchnorms(nn::Module& root) {
  return static_cast<int>(find_quantizable(root).size());
}

int prepare_batchnorms(nn::Module& root, const MinMaxObserver& observer) {
  const Found found = find_quantizable(root);  // everything checked before anything changes
  for (const auto& [site, bn] : found)
    root.set_submodule(site.path, std::make_shared<ObservedBatchNorm>(bn, site.path, observer));
  return static_cast<int>(found.size());
}

int convert_observed_batchnorms(nn::Module& root) {
  // Build every bridge first so that one unusable layer leaves the tree unchanged.
  std::vector<std::pair<Site, std::shared_ptr<nn::Module>>> swaps;
  for (const Site& site : sites_below(root))
    if (auto* observed = dynamic_cast<const ObservedBatchNorm*>(site.module.get()))
      swaps.emplace_back(site, QuantizedBatchNormBridge::from_observed(*observed));
  SYNCBN_CHECK(!swaps.empty(),
               "convert_observed_batchnorms: no ObservedBatchNorm layer in the "
               "model; call prepare_batchnorms and run calibration batches first");
  for (auto& [site, bridge] : swaps) root.set_submodule(site.path, bridge);
  return static_cast<int>(swaps.size());
}

int quantize_batchnorms(nn::Module& root, const std::function<void()>& run_calibration,
                        const MinMaxObserver& observer) {
  SYNCBN_CHECK(static_cast<bool>(run_calibration), "quantize_batchnorms: no calibration function");
  prepare_batchnorms(root, observer);
  root.eval();
  run_calibration();
  return convert_observed_batchnorms(root);
}

}  // namespace syncbn::quant
