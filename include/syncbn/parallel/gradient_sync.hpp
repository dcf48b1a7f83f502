#pragma once
// The collectives of data-parallel training, what DistributedDataParallel
// (syncbn/parallel/data_parallel.hpp) is made of; use them directly only for a loop that needs
// finer control than that wrapper gives.
//
// GradientSync: parameter gradients are packed into buckets of at most `bucket_bytes` and each
// bucket is averaged with ONE allreduce (not one per tensor), in the same parameter order on
// every rank. Every rank of the group must call average() together.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "syncbn/dist/process_group.hpp"
#include "syncbn/nn/module.hpp"

namespace syncbn::nn {

class GradientSync {
 public:
  GradientSync(std::vector<std::pair<std::string, Parameter*>> parameters,
               std::size_t bucket_bytes);

  // Averages every gradient over the group. `extra` values (e.g. the local loss) ride along in
  // the last bucket and come back summed, so callers learn global facts without another
  // collective. Returns the number of collectives issued (one per bucket).
  int average(dist::ProcessGroup& group, std::vector<float>& extra);
  std::size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::size_t first, last;  // parameter index range [first, last)
    std::size_t floats;
  };
  std::vector<std::pair<std::string, Parameter*>> parameters_;
  std::vector<Bucket> buckets_;
  std::vector<float> staging_;
};

// Rank 0's parameters and buffers overwrite everyone else's (one broadcast per tensor, at
// start-up only), so every rank begins from identical weights.
void broadcast_state(Module& module, dist::ProcessGroup& group);

// Rank 0's buffers (BatchNorm running statistics) overwrite everyone else's in ONE broadcast:
// PyTorch DDP's broadcast_buffers=True, done before each training forward so that with plain
// (unsynchronised) BatchNorm every rank evaluates and saves the same model, rank 0's.
// Collective over `group`; nothing is sent when the module has no buffers.
void broadcast_buffers(Module& module, dist::ProcessGroup& group);

}  // namespace syncbn::nn
