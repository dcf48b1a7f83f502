#pragma once
// DistributedDataParallel: torch.nn.parallel.DistributedDataParallel for a syncbn Module. Each
// rank holds a replica of the model and a slice of every batch; the wrapper keeps the replicas
// identical, so that W ranks with batch B train the model one rank would train with batch W*B
// (exactly so when its BatchNorm layers are SyncBatchNorm and the loss is a batch mean):
//   - the constructor copies rank 0's parameters and buffers to every rank;
//   - forward(x), in training mode, first copies rank 0's buffers (BatchNorm running statistics)
//     to every rank, in ONE broadcast, unless broadcast_buffers is off, the module has no
//     buffers or the group has one rank; in eval mode it is the module's forward alone;
//   - backward(dy) runs the module's backward, then replaces every parameter gradient by its
//     average over the ranks: gradients are packed in buckets of at most bucket_mb MiB, ONE
//     allreduce per bucket, in named_parameters() order.
// The optimizer then steps every replica alike. Unlike PyTorch, whose autograd hooks overlap
// the bucket allreduces with backward, the buckets are sent after the module's backward.
//
// Contract: the constructor, forward (training) and backward are collectives over the group:
// every rank calls them, in the same order. Call zero_grad() (module or optimizer) before
// backward, as gradients accumulate. The wrapper shares the module: parameters and buffers
// must not be added or removed while it lives (the buckets hold their addresses).
#include <cstddef>
#include <memory>
#include <vector>

#include "syncbn/dist/process_group.hpp"
#include "syncbn/nn/module.hpp"
#include "syncbn/options.hpp"
#include "syncbn/parallel/gradient_sync.hpp"

namespace syncbn::nn {

struct DataParallelOptions {
  // Largest gradient bucket, in MiB (PyTorch's bucket_cap_mb); > 0. Fewer, larger buckets mean
  // fewer collectives; one parameter larger than this gets a bucket of its own.
  SYNCBN_ARG(double, bucket_mb) = 25;
  // Rank 0's buffers to every rank before each training forward (PyTorch's default). Plain
  // BatchNorm then evaluates and saves rank 0's running statistics on every rank; SyncBatchNorm
  // keeps them identical without it.
  SYNCBN_ARG(bool, broadcast_buffers) = true;
};

class DistributedDataParallel {
 public:
  // Collective over `group` (nullptr: dist::default_group(), as PyTorch's process_group=None):
  // broadcasts rank 0's parameters and buffers. Throws ValueError for a null module or a
  // bucket_mb that is not > 0.
  explicit DistributedDataParallel(std::shared_ptr<Module> module,
                                   std::shared_ptr<dist::ProcessGroup> group = nullptr,
                                   DataParallelOptions options = DataParallelOptions());

  // The module's forward, after the buffer broadcast described above (training mode only).
  Tensor forward(const Tensor& input);
  // The module's backward, then gradients averaged over the group; returns the input gradient.
  Tensor backward(const Tensor& grad_output);
  // The same, with `extra` values riding along in the last bucket: they come back summed over
  // the ranks (e.g. the local losses, or a stop flag), at no extra collective.
  Tensor backward(const Tensor& grad_output, std::vector<float>& extra);
  // Rank 0's buffers to every rank now, in one broadcast (what a training forward does when
  // broadcast_buffers is on). Collective; nothing is sent when the module has no buffers or the
  // group has one rank.
  void sync_buffers();

  const std::shared_ptr<Module>& module() const { return module_; }
  const std::shared_ptr<dist::ProcessGroup>& process_group() const { return group_; }
  const DataParallelOptions& options() const { return options_; }
  // How many allreduces one backward issues on a group of more than one rank.
  std::size_t bucket_count() const { return gradients_.bucket_count(); }

  void train(bool on = true) { module_->train(on); }
  void eval() { module_->eval(); }
  void zero_grad() { module_->zero_grad(); }

 private:
  std::shared_ptr<Module> module_;
  std::shared_ptr<dist::ProcessGroup> group_;
  DataParallelOptions options_;
  GradientSync gradients_;
};

}  // namespace syncbn::nn
