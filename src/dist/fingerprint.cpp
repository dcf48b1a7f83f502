#include "fingerprint.hpp"

#include <sstream>

namespace syncbn::dist::detail {

const char* collective_name(Collective op) {
  switch (op) {
    case Collective::AllreduceSum:
      return "allreduce_sum";
    case Collective::AllreduceMin:
      return "allreduce_min";
    case Collective::AllreduceMax:
      return "allreduce_max";
    case Collective::AllreduceCustom:
      return "allreduce_custom";
    case Collective::Allgather:
      return "allgather";
    case Collective::Broadcast:
      return "broadcast";
    case Collective::Barrier:
      return "barrier";
    case Collective::Split:
      return "split";
  }
  return "unknown collective";
}

Collective allreduce_collective(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return Collective::AllreduceSum;
    case ReduceOp::Min:
      return Collective::AllreduceMin;
    case ReduceOp::Max:
      return Collective::AllreduceMax;
  }
  return Collective::AllreduceSum;
}

std::string describe(const Fingerprint& f) {
  std::ostringstream s;
  s << collective_name(f.op) << "(count=" << f.count << ", dtype=" << dtype_name(f.dtype);
  if (f.op == Collective::Broadcast) s << ", root=" << f.extra;
  if (f.op == Collective::AllreduceCustom) s << ", record_len=" << f.extra;
  s << ")";
  return s.str();
}

FingerprintFields fields_of(const Fingerprint& f) {
  return {static_cast<std::int64_t>(f.op), static_cast<std::int64_t>(f.dtype),
          static_cast<std::int64_t>(f.count), f.extra};
}

Spreads spreads_of(const FingerprintFields* all, int size) {
  Spreads spreads;
  for (std::size_t i = 0; i < kFingerprintFields; ++i) {
    Spread& s = spreads[i];
    s.min = s.max = all[0][i];
    for (int r = 1; r < size; ++r) {
      // Strict comparisons keep the lowest rank holding each extreme, as MPI_MINLOC does.
      if (all[r][i] < s.min) s.min = all[r][i], s.min_rank = r;
      if (all[r][i] > s.max) s.max = all[r][i], s.max_rank = r;
    }
  }
  return spreads;
}

namespace {

std::string name_value(std::size_t field, std::int64_t value) {
  if (field == 0) return collective_name(static_cast<Collective>(value));
  if (field == 1) return dtype_name(static_cast<DType>(value));
  return std::to_string(value);
}

std::string field_label(const Fingerprint& mine, std::size_t field) {
  const std::string op = collective_name(mine.op);
  if (field == 1) return op + " dtype";
  if (field == 2) return op + " count";
  return op + (mine.op == Collective::Broadcast ? " root" : " record_len");
}

}  // namespace

std::string mismatch_message(const Fingerprint& mine, const Spreads& spreads,
                             const std::string& backend, int rank, int size) {
  for (std::size_t i = 0; i < kFingerprintFields; ++i) {
    const Spread& s = spreads[i];
    if (s.min == s.max) continue;
    std::ostringstream msg;
    msg << "collective mismatch: ";
    if (i == 0) {
      msg << "ranks disagree on the collective: rank " << s.min_rank << " called "
          << name_value(i, s.min) << ", rank " << s.max_rank << " called " << name_value(i, s.max)
          << " (this rank called " << describe(mine) << ")";
    } else {
      const char* lo = i < 2 ? "" : "min ";
      const char* hi = i < 2 ? "" : "max ";
      msg << "ranks disagree on " << field_label(mine, i) << ": " << lo << name_value(i, s.min)
          << " (rank " << s.min_rank << ") vs " << hi << name_value(i, s.max) << " (rank "
          << s.max_rank << ")";
    }
    msg << " [" << backend << " group of size " << size << ", seen by rank " << rank << "]";
    return msg.str();
  }
  return "";
}

}  // namespace syncbn::dist::detail
