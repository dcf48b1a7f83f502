#include "syncbn/nn/batchnorm.hpp"

#include "core/py_repr.hpp"
#include "syncbn/error.hpp"

namespace syncbn::nn {
namespace {
using detail::py_float;
void add_into(Tensor& grad, const std::vector<double>& sums) {
  float* g = grad.data<float>();
  for (std::size_t c = 0; c < sums.size(); ++c) g[c] += static_cast<float>(sums[c]);
}

}  // namespace

const char* variant_suffix(BatchNormVariant variant) {
  switch (variant) {
    case BatchNormVariant::OneD:
      return "1d";
    case BatchNormVariant::TwoD:
      return "2d";
    case BatchNormVariant::ThreeD:
      return "3d";
    case BatchNormVariant::Any:
      break;
  }
  return "";
}

BatchNormBase::BatchNormBase(BatchNormOptions options, BatchNormVariant variant, bool lazy)
    : options_(options), variant_(variant), lazy_(lazy) {
  const char* suffix = variant_suffix(variant_);
  SYNCBN_CHECK(lazy || options_.num_features() > 0, "BatchNorm", suffix,
               ": num_features must be positive, got ", options_.num_features());
  SYNCBN_CHECK(options_.eps() > 0, "BatchNorm", suffix, ": eps must be positive, got ",
               options_.eps());
  if (options_.affine()) {
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
  }
  if (options_.track_running_stats()) {
    register_buffer("running_mean", &running_mean);
    register_buffer("running_var", &running_var);
    register_buffer("num_batches_tracked", &num_batches_tracked);
  }
  materialize(lazy ? 0 : options_.num_features());
}

void BatchNormBase::materialize(std::int64_t num_features) {
  options_.num_features(num_features);
  if (options_.affine()) {
    weight.value = Tensor::zeros({num_features});
    bias.value = Tensor::zeros({num_features});
  }
  if (options_.track_running_stats()) {
    running_mean = Tensor::zeros({num_features});
    running_var = Tensor::zeros({num_features});
    num_batches_tracked = Tensor::scalar_int64(0);
  }
  reset_parameters();
}

void BatchNormBase::reset_running_stats() {
  if (!options_.track_running_stats()) return;
  running_mean.fill_(0.0);
  running_var.fill_(1.0);
  num_batches_tracked.fill_(0.0);
}

void BatchNormBase::reset_parameters() {
  reset_running_stats();
  if (!options_.affine()) return;
  weight.value.fill_(1.0);
  bias.value.fill_(0.0);
  weight.grad = Tensor::zeros(weight.value.shape());
  bias.grad = Tensor::zeros(bias.value.shape());
}

void BatchNormBase::drop_running_stats() {
  if (!options_.track_running_stats()) return;
  for (const char* name : {"running_mean", "running_var", "num_batches_tracked"})
    unregister_buffer(name);
  running_mean = running_var = num_batches_tracked = Tensor();
  options_.track_running_stats(false);
}

void BatchNormBase::copy_state_from(const BatchNormBase& other) {
  if (other.lazy_) return;
  materialize(other.options_.num_features());
  lazy_ = false;
  if (options_.affine() && other.options_.affine()) {
    weight = other.weight;
    bias = other.bias;
  }
  if (options_.track_running_stats() && other.options_.track_running_stats()) {
    running_mean = other.running_mean;
    running_var = other.running_var;
    num_batches_tracked = other.num_batches_tracked;
  }
  train(other.is_training());
}

std::string BatchNormBase::type_name() const {
  return (lazy_ ? "LazyBatchNorm" : "BatchNorm") + std::string(variant_suffix(variant_));
}

std::string BatchNormBase::extra_repr() const {
  const auto& o = options_;
  return std::to_string(o.num_features()) + ", eps=" + py_float(o.eps()) +
         ", momentum=" + (o.momentum() ? py_float(*o.momentum()) : "None") +
         ", affine=" + (o.affine() ? "True" : "False") +
         ", track_running_stats=" + (o.track_running_stats() ? "True" : "False");
}

void BatchNormBase::check_input(const Tensor& input) const {
  // Only the 1d/2d/3d variants get here: SyncBatchNorm (Any) checks its input itself.
  const bool one_d = variant_ == BatchNormVariant::OneD;
  const std::int64_t rank = variant_ == BatchNormVariant::TwoD ? 4 : 5;
  const bool ok = one_d ? input.dim() == 2 || input.dim() == 3 : input.dim() == rank;
  SYNCBN_CHECK_AS(ShapeError, ok, "expected ", one_d ? "2D or 3D" : std::to_string(rank) + "D",
                  " input (got ", input.dim(), "D input)");
  SYNCBN_CHECK_AS(ShapeError, lazy_ || input.size(1) == options_.num_features(), type_name(), "(",
                  options_.num_features(), "): expected input with ", options_.num_features(),
                  " channels, got ", input.size(1), " (input shape ", shape_str(input.shape()),
                  ")");
}

functional::ChannelMoments BatchNormBase::batch_moments(const Tensor& input) {
  return functional::channel_moments(input);
}

std::int64_t BatchNormBase::reduce_grad_sums(functional::GradSums&, std::int64_t local_count) {
  return local_count;
}

double BatchNormBase::update_factor() {
  auto& tracked = *num_batches_tracked.data<std::int64_t>();
  tracked += 1;
  return options_.momentum() ? *options_.momentum() : 1.0 / static_cast<double>(tracked);
}

Tensor BatchNormBase::forward(const Tensor& input) {
  check_input(input);
  if (lazy_) {
    materialize(input.size(1));
    lazy_ = false;
  }
  const bool tracking = options_.track_running_stats();
  saved_batch_stats_ = is_training() || !tracking;
  if (saved_batch_stats_) {
    const functional::ChannelMoments m = batch_moments(input);
    functional::check_more_than_one_value(input, m.count);
    if (is_training() && tracking)
      functional::update_running_stats(running_mean, running_var, m, update_factor());
    saved_mean_ = m.mean;
    saved_invstd_ = functional::invstd_from_var(functional::biased_var(m), options_.eps());
  } else {
    saved_mean_ = functional::to_doubles(running_mean);
    saved_invstd_ =
        functional::invstd_from_var(functional::to_doubles(running_var), options_.eps());
  }
  saved_input_ = input;  // shares the storage: no copy
  return functional::normalize(input, saved_mean_, saved_invstd_, weight.value, bias.value);
}

Tensor BatchNormBase::backward(const Tensor& grad_output) {
  SYNCBN_CHECK(saved_input_.defined(), type_name(), ": backward called before forward");
  functional::GradSums sums =
      functional::grad_sums(grad_output, saved_input_, saved_mean_, saved_invstd_);
  if (options_.affine()) {
    add_into(weight.grad, sums.sum_dy_xhat);
    add_into(bias.grad, sums.sum_dy);
  }
  if (!saved_batch_stats_)
    return functional::grad_input_eval(grad_output, saved_invstd_, weight.value);
  const std::int64_t local = saved_input_.numel() / std::max<std::int64_t>(1, saved_input_.size(1));
  const std::int64_t count = reduce_grad_sums(sums, local);
  return functional::grad_input_train(grad_output, saved_input_, saved_mean_, saved_invstd_,
                                      weight.value, sums, count);
}

void BatchNormBase::prepare_load(StateDict& dict, const std::string& prefix) {
  if (lazy_) {
    for (const char* key : {"weight", "running_mean"}) {
      auto it = dict.find(prefix + key);
      if (it != dict.end() && it->second.dim() == 1) {
        materialize(it->second.size(0));
        lazy_ = false;
        break;
      }
    }
  }
  // A version-1 state dict (before PyTorch 0.4.1) has no num_batches_tracked: it starts at 0.
  const std::string tracked = prefix + "num_batches_tracked";
  if (options_.track_running_stats() && dict.count(prefix + "running_mean") && !dict.count(tracked))
    dict[tracked] = Tensor::scalar_int64(0);
}

BatchNorm1d::BatchNorm1d(BatchNormOptions options)
    : BatchNormBase(options, BatchNormVariant::OneD, false) {}
LazyBatchNorm1d::LazyBatchNorm1d(BatchNormOptions options)
    : BatchNormBase(options, BatchNormVariant::OneD, true) {}
BatchNorm2d::BatchNorm2d(BatchNormOptions options)
    : BatchNormBase(options, BatchNormVariant::TwoD, false) {}
LazyBatchNorm2d::LazyBatchNorm2d(BatchNormOptions options)
    : BatchNormBase(options, BatchNormVariant::TwoD, true) {}
BatchNorm3d::BatchNorm3d(BatchNormOptions options)
    : BatchNormBase(options, BatchNormVariant::ThreeD, false) {}
LazyBatchNorm3d::LazyBatchNorm3d(BatchNormOptions options)
    : BatchNormBase(options, BatchNormVariant::ThreeD, true) {}

std::shared_ptr<Module> replace_all_batch_norm_modules_(std::shared_ptr<Module> root) {
  root->apply([](Module& m) {
    if (auto* bn = dynamic_cast<BatchNormBase*>(&m)) bn->drop_running_stats();
  });
  return root;
}

}  // namespace syncbn::nn
