#pragma once
// GradientSync, broadcast_state and broadcast_buffers moved to syncbn/parallel/gradient_sync.hpp
// (namespace syncbn::nn), below train, so DistributedDataParallel can use them; this header
// keeps the old names working.
#include "syncbn/parallel/gradient_sync.hpp"

namespace syncbn::train {
using nn::broadcast_buffers;
using nn::broadcast_state;
using nn::GradientSync;
}  // namespace syncbn::train
