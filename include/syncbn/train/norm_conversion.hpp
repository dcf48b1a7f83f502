#pragma once
// What the launcher does to a built model's BatchNorm layers before training (model
// norm_conversion and sync_group_size): with more than one rank and conversion asked for, every
// BatchNorm1d/2d/3d becomes a SyncBatchNorm whose statistics combine within groups of k
// consecutive ranks (k = sync_group_size, 0 = the whole world), as
// torch.nn.SyncBatchNorm.convert_sync_batchnorm(model, process_group) with groups made by
// torch.distributed.new_subgroups(k).
#include <memory>
#include <string>
#include <vector>

#include "syncbn/config/config.hpp"
#include "syncbn/dist/process_group.hpp"
#include "syncbn/nn/module.hpp"

namespace syncbn::train {

// The sync groups a job of `world_size` ranks would use: `size` ranks each (0 = no conversion).
struct SyncGroups {
  int size = 0;
  int count = 0;
  // "SyncBatchNorm in 2 groups of 2 ranks", "SyncBatchNorm across all 4 ranks", or why there is
  // no conversion ("no SyncBatchNorm: one rank").
  std::string describe() const;
  std::string why_none;  // when size is 0
};

// Whether `model` asks for the conversion (it happens only on more than one rank).
bool conversion_asked(const config::ModelConfig& model);

// Whether and how `config` converts on `world_size` ranks. When it converts (more than one
// rank), throws ConfigError naming config.source if sync_group_size does not divide the world
// size or exceeds it.
SyncGroups plan_sync_groups(const config::Config& config, int world_size);

// Paths (named_modules) of the BatchNorm layers a conversion replaces, in tree order.
std::vector<std::string> convertible_batchnorms(const nn::Module& model);

// Collective over `world` (every rank, same config): applies the plan, splitting `world` into
// groups of consecutive ranks when they are smaller than it. Returns the new root.
std::shared_ptr<nn::Module> convert_norms(std::shared_ptr<nn::Module> model, const SyncGroups& plan,
                                          const std::shared_ptr<dist::ProcessGroup>& world);

}  // namespace syncbn::train
