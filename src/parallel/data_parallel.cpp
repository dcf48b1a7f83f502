#include "syncbn/parallel/data_parallel.hpp"

#include <cmath>
#include <utility>

#include "syncbn/dist/default_group.hpp"
#include "syncbn/error.hpp"

namespace syncbn::nn {
namespace {
// Checks what the members are built from, before GradientSync reads the module's parameters.
std::vector<std::pair<std::string, Parameter*>> checked_parameters(
    const std::shared_ptr<Module>& module, const DataParallelOptions& options) {
  SYNCBN_CHECK(module != nullptr, "DistributedDataParallel: module is null");
  SYNCBN_CHECK(std::isfinite(options.bucket_mb()) && options.bucket_mb() > 0,
               "DistributedDataParallel: bucket_mb must be > 0, got ", options.bucket_mb());
  return module->named_parameters();
}

std::size_t bucket_bytes(const DataParallelOptions& options) {
  return static_cast<std::size_t>(options.bucket_mb() * (1 << 20));
}
}  // namespace

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<Module> module,
                                                 std::shared_ptr<dist::ProcessGroup> group,
                                                 DataParallelOptions options)
    : module_(std::move(module)),
      group_(group ? std::move(group) : dist::default_group()),
      options_(options),
      gradients_(checked_parameters(module_, options_), bucket_bytes(options_)) {
  broadcast_state(*module_, *group_);
}

Tensor DistributedDataParallel::forward(const Tensor& input) {
  // Eval forwards issue no collective, so ranks may evaluate different numbers of batches.
  if (options_.broadcast_buffers() && module_->is_training()) sync_buffers();
  return module_->forward(input);
}

Tensor DistributedDataParallel::backward(const Tensor& grad_output) {
  std::vector<float> none;
  return backward(grad_output, none);
}

Tensor DistributedDataParallel::backward(const Tensor& grad_output, std::vector<float>& extra) {
  Tensor grad_input = module_->backward(grad_output);
  gradients_.average(*group_, extra);
  return grad_input;
}

void DistributedDataParallel::sync_buffers() {
  broadcast_buffers(*module_, *group_);
}

}  // namespace syncbn::nn
