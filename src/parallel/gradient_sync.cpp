#include "syncbn/parallel/gradient_sync.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "syncbn/error.hpp"

namespace syncbn::nn {
namespace {
// The buckets were sized from the values: a missing or reshaped gradient would be read past its
// end (backward defines every gradient it touches; zero_grad() defines them all).
void check_grad(const std::string& name, const Parameter& p) {
  SYNCBN_CHECK(
      p.grad.defined() && p.grad.dtype() == DType::Float32 && p.grad.numel() == p.value.numel(),
      "gradient averaging: parameter '", name, "' has ",
      p.grad.defined() ? "a gradient of shape " + shape_str(p.grad.shape())
                       : std::string("no gradient"),
      ", expected float32 of shape ", shape_str(p.value.shape()),
      " (zero_grad() defines every gradient)");
}
}  // namespace

GradientSync::GradientSync(std::vector<std::pair<std::string, Parameter*>> parameters,
                           std::size_t bucket_bytes)
    : parameters_(std::move(parameters)) {
  const std::size_t cap = std::max<std::size_t>(1, bucket_bytes / sizeof(float));
  Bucket current{0, 0, 0};
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const auto n = static_cast<std::size_t>(parameters_[i].second->value.numel());
    if (current.floats > 0 && current.floats + n > cap) {
      buckets_.push_back(current);
      current = {i, i, 0};
    }
    current.last = i + 1;
    current.floats += n;
  }
  buckets_.push_back(current);  // possibly empty: it still carries the extras
}

int GradientSync::average(dist::ProcessGroup& group, std::vector<float>& extra) {
  // All checked before the first collective, so a bad gradient fails before any bucket is sent.
  for (const auto& [name, p] : parameters_) check_grad(name, *p);
  const float scale = 1.0f / static_cast<float>(group.size());
  int collectives = 0;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const Bucket& bucket = buckets_[b];
    const bool last = b + 1 == buckets_.size();
    staging_.resize(bucket.floats + (last ? extra.size() : 0));
    std::size_t at = 0;
    for (std::size_t i = bucket.first; i < bucket.last; ++i) {
      Tensor& g = parameters_[i].second->grad;
      std::memcpy(staging_.data() + at, g.data<float>(), g.nbytes());
      at += static_cast<std::size_t>(g.numel());
    }
    if (last)
      std::copy(extra.begin(), extra.end(), staging_.begin() + static_cast<std::ptrdiff_t>(at));
    if (group.size() > 1) {
      group.allreduce(staging_.data(), staging_.size());
      ++collectives;
    }
    at = 0;
    for (std::size_t i = bucket.first; i < bucket.last; ++i) {
      Tensor& g = parameters_[i].second->grad;
      float* dst = g.data<float>();
      for (std::int64_t k = 0; k < g.numel(); ++k)
        dst[k] = staging_[at + static_cast<std::size_t>(k)] * scale;
      at += static_cast<std::size_t>(g.numel());
    }
    if (last)
      std::copy(staging_.begin() + static_cast<std::ptrdiff_t>(at), staging_.end(), extra.begin());
  }
  return collectives;
}

void broadcast_state(Module& module, dist::ProcessGroup& group) {
  if (group.size() == 1) return;
  for (auto& [name, p] : module.named_parameters()) group.broadcast(p->value, 0);
  for (auto& [name, b] : module.named_buffers()) group.broadcast(*b, 0);
}

void broadcast_buffers(Module& module, dist::ProcessGroup& group) {
  const auto buffers = module.named_buffers();
  std::size_t bytes = 0;
  for (const auto& [name, b] : buffers) bytes += b->nbytes();
  if (group.size() == 1 || bytes == 0) return;
  // Byte-wise, so float statistics and int64 counters travel together.
  std::vector<unsigned char> packed(bytes);
  std::size_t at = 0;
  for (const auto& [name, b] : buffers)
    std::memcpy(packed.data() + at, std::as_const(*b).raw(), b->nbytes()), at += b->nbytes();
  group.broadcast(packed.data(), bytes, DType::UInt8, 0);
  at = 0;
  for (const auto& [name, b] : buffers)
    std::memcpy(b->raw(), packed.data() + at, b->nbytes()), at += b->nbytes();
}

}  // namespace syncbn::nn
