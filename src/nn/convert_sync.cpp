// Tree rewrites between BatchNorm and SyncBatchNorm. Both swap modules in place by path, so
// parents (Sequential or user modules) keep their structure and names.
#include <algorithm>

#include "syncbn/nn/sync_batchnorm.hpp"

namespace syncbn::nn {
namespace {
// Every path, duplicates included, as PyTorch's recursion: a module shared by two parents is
// replaced under both (by two copies, as torch.nn.SyncBatchNorm.convert_sync_batchnorm does).
template <typename Swap>
std::shared_ptr<Module> rewrite(std::shared_ptr<Module> root, const Swap& swap) {
  if (auto replaced = swap(root)) return replaced;
  std::string swapped;  // the last path replaced: what was below it has left the tree
  for (const auto& [path, module] : root->named_modules("", /*remove_duplicate=*/false)) {
    const bool below = !swapped.empty() && path.rfind(swapped + ".", 0) == 0;
    if (path.empty() || below) continue;
    if (auto replaced = swap(module)) {
      root->set_submodule(path, std::move(replaced));
      swapped = path;
    }
  }
  return root;
}
}  // namespace

std::shared_ptr<Module> convert_sync_batchnorm(std::shared_ptr<Module> module,
                                               std::shared_ptr<dist::ProcessGroup> group) {
  return rewrite(std::move(module),
                 [&](const std::shared_ptr<Module>& m) -> std::shared_ptr<Module> {
                   auto bn = std::dynamic_pointer_cast<BatchNormBase>(m);
                   if (!bn || std::dynamic_pointer_cast<SyncBatchNorm>(m)) return nullptr;
                   return SyncBatchNorm::from_batchnorm(*bn, group);
                 });
}

std::shared_ptr<Module> revert_sync_batchnorm(std::shared_ptr<Module> module) {
  return rewrite(std::move(module),
                 [](const std::shared_ptr<Module>& m) -> std::shared_ptr<Module> {
                   auto sync = std::dynamic_pointer_cast<SyncBatchNorm>(m);
                   return sync ? sync->to_batchnorm() : nullptr;
                 });
}

int count_sync_batchnorm(const Module& module) {
  const auto all = module.modules();
  return static_cast<int>(std::count_if(all.begin(), all.end(), [](const auto& m) {
    return std::dynamic_pointer_cast<SyncBatchNorm>(m) != nullptr;
  }));
}

}  // namespace syncbn::nn
