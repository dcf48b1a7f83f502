#pragma once
// In-process groups: the single-process fallback and a threaded group for multi-rank tests.
#include <functional>
#include <memory>

#include "syncbn/dist/process_group.hpp"

namespace syncbn::dist {

// A world of one: collectives return their input (allgather copies send to recv).
std::shared_ptr<ProcessGroup> make_local_group();

// Runs fn(group) on n threads, one per rank of an in-process group whose collectives follow the
// ProcessGroup contract exactly (including mismatch errors). Blocks until every rank returns.
// Each rank's group is its own shared_ptr, so it can be handed to what keeps one (SyncBatchNorm,
// run_training) and may outlive fn. If a rank throws, ranks waiting in a collective are
// released with a CommError, and the first exception thrown by any rank is rethrown here.
// n must be >= 1.
void spawn_ranks(int n, const std::function<void(std::shared_ptr<ProcessGroup>)>& fn);

}  // namespace syncbn::dist
