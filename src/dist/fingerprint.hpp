#pragma once
// Collective fingerprints: what a rank is about to call, reduced to a few integers so that the
// ranks can compare them in one tiny collective before the real one. MPI would otherwise
// truncate (different counts), reinterpret bytes (different dtypes) or hang (different
// collectives). Backend-neutral (no mpi.h): GuardedGroup uses it over any transport.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "syncbn/dist/process_group.hpp"

namespace syncbn::dist::detail {

enum class Collective : std::int64_t {
  AllreduceSum = 1,
  AllreduceMin,
  AllreduceMax,
  AllreduceCustom,
  Allgather,
  Broadcast,
  Barrier,
  Split,
};
const char* collective_name(Collective op);
Collective allreduce_collective(ReduceOp op);

struct Fingerprint {
  Collective op = Collective::Barrier;
  DType dtype = DType::Float32;
  std::size_t count = 0;
  // Broadcast: root. AllreduceCustom: record length. Otherwise 0.
  std::int64_t extra = 0;
};
// "allreduce_sum(count=4, dtype=float32)".
std::string describe(const Fingerprint& f);

// The fields compared across ranks, in the order a mismatch is reported: a different collective
// explains a different count, not the other way round.
constexpr std::size_t kFingerprintFields = 4;
using FingerprintFields = std::array<std::int64_t, kFingerprintFields>;
FingerprintFields fields_of(const Fingerprint& f);

// Per field: smallest and largest value over the group, and the lowest rank holding each.
struct Spread {
  std::int64_t min = 0, max = 0;
  int min_rank = 0, max_rank = 0;
};
using Spreads = std::array<Spread, kFingerprintFields>;

// Spreads from every rank's fields (rank r's at index r), gathered only once a mismatch is known.
Spreads spreads_of(const FingerprintFields* all, int size);

// "" when every field agrees, else the CommError message every rank reports, e.g.
// "collective mismatch: ranks disagree on allreduce_sum count: min 4 (rank 0) vs max 5
// (rank 1) [mpi group of size 2, seen by rank 1]". `mine` names the collective when only its
// arguments differ.
std::string mismatch_message(const Fingerprint& mine, const Spreads& spreads,
                             const std::string& backend, int rank, int size);

}  // namespace syncbn::dist::detail
