#pragma once
// Internal access to the threaded transport, for tests of what wraps it (GuardedGroup).
// spawn_ranks (syncbn/dist/local.hpp) is the public way in: it guards each rank's group and
// releases the other ranks when one throws.
#include <memory>
#include <vector>

#include "syncbn/dist/process_group.hpp"

namespace syncbn::dist::detail {

// The n ranks of one threaded group, bare: no collective guard, so ranks that disagree on a
// count get the transport's bounds error (no names, no fingerprint), and nothing releases a rank
// waiting for one that never comes. Each must be driven by its own thread. n must be >= 1.
std::vector<std::shared_ptr<ProcessGroup>> make_threaded_ranks(int n);

}  // namespace syncbn::dist::detail
