#include "syncbn/train/norm_conversion.hpp"

#include "syncbn/error.hpp"
#include "syncbn/nn/batchnorm.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"

namespace syncbn::train {

// The reader folds model.norm_conversion into model.norm: sync_batch asks for the conversion.
bool conversion_asked(const config::ModelConfig& m) {
  return m.norm.kind == config::NormKind::SyncBatch;
}

std::string SyncGroups::describe() const {
  if (size == 0) return "no SyncBatchNorm: " + why_none;
  if (count == 1) return "SyncBatchNorm across all " + std::to_string(size) + " ranks";
  return "SyncBatchNorm in " + std::to_string(count) + " groups of " + std::to_string(size) +
         " ranks";
}

// A one-rank run of a config written for groups of k still runs (nothing to synchronise), so
// the group size is checked only when there is a conversion to make.
SyncGroups plan_sync_groups(const config::Config& c, int world_size) {
  if (!conversion_asked(c.model)) return {0, 0, "model.norm_conversion none"};
  if (world_size == 1) return {0, 0, "one rank"};
  const std::int64_t k = c.model.sync_group_size;
  SYNCBN_CHECK_AS(ConfigError, k >= 0 && k <= world_size, c.source, ": model.sync_group_size ", k,
                  " is larger than the world size ", world_size,
                  " (0 synchronises across all ranks)");
  const int size = k == 0 ? world_size : static_cast<int>(k);
  SYNCBN_CHECK_AS(ConfigError, world_size % size == 0, c.source, ": model.sync_group_size ", k,
                  " does not divide the world size ", world_size,
                  "; launch a multiple of it, or set 0 for all ranks");
  return {size, world_size / size, ""};
}

std::vector<std::string> convertible_batchnorms(const nn::Module& model) {
  std::vector<std::string> paths;
  for (const auto& [path, module] : model.named_modules())
    if (std::dynamic_pointer_cast<nn::BatchNormBase>(module) &&
        !std::dynamic_pointer_cast<nn::SyncBatchNorm>(module))
      paths.push_back(path);
  return paths;
}

std::shared_ptr<nn::Module> convert_norms(std::shared_ptr<nn::Module> model, const SyncGroups& plan,
                                          const std::shared_ptr<dist::ProcessGroup>& world) {
  if (plan.size == 0) return model;
  std::shared_ptr<dist::ProcessGroup> group = world;
  // split is collective; every rank takes this branch alike (same plan everywhere).
  if (plan.size < world->size()) group = world->split(world->rank() / plan.size, world->rank());
  return nn::convert_sync_batchnorm(std::move(model), std::move(group));
}

}  // namespace syncbn::train
